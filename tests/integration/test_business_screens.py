"""证书业务处理 screens through the real sign-in, CSRF on (SPEC §5.2; 003 §六.3, §七.3, §八.3; 000 §二(二); 001).

申请业务 (变更 / 补办 / 注销 forms), 已申请业务 (list, details, images, 选择遗失证书, 提交申请),
变更/补办/注销管理 (authority then province, bulk 审核通过 / 审核不通过 with a mandatory reason),
and what the certificate screens show after the province approved.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from models import (
    ApplicationKind,
    ApplicationStatus,
    Attachment,
    Certificate,
    CertificateApplication,
    CertificateStatus,
    Person,
)
from models.base import format_local
from tests.factories import issued_certificates, org, png_files
from tests.samples import make_jpeg, make_pdf, make_png
from workflows.engine import setting_state
from workflows.privacy import mask_id_number
from workflows.validators import make_id_number

A = ApplicationStatus
REASON = "申请表未盖单位公章"
_seq = iter(range(300, 999, 2))


# -- helpers -------------------------------------------------------------------------------------------
def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def in_table(html: str, value: str) -> bool:
    """A value shown in a list cell, not merely echoed back in the search box."""
    return f">{value}<" in re.sub(r"\s+", "", html)


def new_id(birth=date(1993, 5, 6)) -> str:
    return make_id_number("370102", birth, next(_seq), "男")


def uploads(files) -> list:
    """(name, bytes) pairs as the browser's multipart file parts (fresh streams for each request)."""
    return [(io.BytesIO(data), name) for name, data in files]


def counts(session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(CertificateApplication)),
            session.scalar(select(func.count()).select_from(Attachment)))


def holder_certificate(session, name: str, status=CertificateStatus.valid) -> Certificate:
    return session.scalar(select(Certificate).join(Person, Person.id == Certificate.person_id)
                          .where(Person.name == name, Certificate.status == status).order_by(Certificate.id))


def certificate_in(session, status) -> Certificate:
    return session.scalar(select(Certificate).where(Certificate.status == status).order_by(Certificate.id))


def demo_application(session, kind: str, status: ApplicationStatus) -> CertificateApplication:
    return session.scalar(select(CertificateApplication).where(
        CertificateApplication.kind == ApplicationKind(kind), CertificateApplication.status == status)
        .order_by(CertificateApplication.id))


def latest_application(session) -> CertificateApplication:
    return session.scalar(select(CertificateApplication).order_by(CertificateApplication.id.desc()))


def fresh_certificates(session, pairs=None, employer_code="QY370101") -> list[Certificate]:
    """Valid certificates of a new holder employed by the enterprise ``employer_code``, issued by inst_jinan."""
    return issued_certificates(session, "inst_jinan", pairs, employer=org(session, employer_code))


def post_change(client, certificate, fields, files=None, **values):
    data = {"certificate_id": str(certificate.id), "step": "submit", "fields": list(fields),
            "files": uploads(png_files(1) if files is None else files), **values}
    return client.post("/admin/business_apply/change/", data, content_type="multipart/form-data")


def post_cancel(client, certificate, files=None, explanation="持证人申请注销"):
    data = {"certificate_id": str(certificate.id), "explanation": explanation,
            "files": uploads(png_files(1) if files is None else files)}
    return client.post("/admin/business_apply/cancel/", data, content_type="multipart/form-data")


def bulk(client, endpoint, action, *ids, **kw):
    return client.post(f"/admin/{endpoint}/action/", {"action": action, "rowid": [str(i) for i in ids]}, **kw)


def review_through(jinan_or_city, province, endpoint, app_id):
    """The authority's then the province's bulk 审核通过 of one application."""
    resp = bulk(jinan_or_city, endpoint, "wf_authority_approve", app_id, follow_redirects=True)
    assert "成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    resp = bulk(province, endpoint, "wf_province_approve", app_id, follow_redirects=True)
    assert "成功 1 条，失败 0 条" in flashes(resp), flashes(resp)


# -- 申请业务: which certificates, which applications -----------------------------------------------------
@pytest.mark.parametrize(
    ("username", "shown", "hidden"),
    [
        ("inst_jinan", "李明", "钱坤"),      # issued by it / by inst_qingdao
        ("enterprise", "李明", "钱坤"),      # its employee / enterprise2's
        ("person", "张建国", "李明"),        # own / someone else's
        ("school", "林晓", "李明"),          # its student / an enterprise's employee
        ("enterprise2", "钱坤", "李明"),
    ],
)
def test_apply_list_shows_the_valid_certificates_the_user_may_apply_for(login, session, username, shown, hidden):
    client = login(username)
    mine, other = holder_certificate(session, shown), holder_certificate(session, hidden)
    html = client.get(f"/admin/business_apply/?search={mine.number}").get_data(as_text=True)
    assert in_table(html, mine.number)
    assert "apply-change" in html
    assert ("apply-reissue" in html and "apply-cancel" in html) is (username != "school")
    html = client.get(f"/admin/business_apply/?search={other.number}").get_data(as_text=True)
    assert not in_table(html, other.number)
    assert client.get(f"/admin/business_apply/change/?certificate_id={other.id}").status_code == 404


def test_apply_list_leaves_out_cancelled_and_voided_certificates(login, session):
    client = login("inst_jinan")
    for status in (CertificateStatus.cancelled, CertificateStatus.voided):
        certificate = certificate_in(session, status)
        assert certificate is not None and certificate.issuer.name == "济南市建设职业技能培训中心"
        html = client.get(f"/admin/business_apply/?search={certificate.number}").get_data(as_text=True)
        assert not in_table(html, certificate.number), status


def test_school_offers_only_the_employer_change(login, session):
    client = login("school")
    certificate = holder_certificate(session, "林晓")
    html = client.get(f"/admin/business_apply/?search={certificate.number}").get_data(as_text=True)
    assert "apply-change" in html and "apply-reissue" not in html and "apply-cancel" not in html


