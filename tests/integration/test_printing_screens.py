"""打印, 证书格式设置 and 业务打印 through the real sign-in, CSRF on (SPEC §6; 003 §六.2, §六.3).

Opening the print page changes nothing; its 打印 button (POST) marks the certificates 已打印 and
reopens the page to print; forged and foreign ids never print; the format decides the page.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import (
    ApplicationKind,
    ApplicationStatus,
    Certificate,
    CertificateApplication,
    CertificateStatus,
    PrintFormat,
    PrintStatus,
    TransitionLog,
    User,
)
from workflows.printing import default_layout

VIEW = "/admin/certificate"
BUSINESS = "/admin/business_print"
FORMAT = "/admin/print_format/"
P = PrintStatus


def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def user_of(session, username) -> User:
    return session.scalar(select(User).where(User.username == username))


def certs(session, username="inst_jinan", status=CertificateStatus.valid) -> list[Certificate]:
    org = user_of(session, username).organization_id
    return list(session.scalars(select(Certificate).where(Certificate.issuer_id == org, Certificate.status == status)
                                .order_by(Certificate.id)))


def print_state(session, cert) -> P:
    session.expire(cert)
    return cert.print_status


def print_logs(session) -> int:
    return session.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.object_type == "certificate", TransitionLog.transition == "print"))


def sheets(html: str) -> list[str]:
    return re.findall(r'class="sheet"[^>]*data-number="(\d{15})"', html)


def format_form(**over) -> dict:
    data = {"paper_width_mm": "297", "paper_height_mm": "210", "font_size_pt": "12", "qr_size_mm": "25"}
    for key, (x, y) in default_layout().positions.items():
        data.update({f"on_{key}": "1", f"x_{key}": str(x), f"y_{key}": str(y)})
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


# -- the print page ------------------------------------------------------------------------------------
def test_the_print_action_opens_the_print_page_and_printing_marks_printed(login, session):
    a, b = certs(session)[:2]
    client = login("inst_jinan")
    resp = client.post(f"{VIEW}/action/", {"action": "print", "rowid": [str(a.id), str(b.id)]})
    assert resp.status_code == 302 and "/admin/certificate/print/" in resp.headers["Location"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert sheets(page) == [a.number, b.number]
    assert page.count("<svg") >= 2 and "@page { size: 297mm 210mm; margin: 0; }" in page
    assert a.person.name in page and a.person.id_number in page and "window.print()" not in page
    assert print_state(session, a) == print_state(session, b) == P.unprinted  # opening changes nothing

    resp = client.post(f"{VIEW}/print/", {"id": [str(a.id), str(b.id)]})
    assert resp.status_code == 302 and "autoprint=1" in resp.headers["Location"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "打印：成功 2 条，失败 0 条" in page and "window.print()" in page
    assert print_state(session, a) == print_state(session, b) == P.printed
    assert a.printed_by_id == user_of(session, "inst_jinan").id
    details = client.get(f"{VIEW}/details/?id={a.id}").get_data(as_text=True)
    assert "已打印（" in details and "未打印 → 已打印" in details  # 业务日志


def test_the_qr_code_opens_the_verification_page(login, session, app):
    cert = certs(session)[0]
    page = login("inst_jinan").get(f"{VIEW}/print/?id={cert.id}").get_data(as_text=True)
    assert re.search(r"<svg[^>]*>.*?</svg>", page, re.S)
    from workflows.verification import number_from_token, token_for

    token = token_for(cert.number, app.config["SECRET_KEY"])
    assert number_from_token(token, app.config["SECRET_KEY"]) == cert.number
    public = app.test_client().get(f"/verify/t/{token}").get_data(as_text=True)
    assert cert.number in public and "有效" in public


def test_forged_and_foreign_ids_never_print(login, session):
    own = certs(session)[0]
    foreign = certs(session, "inst_qingdao")[0]
    client = login("inst_jinan")
    assert client.get(f"{VIEW}/print/?id={foreign.id}").status_code == 404
    assert client.get(f"{VIEW}/print/?id=abc").status_code == 404
    assert client.get(f"{VIEW}/print/").status_code == 404
    page = client.get(f"{VIEW}/print/?id={own.id}&id={foreign.id}").get_data(as_text=True)
    assert sheets(page) == [own.number] and foreign.number not in page
    before = print_logs(session)
    resp = client.post(f"{VIEW}/print/", {"id": [str(own.id), str(foreign.id), "999999"]}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "成功 1 条，失败 2 条" in page and "记录不存在" in page
    assert print_state(session, own) == P.printed and print_state(session, foreign) == P.unprinted
    assert print_logs(session) == before + 1


def test_a_voided_certificate_is_left_out_of_the_print(login, session):
    cert = certs(session)[0]
    login("province").post("/admin/certificate_library/transition/",
                           {"id": cert.id, "transition": "void", "reason": "编号错误"})
    assert certs(session, status=CertificateStatus.voided)
    client = login("inst_jinan")
    page = client.get(f"{VIEW}/print/?id={cert.id}").get_data(as_text=True)
    assert sheets(page) == [] and 'id="print-refused"' in page and "已作废" in page
    assert 'id="print-button"' not in page
    resp = client.post(f"{VIEW}/print/", {"id": [str(cert.id)]}, follow_redirects=True)
    assert "不能打印" in flashes(resp) and print_state(session, cert) == P.unprinted


@pytest.mark.parametrize("who", ("jinan", "jinan_reviewer"))
def test_authorities_see_certificates_but_never_print(login, session, who):
    cert = certs(session)[0]
    client = login(who)
    assert client.get(f"{VIEW}/print/?id={cert.id}").status_code == 403
    assert client.post(f"{VIEW}/print/", {"id": [str(cert.id)]}).status_code == 403
    resp = client.post(f"{VIEW}/action/", {"action": "print", "rowid": [str(cert.id)]}, follow_redirects=True)
    assert "无权执行该操作" in flashes(resp)
    for action in ("wf_mark_printed", "wf_mark_unprinted"):
        resp = client.post(f"{VIEW}/action/", {"action": action, "rowid": [str(cert.id)]}, follow_redirects=True)
        assert "无权执行该操作" in flashes(resp)
    assert client.get(f"{BUSINESS}/").status_code == 403 and client.get(FORMAT).status_code == 403
    assert print_state(session, cert) == P.unprinted


@pytest.mark.parametrize("who", ("province", "enterprise", "person"))
def test_other_accounts_have_no_printing(login, who):
    client = login(who)
    for url in (f"{BUSINESS}/", FORMAT, f"{BUSINESS}/print/?id=1"):
        assert client.get(url).status_code == 403


def test_too_many_certificates_at_once_are_refused(login, session):
    ids = [str(c.id) for c in certs(session)][:1] * 201
    resp = login("inst_jinan").get(f"{VIEW}/print/?" + "&".join(f"id={i}" for i in ids), follow_redirects=True)
    assert "一次最多打印 200 张证书" in flashes(resp)


def test_printing_without_the_permission_is_refused(login, session):
    from models.user import Permission

    operator = user_of(session, "inst_jinan")
    operator.permission_rows = [r for r in operator.permission_rows if r.code != Permission.certificate_print]
    session.commit()
    client = login("inst_jinan")
    cert = certs(session)[0]
    assert client.get(f"{VIEW}/print/?id={cert.id}").status_code == 403
    assert client.get(FORMAT).status_code == 403 and client.get(f"{BUSINESS}/").status_code == 403


# -- marking by hand ------------------------------------------------------------------------------------
def test_marks_from_the_list_and_the_details_page(login, session):
    a, b = certs(session)[:2]
    client = login("inst_jinan")
    resp = client.post(f"{VIEW}/action/", {"action": "wf_mark_printed", "rowid": [str(a.id), str(b.id)]},
                       follow_redirects=True)
    assert "标记已打印：成功 2 条，失败 0 条" in flashes(resp)
    assert print_state(session, a) == print_state(session, b) == P.printed
    resp = client.post(f"{VIEW}/transition/", {"id": a.id, "transition": "mark_unprinted", "version": a.version},
                       follow_redirects=True)
    assert "标记未打印：操作成功" in flashes(resp) and print_state(session, a) == P.unprinted
    resp = client.post(f"{VIEW}/transition/", {"id": a.id, "transition": "print"})
    assert resp.status_code == 404  # printing is the print page's, never a bare transition


# -- 业务打印 -------------------------------------------------------------------------------------------------
def approved_business(session, username="inst_jinan") -> list[Certificate]:
    """The demo's certificates that 业务打印 lists for ``username``: renamed, or reissued new ones."""
    org = user_of(session, username).organization_id
    out = []
    for app in session.scalars(select(CertificateApplication).where(
            CertificateApplication.status == ApplicationStatus.approved)):
        for item in app.items:
            cert = item.new_certificate if app.kind == ApplicationKind.reissue else item.certificate
            if app.kind == ApplicationKind.change and "name" not in (app.change_fields or ""):
                continue
            if cert is not None and cert.issuer_id == org and cert.status == CertificateStatus.valid:
                out.append(cert)
    return out


