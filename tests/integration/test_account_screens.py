"""企业注册 / 个人注册 pages and the city authority's 注册审核, through HTTP with CSRF on
(SPEC §5.3, §9; 000 §一, 001, 002 §3.1.1).

A visitor registers on the public pages (获取验证码 with and without JavaScript), is refused at
sign-in until the authority of the chosen city approves on its 注册审核 list, then signs in.
"""

from __future__ import annotations

import io
import itertools
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from models import AccountRequest, AccountStatus, Attachment, OrgStatus, SmsCode, User
from tests.conftest import DEMO_PASSWORD
from tests.factories import png_files
from tests.samples import make_pdf
from workflows.privacy import mask_id_number, mask_phone
from workflows.validators import make_credit_code, make_id_number

PASSWORD = "Zc2026abc"
REASON = "营业执照图片不清晰，请重新上传"
_n = itertools.count(1)

ENTERPRISE_REQUIRED = ["企业名称", "统一社会信用代码", "所属地市", "通讯地址", "联系人", "联系电话", "营业执照", "姓名",
                       "登录用户名", "密码", "再次输入密码", "手机号码", "验证码"]
ENTERPRISE_OPTIONAL = ["邮政编码", "资质证书编号", "资质证书"]
INDIVIDUAL_REQUIRED = ["姓名", "身份证号", "所在地市", "登录用户名", "密码", "再次输入密码", "手机号码", "验证码"]


# -- helpers -------------------------------------------------------------------------------------------
def text(resp) -> str:
    return resp.get_data(as_text=True)


def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', text(resp), re.S))


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'id="{field}-error">(.*?)</div>', html)
    return match.group(1) if match else None


def hint(html: str) -> str | None:
    match = re.search(r'id="sms-code-hint">演示环境验证码：<strong>(\d{6})</strong>', html)
    return match.group(1) if match else None


def uploads(files) -> list:
    return [(io.BytesIO(data), name) for name, data in files]


def starred(html: str, label: str) -> bool:
    return re.search(rf'>{label} <span class="text-danger required-star"', html) is not None


def enterprise_form(**over) -> dict:
    n = next(_n)
    values = {
        "name": f"济南页面注册建设{n}有限公司", "credit_code": make_credit_code(f"91370100MA9X{n:05d}"),
        "region_code": "370100", "address": "济南市市中区纬二路2号", "postcode": "250001", "contact": "李经理",
        "contact_phone": "0531-87654321", "qualification_no": "D237018888", "admin_name": "李管理员",
        "username": f"page_ent_{n}", "password": PASSWORD, "password2": PASSWORD, "phone": f"1570000{n:04d}",
    }
    values.update(over)
    return values


def individual_form(**over) -> dict:
    n = next(_n)
    values = {
        "name": f"页面个人{n}", "id_number": make_id_number("370103", date(1992, 3, 1 + n % 28), (2 * n) % 998, "女"),
        "region_code": "370100", "username": f"page_person_{n}", "password": PASSWORD, "password2": PASSWORD,
        "phone": f"1560000{n:04d}",
    }
    values.update(over)
    return values


def send_code(browser, url: str, values: dict) -> str:
    """获取验证码 without JavaScript: the whole form is posted, the page comes back filled in."""
    browser.token = None
    resp = browser.post(url, {**values, "send_sms": "1"}, token_from=url)
    assert resp.status_code == 200, text(resp)[:2000]
    html = text(resp)
    code = hint(html)
    assert code is not None and code == browser.sms_code(), flashes(resp)
    assert "验证码已发送至" in flashes(resp)
    return code


def register_enterprise(browser, values=None, licences=None, qualifications=()):
    values = values or enterprise_form()
    code = send_code(browser, "/register/enterprise", values)
    data = {**values, "sms_code": code, "licence": uploads(png_files(2, stem="营业执照") if licences is None else
                                                          licences), "qualification": uploads(qualifications)}
    return browser.post("/register/enterprise", data, content_type="multipart/form-data"), values


def register_individual(browser, values=None):
    values = values or individual_form()
    code = send_code(browser, "/register/individual", values)
    return browser.post("/register/individual", {**values, "sms_code": code}), values


def request_of(session, username: str) -> AccountRequest:
    return session.scalar(select(AccountRequest).join(User, User.id == AccountRequest.user_id)
                          .where(User.username == username))