# -- 变更 ------------------------------------------------------------------------------------------------
def test_change_form_steps_and_a_name_change_is_submitted(login, session):
    [certificate] = fresh_certificates(session)
    client = login("enterprise")
    html = client.get(f"/admin/business_apply/change/?certificate_id={certificate.id}").get_data(as_text=True)
    assert "请选择变更信息" in html and 'type="radio"' in html  # one field per application (Shandong)
    html = client.get(f"/admin/business_apply/change/?certificate_id={certificate.id}&fields=name").get_data(
        as_text=True)
    assert 'name="new_name"' in html and "上传文件" in html and "200K" in html
    resp = post_change(client, certificate, ["name"], png_files(2), new_name="王新名")
    assert resp.status_code == 302 and "/admin/application/details/" in resp.location
    app = latest_application(session)
    assert (app.kind, app.status, app.new_name, app.old_name) == (
        ApplicationKind.change, A.pending_authority, "王新名", certificate.person.name)
    assert app.reviewing_authority.name == "济南市住房和城乡建设局"
    page = client.get(resp.location)
    assert "变更申请已提交" in flashes(page) and "王新名" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "values", "files", "message"),
    [
        (["name", "id_number"], {"new_name": "王新", "new_id_number": "ID"}, None, "姓名和身份证号不能同时变更"),
        (["name", "employer"], {"new_name": "王新", "new_employer_id": "ENT2"}, None, "每次申请只能变更一项信息"),
        (["id_number"], {"new_id_number": "BAD"}, None, "校验位"),
        (["id_number"], {"new_id_number": "OTHER"}, None, "新身份证号已属于其他人员"),
        (["name"], {"new_name": ""}, None, "请填写新姓名"),
        ([], {}, None, "请选择变更信息"),
        (["name"], {"new_name": "王新"}, png_files(6), "最多上传5张图片"),
        (["name"], {"new_name": "王新"}, png_files(1, size=201 * 1024), "超过200KB"),
        (["name"], {"new_name": "王新"}, [("申请表.png", make_pdf())], "不是有效的图片"),
        (["name"], {"new_name": "王新"}, [("申请表.jpg", make_png(3, 3))], "内容与扩展名不符"),
        (["name"], {"new_name": "王新"}, [], "请至少上传1张图片"),
    ],
    ids=["name+id", "two-fields", "check-digit", "id-of-another", "empty-name", "no-field", "six-images",
         "201KB", "pdf-as-png", "png-as-jpg", "no-image"],
)
def test_bad_changes_are_refused_in_chinese_and_nothing_is_stored(login, session, fields, values, files, message):
    [certificate] = fresh_certificates(session)
    good = new_id()
    other = holder_certificate(session, "李明").person.id_number
    substitutes = {"ID": good, "BAD": good[:-1] + ("0" if good[-1] != "0" else "1"), "OTHER": other,
                   "ENT2": str(org(session, "QY370201").id)}
    values = {k: substitutes.get(v, v) for k, v in values.items()}
    before = counts(session)
    resp = post_change(login("enterprise"), certificate, fields, files, **values)
    assert resp.status_code == 200
    assert message in flashes(resp), flashes(resp)
    assert counts(session) == before  # no application row, no attachment


def test_two_fields_are_accepted_when_the_one_field_rule_is_off(app, login, session):
    app.config["CHANGE_ONE_FIELD_PER_APPLICATION"] = False
    [certificate] = fresh_certificates(session)
    client = login("enterprise")
    html = client.get(f"/admin/business_apply/change/?certificate_id={certificate.id}").get_data(as_text=True)
    assert 'type="checkbox"' in html
    resp = post_change(client, certificate, ["name", "employer"], new_name="李双改",
                       new_employer_id=str(org(session, "QY370102").id))
    assert resp.status_code == 302, flashes(resp)
    assert set(latest_application(session).fields) == {"employer", "name"}


def test_jpg_and_five_images_are_accepted(login, session):
    [certificate] = fresh_certificates(session)
    files = [*png_files(4, size=200 * 1024), ("扫描件.jpg", make_jpeg())]
    resp = post_change(login("enterprise"), certificate, ["id_number"], files, new_id_number=new_id())
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    images = session.scalars(select(Attachment).where(Attachment.owner_type == "application",
                                                      Attachment.owner_id == app.id)).all()
    assert sorted(a.content_type for a in images) == ["image/jpeg"] + ["image/png"] * 4


def test_a_post_without_the_csrf_token_is_refused(login, session):
    [certificate] = fresh_certificates(session)
    before = counts(session)
    client = login("enterprise")
    resp = client.post("/admin/business_apply/change/", {
        "certificate_id": str(certificate.id), "step": "submit", "fields": ["name"], "new_name": "无令牌",
        "files": uploads(png_files(1))}, csrf=False, content_type="multipart/form-data")
    assert resp.status_code == 400
    assert counts(session) == before


def test_employer_change_is_reviewed_by_the_receiving_enterprises_city(login, session):
    [certificate] = fresh_certificates(session)
    receiving = org(session, "QY370201")  # 青岛海晟
    resp = post_change(login("enterprise"), certificate, ["employer"], new_employer_id=str(receiving.id))
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.reviewing_authority.code == "SD370200" and app.status == A.pending_authority
    qingdao, jinan = login("qingdao"), login("jinan")
    assert in_table(qingdao.get(f"/admin/review_change/?tab=pending&search={certificate.number}").get_data(
        as_text=True), certificate.number)
    assert not in_table(jinan.get(f"/admin/review_change/?tab=pending&search={certificate.number}").get_data(
        as_text=True), certificate.number)
    assert jinan.get(f"/admin/review_change/details/?id={app.id}").status_code == 404
    resp = bulk(jinan, "review_change", "wf_authority_approve", app.id, follow_redirects=True)
    assert "失败 1 条" in flashes(resp)
    session.refresh(app)
    assert app.status == A.pending_authority
    review_through(qingdao, login("province"), "review_change", app.id)
    # the holder now works for 青岛海晟: enterprise2 may apply for the certificate, enterprise no more
    assert in_table(login("enterprise2").get(f"/admin/business_apply/?search={certificate.number}").get_data(
        as_text=True), certificate.number)
    assert not in_table(login("enterprise").get(f"/admin/business_apply/?search={certificate.number}").get_data(
        as_text=True), certificate.number)


