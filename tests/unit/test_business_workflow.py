"""证书业务 (SPEC §5.2; 003 §六.3, §七.3, §八.3; 000 §二(二), §三; 001): who may apply for what,
the paper-form images, the review chains by city, the 3-month social-security rule, the effects of
province approval, optimistic locking, visibility of applications, and a random walk over the table.

Every test starts from fresh certificates issued through approved batches (tests.factories), so the
demo's own applications, whatever they are, never stand in the way.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from models import (
    ApplicationKind,
    ApplicationStatus,
    Attachment,
    Certificate,
    CertificateApplication,
    CertificateStatus,
    Message,
    Person,
)
from models.audit import TransitionLog
from models.base import local_today, utcnow
from models.user import Permission, Role
from tests.factories import (
    issued_certificates,
    make_application,
    make_user,
    next_identity,
    org,
    png_files,
    user,
)
from tests.samples import make_jpeg, make_pdf, make_png
from workflows import NotFoundError, StaleObjectError, WorkflowError
from workflows.business import (
    BUSINESS,
    add_lost_certificate,
    attach_images,
    awaiting_review,
    certificate_history,
    check_may_apply,
    remove_lost_certificate,
    start_cancel,
    start_change,
    start_reissue,
)
from workflows.engine import setting_state
from workflows.validators import make_id_number, parse_id_number
from workflows.visibility import get_visible, visible

A = ApplicationStatus
K = ApplicationKind
REASON = "申请表未加盖公章"

ENTERPRISE, ENTERPRISE2, ENTERPRISE3, SCHOOL = "QY370101", "QY370201", "QY370102", "XX370101"
JINAN, QINGDAO = "SD370100", "SD370200"

# Fresh holders: (issuing institution's user, employer code, or None for a free-text employer,
# or "person" for the demo individual 张建国 himself).
HOLDERS = {
    "jinan_ent": ("inst_jinan", ENTERPRISE),
    "jinan_ent2": ("inst_jinan", ENTERPRISE2),
    "jinan_free": ("inst_jinan", None),
    "qingdao_ent": ("inst_qingdao", ENTERPRISE),
    "qingdao_ent2": ("inst_qingdao", ENTERPRISE2),
    "qingdao_free": ("inst_qingdao", None),
    "direct_ent": ("direct_inst", ENTERPRISE),
    "school": ("inst_jinan", SCHOOL),
    "own": ("inst_jinan", "person"),
}
# pairs 张建国 does not hold in the demo (he has 砌筑工/电工 初级工)
OWN_PAIRS = [("焊工", "中级工(四级)"), ("电工", "高级工(三级)"), ("施工员", None), ("安全员", None)]
TWO_PAIRS = [("砌筑工", "初级工(五级)"), ("电工", "初级工(五级)")]


# -- helpers ------------------------------------------------------------------------------------------


def holder_certificates(session, holder: str, count: int = 1) -> list[Certificate]:
    issuer, employer = HOLDERS[holder]
    if employer == "person":
        person = user(session, "person").person
        person.last_employer_change_at = None
        held = {(c.occupation.name, c.level.name if c.level else None) for c in person.certificates}
        pairs = [p for p in OWN_PAIRS if p not in held][:count]
        return issued_certificates(session, issuer, pairs, person=person)
    return issued_certificates(session, issuer, TWO_PAIRS[:count], employer=org(session, employer) if employer else None)


def certificate(session, holder: str) -> Certificate:
    return holder_certificates(session, holder)[0]


def fresh_id_number() -> str:
    return next_identity("370203")[0]


def change_values(session, what: str, receiving: str | None = None) -> dict:
    if what == "name":
        return {"new_name": "王新名"}
    if what == "id_number":
        return {"new_id_number": fresh_id_number()}
    if what == "employer":
        return {"new_employer_id": org(session, receiving or ENTERPRISE3).id}
    raise ValueError(what)


def start(session, applicant, what: str, cert: Certificate, *, receiving: str | None = None, values=None):
    """新建申请 of ``what`` (name / id_number / employer / cancel / reissue), as a draft."""
    applicant = user(session, applicant) if isinstance(applicant, str) else applicant
    if what == "cancel":
        return start_cancel(session, applicant, cert, "证书持有人申请注销")
    if what == "reissue":
        return start_reissue(session, applicant, "遗失证书1个，现需重新打印", cert)
    return start_change(session, applicant, cert, [what], values or change_values(session, what, receiving),
                        one_field_only=True)


def submitted(session, applicant, what, cert, *, receiving=None, values=None, images=1, more=()):
    """An application filed and submitted (tests.factories.make_application)."""
    if what in ("cancel", "reissue"):
        return make_application(session, applicant, what, cert, images=images, more=more)
    return make_application(session, applicant, "change", cert, fields=[what], images=images,
                            values=values or change_values(session, what, receiving))


def fire(session, username, app, name, reason=None, **data):
    return BUSINESS.fire(session, user(session, username), app, name, reason=reason, **data)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def app_logs(session, app) -> list[tuple[str, str, str]]:
    rows = session.scalars(select(TransitionLog).where(TransitionLog.object_type == "application",
                                                       TransitionLog.object_id == app.id)
                           .order_by(TransitionLog.id))
    return [(r.transition, r.from_state, r.to_state) for r in rows]


def certificate_logs(session, cert) -> list[TransitionLog]:
    return list(session.scalars(select(TransitionLog).where(TransitionLog.object_type == "certificate",
                                                            TransitionLog.object_id == cert.id)
                                .order_by(TransitionLog.id)))


def images_of(session, app) -> int:
    return count(session, Attachment, Attachment.owner_type == "application", Attachment.owner_id == app.id)


def person_snapshot(person: Person) -> tuple:
    return (person.name, person.id_number, person.birth_date, person.gender, person.employer_id,
            person.employer_name, person.last_employer_change_at)


def certificate_snapshot(session, person_id: int) -> list[tuple]:
    return [(c.id, c.number, c.status, c.endorsement_count, c.replaces_id)
            for c in session.scalars(select(Certificate).where(Certificate.person_id == person_id)
                                     .order_by(Certificate.id))]


# -- 1. who may apply -------------------------------------------------------------------------------------

# (applicant, holder, what, expected message fragment or None when allowed)
WHO_MAY_APPLY = [
    # 003 §六.3: an institution for the certificates it issued
    ("inst_jinan", "jinan_ent", "name", None),
    ("inst_jinan", "jinan_free", "cancel", None),
    ("inst_jinan", "jinan_ent2", "reissue", None),
    ("inst_qingdao", "qingdao_free", "id_number", None),
    ("direct_inst", "direct_ent", "cancel", None),
    ("inst_jinan", "qingdao_ent", "cancel", "只能为本机构发放的证书办理业务"),
    ("inst_qingdao", "jinan_ent", "name", "只能为本机构发放的证书办理业务"),
    ("inst_jinan", "direct_ent", "reissue", "只能为本机构发放的证书办理业务"),
    ("direct_inst", "jinan_ent", "cancel", "只能为本机构发放的证书办理业务"),
    # 000/001: an enterprise for its employees, whoever issued the certificate
    ("enterprise", "jinan_ent", "reissue", None),
    ("enterprise", "qingdao_ent", "employer", None),
    ("enterprise", "direct_ent", "name", None),
    ("enterprise2", "jinan_ent2", "cancel", None),
    ("enterprise", "qingdao_ent2", "name", "只能为本企业人员的证书办理业务"),
    ("enterprise", "jinan_free", "cancel", "只能为本企业人员的证书办理业务"),
    ("enterprise2", "jinan_ent", "reissue", "只能为本企业人员的证书办理业务"),
    # 001 个人用户: the holder for their own certificates only
    ("person", "own", "name", None),
    ("person", "own", "reissue", None),
    ("person", "own", "employer", None),
    ("person", "jinan_ent", "cancel", "只能为本人的证书办理业务"),
    ("person", "school", "employer", "只能为本人的证书办理业务"),
    # 000 §二(二).4, 001 信息变更 4: a school, only an employer change of its students
    ("school", "school", "employer", None),
    ("school", "school", "name", "学校(虚拟企业)只能为学生办理工作单位变更"),
    ("school", "school", "id_number", "学校(虚拟企业)只能为学生办理工作单位变更"),
    ("school", "school", "cancel", "学校(虚拟企业)只能为学生办理工作单位变更"),
    ("school", "school", "reissue", "学校(虚拟企业)只能为学生办理工作单位变更"),
    ("school", "jinan_ent", "employer", "只能为本校学生的证书办理业务"),
    ("enterprise", "school", "employer", "只能为本企业人员的证书办理业务"),
    ("inst_jinan", "school", "cancel", "在校学生的证书只能由学校办理工作单位变更"),
    ("inst_jinan", "school", "name", "在校学生的证书只能由学校办理工作单位变更"),
    ("inst_jinan", "school", "reissue", "在校学生的证书只能由学校办理工作单位变更"),
    # reviewers and others never apply
    ("jinan", "jinan_ent", "cancel", "无权办理证书业务"),
    ("province", "jinan_ent", "name", "无权办理证书业务"),
    ("ministry", "jinan_ent", "reissue", "无权办理证书业务"),
]


@pytest.mark.parametrize(("applicant", "holder", "what", "refusal"), WHO_MAY_APPLY,
                         ids=[f"{a}-{h}-{w}" for a, h, w, _ in WHO_MAY_APPLY])
def test_who_may_apply_for_which_certificate(rolled_session, applicant, holder, what, refusal):
    s = rolled_session
    cert = certificate(s, holder)
    before = count(s, CertificateApplication)
    if refusal is None:
        app = start(s, applicant, what, cert)
        assert app.status == A.draft
        assert app.applicant_user_id == user(s, applicant).id
        assert app.applicant_org_id == user(s, applicant).organization_id
        assert app.person_id == cert.person_id and app.certificates == [cert]
        assert count(s, CertificateApplication) == before + 1
    else:
        with pytest.raises(WorkflowError, match=re.escape(refusal)):
            start(s, applicant, what, cert)
        assert count(s, CertificateApplication) == before


def test_only_the_school_moves_its_student_to_an_enterprise(rolled_session):
    s = rolled_session
    cert = certificate(s, "school")
    with pytest.raises(WorkflowError, match="在校学生的证书只能由学校办理工作单位变更"):
        start(s, "inst_jinan", "employer", cert, receiving=ENTERPRISE2)


def test_an_individual_of_a_school_may_not_apply_for_himself(rolled_session):
    """000 §二(二).4: the students' certificates move only through the school's employer change."""
    s = rolled_session
    cert = certificate(s, "school")
    student = make_user(s, None, role=Role.individual, person=cert.person)
    for what in ("employer", "name", "cancel", "reissue"):
        with pytest.raises(WorkflowError, match="在校学生的证书由学校办理单位变更"):
            start(s, student, what, cert, receiving=ENTERPRISE)


def test_a_school_must_name_a_registered_receiving_enterprise(rolled_session):
    s = rolled_session
    cert = certificate(s, "school")
    for values, message in (({}, "请选择接收企业"), ({"new_employer_name": "某建筑公司"}, "请选择接收企业"),
                            ({"new_employer_id": org(s, SCHOOL).id}, "接收企业不存在或未通过审核"),
                            ({"new_employer_id": org(s, "JG370101").id}, "接收企业不存在或未通过审核")):
        with pytest.raises(WorkflowError, match=message):
            start_change(s, user(s, "school"), cert, ["employer"], values, one_field_only=True)


def test_an_individual_may_apply_for_his_own_certificate(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_free")
    holder = make_user(s, None, role=Role.individual, person=cert.person)
    app = submitted(s, holder, "name", cert)
    assert app.applicant_org_id is None and app.status == A.pending_authority
    assert app.reviewing_authority.code == JINAN  # no registered employer: the issuing city


def test_a_user_without_the_business_apply_permission_is_refused(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    clerk = make_user(s, org(s, "JG370101"))
    clerk.set_permissions(clerk.permissions - {Permission.business_apply})
    s.flush()
    with pytest.raises(WorkflowError, match="无权办理证书业务"):
        start(s, clerk, "cancel", cert)


@pytest.mark.parametrize("status", [CertificateStatus.cancelled, CertificateStatus.voided])
@pytest.mark.parametrize(("applicant", "what"), [("inst_jinan", "name"), ("inst_jinan", "cancel"),
                                                 ("enterprise", "reissue"), ("enterprise", "employer")])
def test_only_a_valid_certificate_may_be_applied_for(rolled_session, status, applicant, what):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    with setting_state():
        cert.status = status
    s.flush()
    with pytest.raises(WorkflowError, match=f"状态为「{status.label}」，不能办理业务"):
        start(s, applicant, what, cert)
    with pytest.raises(WorkflowError, match="不能办理业务"):
        check_may_apply(user(s, applicant), cert, K.cancel)


@pytest.mark.parametrize("second", ["name", "id_number", "employer", "cancel", "reissue"])
def test_one_open_application_per_certificate(rolled_session, second):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    first = submitted(s, "inst_jinan", "cancel", cert)
    for applicant in ("inst_jinan", "enterprise"):  # refused, naming the first
        with pytest.raises(WorkflowError, match=rf"证书{cert.number}已有未办结的注销申请#{first.id}（待审核\(主管部门\)）"):
            start(s, applicant, second, cert)


def test_a_submitted_reissue_blocks_adding_its_certificate_to_another(rolled_session):
    s = rolled_session
    first, second = holder_certificates(s, "jinan_ent", 2)
    open_one = submitted(s, "enterprise", "reissue", first)
    draft = start(s, "enterprise", "reissue", second)
    with pytest.raises(WorkflowError, match=f"已有未办结的补办申请#{open_one.id}"):
        add_lost_certificate(s, user(s, "enterprise"), draft, first)


def test_drafts_do_not_block_but_the_second_submit_is_refused(rolled_session):
    """Unsubmitted drafts block nobody; submitting re-checks (one open application per certificate)."""
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    by_institution = start(s, "inst_jinan", "cancel", cert)
    by_enterprise = start(s, "enterprise", "name", cert)
    for app, who in ((by_institution, "inst_jinan"), (by_enterprise, "enterprise")):
        attach_images(s, user(s, who), app, png_files(1))
    fire(s, "enterprise", by_enterprise, "submit")
    with pytest.raises(WorkflowError, match=f"已有未办结的变更申请#{by_enterprise.id}"):
        fire(s, "inst_jinan", by_institution, "submit")
    assert by_institution.status == A.draft


def test_a_rejected_application_frees_the_certificate(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = submitted(s, "inst_jinan", "cancel", cert)
    fire(s, "jinan", app, "authority_reject", REASON)
    again = submitted(s, "inst_jinan", "cancel", cert)
    assert again.status == A.pending_authority


# (fields, values, one_field_only, expected message fragment)
CHANGE_RULES = [
    (["name", "id_number"], {"new_name": "王新名", "new_id_number": "FRESH"}, False, "姓名和身份证号不能同时变更"),
    (["name", "id_number"], {"new_name": "王新名", "new_id_number": "FRESH"}, True, "姓名和身份证号不能同时变更"),
    (["name", "employer"], {"new_name": "王新名", "new_employer_id": ENTERPRISE3}, True, "每次申请只能变更一项信息"),
    (["id_number", "employer"], {"new_id_number": "FRESH", "new_employer_id": ENTERPRISE3}, True,
     "每次申请只能变更一项信息"),
    ([], {}, True, "请选择变更信息"),
    (["phone"], {}, True, "请选择变更信息"),
    (["id_number"], {"new_id_number": "BAD_CHECK"}, True, "新身份证号："),
    (["id_number"], {"new_id_number": "12345"}, True, "新身份证号："),
    (["id_number"], {"new_id_number": "OTHER"}, True, "新身份证号已属于其他人员"),
    (["id_number"], {"new_id_number": "SAME"}, True, "新身份证号与原身份证号相同"),
    (["name"], {"new_name": "SAME"}, True, "新姓名与原姓名相同"),
    (["name"], {"new_name": "   "}, True, "请填写新姓名"),
    (["employer"], {}, True, "请选择接收企业"),
    (["employer"], {"new_employer_name": "某某建筑公司"}, True, "请选择接收企业"),
    (["employer"], {"new_employer_id": ENTERPRISE}, True, "现工作单位与原工作单位相同"),
    (["employer"], {"new_employer_id": SCHOOL}, True, "接收企业不存在或未通过审核"),
    (["employer"], {"new_employer_id": JINAN}, True, "接收企业不存在或未通过审核"),
    (["employer"], {"new_employer_id": "999999"}, True, "接收企业不存在或未通过审核"),
    (["employer"], {"new_employer_id": "abc"}, True, "接收企业不存在或未通过审核"),
    (["employer"], {"new_employer_id": "PENDING"}, True, "接收企业不存在或未通过审核"),
    (["name", "employer"], {"new_name": "王新名", "new_employer_id": ENTERPRISE3}, False, None),
]


def _resolve(session, cert, values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if value == "FRESH":
            value = fresh_id_number()
        elif value == "BAD_CHECK":
            good = fresh_id_number()
            value = good[:17] + ("0" if good[17] != "0" else "1")
        elif value == "OTHER":
            value = certificate(session, "qingdao_free").person.id_number
        elif value == "SAME":
            value = cert.person.id_number if key == "new_id_number" else cert.person.name
        elif value == "PENDING":
            from models.org import OrgKind, OrgStatus
            from tests.factories import make_org

            value = make_org(session, OrgKind.enterprise, org(session, JINAN), status=OrgStatus.pending).id
        elif key == "new_employer_id" and isinstance(value, str) and value[:2] in ("QY", "XX", "SD"):
            value = org(session, value).id
        out[key] = value
    return out


@pytest.mark.parametrize("applicant", ["enterprise", "person"])
@pytest.mark.parametrize(("fields", "values", "one_field_only", "refusal"), CHANGE_RULES)
def test_what_a_change_may_contain(rolled_session, applicant, fields, values, one_field_only, refusal):
    s = rolled_session
    cert = certificate(s, "own" if applicant == "person" else "jinan_ent")
    values = _resolve(s, cert, values)
    before = count(s, CertificateApplication)
    if refusal is None:
        app = start_change(s, user(s, applicant), cert, fields, values, one_field_only=one_field_only)
        assert app.fields == sorted(app.fields) and {f.value for f in app.fields} == set(fields)
        return
    with pytest.raises(WorkflowError, match=re.escape(refusal)):
        start_change(s, user(s, applicant), cert, fields, values, one_field_only=one_field_only)
    assert count(s, CertificateApplication) == before


def test_an_institution_may_name_an_unregistered_employer(rolled_session):
    """003 §六.3 现工作单位 is typed; only enterprises, schools and individuals must pick a
    registered receiving enterprise (its city reviews)."""
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = start_change(s, user(s, "inst_jinan"), cert, ["employer"], {"new_employer_name": "济南某劳务公司"},
                       one_field_only=True)
    assert (app.new_employer_id, app.new_employer_name) == (None, "济南某劳务公司")
    with pytest.raises(WorkflowError, match="请填写现工作单位"):
        start_change(s, user(s, "inst_jinan"), certificate(s, "jinan_ent"), ["employer"], {"new_employer_name": " "},
                     one_field_only=True)


def test_a_typed_employer_name_never_picks_an_unapproved_enterprise(rolled_session):
    from models.org import OrgKind, OrgStatus
    from tests.factories import make_org

    s = rolled_session
    make_org(s, OrgKind.enterprise, org(s, JINAN), status=OrgStatus.pending, name="待审核建筑公司")
    app = start_change(s, user(s, "inst_jinan"), certificate(s, "jinan_ent"), ["employer"],
                       {"new_employer_name": "待审核建筑公司"}, one_field_only=True)
    assert (app.new_employer_id, app.new_employer_name) == (None, "待审核建筑公司")


def test_a_new_id_number_is_stored_normalised(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    number = make_id_number("370102", date(1951, 2, 3), 37, "男")
    while not number.endswith("X"):  # an ID ending in X, typed in lower case
        number = make_id_number("370102", date(1951, 2, 3), int(number[14:17]) + 2, "男")
    app = start(s, "inst_jinan", "id_number", cert, values={"new_id_number": number.lower()})
    assert app.new_id_number == number


def test_a_reissue_needs_an_explanation(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    for explanation in (None, "", "   "):
        with pytest.raises(WorkflowError, match="请填写申请说明"):
            start_reissue(s, user(s, "enterprise"), explanation, cert)


# -- 2. images ---------------------------------------------------------------------------------------------


def test_submit_without_images_is_refused(rolled_session):
    s = rolled_session
    app = start(s, "inst_jinan", "cancel", certificate(s, "jinan_ent"))
    with pytest.raises(WorkflowError, match="请上传单位出具的纸质申请表"):
        fire(s, "inst_jinan", app, "submit")
    assert app.status == A.draft and app_logs(s, app) == []


@pytest.mark.parametrize(("files", "message"), [
    ([], "请至少上传1张图片"),
    (png_files(6), "最多上传5张图片"),
    (png_files(1, size=201 * 1024), "超过200KB"),
    (png_files(2) + png_files(1, size=201 * 1024, stem="大图"), "超过200KB"),
    ([("申请表.png", make_pdf())], "不是有效的图片"),
    ([("申请表.jpg", make_pdf())], "不是有效的图片"),
    ([("申请表.pdf", make_pdf())], "不是有效的图片"),
    ([("申请表.png", make_jpeg())], "内容与扩展名不符"),
    ([("申请表.gif", b"GIF89a" + b"\x00" * 20)], "不是有效的图片"),
    ([("申请表.png", b"")], "为空"),
    (png_files(1) + [("申请表.png", make_pdf())], "不是有效的图片"),
])
def test_refused_images_store_nothing(rolled_session, files, message):
    s = rolled_session
    app = start(s, "enterprise", "cancel", certificate(s, "jinan_ent"))
    before = count(s, Attachment)
    with pytest.raises(WorkflowError, match=re.escape(message)):
        attach_images(s, user(s, "enterprise"), app, files)
    assert count(s, Attachment) == before and images_of(s, app) == 0
    with pytest.raises(WorkflowError, match="请上传单位出具的纸质申请表"):
        fire(s, "enterprise", app, "submit")


def test_at_most_five_images_in_total(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    app = start(s, ent, "cancel", certificate(s, "jinan_ent"))
    attach_images(s, ent, app, png_files(3))
    with pytest.raises(WorkflowError, match="最多上传5张图片"):
        attach_images(s, ent, app, png_files(3))
    assert images_of(s, app) == 3
    attach_images(s, ent, app, [("补充.jpg", make_jpeg()), ("补充2.png", make_png(2, 2))])
    assert images_of(s, app) == 5
    fire(s, "enterprise", app, "submit")
    assert app.status == A.pending_authority


def test_accepted_images_are_stored_by_content(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    app = start(s, ent, "cancel", certificate(s, "jinan_ent"))
    limit = png_files(1, size=200 * 1024)[0][1]
    attach_images(s, ent, app, [("C:\\扫描\\申请表.png", limit), ("照片.JPG", make_jpeg())])
    rows = s.scalars(select(Attachment).where(Attachment.owner_type == "application",
                                              Attachment.owner_id == app.id).order_by(Attachment.id)).all()
    assert [(r.filename, r.content_type, r.size, r.uploaded_by_id) for r in rows] == [
        ("申请表.png", "image/png", 200 * 1024, ent.id), ("照片.jpg", "image/jpeg", len(make_jpeg()), ent.id)]


def test_images_only_by_the_applicant_and_only_on_a_draft(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = start(s, "enterprise", "cancel", cert)
    for other in ("inst_jinan", "enterprise2", "jinan", "person"):
        with pytest.raises(WorkflowError, match="无权修改该申请"):
            attach_images(s, user(s, other), app, png_files(1))
    attach_images(s, user(s, "enterprise"), app, png_files(1))
    fire(s, "enterprise", app, "submit")
    with pytest.raises(WorkflowError, match="不能修改"):
        attach_images(s, user(s, "enterprise"), app, png_files(1))
    assert images_of(s, app) == 1


# -- 3. review chains ------------------------------------------------------------------------------------------

# (id, applicant, holder, what, receiving enterprise, first reviewer: None = straight to the province)
ROUTES = [
    ("institution", "inst_jinan", "jinan_ent", "name", None, "jinan"),
    ("institution-employer", "inst_jinan", "jinan_ent", "employer", ENTERPRISE2, "jinan"),
    ("qingdao-institution", "inst_qingdao", "qingdao_free", "cancel", None, "qingdao"),
    ("direct-institution", "direct_inst", "direct_ent", "reissue", None, None),
    ("direct-institution-change", "direct_inst", "direct_ent", "id_number", None, None),
    ("enterprise-qingdao-certificate", "enterprise", "qingdao_ent", "name", None, "jinan"),
    ("enterprise2-jinan-certificate", "enterprise2", "jinan_ent2", "cancel", None, "qingdao"),
    ("enterprise-employer-to-qingdao", "enterprise", "jinan_ent", "employer", ENTERPRISE2, "qingdao"),
    ("enterprise2-employer-to-jinan", "enterprise2", "qingdao_ent2", "employer", ENTERPRISE3, "jinan"),
    ("individual", "person", "own", "reissue", None, "jinan"),
    ("individual-employer-to-qingdao", "person", "own", "employer", ENTERPRISE2, "qingdao"),
    ("school-to-qingdao", "school", "school", "employer", ENTERPRISE2, "qingdao"),
    ("school-to-jinan", "school", "school", "employer", ENTERPRISE, "jinan"),
]
OTHER_CITY = {"jinan": "qingdao", "qingdao": "jinan"}
AUTHORITY_CODE = {"jinan": JINAN, "qingdao": QINGDAO}


@pytest.mark.parametrize(("applicant", "holder", "what", "receiving", "reviewer"),
                         [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
def test_review_chain(rolled_session, applicant, holder, what, receiving, reviewer):
    s = rolled_session
    cert = certificate(s, holder)
    app = submitted(s, applicant, what, cert, receiving=receiving)
    outsiders = ["jinan", "qingdao", "jinan_reviewer"] if reviewer is None else [OTHER_CITY[reviewer]]
    if reviewer == "qingdao":
        outsiders.append("jinan_reviewer")

    if reviewer is None:
        assert app.reviewing_authority_id is None and app.status == A.pending_province
        path = [("submit", "draft", "pending_province")]
    else:
        assert app.reviewing_authority.code == AUTHORITY_CODE[reviewer]
        assert app.status == A.pending_authority
        for name in ("province_approve", "province_reject"):
            with pytest.raises(WorkflowError, match="当前状态为「待审核\\(主管部门\\)」"):
                fire(s, "province", app, name, REASON)
        for outsider in outsiders:
            for name in ("authority_approve", "authority_reject"):
                with pytest.raises(WorkflowError, match="无权执行「审核不通过」|无权执行「审核通过」"):
                    fire(s, outsider, app, name, REASON)
        assert BUSINESS.available(user(s, reviewer), app) and not BUSINESS.available(user(s, outsiders[0]), app)
        fire(s, reviewer, app, "authority_approve")
        assert app.status == A.pending_province
        path = [("submit", "draft", "pending_authority"), ("authority_approve", "pending_authority", "pending_province")]

    for outsider in outsiders + [applicant, "inst_qingdao", "ministry"]:
        with pytest.raises(WorkflowError, match="无权执行"):
            fire(s, outsider, app, "province_approve")
    with pytest.raises(WorkflowError, match="无权执行|当前状态"):
        fire(s, reviewer or "jinan", app, "authority_approve")
    fire(s, "province_reviewer", app, "province_approve")
    assert app.status == A.approved and app.reviewed_at is not None
    assert app_logs(s, app) == path + [("province_approve", "pending_province", "approved")]
    for name in BUSINESS.transitions:
        with pytest.raises(WorkflowError):
            fire(s, "province", app, name, REASON)


def test_the_applicant_submits_and_nobody_else(rolled_session):
    s = rolled_session
    app = start(s, "enterprise", "name", certificate(s, "jinan_ent"))
    attach_images(s, user(s, "enterprise"), app, png_files(1))
    for other in ("inst_jinan", "enterprise2", "person", "jinan", "province"):
        with pytest.raises(WorkflowError, match="无权执行「提交申请」"):
            fire(s, other, app, "submit")
    colleague = make_user(s, org(s, ENTERPRISE))  # another operator of the same enterprise
    BUSINESS.fire(s, colleague, app, "submit")
    assert app.status == A.pending_authority and app.submitted_at is not None
    with pytest.raises(WorkflowError, match="当前状态"):
        fire(s, "enterprise", app, "submit")


@pytest.mark.parametrize(("level", "reviewer"), [("authority", "jinan"), ("province", "province")])
@pytest.mark.parametrize("reason", [None, "", "   ", "\n\t"])
def test_rejection_needs_a_reason(rolled_session, level, reviewer, reason):
    s = rolled_session
    app = submitted(s, "inst_jinan", "name", certificate(s, "jinan_ent"))
    if level == "province":
        fire(s, "jinan", app, "authority_approve")
    state = app.status
    with pytest.raises(WorkflowError, match="请填写审核不通过原因"):
        fire(s, reviewer, app, f"{level}_reject", reason)
    assert app.status == state and app.reject_reason is None


@pytest.mark.parametrize(("level", "reviewer"), [("authority", "jinan_reviewer"), ("province", "province_reviewer")])
@pytest.mark.parametrize("what", ["name", "employer", "cancel", "reissue"])
def test_rejection_stores_the_reason_and_changes_nothing(rolled_session, level, reviewer, what):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    person = cert.person
    before = (person_snapshot(person), certificate_snapshot(s, person.id))
    app = submitted(s, "enterprise", what, cert, receiving=ENTERPRISE3)
    if level == "province":
        fire(s, "jinan", app, "authority_approve")
    fire(s, reviewer, app, f"{level}_reject", f"  {REASON}  ")
    assert app.status == A.rejected and app.reject_reason == REASON and app.reviewed_at is not None
    log = s.scalars(select(TransitionLog).where(TransitionLog.object_type == "application",
                                                TransitionLog.object_id == app.id)
                    .order_by(TransitionLog.id.desc())).first()
    assert (log.transition, log.to_state, log.reason, log.actor_id) == (
        f"{level}_reject", "rejected", REASON, user(s, reviewer).id)
    s.expire_all()
    assert (person_snapshot(person), certificate_snapshot(s, person.id)) == before
    assert count(s, TransitionLog, TransitionLog.object_type == "certificate", TransitionLog.object_id == cert.id) == 0
    for name in BUSINESS.transitions:  # 审核不通过 is final
        with pytest.raises(WorkflowError):
            fire(s, "province", app, name, REASON)


def test_rejection_at_the_province_is_for_direct_institutions_too(rolled_session):
    s = rolled_session
    app = submitted(s, "direct_inst", "cancel", certificate(s, "direct_ent"))
    with pytest.raises(WorkflowError, match="无权执行"):
        fire(s, "jinan", app, "authority_reject", REASON)
    fire(s, "province", app, "province_reject", REASON)
    assert app_logs(s, app) == [("submit", "draft", "pending_province"),
                                ("province_reject", "pending_province", "rejected")]


@pytest.mark.parametrize(("username", "states"), [
    ("jinan", {A.pending_authority}), ("jinan_reviewer", {A.pending_authority}), ("qingdao", {A.pending_authority}),
    ("province", {A.pending_province}), ("province_reviewer", {A.pending_province}),
    ("inst_jinan", set()), ("enterprise", set()), ("school", set()), ("person", set()), ("ministry", set()),
])
def test_what_waits_for_each_reviewer(rolled_session, username, states):
    assert awaiting_review(user(rolled_session, username)) == states


def test_a_certificate_cancelled_meanwhile_stops_the_review(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = submitted(s, "enterprise", "name", cert)
    with setting_state():
        cert.status = CertificateStatus.cancelled
    s.flush()
    with pytest.raises(WorkflowError, match="状态为「已注销」"):
        fire(s, "jinan", app, "authority_approve")
    assert app.status == A.pending_authority
    fire(s, "jinan", app, "authority_reject", REASON)  # a rejection is still possible


def test_a_new_id_number_taken_meanwhile_stops_the_province(rolled_session):
    """Two holders asked for the same new ID number: the second approval is refused."""
    s = rolled_session
    number = fresh_id_number()
    first = submitted(s, "enterprise", "id_number", certificate(s, "jinan_ent"), values={"new_id_number": number})
    second = submitted(s, "enterprise", "id_number", certificate(s, "jinan_ent"), values={"new_id_number": number})
    for app in (first, second):
        fire(s, "jinan", app, "authority_approve")
    fire(s, "province", first, "province_approve")
    with pytest.raises(WorkflowError, match="新身份证号已属于其他人员"):
        fire(s, "province", second, "province_approve")
    assert second.status == A.pending_province and second.person.id_number != number


# -- 4. employer change within 3 months (000 §二(二).3) ---------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "recent"), [(None, False), (1, True), (30, True), (85, True), (100, False),
                                                  (400, False)])
def test_recent_employer_change_is_flagged_on_submit(rolled_session, days_ago, recent):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    cert.person.last_employer_change_at = None if days_ago is None else utcnow() - timedelta(days=days_ago)
    app = submitted(s, "enterprise", "employer", cert, receiving=ENTERPRISE3)
    assert app.recent_employer_change is recent
    name_change = submitted(s, "enterprise", "name", certificate(s, "jinan_ent"))
    assert name_change.recent_employer_change is False


def _recent_employer_change(session, applicant="enterprise", holder="jinan_ent", receiving=ENTERPRISE3):
    cert = certificate(session, holder)
    cert.person.last_employer_change_at = utcnow() - timedelta(days=30)
    app = submitted(session, applicant, "employer", cert, receiving=receiving)
    assert app.recent_employer_change is True
    return app


@pytest.mark.parametrize("ticked", [None, False, 0, ""])
def test_recent_employer_change_needs_the_social_security_box(rolled_session, ticked):
    s = rolled_session
    app = _recent_employer_change(s)
    data = {} if ticked is None else {"social_security_checked": ticked}
    with pytest.raises(WorkflowError, match="已核验社保缴纳条件"):
        fire(s, "jinan", app, "authority_approve", **data)
    assert app.status == A.pending_authority and app.social_security_checked is False
    assert app_logs(s, app) == [("submit", "draft", "pending_authority")]
    fire(s, "jinan", app, "authority_reject", REASON)  # rejecting needs no box


def test_the_ticked_box_lets_the_authority_and_then_the_province_approve(rolled_session):
    s = rolled_session
    app = _recent_employer_change(s)
    person = app.person
    before = utcnow()
    fire(s, "jinan", app, "authority_approve", social_security_checked=True)
    assert app.status == A.pending_province and app.social_security_checked is True
    fire(s, "province", app, "province_approve")  # the authority's check is recorded
    assert app.status == A.approved
    assert person.employer.code == ENTERPRISE3 and person.last_employer_change_at >= before


def test_a_direct_institutions_recent_employer_change_needs_the_box_at_the_province(rolled_session):
    s = rolled_session
    app = _recent_employer_change(s, "direct_inst", "direct_ent")
    assert app.status == A.pending_province
    with pytest.raises(WorkflowError, match="已核验社保缴纳条件"):
        fire(s, "province", app, "province_approve")
    fire(s, "province", app, "province_approve", social_security_checked=True)
    assert app.status == A.approved and app.social_security_checked is True


def test_an_old_employer_change_needs_no_box(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    cert.person.last_employer_change_at = utcnow() - timedelta(days=120)
    app = submitted(s, "enterprise", "employer", cert, receiving=ENTERPRISE2)
    fire(s, "qingdao", app, "authority_approve")
    fire(s, "province", app, "province_approve")
    assert app.status == A.approved and app.social_security_checked is False


def test_an_approved_employer_change_makes_the_next_one_recent(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    first = submitted(s, "enterprise", "employer", cert, receiving=ENTERPRISE3)
    fire(s, "jinan", first, "authority_approve")
    fire(s, "province", first, "province_approve")
    with pytest.raises(WorkflowError, match="只能为本企业人员的证书办理业务"):  # no longer its holder
        start(s, "enterprise", "name", cert)
    operator = make_user(s, org(s, ENTERPRISE3))  # the new employer has no demo user
    name_change = submitted(s, operator, "name", cert)
    assert name_change.recent_employer_change is False
    fire(s, "jinan", name_change, "authority_reject", REASON)
    move_on = submitted(s, operator, "employer", cert, receiving=ENTERPRISE)
    assert move_on.recent_employer_change is True


# -- 5. effects of province approval ----------------------------------------------------------------------------


def approve(session, app):
    if app.status == A.pending_authority:
        reviewer = user(session, "jinan") if app.reviewing_authority.code == JINAN else user(session, "qingdao")
        BUSINESS.fire(session, reviewer, app, "authority_approve", social_security_checked=True)
    fire(session, "province", app, "province_approve")
    return app


def test_approved_name_change(rolled_session):
    s = rolled_session
    cert, other = holder_certificates(s, "jinan_ent", 2)
    person = cert.person
    old_name, id_number, employer = person.name, person.id_number, person.employer_id
    app = approve(s, submitted(s, "inst_jinan", "name", cert, values={"new_name": "  张新名 "}))
    assert (app.old_name, app.new_name) == (old_name, "张新名")
    assert (person.name, person.id_number, person.employer_id) == ("张新名", id_number, employer)
    assert cert.endorsement_count == 1 and other.endorsement_count == 0  # 签注 on the certificate applied for
    assert cert.status == other.status == CertificateStatus.valid
    assert app_logs(s, app) == [("submit", "draft", "pending_authority"),
                                ("authority_approve", "pending_authority", "pending_province"),
                                ("province_approve", "pending_province", "approved")]


def test_approved_id_number_change_derives_birth_date_and_gender(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    person = cert.person
    new_gender = "女" if person.gender == "男" else "男"
    number = make_id_number("370203", date(1953, 7, 9), 101, new_gender)
    app = approve(s, submitted(s, "enterprise", "id_number", cert, values={"new_id_number": number}))
    info = parse_id_number(number)
    assert (person.id_number, person.birth_date, person.gender) == (number, date(1953, 7, 9), new_gender)
    assert (info.birth_date, info.gender) == (person.birth_date, person.gender)
    assert app.old_id_number != number and cert.endorsement_count == 1


@pytest.mark.parametrize(("applicant", "holder", "receiving"), [
    ("enterprise", "jinan_ent", ENTERPRISE2), ("school", "school", ENTERPRISE), ("person", "own", ENTERPRISE3)])
def test_approved_employer_change(rolled_session, applicant, holder, receiving):
    s = rolled_session
    cert = certificate(s, holder)
    person = cert.person
    before = utcnow()
    app = approve(s, submitted(s, applicant, "employer", cert, receiving=receiving))
    assert person.employer.code == receiving and person.employer_name is None
    assert person.last_employer_change_at is not None and person.last_employer_change_at >= before
    assert cert.endorsement_count == 1
    assert app.old_employer_name and app.new_employer_name == org(s, receiving).name


def test_approved_employer_change_to_an_unregistered_employer(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = start_change(s, user(s, "inst_jinan"), cert, ["employer"], {"new_employer_name": "济南某劳务公司"},
                       one_field_only=True)
    attach_images(s, user(s, "inst_jinan"), app, png_files(1))
    fire(s, "inst_jinan", app, "submit")
    approve(s, app)
    assert (cert.person.employer_id, cert.person.employer_name) == (None, "济南某劳务公司")
    assert cert.person.employer_display == "济南某劳务公司"


def test_approved_two_field_change_when_one_field_only_is_off(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = start_change(s, user(s, "enterprise"), cert, ["employer", "name"],
                       {"new_name": "李改名", "new_employer_id": org(s, ENTERPRISE3).id}, one_field_only=False)
    attach_images(s, user(s, "enterprise"), app, png_files(2))
    fire(s, "enterprise", app, "submit")
    approve(s, app)
    assert (cert.person.name, cert.person.employer.code) == ("李改名", ENTERPRISE3)
    assert cert.endorsement_count == 1


def test_endorsements_accumulate(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    for i in range(3):
        approve(s, submitted(s, "enterprise", "name", cert, values={"new_name": f"换名{i}"}))
    assert cert.endorsement_count == 3 and cert.person.name == "换名2"


def test_reissue_of_two_lost_certificates(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    first, second = holder_certificates(s, "jinan_ent", 2)
    stranger = certificate(s, "jinan_ent")
    app = start_reissue(s, ent, "公司，遗失证书2个，现需重新打印", first)
    with pytest.raises(WorkflowError, match="一个补办申请只能包含同一持证人的证书"):
        add_lost_certificate(s, ent, app, stranger)
    add_lost_certificate(s, ent, app, second)
    with pytest.raises(WorkflowError, match="已在申请中"):
        add_lost_certificate(s, ent, app, second)
    for other in ("inst_jinan", "enterprise2"):
        with pytest.raises(WorkflowError, match="无权修改该申请"):
            add_lost_certificate(s, user(s, other), app, second)
    assert app.certificates == [first, second]
    attach_images(s, ent, app, png_files(2))
    fire(s, "enterprise", app, "submit")
    with pytest.raises(WorkflowError, match="不能修改"):
        add_lost_certificate(s, ent, app, stranger)
    old_numbers = {first.number, second.number}
    person = first.person
    snapshot = person_snapshot(person)

    approve(s, app)

    yy = f"{local_today().year % 100:02d}"
    new_numbers = set()
    for item, old in zip(app.items, (first, second), strict=True):
        new = item.new_certificate
        assert new is not None and item.new_certificate_id == new.id
        assert len(new.number) == 15 and new.number.isdigit()
        assert new.number[:9] == f"{yy}3701{old.occupation.code}"  # 济南's region, same occupation
        assert new.number[9] == old.level.code and new.number[10] in "123456789"
        assert (new.person_id, new.issuer_id, new.occupation_id, new.level_id, new.status) == (
            old.person_id, old.issuer_id, old.occupation_id, old.level_id, CertificateStatus.valid)
        assert new.issue_date == local_today() and new.authority_id == old.authority_id
        assert new.replaces is old and old.replaced_by == [new]
        assert old.status == CertificateStatus.voided
        [log] = certificate_logs(s, old)
        assert (log.transition, log.from_state, log.to_state, log.actor_id) == (
            "void_for_reissue", "valid", "voided", user(s, "province").id)
        assert all(r.transition != "void_for_reissue" for r in certificate_logs(s, new))
        new_numbers.add(new.number)
    assert len(new_numbers) == 2 and not new_numbers & old_numbers
    assert person_snapshot(person) == snapshot
    assert stranger.status == CertificateStatus.valid
    with pytest.raises(WorkflowError, match="已作废"):  # a voided certificate takes no further business
        start(s, "enterprise", "cancel", first)


def test_reissue_of_a_direct_institutions_certificate_uses_the_province_code(rolled_session):
    s = rolled_session
    cert = certificate(s, "direct_ent")
    app = approve(s, submitted(s, "direct_inst", "reissue", cert))
    new = app.items[0].new_certificate
    assert new.number[2:6] == "3700" and new.issuer_id == cert.issuer_id
    assert cert.status == CertificateStatus.voided and new.replaces_id == cert.id


def test_a_removed_lost_certificate_is_not_reissued(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    first, second = holder_certificates(s, "jinan_ent", 2)
    app = start_reissue(s, ent, "遗失证书", first)
    add_lost_certificate(s, ent, app, second)
    attach_images(s, ent, app, png_files(1))
    remove_lost_certificate(s, ent, app, app.items[0])
    assert app.certificates == [second]
    with pytest.raises(WorkflowError, match="无权修改该申请"):
        remove_lost_certificate(s, user(s, "enterprise2"), app, app.items[0])
    remove_lost_certificate(s, ent, app, app.items[0])
    with pytest.raises(WorkflowError, match="请先选择遗失证书"):
        fire(s, "enterprise", app, "submit")
    add_lost_certificate(s, ent, app, second)
    fire(s, "enterprise", app, "submit")
    approve(s, app)
    assert first.status == CertificateStatus.valid and second.status == CertificateStatus.voided


def test_add_lost_certificate_only_to_a_reissue(rolled_session):
    s = rolled_session
    first, second = holder_certificates(s, "jinan_ent", 2)
    app = start(s, "enterprise", "cancel", first)
    with pytest.raises(WorkflowError, match="只有补办申请可以选择多张证书"):
        add_lost_certificate(s, user(s, "enterprise"), app, second)


def test_add_lost_certificate_checks_the_applicant_may_apply_for_it(rolled_session):
    """A holder's certificates of two issuers: the institution may only add its own."""
    s = rolled_session
    [mine] = issued_certificates(s, "inst_jinan", employer=org(s, ENTERPRISE))
    [theirs] = issued_certificates(s, "inst_qingdao", [("电工", "初级工(五级)")], person=mine.person)
    app = start(s, "inst_jinan", "reissue", mine)
    with pytest.raises(WorkflowError, match="只能为本机构发放的证书办理业务"):
        add_lost_certificate(s, user(s, "inst_jinan"), app, theirs)
    by_enterprise = start(s, "enterprise", "reissue", theirs)
    add_lost_certificate(s, user(s, "enterprise"), by_enterprise, mine)  # the employer may, for both
    assert by_enterprise.certificates == [theirs, mine]