def registered_enterprise(browser, session, **over) -> AccountRequest:
    resp, values = register_enterprise(browser, enterprise_form(**over))
    assert resp.status_code == 302, flashes(resp)
    return request_of(session, values["username"])


def password_step(browser, username, password=PASSWORD):
    browser.token = None
    return browser.post("/login", {"username": username, "password": password}, token_from="/login")


def bulk(client, action, *ids, **kw):
    return client.post("/admin/account_review/action/", {"action": action, "rowid": [str(i) for i in ids]}, **kw)


def in_table(html: str, value: str) -> bool:
    return f">{value}<" in re.sub(r"\s+", "", html)


def registrations(session) -> int:
    return session.scalar(select(func.count()).select_from(AccountRequest))


# -- the pages ---------------------------------------------------------------------------------------------
def test_the_login_page_links_to_both_registrations(browser):
    html = text(browser.get("/login"))
    assert 'href="/register/enterprise"' in html and ">企业注册</a>" in html
    assert 'href="/register/individual"' in html and ">个人注册</a>" in html


def test_the_enterprise_page_shows_the_four_steps_with_red_stars(browser):
    resp = browser.get("/register/enterprise")
    html = text(resp)
    assert resp.status_code == 200
    steps = [re.sub(r"<[^>]+>", "", s).split() for s in re.findall(r"<legend[^>]*>(.*?)</legend>", html)]
    assert steps == [["1", "基本信息"], ["2", "证明材料上传"], ["3", "设置企业管理员"], ["4", "手机号绑定"]]
    assert "红色星号标记的为必填项" in html and "密码至少8位，需包含字母和数字" in html
    assert all(starred(html, label) for label in ENTERPRISE_REQUIRED)
    assert not any(starred(html, label) for label in ENTERPRISE_OPTIONAL)
    assert '<option value="370100">济南市</option>' in html and '<option value="370200">青岛市</option>' in html
    assert 'value="370000"' not in html  # the province takes no registrations
    assert re.search(r'<input type="file"[^>]*name="licence"[^>]*multiple', html)
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    # Enter submits the registration, not 获取验证码; the script is inline, nothing from elsewhere
    first_submit = re.search(r'<button type="submit"[^>]*>', html).group(0)
    assert "send_sms" not in first_submit
    assert 'name="send_sms"' in html and ">获取验证码</button>" in html
    assert not re.search(r"<script[^>]+src=", html)


def test_the_individual_page_has_its_fields_with_red_stars(browser):
    html = text(browser.get("/register/individual"))
    assert all(starred(html, label) for label in INDIVIDUAL_REQUIRED)
    assert 'name="id_number"' in html and 'type="file"' not in html and "所在地市" in html


# -- 获取验证码 -----------------------------------------------------------------------------------------------
def test_the_sms_endpoint_answers_json_and_sends_once_a_minute(browser, session):
    browser.csrf_token("/register/enterprise")
    ask = {"headers": {"Accept": "application/json"}}
    resp = browser.post("/register/sms", {"phone": "155 0000 0001"}, **ask)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] and body["hint"] == browser.sms_code() and body["wait"] == 60
    assert body["message"] == "验证码已发送至 155****0001，5分钟内有效"
    resp = browser.post("/register/sms", {"phone": "15500000001"}, **ask)
    assert resp.status_code == 429
    body = resp.get_json()
    assert not body["ok"] and "验证码发送过于频繁" in body["message"] and body["hint"] == browser.sms_code()
    assert session.scalar(select(func.count()).select_from(SmsCode).where(SmsCode.phone == "15500000001")) == 1
    for phone, message in (("12345", "手机号格式不正确"), ("", "请填写手机号码")):
        resp = browser.post("/register/sms", {"phone": phone}, **ask)
        assert resp.status_code == 400 and resp.get_json() == {
            "ok": False, "message": message, "hint": None, "wait": 0, "field": "phone"}


def test_one_client_may_not_send_codes_to_a_list_of_phones(app, browser, session):
    app.config["REGISTER_SMS_PER_CLIENT"] = 2
    browser.csrf_token("/register/enterprise")
    ask = {"headers": {"Accept": "application/json"}}
    assert [browser.post("/register/sms", {"phone": f"1550000010{i}"}, **ask).status_code for i in range(2)] == [
        200, 200]
    resp = browser.post("/register/sms", {"phone": "15500000109"}, **ask)
    assert resp.status_code == 429 and resp.get_json()["message"] == "验证码发送次数过多，请稍后再试"
    assert session.scalar(select(func.count()).select_from(SmsCode).where(SmsCode.phone == "15500000109")) == 0


