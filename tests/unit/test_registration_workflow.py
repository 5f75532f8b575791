"""注册申报 (SPEC §5.5; 002 §3.1.4, 004 §3.2–§3.4): the transition table with its actors, the
企业承诺书 guard measured by the server, 退回 with a reason, 增项 skipping the enterprise, 预注册
and 补正资质, 准予注册 (number, expiry, renewal superseding), 申请撤回 / 同意撤回, the rules of
``declare``, 注册人员 / 到期预警 clauses, and who sees which declaration.

Every test declares for holders of its own (a new person with an individual account), so the
demo's registrations, whatever they are, never stand in the way; each test is rolled back.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Attachment, Person, Registration, RegistrationStatus, TransitionLog
from models.base import local_today, utcnow
from models.org import OrgKind
from models.registration import SPECIALTIES
from models.user import Permission, Role
from tests.factories import make_org, make_user, next_identity, org, png_files, user
from workflows import NotFoundError, WorkflowError
from workflows.registration import (
    COMMITMENT_SECONDS,
    COMMITMENT_TICK,
    REGISTRATION,
    Commitment,
    correct_qualification,
    current_registrations,
    declare,
    expiring_clause,
    needs_correction,
    registered_clause,
)
from workflows.visibility import get_visible, visible

R = RegistrationStatus
P = Permission
ENTERPRISE, ENTERPRISE2 = "QY370101", "QY370201"
REASON = "劳动合同未上传"
_names = itertools.count(1)


# -- helpers (this file's own; the demo's registrations are never used) ------------------------------
@pytest.fixture
def s(rolled_session):
    return rolled_session


def read_commitment(seconds: float = COMMITMENT_SECONDS + 1, ticked: bool = True) -> Commitment:
    return Commitment(shown_at=utcnow() - timedelta(seconds=seconds), ticked=ticked)


def new_holder(s, employer_code: str = ENTERPRISE):
    """A new person employed by ``employer_code`` with an individual account."""
    id_number, birth, gender = next_identity()
    person = Person(name=f"注册人{next(_names)}", id_number=id_number, birth_date=birth, gender=gender,
                    employer_id=org(s, employer_code).id, created_at=utcnow())
    s.add(person)
    s.flush()
    return make_user(s, None, role=Role.individual, person=person)


def enterprise_user(s, code: str = ENTERPRISE):
    who = user(s, "enterprise" if code == ENTERPRISE else "enterprise2")
    who.organization.qualification_no = who.organization.qualification_no or f"D2{code[2:]}0001"
    return who


def without(s, base_username: str, permission: Permission):
    """A user of ``base_username``'s organization holding everything but ``permission``."""
    base = user(s, base_username)
    new = make_user(s, base.organization, role=Role.admin)
    new.set_permissions(new.permissions - {permission})
    s.flush()
    return new


def actor_of(s, reg: Registration, step: str):
    if step in ("report", "return", "consent_withdraw"):
        return user(s, "enterprise") if reg.enterprise.code == ENTERPRISE else user(s, "enterprise2")
    if step == "request_withdraw":
        return reg.declared_by
    if step.startswith("province_"):
        return user(s, "province")
    return user(s, "ministry")


def fire(s, reg, step, who=None, **kw):
    who = who or actor_of(s, reg, step)
    if step == "report":
        kw.setdefault("commitment", read_commitment())
    if REGISTRATION.transitions[step].needs_reason:
        kw.setdefault("reason", REASON)
    return REGISTRATION.fire(s, who, reg, step, **kw)


PATH_TO = {
    "unreported": (),
    "province_unaccepted": ("report",),
    "province_accepted": ("report", "province_accept"),
    "ministry_unaccepted": ("report", "province_accept", "province_forward"),
    "ministry_accepted": ("report", "province_accept", "province_forward", "ministry_accept"),
    "approved": ("report", "province_accept", "province_forward", "ministry_accept", "ministry_approve"),
    "rejected": ("report", "province_accept", "province_reject"),
    "returned": ("return",),
    "withdrawn": ("report", "request_withdraw", "consent_withdraw"),
}