@pytest.mark.parametrize(("applicant", "holder"), [("inst_jinan", "jinan_ent"), ("direct_inst", "direct_ent"),
                                                   ("person", "own")])
def test_approved_cancel(rolled_session, applicant, holder):
    s = rolled_session
    cert = certificate(s, holder)
    snapshot = person_snapshot(cert.person)
    app = approve(s, submitted(s, applicant, "cancel", cert))
    assert cert.status == CertificateStatus.cancelled and cert.endorsement_count == 0
    [log] = certificate_logs(s, cert)
    assert (log.transition, log.from_state, log.to_state, log.object_type) == (
        "cancel_by_application", "valid", "cancelled", "certificate")
    assert person_snapshot(cert.person) == snapshot
    assert app_logs(s, app)[-1] == ("province_approve", "pending_province", "approved")


def test_approval_notifies_the_applicant_organization(rolled_session):
    s = rolled_session
    app = approve(s, submitted(s, "enterprise", "cancel", certificate(s, "jinan_ent")))
    ent = user(s, "enterprise")
    titles = s.scalars(select(Message.title).where(Message.user_id == ent.id, Message.object_type == "application",
                                                   Message.object_id == app.id)).all()
    assert any("审核通过" in t for t in titles)


def test_approval_notifies_an_individual_applicant(rolled_session):
    s = rolled_session
    app = approve(s, submitted(s, "person", "cancel", certificate(s, "own")))
    assert count(s, Message, Message.user_id == user(s, "person").id, Message.object_type == "application",
                 Message.object_id == app.id) >= 1