def test_the_sms_endpoint_without_javascript_goes_back_to_the_page(browser):
    browser.csrf_token("/register/individual")
    resp = browser.post("/register/sms", {"phone": "15500000002", "form": "individual"})
    assert resp.status_code == 302 and resp.location.endswith("/register/individual")
    html = text(browser.get("/register/individual"))
    assert "验证码已发送至 155****0002" in html
    assert 'value="15500000002"' in html and hint(html) == browser.sms_code()


def test_the_code_is_not_shown_when_sms_show_code_is_off(app, browser):
    app.config["SMS_SHOW_CODE"] = False
    values = individual_form()
    browser.csrf_token("/register/individual")
    resp = browser.post("/register/individual", {**values, "send_sms": "1"})
    assert "验证码已发送至" in flashes(resp) and hint(text(resp)) is None
    assert browser.post("/register/sms", {"phone": "15500000003"},
                        headers={"Accept": "application/json"}).get_json()["hint"] is None


def test_a_bad_phone_on_the_send_button_is_shown_next_to_the_phone(browser):
    browser.csrf_token("/register/enterprise")
    resp = browser.post("/register/enterprise", {**enterprise_form(phone="1234"), "send_sms": "1"})
    assert resp.status_code == 200
    assert field_error(text(resp), "phone") == "手机号格式不正确"


# -- 企业注册 end to end -----------------------------------------------------------------------------------------
def test_an_enterprise_registers_waits_for_jinan_and_then_signs_in(browser, login, session):
    resp, values = register_enterprise(browser, qualifications=png_files(1, stem="资质证书"))
    assert resp.status_code == 302 and resp.location.endswith("/register/done"), flashes(resp)
    done = text(browser.get("/register/done"))
    assert "注册成功，须主管部门审核后方可登录" in done and values["username"] in done
    assert "济南市住房和城乡建设局" in done

    request = request_of(session, values["username"])
    org = request.organization
    assert (request.status, org.status, org.name, org.credit_code, org.parent.code) == (
        AccountStatus.pending, OrgStatus.pending, values["name"], values["credit_code"], "SD370100")
    assert session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.owner_type == "organization", Attachment.owner_id == org.id)) == 3

    resp = password_step(browser, values["username"])
    assert resp.status_code == 200 and "账号待主管部门审核" in flashes(resp)

    jinan = login("jinan")
    listing = text(jinan.get("/admin/account_review/?tab=pending"))
    for cell in ("企业注册", values["name"], values["credit_code"], "济南市", values["username"],
                 mask_phone(values["phone"]), "待审核"):  # the list masks the phone (issue 17)
        assert in_table(listing, cell), cell
    assert "wf_approve" in listing and "wf_reject" in listing
    resp = bulk(jinan, "wf_approve", request.id, follow_redirects=True)
    assert "审核通过：成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    session.refresh(org)
    assert org.status == OrgStatus.active
    assert in_table(text(jinan.get("/admin/account_review/?tab=reviewed")), values["name"])
    assert not in_table(text(jinan.get("/admin/account_review/?tab=pending")), values["name"])

    resp = password_step(browser, values["username"])
    assert resp.status_code == 302 and resp.location.endswith("/login/sms")
    browser.post("/login/sms", {"code": browser.sms_code()}, token_from="/login/sms")
    assert browser.get("/admin/").status_code == 200


def test_a_wrong_form_comes_back_with_every_message_and_the_typed_values(browser, session):
    good = make_credit_code("91370100MA9X77777")
    values = enterprise_form(credit_code=good[:-1] + ("1" if good[-1] != "1" else "2"), password2="Other2026x",
                             postcode="12", username="jinan")
    before = registrations(session)
    browser.csrf_token("/register/enterprise")
    resp = browser.post("/register/enterprise", {**values, "sms_code": "123456",
                                                 "licence": uploads([("营业执照.png", make_pdf())])},
                        content_type="multipart/form-data")
    assert resp.status_code == 200
    html = text(resp)
    assert "注册信息有误" in flashes(resp)
    expected = {"credit_code": "统一社会信用代码校验位错误", "postcode": "邮政编码应为6位数字",
                "username": "该登录用户名已被使用，请换一个", "password2": "两次输入的密码不一致",
                "licence": "营业执照：文件「营业执照.png」不是有效的图片（仅支持 jpg、png）"}
    for field, message in expected.items():
        assert field_error(html, field) == message, field
        assert re.search(rf'class="form-control[^"]* is-invalid" id="{field}"', html) or field == "licence"
    for field in ("name", "address", "contact", "contact_phone", "admin_name", "phone"):
        assert f'value="{values[field]}"' in html, field
    assert '<option value="370100" selected>' in html
    assert PASSWORD not in html and "Other2026x" not in html  # passwords are never sent back
    assert 'id="reselect-files"' in html  # the chosen files are gone: say so
    assert registrations(session) == before