def declared(s, holder=None, kind="initial", specialty="01", enterprise=ENTERPRISE, state="unreported"):
    holder = holder or new_holder(s, enterprise)
    enterprise_user(s, enterprise)
    reg = declare(s, holder, {"kind": kind, "specialty": specialty, "enterprise": org(s, enterprise).name})
    for step in PATH_TO[state]:
        fire(s, reg, step)
    assert reg.status == R(state)
    return reg


def logs(s, reg) -> int:
    return s.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.object_type == "registration", TransitionLog.object_id == reg.id))


# -- the table: every transition with its actor -------------------------------------------------------
# (transition, from state, actor, to state)
TABLE = [
    ("report", "unreported", "enterprise", "province_unaccepted"),
    ("return", "unreported", "enterprise", "returned"),
    ("province_accept", "province_unaccepted", "province", "province_accepted"),
    ("province_forward", "province_accepted", "province", "ministry_unaccepted"),
    ("province_reject", "province_accepted", "province", "rejected"),
    ("ministry_accept", "ministry_unaccepted", "ministry", "ministry_accepted"),
    ("ministry_approve", "ministry_accepted", "ministry", "approved"),
    ("ministry_reject", "ministry_accepted", "ministry", "rejected"),
    ("request_withdraw", "province_unaccepted", "holder", "province_unaccepted"),
    ("request_withdraw", "ministry_unaccepted", "holder", "ministry_unaccepted"),
    ("consent_withdraw", "province_unaccepted", "enterprise", "withdrawn"),
    ("consent_withdraw", "ministry_unaccepted", "enterprise", "withdrawn"),
]
# who else tries: other kinds, the other enterprise, another individual, the right kind without permission
OTHERS = ("enterprise", "enterprise2", "enterprise_no_perm", "province", "province_no_perm", "ministry",
          "ministry_no_perm", "holder", "other_holder", "jinan", "inst_jinan", "school")
PERMISSION_OF = {"enterprise_no_perm": ("enterprise", P.registration_manage),
                 "province_no_perm": ("province", P.registration_review),
                 "ministry_no_perm": ("ministry", P.registration_review)}


def who(s, key, reg):
    if key == "holder":
        return reg.declared_by
    if key == "other_holder":
        return new_holder(s)
    if key in PERMISSION_OF:
        return without(s, *PERMISSION_OF[key])
    return user(s, key)


def test_the_table_lists_every_transition():
    assert {row[0] for row in TABLE} == set(REGISTRATION.transitions)


@pytest.mark.parametrize(("name", "source", "actor", "target"), TABLE,
                         ids=[f"{t[0]}-{t[1]}" for t in TABLE])
def test_each_transition_fires_for_its_actor_only(s, name, source, actor, target):
    reg = declared(s, state=source)
    if name == "consent_withdraw":
        fire(s, reg, "request_withdraw")
    label = REGISTRATION.transitions[name].label
    for key in OTHERS:
        if key == actor:
            continue
        before = logs(s, reg)
        with pytest.raises(WorkflowError) as err:
            fire(s, reg, name, who(s, key, reg))
        assert err.value.message == f"无权执行「{label}」", key
        assert reg.status == R(source) and logs(s, reg) == before, key
    fire(s, reg, name, who(s, actor, reg))
    assert reg.status == R(target)
    last = s.scalars(select(TransitionLog).where(TransitionLog.object_type == "registration",
                                                 TransitionLog.object_id == reg.id)
                     .order_by(TransitionLog.id.desc())).first()
    assert (last.transition, last.from_state, last.to_state) == (name, source, target)


@pytest.mark.parametrize(("name", "actor"), [("report", "enterprise"), ("province_accept", "province"),
                                             ("ministry_approve", "ministry"), ("consent_withdraw", "enterprise")])
