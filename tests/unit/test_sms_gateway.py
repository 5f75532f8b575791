"""The Tencent Cloud SMS sender (SPEC §9) against a loopback server that answers as the service does.

No mock of the SDK: the real SDK signs and sends real HTTP requests; the server checks the signature,
records the body and answers success, refusals, errors, or nothing in time.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

from tests.tencent_sms import SDK_APP_ID, SIGN_NAME, TEMPLATE_ID, FakeTencentSms, Reply, gateway_config
from workflows.sms import (
    SENDERS,
    LogSender,
    OutboxSender,
    SmsError,
    SmsMessage,
    TencentSender,
    deliver,
    e164,
    get_sender,
    register_sender,
    shows_code,
)

PHONE = "13800000001"
CODE = "428193"


@pytest.fixture
def direct(monkeypatch):
    # The SDK honours HTTP_PROXY from the environment: the loopback server is reached directly.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def gateway(direct):
    server = FakeTencentSms().start()
    yield server
    server.stop()


def message(code=CODE, minutes=5, phone=PHONE) -> SmsMessage:
    text = f"【建设行业证书管理】您的登录验证码：{code}，{minutes}分钟内有效，请勿泄露给他人。"
    return SmsMessage(phone=phone, text=text, code=code, minutes=minutes, purpose="login")


def sender_for(server, **over) -> TencentSender:
    sender = get_sender(gateway_config(server, **over))
    assert isinstance(sender, TencentSender)
    return sender


def gateway_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "workflows.sms"]


def assert_code_never_logged(caplog, code=CODE):
    # Every logger, the SDK's included, at DEBUG: the code and the whole number appear nowhere.
    assert caplog.records
    for record in caplog.records:
        assert code not in record.getMessage(), record.getMessage()
        assert PHONE not in record.getMessage(), record.getMessage()


# --- success ------------------------------------------------------------------------------


def test_a_signed_send_sms_with_the_code_and_the_minutes(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    deliver(sender_for(gateway), message(minutes=5))
    (received,) = gateway.received
    assert received.signature_ok, received.problem
    assert received.body == {"PhoneNumberSet": ["+8613800000001"], "SmsSdkAppId": SDK_APP_ID, "SignName": SIGN_NAME,
                             "TemplateId": TEMPLATE_ID, "TemplateParamSet": [CODE, "5"]}
    assert received.headers["X-TC-Action"] == "SendSms" and received.headers["X-TC-Version"] == "2021-01-11"
    assert received.headers["X-TC-Region"] == "ap-guangzhou"
    (sent,) = [r for r in gateway_log(caplog) if r.levelno == logging.INFO]
    assert "138****0001" in sent.getMessage() and "SerialNo 2645:" in sent.getMessage()
    assert_code_never_logged(caplog)


def test_region_and_minutes_come_from_the_configuration(gateway):
    deliver(sender_for(gateway, SMS_TENCENT_REGION="ap-beijing"), message(minutes=10))
    (received,) = gateway.received
    assert received.headers["X-TC-Region"] == "ap-beijing" and received.body["TemplateParamSet"] == [CODE, "10"]


def test_the_server_really_checks_the_signature(gateway, caplog):
    """The same request signed with another key is refused: signature_ok above means something."""
    sender = sender_for(gateway, TENCENTCLOUD_SECRET_KEY="not-the-key")
    with pytest.raises(SmsError, match="AuthFailure.SignatureFailure"):
        deliver(sender, message())
    (received,) = gateway.received
    assert not received.signature_ok and "signature mismatch" in received.problem


# --- refusals: logged, raised, never retried ----------------------------------------------

REFUSALS = [
    Reply("status", "LimitExceeded.PhoneNumberDailyLimit", "phone number daily limit"),
    Reply("status", "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"),
    Reply("error", "FailedOperation.SignatureIncorrectOrUnapproved", "signature is incorrect or unapproved"),
    Reply("error", "FailedOperation.TemplateIncorrectOrUnapproved", "template is incorrect or unapproved"),
    Reply("error", "UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verify fail"),
    Reply("error", "LimitExceeded.PhoneNumberDailyLimit", "phone number daily limit"),
]


@pytest.mark.parametrize("reply", REFUSALS, ids=lambda r: f"{r.kind}-{r.code}")
def test_a_refusal_raises_and_is_logged_without_the_code(gateway, caplog, reply):
    caplog.set_level(logging.DEBUG)
    gateway.always = reply
    with pytest.raises(SmsError, match=reply.code):
        deliver(sender_for(gateway, SMS_RETRIES=2), message())
    assert len(gateway.received) == 1  # a refusal is final: no retry
    (failed,) = [r for r in gateway_log(caplog) if r.levelno >= logging.WARNING]
    text = failed.getMessage()
    assert failed.levelno == logging.ERROR
    assert reply.code in text and reply.message in text and "138****0001" in text
    assert "RequestId " in text and "RequestId -" not in text
    assert_code_never_logged(caplog)


def test_a_status_for_another_number_is_no_success(gateway):
    # The answer must speak of our number, not merely say Ok.
    gateway.always = Reply("status", "Ok", "send success", phone="+8613900000009")
    with pytest.raises(SmsError, match="NoSendStatus"):
        deliver(sender_for(gateway), message())
    assert len(gateway.received) == 1


# --- transient failures: retried within the deadline --------------------------------------


@pytest.mark.parametrize("first", [
    Reply("http", status=500, body=b"<html>502 Bad Gateway</html>"),
    Reply("http", status=200, body=b"upstream says no"),  # 200 but not API 3.0
    Reply("error", "InternalError.Timeout", "backend timeout"),
    Reply("status", "InternalError.SendAndRecvFail", "send and receive fail"),
], ids=["http-500", "not-json", "internal-error", "internal-status"])
def test_a_gateway_failure_is_tried_again_once(gateway, caplog, first):
    caplog.set_level(logging.DEBUG)
    gateway.answer(first)
    deliver(sender_for(gateway), message())
    assert len(gateway.received) == 2
    assert gateway.received[0].body == gateway.received[1].body  # the same code both times
    (retried,) = [r for r in gateway_log(caplog) if r.levelno == logging.WARNING]
    assert "attempt 1 of 2" in retried.getMessage() and "trying again" in retried.getMessage()
    assert_code_never_logged(caplog)


def test_retries_are_bounded(gateway, caplog):
    gateway.always = Reply("http", status=503, body=b"busy")
    with pytest.raises(SmsError, match="ServerNetworkError"):
        deliver(sender_for(gateway, SMS_RETRIES=2), message())
    assert len(gateway.received) == 3
    levels = [r.levelno for r in gateway_log(caplog) if r.levelno >= logging.WARNING]
    assert levels == [logging.WARNING, logging.WARNING, logging.ERROR]


def test_no_retry_when_retries_is_zero(gateway):
    gateway.always = Reply("http", status=500, body=b"down")
    with pytest.raises(SmsError):
        deliver(sender_for(gateway, SMS_RETRIES=0), message())
    assert len(gateway.received) == 1


@pytest.mark.parametrize("retries", [0, 1])
def test_a_gateway_that_does_not_answer_times_out(gateway, caplog, retries):
    timeout = 0.5
    gateway.always = Reply("sleep", seconds=5)
    start = time.monotonic()
    with pytest.raises(SmsError, match="Timeout|ReadTimeout|ClientNetworkError|ConnectionError"):
        deliver(sender_for(gateway, SMS_TIMEOUT_SECONDS=timeout, SMS_RETRIES=retries), message())
    elapsed = time.monotonic() - start
    assert elapsed < (retries + 1) * timeout + 1.5, elapsed
    assert len(gateway.received) == retries + 1
    (failed,) = [r for r in gateway_log(caplog) if r.levelno == logging.ERROR]
    assert f"after {retries + 1} attempt(s)" in failed.getMessage()


def test_a_timeout_then_an_answer(gateway):
    gateway.answer(Reply("sleep", seconds=5))
    deliver(sender_for(gateway, SMS_TIMEOUT_SECONDS=0.5), message())
    assert len(gateway.received) == 2


def test_an_answer_trickled_byte_by_byte_still_ends_at_the_deadline(gateway):
    """requests' timeout is per read: a byte every 0.2 s never trips it. The deadline is ours."""
    gateway.always = Reply("drip", seconds=0.2)
    start = time.monotonic()
    with pytest.raises(SmsError, match="Timeout"):
        deliver(sender_for(gateway, SMS_TIMEOUT_SECONDS=0.5, SMS_RETRIES=1), message())
    assert time.monotonic() - start < 2 * 0.5 + 1.5