# -- rules for every kind ----------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [CertificateStatus.cancelled, CertificateStatus.voided])
def test_an_application_on_a_certificate_that_is_not_valid_is_refused(login, session, status):
    certificate = certificate_in(session, status)
    before = counts(session)
    resp = post_cancel(login("inst_jinan"), certificate)
    assert resp.status_code == 200
    assert f"状态为「{status.label}」，不能办理业务" in flashes(resp), flashes(resp)
    assert counts(session) == before


def test_a_second_open_application_on_the_same_certificate_is_refused(login, session):
    pending = demo_application(session, "change", A.pending_authority)
    certificate = pending.items[0].certificate
    before = counts(session)
    client = login("enterprise")
    first = f"证书{certificate.number}已有未办结的变更申请#{pending.id}（待审核(主管部门)），不能再次申请"
    resp = post_cancel(client, certificate)
    assert first in flashes(resp), flashes(resp)  # naming the first application
    resp = client.post("/admin/business_apply/reissue/", {"certificate_id": str(certificate.id),
                                                           "explanation": "遗失"})
    assert first in flashes(resp), flashes(resp)
    assert counts(session) == before


@pytest.mark.parametrize("kind", ["cancel", "reissue", "name"])
def test_a_school_may_file_nothing_but_an_employer_change(login, session, kind):
    certificate = holder_certificate(session, "林晓")
    client = login("school")
    before = counts(session)
    if kind == "cancel":
        resp = post_cancel(client, certificate)
    elif kind == "reissue":
        resp = client.post("/admin/business_apply/reissue/", {"certificate_id": str(certificate.id),
                                                               "explanation": "遗失"})
    else:
        resp = post_change(client, certificate, ["name"], new_name="林小晓")
    assert "学校(虚拟企业)只能为学生办理工作单位变更" in flashes(resp), flashes(resp)
    assert counts(session) == before


def test_a_school_moves_its_student_to_a_receiving_enterprise(login, session):
    certificate = holder_certificate(session, "林晓")
    receiving = org(session, "QY370201")
    resp = post_change(login("school"), certificate, ["employer"], new_employer_id=str(receiving.id))
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.reviewing_authority.code == "SD370200"  # the receiving enterprise's city


def test_the_student_cannot_be_handled_by_the_enterprise_or_an_institution_cancel(login, session):
    certificate = holder_certificate(session, "林晓")
    before = counts(session)
    resp = post_cancel(login("inst_jinan"), certificate)  # issued it, but the holder is a student
    assert "在校学生的证书只能由学校办理工作单位变更" in flashes(resp), flashes(resp)
    assert login("enterprise").get(f"/admin/business_apply/cancel/?certificate_id={certificate.id}").status_code == 404
    assert counts(session) == before


# -- 补办: 新建申请 → 申请说明 → 保存 → 选择遗失证书 → upload → 提交申请, then the effects ---------------------------
def test_reissue_of_several_lost_certificates_from_draft_to_new_numbers(login, session):
    first, second = fresh_certificates(session, [("砌筑工", "初级工(五级)"), ("电工", "初级工(五级)")])
    old_numbers = {first.number, second.number}
    client = login("enterprise")
    form = client.get(f"/admin/business_apply/reissue/?certificate_id={first.id}").get_data(as_text=True)
    assert "申请说明" in form and "reissue-save" in form
    before = counts(session)
    resp = client.post("/admin/business_apply/reissue/", {"certificate_id": str(first.id), "explanation": " "})
    assert "请填写申请说明" in flashes(resp) and counts(session) == before
    resp = client.post("/admin/business_apply/reissue/", {"certificate_id": str(first.id),
                                                           "explanation": "证书在工地遗失"})
    assert resp.status_code == 302 and "/admin/application/details/" in resp.location
    app = latest_application(session)
    assert app.status == A.draft and app.kind == ApplicationKind.reissue
    html = client.get(resp.location).get_data(as_text=True)
    assert 'id="lost-pick"' in html and "images-form" in html
    picker = client.get(f"/admin/application/lost/?id={app.id}").get_data(as_text=True)
    assert f'name="certificate_id" value="{second.id}"' in picker  # the holder's other certificate, to tick
    assert f'name="certificate_id" value="{first.id}"' not in picker  # already in the draft

    resp = client.post("/admin/application/transition/", {"id": str(app.id), "transition": "submit"},
                       follow_redirects=True)
    assert "请上传单位出具的纸质申请表" in flashes(resp)  # no image yet
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": str(second.id)},
                       follow_redirects=True)
    assert f"已添加遗失证书 {second.number}" in flashes(resp)
    resp = client.post("/admin/application/images/", {"id": str(app.id), "files": uploads(png_files(6))},
                       content_type="multipart/form-data", follow_redirects=True)
    assert "最多上传5张图片" in flashes(resp)
    resp = client.post("/admin/application/images/", {"id": str(app.id), "files": uploads(png_files(2))},
                       content_type="multipart/form-data", follow_redirects=True)
    assert "图片已上传" in flashes(resp)
    resp = client.post("/admin/application/transition/", {"id": str(app.id), "transition": "submit"},
                       follow_redirects=True)
    assert "提交申请：操作成功" in flashes(resp), flashes(resp)
    session.refresh(app)
    assert app.status == A.pending_authority and len(app.items) == 2

    review_through(login("jinan"), login("province"), "review_reissue", app.id)
    session.refresh(app)
    new_numbers = [item.new_certificate.number for item in app.items]
    assert app.status == A.approved and len(set(new_numbers)) == 2 and not set(new_numbers) & old_numbers

    library = login("province")
    for old, new in zip([first, second], new_numbers, strict=True):
        html = library.get(f"/admin/certificate_library/?search={old.number}").get_data(as_text=True)
        assert in_table(html, old.number) and in_table(html, "已作废")
        html = library.get(f"/admin/certificate_library/?search={new}").get_data(as_text=True)
        assert in_table(html, new) and in_table(html, "有效")
    html = login("inst_jinan").get(f"/admin/certificate/?search={new_numbers[0]}").get_data(as_text=True)
    assert in_table(html, new_numbers[0])
    details = client.get(f"/admin/application/details/?id={app.id}").get_data(as_text=True)
    assert all(n in details for n in new_numbers) and "审核通过" in details