def test_a_transition_from_the_wrong_state_is_refused(s, name, actor):
    reg = declared(s, state="returned")
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, name, user(s, actor))
    assert "已退回" in err.value.message and reg.status == R.returned


def test_province_reviewer_may_review(s):
    reg = declared(s, state="province_unaccepted")
    fire(s, reg, "province_accept", user(s, "province_reviewer"))
    fire(s, reg, "province_forward", user(s, "province_reviewer"))
    assert reg.status == R.ministry_unaccepted and reg.ministry_at is not None


# -- 上报: the 企业承诺书 guard --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("commitment", "message"),
    [
        (None, "请先阅读企业承诺书"),
        ({"shown_at": utcnow() - timedelta(seconds=600), "ticked": True}, "请先阅读企业承诺书"),
        ("1", "请先阅读企业承诺书"),
        ("2020-01-01T00:00:00", "请先阅读企业承诺书"),
        ("59s", "请仔细阅读企业承诺书，60秒后方可确认上报"),
        ("0s", "请仔细阅读企业承诺书，60秒后方可确认上报"),
        ("60s-unticked", f"请勾选「{COMMITMENT_TICK}」"),
        ("600s-unticked", f"请勾选「{COMMITMENT_TICK}」"),
    ],
    ids=["none", "dict", "string", "iso-string", "59s", "0s", "60s-unticked", "600s-unticked"],
)
def test_report_needs_the_commitment_read_60_seconds_and_ticked(s, commitment, message):
    built = {"59s": read_commitment(59), "0s": read_commitment(0), "60s-unticked": read_commitment(60, False),
             "600s-unticked": read_commitment(600, False)}
    commitment = built.get(commitment, commitment) if isinstance(commitment, str) else commitment
    reg = declared(s)
    data = {} if commitment is None else {"commitment": commitment}
    with pytest.raises(WorkflowError) as err:
        REGISTRATION.fire(s, user(s, "enterprise"), reg, "report", **data)
    assert err.value.message == message
    assert reg.status == R.unreported and reg.reported_at is None and logs(s, reg) == 0


@pytest.mark.parametrize("seconds", [60, 61, 3600])
def test_report_after_60_seconds_ticked_goes_to_the_province(s, seconds):
    reg = declared(s)
    REGISTRATION.fire(s, user(s, "enterprise"), reg, "report", commitment=read_commitment(seconds))
    assert reg.status == R.province_unaccepted and reg.reported_at is not None
    assert reg.pre_registration is False and reg.qualification_no == org(s, ENTERPRISE).qualification_no


def test_commitment_is_measured_by_the_server_clock(s, monkeypatch):
    shown = utcnow()
    commitment = Commitment(shown_at=shown, ticked=True)
    assert commitment.seconds_read(shown + timedelta(seconds=30)) == 30
    monkeypatch.setattr("workflows.registration.utcnow", lambda: shown + timedelta(seconds=COMMITMENT_SECONDS))
    reg = declared(s)
    REGISTRATION.fire(s, user(s, "enterprise"), reg, "report", commitment=commitment)
    assert reg.status == R.province_unaccepted


@pytest.mark.parametrize("state", ["province_unaccepted", "province_accepted", "ministry_unaccepted", "approved",
                                   "rejected", "withdrawn"])
def test_reporting_again_says_it_was_already_reported(s, state):
    reg = declared(s, state=state)
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, "report")
    assert err.value.message == "该申报已上报，请勿重复上报"
    with pytest.raises(WorkflowError) as err:  # even without a commitment: the state speaks first
        REGISTRATION.fire(s, user(s, "enterprise"), reg, "report")
    assert err.value.message == "该申报已上报，请勿重复上报"