def test_business_print_lists_approved_renames_and_reissues_to_print(login, session):
    waiting = approved_business(session)
    assert {"补办", "变更"} <= {"补办" if c.replaces_id else "变更" for c in waiting}, "the demo shows both"
    client = login("inst_jinan")
    page = client.get(f"{BUSINESS}/").get_data(as_text=True)
    for cert in waiting:
        assert cert.number in page
    reissued = next(c for c in waiting if c.replaces_id)
    assert f"遗失补办，原证书编号 {reissued.replaces.number}" in page and "变更为" in page
    others = [c for c in certs(session) if c not in waiting]
    assert not any(f">{c.number}<" in re.sub(r"\s+", "", page) for c in others[:5])
    assert "业务打印" in page and 'data-tab="unprinted"' in page

    resp = client.post(f"{BUSINESS}/print/", {"id": [str(c.id) for c in waiting]}, follow_redirects=True)
    assert f"成功 {len(waiting)} 条" in resp.get_data(as_text=True)
    listed = client.get(f"{BUSINESS}/").get_data(as_text=True)
    assert not any(c.number in listed for c in waiting)
    printed = client.get(f"{BUSINESS}/?tab=printed").get_data(as_text=True)
    assert all(c.number in printed for c in waiting)


def test_another_institution_sees_none_of_it(login, session):
    page = login("inst_qingdao").get(f"{BUSINESS}/").get_data(as_text=True)
    assert not any(c.number in page for c in approved_business(session))