# -- 6. optimistic locking ----------------------------------------------------------------------------------------


def _concurrent_bump(session, app_id):
    """Another reviewer's UPDATE behind the ORM's back: the identity map keeps the old version."""
    table = CertificateApplication.__table__
    session.execute(update(table).where(table.c.id == app_id).values(version=table.c.version + 1))


@pytest.mark.parametrize(("what", "transition", "reason"), [
    ("name", "province_approve", None), ("reissue", "province_approve", None), ("cancel", "province_approve", None),
    ("employer", "province_approve", None), ("name", "authority_approve", None),
    ("name", "authority_reject", REASON), ("cancel", "province_reject", REASON),
])
def test_a_stale_application_is_refused_and_nothing_applied(rolled_session, what, transition, reason):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = submitted(s, "enterprise", what, cert, receiving=ENTERPRISE3)
    if transition.startswith("province"):
        fire(s, "jinan", app, "authority_approve")
    person = cert.person
    before = (person_snapshot(person), certificate_snapshot(s, person.id), app.status, app_logs(s, app))
    certificates = count(s, Certificate)
    _concurrent_bump(s, app.id)
    reviewer = "jinan" if transition.startswith("authority") else "province"
    with pytest.raises(StaleObjectError) as exc:
        fire(s, reviewer, app, transition, reason)
    assert exc.value.message == "该记录已被他人处理"
    s.expire_all()
    assert (person_snapshot(person), certificate_snapshot(s, person.id), app.status, app_logs(s, app)) == before
    assert count(s, Certificate) == certificates and app.reject_reason is None
    fire(s, reviewer, app, transition, reason)  # reloaded, the second attempt is judged on the fresh row
    assert app.status != before[2]