def test_bulk_report_reports_per_row(s):
    fresh, done = declared(s), declared(s, state="province_unaccepted")
    other = declared(s, enterprise=ENTERPRISE2)
    rows = {str(fresh.id): fresh, str(done.id): done}
    result = REGISTRATION.fire_many(s, user(s, "enterprise"), rows, [str(fresh.id), str(done.id), str(other.id)],
                                    "report", commitment=read_commitment())
    assert result.summary().startswith("成功 1 条，失败 2 条")
    assert "该申报已上报，请勿重复上报" in result.summary() and "记录不存在或无权访问" in result.summary()
    assert fresh.status == R.province_unaccepted and other.status == R.unreported


# -- 退回 -------------------------------------------------------------------------------------------
def test_return_needs_a_reason(s):
    reg = declared(s)
    for blank in (None, "", "   "):
        with pytest.raises(WorkflowError) as err:
            REGISTRATION.fire(s, user(s, "enterprise"), reg, "return", reason=blank)
        assert err.value.message == "请填写退回理由"
    assert reg.status == R.unreported
    REGISTRATION.fire(s, user(s, "enterprise"), reg, "return", reason=REASON)
    assert (reg.status, reg.reason) == (R.returned, REASON)


def test_returned_declaration_frees_the_specialty(s):
    reg = declared(s, state="returned")
    again = declare(s, reg.declared_by, {"kind": "initial", "specialty": reg.specialty,
                                         "enterprise": org(s, ENTERPRISE).name})
    assert again.status == R.unreported


@pytest.mark.parametrize("name", ["province_reject", "ministry_reject"])
def test_rejection_needs_a_reason_and_records_it(s, name):
    reg = declared(s, state="province_accepted" if name.startswith("province") else "ministry_accepted")
    with pytest.raises(WorkflowError) as err:
        REGISTRATION.fire(s, actor_of(s, reg, name), reg, name)
    assert err.value.message == "请填写不予注册理由"
    fire(s, reg, name, reason="社保缴纳单位与聘用企业不一致")
    assert (reg.status, reg.reason) == (R.rejected, "社保缴纳单位与聘用企业不一致") and reg.decided_at


# -- 增项 --------------------------------------------------------------------------------------------
def test_additional_specialty_skips_the_enterprise(s):
    first = declared(s, state="approved")
    reg = declare(s, first.declared_by, {"kind": "additional", "specialty": "08",
                                         "enterprise": org(s, ENTERPRISE).name})
    assert reg.status == R.province_unaccepted and reg.reported_at is not None
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, "report")
    assert err.value.message == "该申报已上报，请勿重复上报"
    fire(s, reg, "province_accept")
    assert reg.status == R.province_accepted


def test_additional_needs_an_existing_registration_and_a_new_specialty(s):
    holder = new_holder(s)
    with pytest.raises(WorkflowError, match="增项注册须已有注册专业"):
        declare(s, holder, {"kind": "additional", "specialty": "02", "enterprise": org(s, ENTERPRISE).name})
    first = declared(s, holder, state="approved")
    with pytest.raises(WorkflowError, match="已注册建筑工程专业，不能增项"):
        declare(s, holder, {"kind": "additional", "specialty": first.specialty, "enterprise": org(s, ENTERPRISE).name})
    with pytest.raises(WorkflowError, match="只能在一家企业注册执业"):
        declare(s, holder, {"kind": "additional", "specialty": "02", "enterprise": org(s, ENTERPRISE2).name})


# -- 预注册 and 补正资质 ---------------------------------------------------------------------------------
def pre_registered(s):
    enterprise_user(s)
    reg = declared(s)
    reg.enterprise.qualification_no = None
    fire(s, reg, "report")
    assert reg.pre_registration is True and reg.qualification_no is None and needs_correction(reg)
    return reg