def lost_items(session, app) -> list[int]:
    session.refresh(app)
    return [i.certificate_id for i in app.items]


def test_lost_certificates_of_another_holder_are_a_404_and_one_can_be_removed(login, session):
    """Issue 17: once the draft has its holder, another holder's certificate — even one of the
    enterprise's own employees — is a forged id (404) and nothing is added, not even the others."""
    first, second = fresh_certificates(session, [("砌筑工", "初级工(五级)"), ("钢筋工", "初级工(五级)")])
    [stranger] = fresh_certificates(session)
    client = login("enterprise")
    client.post("/admin/business_apply/reissue/", {"certificate_id": str(first.id), "explanation": "遗失"})
    app = latest_application(session)
    picker = client.get(f"/admin/application/lost/?id={app.id}").get_data(as_text=True)
    assert f'value="{second.id}"' in picker and f'value="{stranger.id}"' not in picker
    for ids in ([stranger.id], [second.id, stranger.id]):
        resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": [str(i) for i in ids]})
        assert resp.status_code == 404
        assert lost_items(session, app) == [first.id]
    client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": str(second.id)})
    assert lost_items(session, app) == [first.id, second.id]
    item = app.items[1]
    assert login("enterprise2").post("/admin/application/lost/remove/", {"id": str(app.id),
                                                                         "item_id": str(item.id)}).status_code == 404
    resp = client.post("/admin/application/lost/remove/", {"id": str(app.id), "item_id": str(item.id)},
                       follow_redirects=True)
    assert "已移除" in flashes(resp)
    assert lost_items(session, app) == [first.id]


def test_new_reissue_then_tick_two_lost_certificates_of_one_holder(login, session):
    """001 证书遗失补证申请: 新建申请 → 申请说明 → 保存 → 选择遗失证书 (a list to tick, narrowed by
    证书编号 / 身份证号 / 姓名) → 添加遗失证书 → 提交申请."""
    mine, mine2 = fresh_certificates(session, [("砌筑工", "初级工(五级)"), ("电工", "初级工(五级)")])
    [other_employee] = fresh_certificates(session)
    [foreign] = fresh_certificates(session, employer_code="QY370201")
    client = login("enterprise")
    listing = client.get("/admin/application/").get_data(as_text=True)
    assert 'id="new-reissue"' in listing and 'href="/admin/business_apply/reissue/"' in listing
    assert 'id="new-reissue"' not in login("school").get("/admin/application/").get_data(as_text=True)
    form = client.get("/admin/business_apply/reissue/").get_data(as_text=True)
    assert "申请说明" in form and "certificate-card" not in form
    assert client.get("/admin/business_apply/reissue/?certificate_id=").status_code == 404
    resp = client.post("/admin/business_apply/reissue/", {"explanation": "工地搬迁时遗失"})
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.items == [] and app.person_id is None
    listing = client.get("/admin/application/?tab=draft").get_data(as_text=True)
    assert f"/admin/application/details/?id={app.id}" in listing  # listed, holder shown as -

    details = f"/admin/application/details/?id={app.id}"
    page = client.get(details).get_data(as_text=True)
    assert f'href="/admin/application/lost/?id={app.id}"' in page and 'id="lost-pick"' in page
    picker = f"/admin/application/lost/?id={app.id}"
    page = client.get(picker).get_data(as_text=True)
    for c in (mine, mine2, other_employee):  # the enterprise's employees' valid certificates
        assert f'name="certificate_id" value="{c.id}"' in page
    assert f'value="{foreign.id}"' not in page  # another enterprise's holder
    page = client.get(f"{picker}&lost_q={foreign.number}").get_data(as_text=True)
    assert 'id="lost-none"' in page and f'value="{foreign.id}"' not in page
    page = client.get(f"{picker}&lost_q={mine.person.id_number}").get_data(as_text=True)
    assert f'value="{mine.id}"' in page and f'value="{mine2.id}"' in page and f'value="{other_employee.id}"' not in page
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": [str(mine.id),
                                                                                                 str(foreign.id)]})
    assert resp.status_code == 404 and lost_items(session, app) == []  # a forged id outside visibility
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id)}, follow_redirects=True)
    assert "请选择遗失证书" in flashes(resp) and lost_items(session, app) == []
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": [str(mine.id),
                                                                                                 str(other_employee.id)]},
                       follow_redirects=True)
    assert "一个补办申请只能包含同一持证人的证书" in flashes(resp) and lost_items(session, app) == []
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": [str(mine.id),
                                                                                                 str(mine2.id)]},
                       follow_redirects=True)
    assert f"已添加遗失证书 {mine.number}、{mine2.number}" in flashes(resp)
    assert lost_items(session, app) == [mine.id, mine2.id]
    assert app.person_id == mine.person_id and app.reviewing_authority.code == "SD370100"
    page = client.get(picker).get_data(as_text=True)
    assert 'name="certificate_id"' not in page and 'id="lost-none"' in page  # the holder has no other