def test_the_loser_of_two_reviewers_sees_the_winners_state(rolled_session):
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = submitted(s, "enterprise", "cancel", cert)
    fire(s, "jinan", app, "authority_approve")
    table = CertificateApplication.__table__
    s.execute(update(table).where(table.c.id == app.id)
              .values(version=table.c.version + 1, status=A.rejected.value, reject_reason="他人已驳回"))
    with pytest.raises(StaleObjectError):
        fire(s, "province", app, "province_approve")
    assert app.status == A.rejected and cert.status == CertificateStatus.valid
    with pytest.raises(WorkflowError, match="当前状态为「审核不通过」"):
        fire(s, "province", app, "province_approve")


# -- 7. visibility ------------------------------------------------------------------------------------------------

# (name, applicant, holder, what, receiving)
VISIBILITY_APPS = [
    ("a_ij", "inst_jinan", "jinan_ent", "name", None),          # jinan reviews
    ("a_iq", "inst_qingdao", "qingdao_ent2", "cancel", None),   # qingdao
    ("a_d", "direct_inst", "direct_ent", "cancel", None),       # the province only
    ("a_e", "enterprise", "qingdao_ent", "reissue", None),      # jinan (the enterprise's city)
    ("a_p", "person", "own", "name", None),                     # jinan
    ("a_e2", "enterprise2", "qingdao_ent2", "employer", ENTERPRISE3),  # jinan (the receiving city)
    ("a_s", "school", "school", "employer", ENTERPRISE2),       # qingdao
]
ALL = {a[0] for a in VISIBILITY_APPS}
SEES = {
    "province": ALL,
    "province_reviewer": ALL,
    "jinan": {"a_ij", "a_e", "a_p", "a_e2"},
    "jinan_reviewer": {"a_ij", "a_e", "a_p", "a_e2"},
    "qingdao": {"a_iq", "a_s"},
    "inst_jinan": {"a_ij"},
    "inst_qingdao": {"a_iq"},
    "direct_inst": {"a_d"},
    "enterprise": {"a_ij", "a_d", "a_e", "a_p"},  # its own and its holders' (whoever applied)
    "enterprise2": {"a_iq", "a_e2"},
    "school": {"a_s"},
    "person": {"a_p"},
    "ministry": set(),
}