def test_pre_registration_waits_for_correction_with_upload(s):
    reg = pre_registered(s)
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, "province_accept")
    assert err.value.message == "预注册申报，待企业补正资质后方可受理" and reg.status == R.province_unaccepted
    enterprise = user(s, "enterprise")
    with pytest.raises(WorkflowError, match="未检测到该企业资质证书号，请上传企业资质副本"):
        correct_qualification(s, enterprise, "D237019999", [])
    with pytest.raises(WorkflowError, match="请填写企业资质证书号"):
        correct_qualification(s, enterprise, "  ", png_files(1))
    before = s.scalar(select(func.count()).select_from(Attachment))
    assert correct_qualification(s, enterprise, "D237019999", png_files(1, stem="资质副本")) >= 1
    assert reg.qualification_no == "D237019999" and enterprise.organization.qualification_no == "D237019999"
    assert s.scalar(select(func.count()).select_from(Attachment)) == before + 1
    assert not needs_correction(reg)
    fire(s, reg, "province_accept")
    assert reg.status == R.province_accepted


def test_correction_with_the_number_on_record_needs_no_upload(s):
    reg = pre_registered(s)
    reg.enterprise.qualification_no = "D237010077"  # the enterprise obtained its qualification meanwhile
    assert correct_qualification(s, user(s, "enterprise"), "D237010077") >= 1
    assert reg.qualification_no == "D237010077"
    fire(s, reg, "province_accept")
    assert reg.status == R.province_accepted


def test_correction_is_refused_to_others_and_without_pending_rows(s):
    pre_registered(s)
    with pytest.raises(WorkflowError, match="无权补正资质"):
        correct_qualification(s, user(s, "province"), "D1", png_files(1))
    with pytest.raises(WorkflowError, match="无权补正资质"):
        correct_qualification(s, without(s, "enterprise", P.registration_manage), "D1", png_files(1))
    newcomer = make_org(s, OrgKind.enterprise, org(s, "SD370100"), qualification_no="D237018888")
    with pytest.raises(WorkflowError, match="没有需要补正资质的预注册申报"):
        correct_qualification(s, make_user(s, newcomer, role=Role.admin), "D237018888")


# -- 准予注册 ------------------------------------------------------------------------------------------
def test_approval_gives_a_number_and_three_years(s):
    reg = declared(s, state="approved")
    today = local_today()
    assert reg.registration_number == f"鲁{reg.specialty}{today.year}{reg.id:06d}"
    assert reg.valid_until.year == today.year + 3 and reg.decided_at is not None
    assert s.scalar(select(Registration.id).where(registered_clause(), Registration.id == reg.id)) == reg.id
    assert current_registrations(s, reg.person_id) == [reg]


def test_renewal_supersedes_the_earlier_registration(s):
    first = declared(s, state="approved")
    renewal = declared(s, first.declared_by, kind="renewal", specialty=first.specialty, state="approved")
    assert first.superseded_by_id == renewal.id and renewal.superseded_by_id is None
    in_force = s.scalars(select(Registration.id).where(registered_clause(),
                                                       Registration.person_id == first.person_id)).all()
    assert in_force == [renewal.id]


def test_change_moves_the_registration_to_the_new_enterprise(s):
    first = declared(s, state="approved")
    change = declared(s, first.declared_by, kind="change", specialty=first.specialty, enterprise=ENTERPRISE2,
                      state="approved")
    assert first.superseded_by_id == change.id
    assert [r.enterprise.code for r in current_registrations(s, first.person_id)] == [ENTERPRISE2]


def test_change_takes_the_other_specialties_along(s):
    """变更注册 moves the person: an 增项 specialty held at the old enterprise goes too, so the
    person is never left registered at two enterprises."""
    first = declared(s, state="approved")
    extra = declare(s, first.declared_by, {"kind": "additional", "specialty": "02",
                                           "enterprise": org(s, ENTERPRISE).name})
    for step in PATH_TO["approved"][1:]:  # 增项 starts at the province: no 上报
        fire(s, extra, step)
    change = declared(s, first.declared_by, kind="change", specialty=first.specialty, enterprise=ENTERPRISE2,
                      state="approved")
    in_force = current_registrations(s, first.person_id)
    assert {r.id for r in in_force} == {change.id, extra.id}
    assert {r.enterprise.code for r in in_force} == {ENTERPRISE2}