def test_a_missing_form_is_refused_field_by_field(browser, session):
    before = registrations(session)
    browser.csrf_token("/register/enterprise")
    resp = browser.post("/register/enterprise", {}, content_type="multipart/form-data")
    html = text(resp)
    assert resp.status_code == 200
    for field, message in {"name": "请填写企业名称", "credit_code": "请填写统一社会信用代码",
                           "region_code": "请选择所属地市", "licence": "请上传营业执照", "phone": "请填写手机号码",
                           "admin_name": "请填写管理员姓名", "username": "请填写登录用户名"}.items():
        assert field_error(html, field) == message, field
    assert registrations(session) == before


def test_a_wrong_code_is_refused_and_counts_as_an_attempt(browser, session):
    values = enterprise_form()
    code = send_code(browser, "/register/enterprise", values)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    resp = browser.post("/register/enterprise", {**values, "sms_code": wrong, "licence": uploads(png_files(1))},
                        content_type="multipart/form-data")
    assert field_error(text(resp), "sms_code") == "验证码错误"
    assert f'value="{wrong}"' in text(resp)
    row = session.scalar(select(SmsCode).where(SmsCode.phone == values["phone"]))
    assert row.attempts == 1 and not row.used
    resp = browser.post("/register/enterprise", {**values, "sms_code": code, "licence": uploads(png_files(1))},
                        content_type="multipart/form-data")
    assert resp.status_code == 302, flashes(resp)


def test_an_enterprise_registered_twice_is_refused(browser, session):
    first = registered_enterprise(browser, session)
    resp, _ = register_enterprise(browser, enterprise_form(credit_code=first.organization.credit_code))
    assert resp.status_code == 200
    assert field_error(text(resp), "credit_code") == "该统一社会信用代码已经注册，禁止重复注册，请使用已注册的用户名登录"


def test_an_oversized_upload_is_the_413_page(app, browser, session):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    browser.csrf_token("/register/enterprise")
    resp = browser.post("/register/enterprise", {**enterprise_form(), "sms_code": "123456",
                                                 "licence": uploads(png_files(1, size=100 * 1024))},
                        content_type="multipart/form-data")
    assert resp.status_code == 413 and "上传的文件过大" in text(resp)


@pytest.mark.parametrize("url", ["/register/enterprise", "/register/individual", "/register/sms"])
def test_a_post_without_the_csrf_token_is_refused(browser, session, url):
    before = (registrations(session), session.scalar(select(func.count()).select_from(SmsCode)))
    values = enterprise_form() if "enterprise" in url else individual_form()
    resp = browser.post(url, {**values, "send_sms": "1", "sms_code": "123456"}, csrf=False)
    assert resp.status_code == 400
    assert (registrations(session), session.scalar(select(func.count()).select_from(SmsCode))) == before