@pytest.fixture
def visibility_apps(rolled_session):
    s = rolled_session
    apps = {}
    for name, applicant, holder, what, receiving in VISIBILITY_APPS:
        apps[name] = submitted(s, applicant, what, certificate(s, holder), receiving=receiving)
    return apps


@pytest.mark.parametrize(("username", "expected"), sorted(SEES.items()))
def test_visibility_of_applications(rolled_session, visibility_apps, username, expected):
    s = rolled_session
    viewer = user(s, username)
    by_id = {app.id: name for name, app in visibility_apps.items()}
    stmt = visible(viewer, select(CertificateApplication.id).where(CertificateApplication.id.in_(by_id)),
                   CertificateApplication)
    assert {by_id[i] for i in s.scalars(stmt)} == expected
    for name, app in visibility_apps.items():
        if name in expected:
            assert get_visible(s, viewer, CertificateApplication, app.id) is app
        else:
            with pytest.raises(NotFoundError):
                get_visible(s, viewer, CertificateApplication, str(app.id))


@pytest.mark.parametrize("username", ["jinan", "qingdao"])
def test_an_authority_sees_only_what_it_reviews(rolled_session, visibility_apps, username):
    s = rolled_session
    viewer = user(s, username)
    rows = s.scalars(visible(viewer, select(CertificateApplication), CertificateApplication)).all()
    assert rows and {r.reviewing_authority_id for r in rows} == {viewer.organization_id}


