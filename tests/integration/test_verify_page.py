"""证书查询, the public page (SPEC §10), through the Flask test client with CSRF on."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from admin_views import verify as page
from models import Certificate, CertificateStatus, RateLimitHit
from workflows import verification as rules
from workflows.engine import setting_state

CSRF_VALUE_RE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')
# Never crosses a window boundary during a test: the count cannot reset under us.
LONG_WINDOW = 10**9


def demo_certificate(session) -> Certificate:
    return session.scalars(select(Certificate).order_by(Certificate.id)).first()


def ask(browser, number, name, **kw):
    return browser.post("/verify", {"number": number, "name": name}, token_from="/verify", **kw)


def without_csrf(resp) -> str:
    return CSRF_VALUE_RE.sub(r"\1\2", resp.get_data(as_text=True))


def hits(session) -> int:
    return session.scalar(select(func.coalesce(func.sum(RateLimitHit.count), 0)))


def test_the_page_opens_signed_out(browser):
    resp = browser.get("/verify")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for words in ("证书查询", "证书编号", "姓名", 'name="csrf_token"'):
        assert words in text
    assert resp.headers["Cache-Control"] == "no-store"


def test_number_and_name_show_the_masked_card(browser, session):
    cert = demo_certificate(session)
    name, id_number = cert.person.name, cert.person.id_number
    resp = ask(browser, cert.number, name)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for words in ("证书状态", "有效", "职业(工种)", "等级", "发证机构", "发证日期", cert.number,
                  cert.occupation.name, cert.issuer.name, cert.issue_date.isoformat()):
        assert words in text, words
    assert rules.mask_name(name) in text and rules.mask_id_number(id_number) in text
    assert name not in text
    assert id_number not in text and id_number[4:14] not in text  # not the birth date either


def test_signed_in_users_see_the_same_page(login, session):
    cert = demo_certificate(session)
    browser = login("inst_jinan")
    resp = ask(browser, cert.number, cert.person.name)
    assert resp.status_code == 200 and "证书状态" in resp.get_data(as_text=True)


def test_wrong_name_and_unknown_number_look_the_same(browser, session):
    cert = demo_certificate(session)
    wrong_name = ask(browser, cert.number, "查无此人")
    unknown = ask(browser, "269999999999999", cert.person.name)
    assert wrong_name.status_code == unknown.status_code == 200
    assert page.NOT_FOUND in wrong_name.get_data(as_text=True)
    assert without_csrf(wrong_name) == without_csrf(unknown)
    assert cert.number not in without_csrf(wrong_name)  # what was typed is not echoed


def test_voided_certificate_points_at_its_reissue(browser, session):
    cert = demo_certificate(session)
    with setting_state():
        cert.status = CertificateStatus.voided
    new = Certificate(number="269999999990001", person_id=cert.person_id, occupation_id=cert.occupation_id,
                      level_id=cert.level_id, issuer_id=cert.issuer_id, authority_id=cert.authority_id,
                      issue_date=cert.issue_date, replaces_id=cert.id)
    session.add(new)
    text = ask(browser, cert.number, cert.person.name).get_data(as_text=True)
    assert "已作废" in text and "269999999990001" in text


def test_empty_form_is_refused_without_a_lookup(browser, session):
    resp = ask(browser, " ", "")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "请输入证书编号" in text and "请输入持证人姓名" in text
    assert hits(session) == 0


# --- the QR code link --------------------------------------------------------------------


def qr_path(app, number) -> str:
    with app.test_request_context():
        return urlsplit(page.verify_url(number)).path


def test_qr_link_opens_the_card_without_a_name(app, browser, session):
    cert = demo_certificate(session)
    resp = browser.get(qr_path(app, cert.number))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert cert.number in text and "证书状态" in text
    assert cert.person.name not in text and cert.person.id_number not in text
    assert resp.headers["Referrer-Policy"] == "same-origin"  # the token in the URL never leaves the site


@pytest.mark.parametrize("mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "x" + t,
                                    lambda t: "abc"])
def test_tampered_qr_link_is_404(app, browser, session, mangle):
    cert = demo_certificate(session)
    token = qr_path(app, cert.number).rsplit("/", 1)[1]
    resp = browser.get("/verify/t/" + mangle(token))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 404 and page.BAD_TOKEN in text
    assert cert.number not in text


def test_qr_link_signed_with_another_secret_is_404(app, browser, session):
    cert = demo_certificate(session)
    resp = browser.get("/verify/t/" + rules.token_for(cert.number, "not-our-secret"))
    assert resp.status_code == 404


def test_qr_code_and_public_address(app, session):
    cert = demo_certificate(session)
    app.config["VERIFY_PUBLIC_URL"] = "https://zscx.example.gov.cn/"
    with app.test_request_context():
        url = page.verify_url(cert.number)
        svg = page.qr_code(cert.number)
    assert url.startswith("https://zscx.example.gov.cn/verify/t/")
    assert rules.number_from_token(url.rsplit("/", 1)[1], app.config["SECRET_KEY"]) == cert.number
    assert str(svg).startswith("<svg") and svg == rules.qr_svg(url)


def test_a_separate_token_secret_survives_a_new_secret_key(app, browser, session):
    cert = demo_certificate(session)
    app.config["VERIFY_TOKEN_SECRET"] = "printed-codes-secret"
    path = qr_path(app, cert.number)
    app.config["SECRET_KEY"] = "rotated-secret-key"
    assert browser.get(path).status_code == 200


# --- rate limit and CSRF -----------------------------------------------------------------


def test_too_many_lookups_are_refused(app, browser, session):
    cert = demo_certificate(session)
    app.config.update(VERIFY_RATE_LIMIT=3, VERIFY_RATE_WINDOW=LONG_WINDOW)
    path = qr_path(app, cert.number)
    browser.csrf_token("/verify")
    assert [ask(browser, cert.number, cert.person.name).status_code for _ in range(2)] == [200, 200]
    assert browser.get(path).status_code == 200  # QR code lookups count too
    refused = ask(browser, cert.number, cert.person.name)
    assert refused.status_code == 429
    assert "查询过于频繁，请稍后再试" in refused.get_data(as_text=True)
    assert "证书状态" not in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert browser.get(path).status_code == 429
    assert browser.get("/verify").status_code == 200  # the empty form is not a lookup
    other = ask(browser, cert.number, cert.person.name, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200  # the limit is per client address


def test_post_without_csrf_is_refused(browser, session):
    cert = demo_certificate(session)
    for form in ({}, {"csrf_token": "forged-" + "0" * 40}):
        resp = browser.post("/verify", {"number": cert.number, "name": cert.person.name, **form}, csrf=False)
        assert resp.status_code == 400
        assert "缺少安全令牌" in resp.get_data(as_text=True)
    assert hits(session) == 0