def test_expiring_clause_takes_registrations_in_force_within_the_days(s):
    soon, later, renewed = (declared(s, state="approved") for _ in range(3))
    soon.valid_until = local_today() + timedelta(days=30)
    later.valid_until = local_today() + timedelta(days=200)
    renewed.valid_until = local_today() - timedelta(days=1)
    renewal = declared(s, renewed.declared_by, kind="renewal", specialty=renewed.specialty, state="approved")
    s.flush()
    ids = {soon.id, later.id, renewed.id, renewal.id}
    found = set(s.scalars(select(Registration.id).where(expiring_clause(90), Registration.id.in_(ids))))
    assert found == {soon.id}
    assert set(s.scalars(select(Registration.id).where(expiring_clause(365), Registration.id.in_(ids)))) == {
        soon.id, later.id}


# -- 申请撤回 / 同意撤回 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["province_unaccepted", "ministry_unaccepted"])
def test_withdraw_request_then_consent(s, state):
    reg = declared(s, state=state)
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, "consent_withdraw")
    assert err.value.message == "个人未申请撤回" and reg.status == R(state)
    fire(s, reg, "request_withdraw")
    assert reg.status == R(state) and reg.withdraw_requested_at is not None
    with pytest.raises(WorkflowError) as err:
        fire(s, reg, "request_withdraw")
    assert err.value.message == "已申请撤回，等待企业同意"
    fire(s, reg, "consent_withdraw")
    assert reg.status == R.withdrawn


@pytest.mark.parametrize("state", ["unreported", "province_accepted", "ministry_accepted", "approved"])
def test_withdraw_only_while_unaccepted(s, state):
    reg = declared(s, state=state)
    with pytest.raises(WorkflowError, match="不能执行「申请撤回」"):
        fire(s, reg, "request_withdraw")


# -- declare -----------------------------------------------------------------------------------------
def test_declare_by_credit_code_or_exact_name(s):
    enterprise = org(s, ENTERPRISE)
    reg = declare(s, new_holder(s), {"kind": "initial", "specialty": "02", "enterprise": enterprise.credit_code.lower(),
                                     "explanation": "  首次注册  "})
    assert (reg.enterprise_id, reg.status, reg.explanation, reg.specialty_label) == (
        enterprise.id, R.unreported, "首次注册", SPECIALTIES["02"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "", "specialty": "01"}, "请选择申报类型"),
        ({"kind": "first", "specialty": "01"}, "请选择申报类型"),
        ({"kind": "initial", "specialty": "99"}, "请选择注册专业"),
        ({"kind": "initial", "specialty": "01", "enterprise": "山东鲁建"}, "聘用企业不存在或未通过审核"),
        ({"kind": "initial", "specialty": "01", "enterprise": ""}, "聘用企业不存在或未通过审核"),
        ({"kind": "initial", "specialty": "01", "explanation": "说" * 501}, "申报说明不能超过500个字符"),
        ({"kind": "renewal", "specialty": "01"}, "在该企业没有建筑工程专业的注册，不能申报延续注册"),
        ({"kind": "change", "specialty": "01"}, "变更注册"),
    ],
    ids=["no-kind", "bad-kind", "bad-specialty", "partial-name", "no-enterprise", "long", "renewal", "change"],
)
def test_declare_refuses_in_chinese(s, values, message):
    values = {"enterprise": org(s, ENTERPRISE).name, **values}
    before = s.scalar(select(func.count()).select_from(Registration))
    with pytest.raises(WorkflowError) as err:
        declare(s, new_holder(s), values)
    assert message in err.value.message
    assert s.scalar(select(func.count()).select_from(Registration)) == before


def test_initial_is_refused_when_already_registered(s):
    first = declared(s, state="approved")
    with pytest.raises(WorkflowError) as err:
        declare(s, first.declared_by, {"kind": "initial", "specialty": "02", "enterprise": org(s, ENTERPRISE).name})
    assert err.value.message == "已有注册证书，请申报延续、变更或增项注册"