@pytest.mark.parametrize(("username", "column"), [("inst_jinan", "applicant_org_id"),
                                                  ("inst_qingdao", "applicant_org_id"),
                                                  ("direct_inst", "applicant_org_id")])
def test_an_institution_sees_only_its_own_applications(rolled_session, visibility_apps, username, column):
    s = rolled_session
    viewer = user(s, username)
    rows = s.scalars(visible(viewer, select(CertificateApplication), CertificateApplication)).all()
    assert rows and {getattr(r, column) for r in rows} == {viewer.organization_id}


def test_a_person_sees_only_his_own_and_the_ministry_nothing(rolled_session, visibility_apps):
    s = rolled_session
    person = user(s, "person")
    rows = s.scalars(visible(person, select(CertificateApplication), CertificateApplication)).all()
    assert rows and {r.person_id for r in rows} == {person.person_id}
    assert s.scalars(visible(user(s, "ministry"), select(CertificateApplication), CertificateApplication)).all() == []


def test_application_logs_and_images_follow_the_application(rolled_session, visibility_apps):
    s = rolled_session
    app = visibility_apps["a_ij"]
    for username, sees in (("inst_jinan", True), ("jinan", True), ("enterprise", True), ("inst_qingdao", False),
                           ("qingdao", False), ("person", False)):
        viewer = user(s, username)
        logs = s.scalars(visible(viewer, select(TransitionLog.id).where(
            TransitionLog.object_type == "application", TransitionLog.object_id == app.id), TransitionLog)).all()
        files = s.scalars(visible(viewer, select(Attachment.id).where(
            Attachment.owner_type == "application", Attachment.owner_id == app.id), Attachment)).all()
        assert (bool(logs), bool(files)) == (sees, sees), username