# -- 个人注册 and 审核不通过 --------------------------------------------------------------------------------------
def test_an_individual_registers_and_jinan_rejects_with_a_reason(browser, login, session):
    resp, values = register_individual(browser)
    assert resp.status_code == 302, flashes(resp)
    assert "注册成功，须主管部门审核后方可登录" in text(browser.get("/register/done"))
    request = request_of(session, values["username"])
    assert request.person.id_number == values["id_number"]
    assert "账号待主管部门审核" in flashes(password_step(browser, values["username"]))

    jinan = login("jinan")
    listing = text(jinan.get("/admin/account_review/?tab=pending"))
    for cell in ("个人注册", values["name"], mask_id_number(values["id_number"]), "济南市", values["username"]):
        assert in_table(listing, cell), cell
    resp = bulk(jinan, "wf_reject", request.id)
    assert resp.status_code == 302 and "/admin/account_review/reason/" in resp.location
    form = text(jinan.get(resp.location))
    assert "审核不通过原因" in form and values["name"] in form
    reason_url = "/admin/account_review/reason/"
    resp = jinan.post(reason_url, {"transition": "reject", "id": str(request.id), "reason": "  "},
                      follow_redirects=True)
    assert "请填写审核不通过原因" in flashes(resp)
    session.refresh(request)
    assert request.status == AccountStatus.pending
    resp = jinan.post(reason_url, {"transition": "reject", "id": str(request.id), "reason": REASON},
                      follow_redirects=True)
    assert "审核不通过：成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    session.refresh(request)
    assert (request.status, request.reject_reason, request.user.account_status) == (
        AccountStatus.rejected, REASON, AccountStatus.rejected)
    reviewed = text(jinan.get("/admin/account_review/?tab=reviewed"))
    assert in_table(reviewed, values["username"]) and REASON in reviewed
    # issue 17: the applicant learns why, and how to go on (重新注册 with the same 身份证号)
    refusal = flashes(password_step(browser, values["username"]))
    assert f"账号审核未通过，原因：{REASON}" in refusal
    assert "点击「个人注册」，使用同一身份证号重新注册" in refusal


def test_the_rejected_demo_enterprise_is_told_the_reason_on_signing_in(browser):
    """The demo's 青岛鼎盛建设 was turned down by 青岛: its administrator reads the reason and the way on."""
    refusal = flashes(password_step(browser, "dingsheng", password=DEMO_PASSWORD))
    assert "账号审核未通过，原因：营业执照图片不清晰，请重新上传后再注册" in refusal
    assert "点击「企业注册」，使用同一统一社会信用代码重新注册" in refusal


def test_a_wrong_password_of_a_rejected_account_learns_nothing(browser):
    refusal = flashes(password_step(browser, "dingsheng", password="Wrong12345"))
    assert "用户名或密码错误" in refusal and "营业执照" not in refusal


def test_an_individual_id_number_registered_twice_is_refused(browser, session):
    resp, values = register_individual(browser)
    assert resp.status_code == 302
    resp, _ = register_individual(browser, individual_form(name=values["name"], id_number=values["id_number"]))
    assert resp.status_code == 200
    assert field_error(text(resp), "id_number") == "该身份证号已经注册，禁止重复注册，请使用已注册的用户名登录"


# -- the review screens ----------------------------------------------------------------------------------------
def test_the_details_page_shows_the_enterprise_and_its_licence_and_approves(browser, login, session):
    request = registered_enterprise(browser, session)
    org = request.organization
    jinan = login("jinan")
    html = text(jinan.get(f"/admin/account_review/details/?id={request.id}"))
    for value in (org.name, org.credit_code, org.address, org.contact, org.phone, org.postcode,
                  org.qualification_no, request.user.username, request.user.name, "济南市"):
        assert value in html, value
    licences = re.findall(r'id="licence-images".*?</div>', html, re.S)[0]
    urls = re.findall(r'src="([^"]+)"', licences)
    assert len(urls) == 2
    image = jinan.get(urls[0].replace("&amp;", "&"))
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline")
    assert image.data.startswith(b"\x89PNG")
    assert 'id="btn-approve"' in html and 'id="reason-reject"' in html
    resp = jinan.post("/admin/account_review/transition/", {"id": str(request.id), "transition": "reject",
                                                            "version": str(request.version)}, follow_redirects=True)
    assert "请填写审核不通过原因" in flashes(resp)
    resp = jinan.post("/admin/account_review/transition/", {"id": str(request.id), "transition": "approve",
                                                            "version": str(request.version)}, follow_redirects=True)
    assert "审核通过：操作成功" in flashes(resp), flashes(resp)
    session.refresh(org)
    assert org.status == OrgStatus.active
    html = text(jinan.get(f"/admin/account_review/details/?id={request.id}"))
    assert 'id="btn-approve"' not in html and "济南市审核管理员" in html  # the review log