def test_renewal_needs_the_registration_at_that_enterprise(s):
    first = declared(s, state="approved")
    with pytest.raises(WorkflowError, match="在该企业没有建筑工程专业的注册"):
        declare(s, first.declared_by, {"kind": "renewal", "specialty": "01", "enterprise": org(s, ENTERPRISE2).name})
    renewal = declare(s, first.declared_by, {"kind": "renewal", "specialty": "01",
                                             "enterprise": org(s, ENTERPRISE).name})
    assert renewal.status == R.unreported


def test_no_second_enterprise_while_a_declaration_is_in_progress(s):
    """Two initial declarations at two enterprises, in different specialties, would both end
    approved: a person registered at two enterprises. The second is refused at once."""
    first = declared(s, state="province_unaccepted")
    with pytest.raises(WorkflowError, match="已有在.+办理中的初始注册（省级未受理），注册人员只能在一家企业注册执业"):
        declare(s, first.declared_by, {"kind": "initial", "specialty": "05", "enterprise": org(s, ENTERPRISE2).name})
    # at the same enterprise another specialty may wait beside it
    assert declare(s, first.declared_by, {"kind": "initial", "specialty": "05",
                                          "enterprise": org(s, ENTERPRISE).name}).status == R.unreported


def test_one_open_declaration_per_specialty(s):
    reg = declared(s, state="province_accepted")
    with pytest.raises(WorkflowError) as err:
        declare(s, reg.declared_by, {"kind": "initial", "specialty": "01", "enterprise": org(s, ENTERPRISE).name})
    assert err.value.message == "建筑工程专业已有办理中的初始注册（省级已受理）"
    other = declare(s, reg.declared_by, {"kind": "initial", "specialty": "02", "enterprise": org(s, ENTERPRISE).name})
    assert other.status == R.unreported


@pytest.mark.parametrize("username", ["enterprise", "province", "ministry", "jinan"])
def test_only_individuals_declare(s, username):
    with pytest.raises(WorkflowError) as err:
        declare(s, user(s, username), {"kind": "initial", "specialty": "01", "enterprise": org(s, ENTERPRISE).name})
    assert err.value.message == "只有个人用户可以申报注册"


# -- visibility ----------------------------------------------------------------------------------------
def test_ministry_sees_only_forwarded_declarations(s):
    reg = declared(s, state="province_accepted")
    ministry = user(s, "ministry")
    with pytest.raises(NotFoundError):
        get_visible(s, ministry, Registration, reg.id)
    fire(s, reg, "province_forward")
    assert get_visible(s, ministry, Registration, reg.id) is reg
    unforwarded = s.scalar(visible(ministry, select(func.count()).select_from(Registration), Registration)
                           .where(Registration.ministry_at.is_(None)))
    assert unforwarded == 0


def test_enterprise2_sees_none_of_the_enterprises_declarations(s):
    regs = [declared(s, state=state) for state in ("unreported", "province_unaccepted", "approved", "returned")]
    ids = [r.id for r in regs]
    for username in ("enterprise2", "jinan", "inst_jinan", "school"):
        seen = s.scalars(visible(user(s, username), select(Registration.id).where(Registration.id.in_(ids)),
                                 Registration)).all()
        assert seen == [], username
    assert sorted(s.scalars(visible(user(s, "enterprise"), select(Registration.id).where(Registration.id.in_(ids)),
                                    Registration))) == sorted(ids)
    assert sorted(s.scalars(visible(user(s, "province"), select(Registration.id).where(Registration.id.in_(ids)),
                                    Registration))) == sorted(ids)


def test_an_individual_sees_only_their_own(s):
    mine, theirs = declared(s), declared(s)
    holder = mine.declared_by
    assert get_visible(s, holder, Registration, mine.id) is mine
    with pytest.raises(NotFoundError):
        get_visible(s, holder, Registration, theirs.id)