def test_a_gateway_that_is_not_there(direct):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = FakeTencentSms(url=f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(SmsError, match="ClientNetworkError"):
        deliver(sender_for(closed, SMS_TIMEOUT_SECONDS=0.5), message())
    assert time.monotonic() - start < 2 * 0.5 + 1.5


# --- configuration ------------------------------------------------------------------------


def test_missing_configuration_names_every_missing_variable():
    with pytest.raises(ValueError) as err:
        get_sender({"SMS_SENDER": "tencent", "TENCENTCLOUD_SECRET_ID": "AKIDx", "SMS_TENCENT_SIGN_NAME": " "})
    assert str(err.value) == ("SMS_SENDER=tencent needs TENCENTCLOUD_SECRET_KEY, SMS_TENCENT_SDK_APP_ID, "
                              "SMS_TENCENT_SIGN_NAME, SMS_TENCENT_TEMPLATE_ID (environment variables)")


@pytest.mark.parametrize("over, fragment", [
    ({"SMS_TIMEOUT_SECONDS": 5, "SMS_RETRIES": 2}, "at most 10 seconds"),
    ({"SMS_TIMEOUT_SECONDS": 0}, "above 0"),
    ({"SMS_RETRIES": 9}, "SMS_RETRIES 0 to 3"),
    ({"SMS_TIMEOUT_SECONDS": "soon"}, "SMS_TIMEOUT_SECONDS must be a number"),
    ({"SMS_TENCENT_ENDPOINT": "ftp://sms.example"}, "SMS_TENCENT_ENDPOINT"),
    ({"SMS_TENCENT_ENDPOINT": "https://sms.tencentcloudapi.com/v3"}, "SMS_TENCENT_ENDPOINT"),
])
def test_bad_configuration_is_refused(gateway, over, fragment):
    with pytest.raises(ValueError, match=fragment):
        get_sender(gateway_config(gateway, **over))


def test_endpoint_defaults_to_the_service_over_https():
    config = {k: v for k, v in gateway_config(FakeTencentSms()).items() if k != "SMS_TENCENT_ENDPOINT"}
    sender = get_sender(config)
    assert (sender.scheme, sender.host, sender.region) == ("https", "sms.tencentcloudapi.com", "ap-guangzhou")
    assert (sender.timeout, sender.retries, sender.deadline_seconds) == (1, 1, 2)
    assert get_sender({**config, "SMS_TENCENT_ENDPOINT": "sms.ap-shanghai.tencentcloudapi.com"}).scheme == "https"


def test_the_app_does_not_start_with_a_half_configured_gateway(tmp_path):
    from app import create_app

    with pytest.raises(ValueError, match="SMS_SENDER=tencent needs TENCENTCLOUD_SECRET_ID"):
        create_app({"TESTING": True, "SMS_SENDER": "tencent", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})
    with pytest.raises(ValueError, match="unknown SMS_SENDER 'tencnet'"):
        create_app({"TESTING": True, "SMS_SENDER": "tencnet", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})


def test_settings_read_the_gateway_from_the_environment():
    from settings import from_environment

    env = {"SMS_SENDER": "tencent", "TENCENTCLOUD_SECRET_ID": "AKIDx", "TENCENTCLOUD_SECRET_KEY": "k",
           "SMS_TENCENT_SDK_APP_ID": "1400000001", "SMS_TENCENT_SIGN_NAME": "建设行业证书管理",
           "SMS_TENCENT_TEMPLATE_ID": "1234567", "SMS_TENCENT_REGION": "ap-nanjing",
           "SMS_TENCENT_ENDPOINT": "sms.tencentcloudapi.com", "SMS_TIMEOUT_SECONDS": "2.5", "SMS_RETRIES": "0"}
    config = from_environment(env)
    assert config == {**env, "SMS_TIMEOUT_SECONDS": 2.5, "SMS_RETRIES": 0}
    assert isinstance(get_sender(config), TencentSender)


# --- phone numbers, senders of text, shows_code -------------------------------------------


def test_numbers_go_out_in_e164():
    assert e164("13800000001") == "+8613800000001"
    assert e164(" 13800000001 ") == "+8613800000001"
    assert e164("+85291234567") == "+85291234567"
    for bad in ("", "12345", "0531-88888888", "23800000001"):
        with pytest.raises(SmsError):
            e164(bad)


def test_a_number_the_gateway_cannot_take_is_not_sent(gateway):
    with pytest.raises(SmsError, match="053"):
        deliver(sender_for(gateway), message(phone="05318888888"))
    assert gateway.received == []


def test_text_senders_get_the_text(tmp_path):
    path = tmp_path / "outbox.log"
    deliver(OutboxSender(str(path)), message())
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert line.split("\t")[1:] == [PHONE, message().text]

    class Legacy:  # a sender written before SmsMessage: send(phone, text) only
        def __init__(self):
            self.sent = []

        def send(self, phone, text):
            self.sent.append((phone, text))

    legacy = Legacy()
    deliver(legacy, message())
    assert legacy.sent == [(PHONE, message().text)]


@pytest.mark.parametrize("sender, show, shown", [
    (None, True, True), ("outbox", True, True), ("log", True, True), ("outbox", False, False),
    ("tencent", True, False), ("test-gateway", True, False),
])
def test_the_code_is_shown_only_with_a_development_sender(sender, show, shown):
    register_sender("test-gateway")(lambda config, instance_path: LogSender())
    try:
        assert shows_code({"SMS_SENDER": sender, "SMS_SHOW_CODE": show}) is shown
    finally:
        SENDERS.pop("test-gateway")