# -- 8. property: random review sequences never leave the table ------------------------------------------------------

STATES = {"pending_authority", "pending_province", "approved", "rejected"}
# SPEC §5.2 written out again, independently: name → (sources, target, needs reason)
TABLE = {
    "submit": ({"draft"}, None, False),
    "authority_approve": ({"pending_authority"}, "pending_province", False),
    "authority_reject": ({"pending_authority"}, "rejected", True),
    "province_approve": ({"pending_province"}, "approved", False),
    "province_reject": ({"pending_province"}, "rejected", True),
}
APPROVALS = {"authority_approve", "province_approve"}
DEMO_USERS = ["province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
              "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry"]
AUTHORITY_USERS = {JINAN: {"jinan", "jinan_reviewer"}, QINGDAO: {"qingdao"}, None: set()}
# (applicant, holder, what, receiving, last employer change this many days ago)
SCENARIOS = [
    ("inst_jinan", "jinan_ent", "cancel", None, None),
    ("direct_inst", "direct_ent", "reissue", None, None),
    ("direct_inst", "direct_ent", "employer", ENTERPRISE2, 20),
    ("enterprise", "jinan_ent", "employer", ENTERPRISE2, 40),
    ("enterprise2", "qingdao_ent2", "name", None, 10),
    ("person", "own", "id_number", None, None),
    ("school", "school", "employer", ENTERPRISE3, 60),
    ("inst_qingdao", "qingdao_free", "reissue", None, None),
]
REASONS = [None, "", "  ", REASON]


def allowed_users(app, name) -> set:
    if name == "submit":
        return set()  # the application was submitted already
    if name.startswith("authority"):
        code = app.reviewing_authority.code if app.reviewing_authority_id else None
        return AUTHORITY_USERS[code]
    return {"province", "province_reviewer"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=st.sampled_from(SCENARIOS), data=st.data())
def test_random_review_sequences_only_follow_the_table(rolled_session, scenario, data):
    """Random (demo user, transition, reason, social-security box) steps on a freshly submitted
    application. Half of the steps are drawn among what the table allows now, so sequences reach
    审核通过 and 审核不通过; the certificates and the person change only once it is approved."""
    s = rolled_session
    s.rollback()  # every example starts from the module's clean demo
    applicant, holder, what, receiving, days_ago = scenario
    certs = holder_certificates(s, holder, 2 if what == "reissue" else 1)
    person = certs[0].person
    person.last_employer_change_at = None if days_ago is None else utcnow() - timedelta(days=days_ago)
    snapshot = person_snapshot(person)
    cert_ids = [c.id for c in certs]
    count_before = count(s, Certificate, Certificate.person_id == person.id)
    app = submitted(s, applicant, what, certs[0], receiving=receiving, more=certs[1:])
    assert app.certificates == certs
    users = {name: user(s, name) for name in DEMO_USERS}
    recent = app.recent_employer_change
    assert recent == (what == "employer" and days_ago is not None)
    ticked = False

    for _ in range(data.draw(st.integers(1, 10), label="length")):
        state = app.status.value
        legal = [(u, t) for t, (sources, _, _) in TABLE.items() if state in sources
                 for u in sorted(allowed_users(app, t))]
        if legal and data.draw(st.booleans(), label="plausible"):
            username, name = data.draw(st.sampled_from(legal), label="step")
        else:
            username = data.draw(st.sampled_from(DEMO_USERS), label="user")
            name = data.draw(st.sampled_from(sorted(TABLE)), label="transition")
        reason = data.draw(st.sampled_from(REASONS), label="reason")
        box = data.draw(st.sampled_from([True, True, False]), label="social_security_checked")

        sources, target, needs_reason = TABLE[name]
        may = state in sources and username in allowed_users(app, name)
        assert may == (name in [t.name for t in BUSINESS.available(users[username], app)])
        expected_ok = (may and (not needs_reason or bool((reason or "").strip()))
                       and not (name in APPROVALS and recent and not (box or ticked)))
        try:
            BUSINESS.fire(s, users[username], app, name, reason=reason, social_security_checked=box)
            ok = True
        except WorkflowError:
            ok = False
        assert ok == expected_ok, (state, username, name, reason, box, ticked)
        if ok and name in APPROVALS and box:
            ticked = True

        s.expire_all()
        now = app.status.value
        assert now in STATES and now == (target if ok else state)
        approved = now == "approved"
        statuses = [s.get(Certificate, i).status for i in cert_ids]
        holder_count = count(s, Certificate, Certificate.person_id == person.id)
        if what == "cancel":
            assert statuses == [CertificateStatus.cancelled if approved else CertificateStatus.valid]
        elif what == "reissue":
            assert statuses == [CertificateStatus.voided if approved else CertificateStatus.valid] * 2
            assert holder_count == count_before + (2 if approved else 0)
        else:
            assert statuses == [CertificateStatus.valid]
            changed = person_snapshot(person) != snapshot
            assert changed == approved
            assert s.get(Certificate, cert_ids[0]).endorsement_count == (1 if approved else 0)
        if what != "reissue":
            assert holder_count == count_before
        if what in ("cancel", "reissue"):
            assert person_snapshot(person) == snapshot
    event(f"{what} ended {app.status.value}")
    s.rollback()


