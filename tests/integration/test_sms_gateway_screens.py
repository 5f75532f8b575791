"""Sign-in, 手机号绑定 and 更换绑定手机 with ``SMS_SENDER=tencent`` (SPEC §9), through the real forms.

The gateway is a loopback server answering as Tencent Cloud SMS does (tests/tencent_sms.py): the
code reaches it and never the page, even with ``SMS_SHOW_CODE`` on; a gateway that refuses, fails
or says nothing leaves the user on the page with 「短信发送失败，请稍后重试」 — no 500, no code
shown, no code stored.
"""

from __future__ import annotations

import logging
import os
import re
import time

import pytest
from sqlalchemy import func, select

from models import SmsCode
from tests.factories import user
from tests.tencent_sms import FakeTencentSms, Reply, gateway_config

DEMO_PASSWORD = "Demo@2026"
FAILED = "短信发送失败，请稍后重试"
TIMEOUT = 0.5  # SMS_TIMEOUT_SECONDS here; one retry


def text(resp) -> str:
    return resp.get_data(as_text=True)


def password_step(browser, username="jinan"):
    browser.token = None
    return browser.post("/login", {"username": username, "password": DEMO_PASSWORD}, token_from="/login")


def sms_step(browser, code):
    return browser.post("/login/sms", {"code": code}, token_from="/login/sms")


def codes_of(session, who) -> int:
    return session.scalar(select(func.count()).select_from(SmsCode).where(SmsCode.user_id == who.id))


@pytest.fixture
def gateway(app, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = FakeTencentSms().start()
    # SMS_SHOW_CODE stays on (the demo default): with a real gateway it must not matter.
    app.config.update(gateway_config(server, SMS_SHOW_CODE=True, SMS_TIMEOUT_SECONDS=TIMEOUT, SMS_RETRIES=1))
    yield server
    server.stop()


def sign_in(browser, gateway, username="jinan"):
    assert password_step(browser, username).status_code == 302
    resp = sms_step(browser, gateway.received[-1].code)
    assert resp.status_code == 302, text(resp)[:2000]
    browser.token = None
    browser.csrf_token("/admin/")
    return browser


# --- sign-in ------------------------------------------------------------------------------


def test_the_code_goes_to_the_gateway_and_signs_in(app, browser, session, gateway):
    jinan = user(session, "jinan")
    resp = password_step(browser)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/sms")
    (received,) = gateway.received
    assert received.signature_ok, received.problem
    assert received.body["PhoneNumberSet"] == [f"+86{jinan.phone}"]
    code, minutes = received.body["TemplateParamSet"]
    assert re.fullmatch(r"\d{6}", code) and minutes == str(app.config["SMS_CODE_TTL_MINUTES"])
    assert codes_of(session, jinan) == 1
    assert not os.path.exists(app.config["SMS_OUTBOX_PATH"])  # the development outbox is not used

    resp = sms_step(browser, code)
    assert resp.status_code == 302 and not resp.headers["Location"].endswith("/login")
    assert browser.get("/admin/").status_code == 200


def test_the_sign_in_page_never_shows_the_code_with_a_gateway(browser, gateway):
    """SMS_SHOW_CODE is a demo convenience: with a real gateway the code is on the phone only —
    not on the page and not in the session cookie (signed, not encrypted)."""
    password_step(browser)
    code = gateway.received[-1].code
    page = text(browser.get("/login/sms"))
    assert "验证码已发送至" in page
    assert "sms-code-hint" not in page and code not in page
    with browser.client.session_transaction() as cookie:
        assert code not in repr(dict(cookie))


REFUSALS = [
    Reply("error", "FailedOperation.SignatureIncorrectOrUnapproved", "signature is incorrect or unapproved"),
    Reply("status", "LimitExceeded.PhoneNumberDailyLimit", "phone number daily limit"),
    Reply("http", status=500, body=b"<html>500 Internal Server Error</html>"),
    Reply("sleep", seconds=5),
]


@pytest.mark.parametrize("reply", REFUSALS, ids=["signature", "daily-limit", "http-500", "timeout"])
def test_a_failing_gateway_keeps_the_user_on_the_password_page(browser, session, gateway, caplog, reply):
    jinan = user(session, "jinan")
    before = codes_of(session, jinan)
    gateway.always = reply
    start = time.monotonic()
    resp = password_step(browser)
    elapsed = time.monotonic() - start
    page = text(resp)
    assert resp.status_code == 200 and FAILED in page
    assert elapsed < 2 * TIMEOUT + 2.0, elapsed  # a worker is held a few seconds at most
    assert 1 <= len(gateway.received) <= 2
    code = gateway.received[-1].code
    assert code not in page and "sms-code-hint" not in page
    assert codes_of(session, jinan) == before  # nothing of the code stored
    (failed,) = [r for r in caplog.records if r.name == "workflows.sms" and r.levelno == logging.ERROR]
    assert "not sent to" in failed.getMessage() and code not in caplog.text and jinan.phone not in caplog.text
    assert browser.get("/login/sms").headers["Location"].endswith("/login")  # no half-finished sign-in

    # The gateway is back: no resend throttle was started, the user goes on at once.
    gateway.always = None
    resp = password_step(browser)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/sms")


# --- 手机号绑定 (registration) and 更换绑定手机 -----------------------------------------


def test_a_registration_code_goes_to_the_gateway_and_not_to_the_page(browser, gateway):
    browser.csrf_token("/register/enterprise")
    ask = {"headers": {"Accept": "application/json"}}
    resp = browser.post("/register/sms", {"phone": "155 0000 0011"}, **ask)
    body = resp.get_json()
    assert resp.status_code == 200 and body["ok"] and body["hint"] is None
    (received,) = gateway.received
    assert received.body["PhoneNumberSet"] == ["+8615500000011"] and received.code not in text(resp)

    gateway.always = Reply("error", "LimitExceeded.PhoneNumberDailyLimit", "phone number daily limit")
    resp = browser.post("/register/sms", {"phone": "15500000012"}, **ask)
    assert resp.status_code == 502 and resp.get_json()["message"] == FAILED and resp.get_json()["hint"] is None


def test_a_phone_change_code_goes_to_the_new_number_only(browser, session, gateway):
    sign_in(browser, gateway, "jinan")
    resp = browser.post("/admin/profile/phone/", {"phone": "13912340000"}, follow_redirects=True)
    page = text(resp)
    assert "验证码已发送至 139****0000" in page
    received = gateway.received[-1]
    assert received.body["PhoneNumberSet"] == ["+8613912340000"]
    assert "sms-code-hint" not in page and received.code not in page
    resp = browser.post("/admin/profile/phone/confirm/", {"code": received.code}, follow_redirects=True)
    assert "绑定手机已更换为 139****0000" in text(resp)
    assert user(session, "jinan").phone == "13912340000"