@pytest.mark.parametrize("bad", ["abc", "", "0", "-3", "99999999999999999999", "2147483648"])
def test_forged_lost_certificate_ids_are_a_404(login, session, bad):
    [mine] = fresh_certificates(session)
    client = login("enterprise")
    client.post("/admin/business_apply/reissue/", {"certificate_id": str(mine.id), "explanation": "遗失"})
    app = latest_application(session)
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": [bad]})
    assert resp.status_code == 404
    assert lost_items(session, app) == [mine.id]
    assert client.get(f"/admin/application/lost/?id={bad}").status_code == 404


def test_lost_certificate_not_valid_or_already_applied_for_is_refused_by_name(login, session):
    """Issue 17 bad input: a certificate that is not valid, or held by another open application,
    is refused with a Chinese message naming it (and the first application); nothing is added."""
    mine, mine2 = fresh_certificates(session, [("砌筑工", "初级工(五级)"), ("电工", "初级工(五级)")])
    client = login("enterprise")
    client.post("/admin/business_apply/reissue/", {"certificate_id": str(mine.id), "explanation": "遗失"})
    app = latest_application(session)
    resp = post_cancel(client, mine2)  # a 注销 of the holder's other certificate, submitted
    assert resp.status_code == 302, flashes(resp)
    cancel = latest_application(session)
    page = client.get(f"/admin/application/lost/?id={app.id}").get_data(as_text=True)
    assert re.search(rf'value="{mine2.id}"[^>]*disabled', page)  # shown, not to tick
    assert f"已有未办结的注销申请#{cancel.id}（待审核(主管部门)）" in page
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": str(mine2.id)},
                       follow_redirects=True)
    assert f"证书{mine2.number}已有未办结的注销申请#{cancel.id}（待审核(主管部门)），不能再次申请" in flashes(resp)
    assert lost_items(session, app) == [mine.id]
    with setting_state():
        mine2.status = CertificateStatus.voided
    session.commit()
    resp = client.post("/admin/application/lost/add/", {"id": str(app.id), "certificate_id": str(mine2.id)},
                       follow_redirects=True)
    assert f"证书{mine2.number}状态为「已作废」，不能办理业务" in flashes(resp), flashes(resp)
    assert lost_items(session, app) == [mine.id]


def test_a_reissue_without_a_certificate_is_refused_on_submit(login, session):
    client = login("enterprise")
    client.post("/admin/business_apply/reissue/", {"explanation": "遗失"})
    app = latest_application(session)
    client.post("/admin/application/images/", {"id": str(app.id), "files": uploads(png_files(1))},
                content_type="multipart/form-data")
    resp = client.post("/admin/application/transition/", {"id": str(app.id), "transition": "submit"},
                       follow_redirects=True)
    assert "请先选择遗失证书" in flashes(resp)
    session.refresh(app)
    assert app.status == A.draft


def test_only_the_applicant_picks_lost_certificates_on_a_draft(login, session):
    [mine] = fresh_certificates(session)
    client = login("enterprise")
    client.post("/admin/business_apply/reissue/", {"certificate_id": str(mine.id), "explanation": "遗失"})
    app = latest_application(session)
    assert login("enterprise2").get(f"/admin/application/lost/?id={app.id}").status_code == 404
    change = demo_application(session, "change", A.draft)
    assert login("inst_jinan").get(f"/admin/application/lost/?id={change.id}").status_code == 404  # not a 补办
    submitted = demo_application(session, "reissue", A.pending_authority)
    resp = login("enterprise").get(f"/admin/application/lost/?id={submitted.id}", follow_redirects=True)
    assert "不能修改" in flashes(resp) and 'id="lost-add-form"' not in resp.get_data(as_text=True)


# -- 注销 and 姓名变更: effects after province approval ----------------------------------------------------------
def test_cancel_is_approved_and_the_certificate_shows_cancelled(login, session):
    [certificate] = fresh_certificates(session)
    resp = post_cancel(login("enterprise"), certificate)
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    review_through(login("jinan"), login("province"), "review_cancel", app.id)
    html = login("inst_jinan").get(f"/admin/certificate/?search={certificate.number}").get_data(as_text=True)
    assert in_table(html, certificate.number) and in_table(html, "已注销")


def test_name_change_is_approved_and_the_certificate_shows_the_new_name(login, session):
    [certificate] = fresh_certificates(session)
    resp = post_change(login("inst_jinan"), certificate, ["name"], new_name="欧阳新")
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.reviewing_authority.code == "SD370100"
    review_through(login("jinan"), login("province"), "review_change", app.id)
    html = login("province").get(f"/admin/certificate_library/?search={certificate.number}").get_data(as_text=True)
    assert "欧阳新" in html and mask_id_number(certificate.person.id_number) in html  # the list masks it (issue 17)