def test_qingdao_neither_sees_nor_reviews_a_jinan_registration(browser, login, session):
    request = registered_enterprise(browser, session)
    licence = session.scalar(select(Attachment.id).where(Attachment.owner_type == "organization",
                                                         Attachment.owner_id == request.organization_id))
    qingdao = login("qingdao")
    for tab in ("pending", "reviewed"):
        assert not in_table(text(qingdao.get(f"/admin/account_review/?tab={tab}")), request.organization.name)
    assert qingdao.get(f"/admin/account_review/details/?id={request.id}").status_code == 404
    assert qingdao.get(f"/admin/account_review/file/{licence}?inline=1").status_code == 404
    resp = bulk(qingdao, "wf_approve", request.id, follow_redirects=True)
    assert "成功 0 条，失败 1 条" in flashes(resp)
    assert qingdao.get(f"/admin/account_review/reason/?transition=reject&id={request.id}").status_code == 404
    resp = qingdao.post("/admin/account_review/transition/", {"id": str(request.id), "transition": "approve"})
    assert resp.status_code == 404
    session.refresh(request)
    assert request.status == AccountStatus.pending and request.organization.status == OrgStatus.pending


def test_a_qingdao_registration_goes_to_qingdao(browser, login, session):
    request = registered_enterprise(browser, session, region_code="370200")
    assert request.authority.code == "SD370200"
    assert in_table(text(login("qingdao").get("/admin/account_review/?tab=pending")), request.organization.name)
    assert not in_table(text(login("jinan").get("/admin/account_review/?tab=pending")), request.organization.name)


def test_forged_ids_fail_row_by_row(browser, login, session):
    request = registered_enterprise(browser, session)
    jinan = login("jinan")
    resp = bulk(jinan, "wf_approve", request.id, 999999, "abc", follow_redirects=True)
    assert "成功 1 条，失败 2 条" in flashes(resp), flashes(resp)
    for ident in ("999999", "abc", "-1"):
        assert jinan.get(f"/admin/account_review/details/?id={ident}").status_code == 404
    assert jinan.get("/admin/account_review/reason/?transition=reject&id=999999").status_code == 404
    assert jinan.get(f"/admin/account_review/reason/?transition=nope&id={request.id}").status_code == 404


def test_the_province_reads_every_city_and_reviews_nothing(browser, login, session):
    jinan_request = registered_enterprise(browser, session)
    qingdao_request = registered_enterprise(browser, session, region_code="370200")
    province = login("province")
    html = text(province.get("/admin/account_review/?tab=pending"))
    assert in_table(html, jinan_request.organization.name) and in_table(html, qingdao_request.organization.name)
    assert "wf_approve" not in html and "wf_reject" not in html
    details = text(province.get(f"/admin/account_review/details/?id={jinan_request.id}"))
    assert jinan_request.organization.credit_code in details and 'id="workflow-actions"' not in details
    resp = bulk(province, "wf_approve", jinan_request.id, follow_redirects=True)
    assert "无权执行该操作" in flashes(resp)
    resp = province.post("/admin/account_review/transition/", {"id": str(jinan_request.id), "transition": "approve"},
                         follow_redirects=True)
    assert "无权执行「审核通过」" in flashes(resp)
    assert province.get(f"/admin/account_review/reason/?transition=reject&id={jinan_request.id}").status_code == 404
    session.refresh(jinan_request)
    assert jinan_request.status == AccountStatus.pending


@pytest.mark.parametrize("username", ["jinan_reviewer", "enterprise", "inst_jinan", "person"])
def test_who_has_no_business_on_the_review_list_is_refused(login, username):
    assert login(username).get("/admin/account_review/").status_code == 403


def test_the_review_list_is_in_the_authority_menu(login):
    html = text(login("jinan").get("/admin/"))
    assert "注册审核" in html and "/admin/account_review/" in html
    assert "/admin/account_review/" not in text(login("inst_jinan").get("/admin/"))


def test_a_bulk_action_without_the_csrf_token_is_refused(browser, login, session):
    request = registered_enterprise(browser, session)
    resp = bulk(login("jinan"), "wf_approve", request.id, csrf=False)
    assert resp.status_code == 400
    session.refresh(request)
    assert request.status == AccountStatus.pending


def test_search_finds_a_registration_by_credit_code_name_and_phone(browser, login, session):
    request = registered_enterprise(browser, session)
    org, jinan = request.organization, login("jinan")
    for term in (org.credit_code, org.name[:6], request.user.phone, request.user.username):
        assert in_table(text(jinan.get(f"/admin/account_review/?tab=pending&search={term}")), org.name), term
    assert not in_table(text(jinan.get("/admin/account_review/?tab=pending&search=不存在的企业")), org.name)