# -- 证书格式设置 ----------------------------------------------------------------------------------------------
def test_a_saved_format_decides_the_print_page(login, session):
    client = login("inst_jinan")
    page = client.get(FORMAT).get_data(as_text=True)
    assert "当前为默认格式" in page and 'id="print-preview"' in page
    resp = client.post(FORMAT, format_form(paper_width_mm="240", paper_height_mm="170", font_size_pt="10",
                                           x_qr_code="200", y_qr_code="130", on_gender=None), follow_redirects=True)
    assert "证书格式已保存" in flashes(resp)
    cert = certs(session)[0]
    page = client.get(f"{VIEW}/print/?id={cert.id}").get_data(as_text=True)
    assert "@page { size: 240mm 170mm; margin: 0; }" in page and "font-size: 10pt" in page
    assert 'data-field="gender"' not in page and 'data-field="name" style="left: 45mm; top: 52mm;"' in page
    assert 'data-field="qr_code" style="left: 200mm; top: 130mm; width: 25mm; height: 25mm;"' in page
    other = login("inst_qingdao").get(f"{VIEW}/print/?id={certs(session, 'inst_qingdao')[0].id}")
    assert "size: 297mm 210mm" in other.get_data(as_text=True)  # a format is one institution's


def test_a_bad_format_is_refused_whole_and_the_form_keeps_what_was_typed(login, session):
    client = login("inst_jinan")
    resp = client.post(FORMAT, format_form(font_size_pt="abc", x_name="999"), follow_redirects=True)
    message = flashes(resp)
    assert "证书格式未保存" in message and "字号(磅)应为整数" in message and "「姓名」横向位置(毫米)应在 0–297 之间" in message
    assert 'value="999"' in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(PrintFormat)) == 0