def business_log(html: str) -> str:
    """The 业务日志 table of a certificate's details page, tags dropped."""
    table = re.search(r'<table[^>]*id="business-log".*?</table>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", table))


def test_the_business_log_of_a_certificate_shows_its_applications(login, session):
    """Issue 17: an approved 变更 (the demo's, filed by 济南培训中心, reviewed by 济南 and the province)
    is in the 业务日志 of its certificate — filed, each review, who and which organization — for
    every screen showing the certificate; a rejected 注销 of the same certificate with its reason."""
    change = demo_application(session, "change", A.approved)
    certificate = change.items[0].certificate
    resp = login("enterprise").post("/admin/business_apply/cancel/", {
        "certificate_id": str(certificate.id), "explanation": "持证人申请注销", "files": uploads(png_files(1))},
        content_type="multipart/form-data")
    assert resp.status_code == 302, flashes(resp)
    cancel = latest_application(session)
    jinan = login("jinan")
    resp = jinan.post("/admin/review_cancel/transition/", {"id": str(cancel.id), "transition": "authority_reject",
                                                          "reason": REASON}, follow_redirects=True)
    assert "审核不通过：操作成功" in flashes(resp), flashes(resp)
    for username, endpoint in (("province", "certificate_library"), ("inst_jinan", "certificate"),
                               ("jinan", "certificate")):
        html = login(username).get(f"/admin/{endpoint}/details/?id={certificate.id}").get_data(as_text=True)
        log = business_log(html)
        assert "暂无业务记录" not in log
        assert f"变更申请#{change.id}：提交申请（姓名变更：{change.old_name} → {change.new_name}）" in log, log
        assert log.count(f"变更申请#{change.id}：审核通过") == 2
        for words in ("待提交 → 待审核(主管部门)", "待审核(主管部门) → 待审核(省厅)", "待审核(省厅) → 审核通过",
                      "济南市住房和城乡建设局", "山东省住房和城乡建设厅", f"注销申请#{cancel.id}：审核不通过",
                      "待审核(主管部门) → 审核不通过", REASON):
            assert words in log, (username, words, log)
    assert login("inst_qingdao").get(f"/admin/certificate/details/?id={certificate.id}").status_code == 404


def test_direct_institution_applications_go_straight_to_the_province(login, session):
    certificate = session.scalar(select(Certificate).where(Certificate.issuer.has(code="SZ370001"),
                                                           Certificate.status == CertificateStatus.valid))
    resp = post_cancel(login("direct_inst"), certificate)
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.status == A.pending_province and app.reviewing_authority_id is None
    resp = bulk(login("province"), "review_cancel", "wf_province_approve", app.id, follow_redirects=True)
    assert "成功 1 条" in flashes(resp)


# -- 已申请业务 and details --------------------------------------------------------------------------------------
def test_applied_list_shows_status_review_time_and_the_rejection_reason_in_red(login, session):
    rejected = demo_application(session, "change", A.rejected)
    assert rejected.applicant_org.code == "QY370101"
    html = login("enterprise").get("/admin/application/?tab=rejected").get_data(as_text=True)
    assert in_table(html, rejected.items[0].certificate.number)
    assert f'<span class="reason-red">{rejected.reject_reason}</span>' in html
    assert "审核不通过" in html and format_local(rejected.reviewed_at) in html
    for label in ("审核状态", "审核时间", "审核不通过原因"):
        assert label in html
    html = login("enterprise").get("/admin/application/?tab=pending").get_data(as_text=True)
    pending = demo_application(session, "change", A.pending_authority)
    assert in_table(html, pending.items[0].certificate.number) and "待审核(主管部门)" in html


def test_details_show_what_was_submitted_with_image_previews(login, session):
    [certificate] = fresh_certificates(session)
    client = login("enterprise")
    png = make_png(5, 5)
    resp = post_change(client, certificate, ["name"], [("签字申请表.png", png)], new_name="赵新名",
                       explanation="身份证姓名已更正")
    app = latest_application(session)
    html = client.get(resp.location).get_data(as_text=True)
    assert "change-content" in html and "姓名变更" in html
    assert certificate.person.name in html and "赵新名" in html and "身份证姓名已更正" in html
    assert certificate.number in html
    [image] = session.scalars(select(Attachment).where(Attachment.owner_type == "application",
                                                       Attachment.owner_id == app.id)).all()
    src = f"/admin/application/file/{image.id}?inline=1"
    assert f'src="{src}"' in html and 'class="img-preview"' in html
    resp = client.get(src)
    assert resp.status_code == 200 and resp.mimetype == "image/png" and resp.data == png
    assert resp.headers["Content-Disposition"].startswith("inline")
    # the reviewer sees the same image through the review list
    resp = login("jinan").get(f"/admin/review_change/file/{image.id}?inline=1")
    assert resp.status_code == 200 and resp.data == png
    assert login("enterprise2").get(src).status_code == 404


def test_person_sees_only_their_own_applications(login, session):
    mine = holder_certificate(session, "张建国")
    client = login("person")
    resp = post_cancel(client, mine)
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.applicant_org_id is None and app.reviewing_authority.code == "SD370100"
    html = client.get("/admin/application/").get_data(as_text=True)
    assert in_table(html, mine.number)
    others = session.scalars(select(CertificateApplication).where(CertificateApplication.id != app.id)).all()
    for other in others:
        assert not in_table(html, other.items[0].certificate.number)
    assert client.get(f"/admin/application/details/?id={others[0].id}").status_code == 404
    resp = post_cancel(client, holder_certificate(session, "李明"))
    assert resp.status_code == 404


def test_enterprise2_cannot_open_enterprises_application(login, session):
    app = demo_application(session, "change", A.pending_authority)
    assert app.applicant_org.code == "QY370101"
    client = login("enterprise2")
    assert client.get(f"/admin/application/details/?id={app.id}").status_code == 404
    assert login("enterprise").get(f"/admin/application/details/?id={app.id}").status_code == 200
    resp = client.post("/admin/application/images/", {"id": str(app.id), "files": uploads(png_files(1))},
                       content_type="multipart/form-data")
    assert resp.status_code == 404


# -- review: authority then province, reasons, other cities -------------------------------------------------
def test_review_tabs_and_bulk_approval_authority_then_province(login, session):
    pending = demo_application(session, "change", A.pending_authority)
    number = pending.items[0].certificate.number
    jinan = login("jinan")
    assert in_table(jinan.get("/admin/review_change/?tab=pending").get_data(as_text=True), number)
    resp = bulk(jinan, "review_change", "wf_authority_approve", pending.id, follow_redirects=True)
    assert "审核通过：成功 1 条，失败 0 条" in flashes(resp)
    session.refresh(pending)
    assert pending.status == A.pending_province
    assert not in_table(jinan.get("/admin/review_change/?tab=pending").get_data(as_text=True), number)
    assert in_table(jinan.get("/admin/review_change/?tab=reviewed").get_data(as_text=True), number)
    province = login("province")
    assert in_table(province.get("/admin/review_change/?tab=pending").get_data(as_text=True), number)
    resp = bulk(province, "review_change", "wf_province_approve", pending.id, follow_redirects=True)
    assert "成功 1 条" in flashes(resp)
    session.refresh(pending)
    assert pending.status == A.approved and pending.reviewed_at is not None
    assert pending.person.name == pending.new_name
    html = login("enterprise").get("/admin/application/?tab=approved").get_data(as_text=True)
    assert in_table(html, number) and format_local(pending.reviewed_at) in html


def test_rejection_needs_a_reason_and_the_server_refuses_an_empty_one(login, session):
    app = demo_application(session, "cancel", A.pending_authority)
    jinan = login("jinan")
    resp = bulk(jinan, "review_cancel", "wf_authority_reject", app.id)
    assert resp.status_code == 302 and "/reason/" in resp.location
    resp = jinan.post("/admin/review_cancel/reason/", {"id": str(app.id), "transition": "authority_reject",
                                                       "reason": "  "})
    assert "请填写审核不通过原因" in flashes(resp)
    resp = jinan.post("/admin/review_cancel/transition/", {"id": str(app.id), "transition": "authority_reject",
                                                           "reason": ""}, follow_redirects=True)
    assert "请填写审核不通过原因" in flashes(resp)
    session.refresh(app)
    assert app.status == A.pending_authority
    resp = jinan.post("/admin/review_cancel/reason/", {"id": str(app.id), "transition": "authority_reject",
                                                       "reason": REASON}, follow_redirects=True)
    assert "审核不通过：成功 1 条" in flashes(resp)
    session.refresh(app)
    assert app.status == A.rejected and app.reject_reason == REASON
    html = login("enterprise").get("/admin/application/?tab=rejected").get_data(as_text=True)
    assert f'<span class="reason-red">{REASON}</span>' in html


def test_province_rejection_from_the_details_page(login, session):
    app = demo_application(session, "reissue", A.pending_province)
    province = login("province")
    html = province.get(f"/admin/review_reissue/details/?id={app.id}").get_data(as_text=True)
    assert "btn-province_approve" in html and "reason-province_reject" in html
    resp = province.post("/admin/review_reissue/transition/", {"id": str(app.id), "transition": "province_reject",
                                                               "reason": REASON}, follow_redirects=True)
    assert "审核不通过：操作成功" in flashes(resp)
    session.refresh(app)
    assert app.status == A.rejected and app.items[0].certificate.status == CertificateStatus.valid


def test_another_citys_authority_cannot_approve(login, session):
    app = demo_application(session, "change", A.pending_authority)
    assert app.reviewing_authority.code == "SD370100"
    qingdao = login("qingdao")
    resp = bulk(qingdao, "review_change", "wf_authority_approve", app.id, follow_redirects=True)
    assert "失败 1 条" in flashes(resp) and "无权" in flashes(resp)
    assert qingdao.get(f"/admin/review_change/details/?id={app.id}").status_code == 404
    resp = qingdao.post("/admin/review_change/transition/", {"id": str(app.id), "transition": "authority_approve"})
    assert resp.status_code == 404
    resp = qingdao.post("/admin/review_change/reason/", {"id": str(app.id), "transition": "authority_reject",
                                                         "reason": REASON})
    assert resp.status_code == 404
    session.refresh(app)
    assert app.status == A.pending_authority


def test_an_applicant_cannot_approve_its_own_application(login, session):
    app = demo_application(session, "change", A.pending_authority)
    resp = bulk(login("enterprise"), "application", "wf_authority_approve", app.id, follow_redirects=True)
    assert "无权" in flashes(resp)
    assert login("enterprise").get("/admin/review_change/").status_code == 403
    session.refresh(app)
    assert app.status == A.pending_authority


def test_business_overview_is_the_provinces(login, session):
    html = login("province").get("/admin/business_overview/").get_data(as_text=True)
    for kind in ("变更", "补办", "注销"):
        assert kind in html
    assert login("jinan").get("/admin/business_overview/").status_code == 403


def overview(client, query: str = "") -> tuple[int, str]:
    resp = client.get(f"/admin/business_overview/{query}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    total = re.search(r"列表\s*\((\d+)\)", html)  # Flask-Admin leaves out a count of 0
    return int(total.group(1)) if total else 0, html


def cells(html: str, column: str) -> list[str]:
    return re.findall(rf'<td class="col-{column}">\s*(.*?)\s*</td>', html, re.S)


def listed(html: str, app) -> bool:
    return re.search(rf"/admin/business_overview/details/\?id={app.id}\b", html) is not None


def submitted_count(session, *where) -> int:
    return session.scalar(select(func.count()).select_from(CertificateApplication)
                          .where(CertificateApplication.status != A.draft, *where))


def test_business_overview_lists_submitted_applications_and_filters_by_kind_status_and_date(login, session):
    """003 §八.3 业务总览: 所有已发起证书业务 (drafts are the applicants' own), filtered by 业务类型,
    审核状态 and 发起业务时间 from … to … in Beijing dates (issue 17 item 7)."""
    province = login("province")
    total, html = overview(province)
    assert total == submitted_count(session) > 0
    draft = demo_application(session, "change", A.draft)
    assert not listed(html, draft)
    for label in ("业务类型", "审核状态", "发起业务时间"):
        assert label in html  # offered in 添加筛选器
    for kind in ApplicationKind:
        count, html = overview(province, f"?flt_kind={kind.value}")
        assert count == submitted_count(session, CertificateApplication.kind == kind) > 0
        assert set(cells(html, "kind")) == {kind.label}
    count, html = overview(province, "?flt_kind=reissue&flt_status=rejected")
    assert count == submitted_count(session, CertificateApplication.kind == ApplicationKind.reissue,
                                    CertificateApplication.status == A.rejected) == 1
    assert cells(html, "kind") == ["补办"] and cells(html, "status") == ["审核不通过"]

    # 2025-03-01 17:30 UTC is 2025-03-02 01:30 in Beijing: the 2nd's, not the 1st's
    app = demo_application(session, "cancel", A.pending_province)
    app.submitted_at = datetime(2025, 3, 1, 17, 30)
    session.commit()
    for query, found in (("flt_submitted_from=2025-03-02&flt_submitted_to=2025-03-02", True),
                         ("flt_submitted_from=2025-03-01&flt_submitted_to=2025-03-01", False),
                         ("flt_submitted_to=2025-03-02", True), ("flt_submitted_from=2025-03-03&flt_kind=cancel", None)):
        count, html = overview(province, f"?{query}")
        if found is None:  # every other 注销 was submitted when the demo was built
            assert count == submitted_count(session, CertificateApplication.kind == ApplicationKind.cancel) - 1
            assert not listed(html, app)
        else:
            assert listed(html, app) is found and count == (1 if found else 0), query


@pytest.mark.parametrize(("query", "message"), [
    ("flt_kind=bogus", "筛选条件「业务类型」的值「bogus」无效，已忽略"),
    ("flt_status=draft", "筛选条件「审核状态」的值「draft」无效，已忽略"),
    ("flt_submitted_from=2025-13-01", "筛选条件「发起业务时间」的值「2025-13-01」无效，已忽略"),
    ("flt_submitted_to=abc", "筛选条件「发起业务时间」的值「abc」无效，已忽略"),
])
def test_business_overview_ignores_a_bad_filter_value_in_chinese(login, session, query, message):
    province = login("province")
    resp = province.get(f"/admin/business_overview/?{query}")
    assert resp.status_code == 200
    assert message in flashes(resp), flashes(resp)
    count, _ = overview(province, f"?{query}")
    assert count == submitted_count(session)


# -- 000 §二(二).3: an employer change within 3 months needs 已核验社保缴纳条件 ---------------------------------------
def test_recent_employer_change_needs_the_social_security_box(login, session):
    certificate = holder_certificate(session, "顾铭")
    assert certificate.person.employer.code == "QY370101"  # moved to `enterprise` 40 days ago
    back = org(session, "QY370102")  # 济南同创
    resp = post_change(login("enterprise"), certificate, ["employer"], new_employer_id=str(back.id))
    assert resp.status_code == 302, flashes(resp)
    app = latest_application(session)
    assert app.recent_employer_change and app.reviewing_authority.code == "SD370100"

    jinan = login("jinan")
    html = jinan.get(f"/admin/review_change/details/?id={app.id}").get_data(as_text=True)
    assert "social-security-warning" in html and "已核验社保缴纳条件" in html
    assert 'name="data_social_security_checked"' in html
    resp = jinan.post("/admin/review_change/transition/", {"id": str(app.id), "transition": "authority_approve"},
                      follow_redirects=True)
    assert "已核验社保缴纳条件" in flashes(resp), flashes(resp)
    resp = bulk(jinan, "review_change", "wf_authority_approve", app.id, follow_redirects=True)
    assert "失败 1 条" in flashes(resp) and "已核验社保缴纳条件" in flashes(resp)
    session.refresh(app)
    assert app.status == A.pending_authority
    resp = jinan.post("/admin/review_change/transition/", {"id": str(app.id), "transition": "authority_approve",
                                                           "data_social_security_checked": "1"},
                      follow_redirects=True)
    assert "审核通过：操作成功" in flashes(resp), flashes(resp)
    session.refresh(app)
    assert app.status == A.pending_province and app.social_security_checked

    province = login("province")
    html = province.get(f"/admin/review_change/details/?id={app.id}").get_data(as_text=True)
    assert "已核验社保缴纳条件" in html
    resp = province.post("/admin/review_change/transition/", {"id": str(app.id), "transition": "province_approve",
                                                              "data_social_security_checked": "1"},
                         follow_redirects=True)
    assert "审核通过：操作成功" in flashes(resp), flashes(resp)
    session.refresh(app)
    assert app.status == A.approved and certificate.person.employer.code == "QY370102"


@pytest.mark.parametrize("endpoint, other", [("review_change", ApplicationKind.reissue),
                                             ("review_reissue", ApplicationKind.cancel),
                                             ("review_cancel", ApplicationKind.change)])
def test_a_review_list_of_one_kind_opens_and_moves_only_that_kind(login, session, endpoint, other):
    """变更管理 / 补办管理 / 注销管理: another kind's application, its id typed into the URL or the
    bulk action, is a 404 and stays where it was — as it is absent from the list."""
    app = session.scalars(select(CertificateApplication).where(
        CertificateApplication.kind == other,
        CertificateApplication.status == ApplicationStatus.pending_authority)).first()
    jinan = login("jinan")
    assert jinan.get(f"/admin/review_{other.value}/details/?id={app.id}").status_code == 200  # its own list's
    assert jinan.get(f"/admin/{endpoint}/details/?id={app.id}").status_code == 404
    bulk(jinan, endpoint, "wf_authority_approve", app.id, follow_redirects=True)
    session.expire_all()
    assert session.get(CertificateApplication, app.id).status == ApplicationStatus.pending_authority