# -- 001 证书遗失补证申请: 新建申请 → 申请说明 → 保存 → 选择遗失证书 → 提交申请 ------------------------------
def test_a_new_reissue_draft_waits_for_its_first_lost_certificate(rolled_session):
    s = rolled_session
    [lost] = holder_certificates(s, "jinan_ent")
    ent = user(s, "enterprise")
    app = start_reissue(s, ent, "工地搬迁时遗失")
    assert app.status == A.draft and app.items == [] and app.person_id is None
    assert app.reviewing_authority_id is None and app.applicant_org_id == ent.organization_id
    with pytest.raises(WorkflowError, match="请先选择遗失证书"):
        fire(s, "enterprise", app, "submit")
    add_lost_certificate(s, ent, app, lost)
    assert app.person_id == lost.person_id and app.old_name == lost.person.name
    assert app.reviewing_authority.code == JINAN  # the enterprise's city, known from the holder
    attach_images(s, ent, app, png_files(1))
    fire(s, "enterprise", app, "submit")
    approve(s, app)
    assert lost.status == CertificateStatus.voided and app.items[0].new_certificate.status == CertificateStatus.valid


def test_a_new_draft_of_an_institution_knows_its_reviewer_at_once(rolled_session):
    s = rolled_session
    app = start_reissue(s, user(s, "inst_jinan"), "遗失")
    assert app.person_id is None and app.reviewing_authority.code == JINAN
    assert start_reissue(s, user(s, "direct_inst"), "遗失").reviewing_authority_id is None  # → the province


def test_an_individuals_new_draft_is_their_own(rolled_session):
    s = rolled_session
    person = user(s, "person")
    app = start_reissue(s, person, "遗失")
    assert app.person_id == person.person_id
    assert get_visible(s, person, CertificateApplication, app.id) is app
    [stranger] = holder_certificates(s, "jinan_ent")
    with pytest.raises(WorkflowError, match="只能为本人的证书办理业务"):
        add_lost_certificate(s, person, app, stranger)


def test_after_the_first_the_holder_is_fixed(rolled_session):
    s = rolled_session
    [first] = holder_certificates(s, "jinan_ent")
    [other] = holder_certificates(s, "jinan_ent")
    ent = user(s, "enterprise")
    app = start_reissue(s, ent, "遗失")
    add_lost_certificate(s, ent, app, first)
    with pytest.raises(WorkflowError, match="一个补办申请只能包含同一持证人的证书"):
        add_lost_certificate(s, ent, app, other)


@pytest.mark.parametrize("who", ["school", "jinan", "province"])
def test_who_may_not_start_a_new_reissue(rolled_session, who):
    with pytest.raises(WorkflowError):
        start_reissue(rolled_session, user(rolled_session, who), "遗失")


def test_a_new_reissue_needs_the_apply_permission(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    ent.permission_rows = [r for r in ent.permission_rows if r.code != Permission.business_apply]
    s.flush()
    with pytest.raises(WorkflowError, match="无权办理证书业务"):
        start_reissue(s, ent, "遗失")


# -- 业务日志: a certificate's whole business history (issue 17 item 5) ------------------------------------------


def history(session, username, cert) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(e.label, e.from_state, e.to_state, e.organization.name if e.organization else None, e.reason)
            for e in certificate_history(session, user(session, username), cert)]


def test_business_log_holds_every_application_with_each_review_step(rolled_session):
    s = rolled_session
    cert, other = holder_certificates(s, "jinan_ent", 2)
    old_name = cert.person.name
    change = approve(s, submitted(s, "inst_jinan", "name", cert, values={"new_name": "王旅壹"}))
    cancel = submitted(s, "enterprise", "cancel", cert)
    fire(s, "jinan", cancel, "authority_reject", reason=REASON)
    submitted(s, "inst_jinan", "cancel", other)  # another certificate's application stays out
    institution, jinan, province = (user(s, n).organization.name for n in ("inst_jinan", "jinan", "province"))
    enterprise = user(s, "enterprise").organization.name
    assert history(s, "province", cert) == [
        (f"变更申请#{change.id}：提交申请（姓名变更：{old_name} → 王旅壹）", "draft", "pending_authority",
         institution, None),
        (f"变更申请#{change.id}：审核通过", "pending_authority", "pending_province", jinan, None),
        (f"变更申请#{change.id}：审核通过", "pending_province", "approved", province, None),
        (f"注销申请#{cancel.id}：提交申请（单位出具纸质申请表）", "draft", "pending_authority", enterprise, None),
        (f"注销申请#{cancel.id}：审核不通过", "pending_authority", "rejected", jinan, REASON),
    ]
    entries = certificate_history(s, user(s, "province"), cert)
    assert [e.actor.username for e in entries] == ["inst_jinan", "jinan", "province", "enterprise", "jinan"]
    assert all(e.created_at is not None for e in entries)


def test_business_log_of_a_reissue_on_the_old_and_the_new_certificate(rolled_session):
    s = rolled_session
    first, second = holder_certificates(s, "jinan_ent", 2)
    app = approve(s, submitted(s, "enterprise", "reissue", first, more=[second]))
    for old in (first, second):
        new = next(i.new_certificate for i in app.items if i.certificate_id == old.id)
        labels = [label for label, *_ in history(s, "enterprise", old)]
        assert labels == [f"补办申请#{app.id}：提交申请（单位出具纸质申请表）", f"补办申请#{app.id}：审核通过",
                          "补办作废", f"补办申请#{app.id}：审核通过"]
        assert [label for label, *_ in history(s, "enterprise", new)] == [
            label for label in labels if label != "补办作废"]  # the application that issued it


def test_business_log_shows_to_whoever_sees_the_certificate(rolled_session):
    """The history is the certificate's: its issuing institution sees an application its holder's
    enterprise filed; a user who does not see the certificate sees nothing of it."""
    s = rolled_session
    cert = certificate(s, "jinan_ent")
    app = submitted(s, "enterprise", "name", cert)
    assert get_visible(s, user(s, "inst_jinan"), Certificate, cert.id) is cert
    with pytest.raises(NotFoundError):
        get_visible(s, user(s, "inst_jinan"), CertificateApplication, app.id)
    assert [label for label, *_ in history(s, "inst_jinan", cert)] == [
        f"变更申请#{app.id}：提交申请（姓名变更：{app.old_name} → 王新名）"]
    for stranger in ("inst_qingdao", "enterprise2", "qingdao", "person"):
        assert history(s, stranger, cert) == [], stranger


def test_business_log_is_one_query_however_many_applications(rolled_session):
    from sqlalchemy import event

    s = rolled_session
    one, four = certificate(s, "jinan_ent"), certificate(s, "jinan_ent")
    for cert, n in ((one, 1), (four, 4)):
        for i in range(n):
            approve(s, submitted(s, "inst_jinan", "name", cert, values={"new_name": f"换名{i}"}))

    def statements_for(cert) -> tuple[int, int]:
        s.expire_all()
        province, cert = user(s, "province"), s.get(Certificate, cert.id)
        statements = []

        def listener(conn, cursor, statement, *rest):
            statements.append(statement)

        event.listen(s.get_bind(), "before_cursor_execute", listener)
        try:
            entries = certificate_history(s, province, cert)
            [(e.actor.name, e.organization.name) for e in entries]  # loaded with the rows
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", listener)
        return len(entries), statements

    (rows_one, queries_one), (rows_four, queries_four) = statements_for(one), statements_for(four)
    assert (rows_one, rows_four) == (3, 12)
    assert len(queries_one) == len(queries_four)
    assert sum("FROM transition_log" in q for q in queries_four) == 1
