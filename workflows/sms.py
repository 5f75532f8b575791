"""SMS senders (SPEC §9): pluggable, chosen by the ``SMS_SENDER`` setting.

The development sender appends every message to an outbox file, one line per message
(``<ISO time>\\t<phone>\\t<text>``), so a developer or a test reads the code from there.
A production gateway is one more class registered with ``@register_sender("name")``;
``tencent`` (Tencent Cloud SMS) is the one we run. No Flask here: the configuration mapping
and the instance folder are passed in.

Two kinds of sender: a *text* sender takes the finished message (``send(phone, text)``: the
outbox, the log, a carrier that takes free text); a *template* sender takes an ``SmsMessage``
(``send_message(message)``), because Chinese carriers only send pre-approved templates and
want the code and the minutes as template parameters, not our text. ``deliver`` hands a
message to either.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

OUTBOX_FILENAME = "sms_outbox.log"
_LOCAL_TZ = ZoneInfo("Asia/Shanghai")

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The message could not be handed to the carrier."""


@dataclass(frozen=True)
class SmsMessage:
    """One verification code on its way: the text for text senders, the parts for templates."""

    phone: str  # 11-digit mainland number, stored without +86
    text: str
    code: str
    minutes: int  # how long the code is valid
    purpose: str = ""


class TextSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class TemplateSender(Protocol):
    def send_message(self, message: SmsMessage) -> None: ...


Sender = TextSender | TemplateSender
SenderFactory = Callable[[Mapping, "str | None"], Sender]
SENDERS: dict[str, SenderFactory] = {}
# Senders that deliver to no phone: only with these may SMS_SHOW_CODE put the code on the page.
DEVELOPMENT_SENDERS: set[str] = set()


def register_sender(name: str, *, development: bool = False):
    """Class or factory decorator: ``SMS_SENDER=<name>`` builds it with ``(config, instance_path)``.

    ``development=True`` marks a sender that reaches no phone (see ``shows_code``)."""

    def wrap(factory):
        SENDERS[name] = factory
        if development:
            DEVELOPMENT_SENDERS.add(name)
        else:
            DEVELOPMENT_SENDERS.discard(name)
        return factory

    return wrap


def deliver(sender: Sender, message: SmsMessage) -> None:
    """Hand ``message`` to a template sender whole, to a text sender as (phone, text)."""
    send_message = getattr(sender, "send_message", None)
    if send_message is not None:
        send_message(message)
    else:
        sender.send(message.phone, message.text)


def mask_phone(phone: str | None) -> str:
    """138****0001 for the log: enough to find a complaint, not enough to learn the number."""
    phone = phone or ""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "*" * len(phone)


def _one_line(text: str) -> str:
    # The outbox is one message per line, tab-separated: a stray newline would split a message.
    return " ".join(str(text).replace("\t", " ").splitlines())


class OutboxSender:
    """Development sender: appends ``<ISO time>\\t<phone>\\t<text>`` to a file."""

    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = path

    def send(self, phone: str, text: str) -> None:
        stamp = datetime.now(_LOCAL_TZ).isoformat(timespec="seconds")
        line = f"{stamp}\t{_one_line(phone)}\t{_one_line(text)}\n"
        try:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            # One short write in append mode: lines from several processes do not interleave.
            with self._lock, open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            raise SmsError(str(exc)) from exc


class LogSender:
    """Writes messages to the Python log only (e.g. a staging server without a gateway)."""

    def send(self, phone: str, text: str) -> None:
        logger.info("SMS to %s: %s", phone, text)


def outbox_path(config: Mapping, instance_path: str | None = None) -> str:
    """``SMS_OUTBOX_PATH`` if set, else ``<instance>/sms_outbox.log``."""
    path = config.get("SMS_OUTBOX_PATH")
    if path:
        return str(path)
    return os.path.join(instance_path or "instance", OUTBOX_FILENAME)


@register_sender("outbox", development=True)
def _outbox(config: Mapping, instance_path: str | None) -> Sender:
    return OutboxSender(outbox_path(config, instance_path))


@register_sender("log", development=True)
def _log(config: Mapping, instance_path: str | None) -> Sender:
    return LogSender()


def sender_name(config: Mapping) -> str:
    return config.get("SMS_SENDER") or "outbox"


def get_sender(config: Mapping, instance_path: str | None = None) -> Sender:
    """The sender named by ``SMS_SENDER`` ('outbox' by default).

    An unknown name or a gateway missing its keys raises ``ValueError``: ``create_app`` builds
    the sender once at start-up, so a misconfigured deployment stops there, not at a sign-in."""
    name = sender_name(config)
    try:
        factory = SENDERS[name]
    except KeyError:
        raise ValueError(f"unknown SMS_SENDER {name!r}; known: {', '.join(sorted(SENDERS))}") from None
    return factory(config, instance_path)


def shows_code(config: Mapping) -> bool:
    """``SMS_SHOW_CODE`` (the demo shows the code on the page), honoured with a development sender
    only: with a real gateway the code reaches the phone and nothing else — not the page, and not
    the session cookie that carries the page's hint."""
    return bool(config.get("SMS_SHOW_CODE")) and sender_name(config) in DEVELOPMENT_SENDERS


# --- Tencent Cloud SMS ---------------------------------------------------------------------

# A sign-in waits for the send; with every retry it must still answer within a few seconds.
MAX_SEND_SECONDS = 10
MAX_RETRIES = 3
_MIN_ATTEMPT_SECONDS = 0.2  # less time than this left: a further attempt could not succeed
_MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TENCENT_REQUIRED = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "SMS_TENCENT_SDK_APP_ID",
                     "SMS_TENCENT_SIGN_NAME", "SMS_TENCENT_TEMPLATE_ID")


def e164(phone: str) -> str:
    """+8613800000001: Tencent takes E.164; we store mainland numbers without the +86."""
    phone = (phone or "").strip()
    if _MAINLAND_MOBILE.fullmatch(phone):
        return "+86" + phone
    if _E164.fullmatch(phone):
        return phone
    raise SmsError(f"not a phone number the gateway takes: {mask_phone(phone)}")


@dataclass(eq=False)  # an exception compares and hashes by identity
class _Failure(Exception):
    """One attempt that did not send; ``transient`` when trying again may succeed."""

    code: str
    message: str
    request_id: str | None = None
    transient: bool = False


def _is_internal(code: str | None) -> bool:
    return bool(code) and (code == "InternalError" or code.startswith("InternalError."))


def _config_number(config: Mapping, name: str, convert, default):
    value = config.get(name)
    try:
        return convert(default if value is None or value == "" else value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None


@register_sender("tencent")
class TencentSender:
    """Tencent Cloud SMS: API 3.0 ``SendSms`` (2021-01-11) through the official SDK.

    The template takes two parameters, {1} the code and {2} the minutes it is valid. Each attempt
    has ``SMS_TIMEOUT_SECONDS``; a gateway that did not answer, answered something other than an
    API 3.0 response, or answered ``InternalError`` is tried again up to ``SMS_RETRIES`` times,
    a refusal (signature not approved, daily limit, bad keys …) never. Retries included, a send
    ends within timeout × (retries + 1) ≤ ``MAX_SEND_SECONDS``. Every failure is logged with the
    gateway's code, message and RequestId — with the phone masked and never the code — and
    raised as ``SmsError``.
    """

    def __init__(self, config: Mapping, instance_path: str | None = None):
        missing = [name for name in _TENCENT_REQUIRED if not str(config.get(name) or "").strip()]
        if missing:
            raise ValueError(f"SMS_SENDER=tencent needs {', '.join(missing)} (environment variables)")
        self.secret_id = str(config["TENCENTCLOUD_SECRET_ID"]).strip()
        self.secret_key = str(config["TENCENTCLOUD_SECRET_KEY"]).strip()
        self.sdk_app_id = str(config["SMS_TENCENT_SDK_APP_ID"]).strip()
        self.sign_name = str(config["SMS_TENCENT_SIGN_NAME"]).strip()
        self.template_id = str(config["SMS_TENCENT_TEMPLATE_ID"]).strip()
        self.region = str(config.get("SMS_TENCENT_REGION") or "ap-guangzhou").strip()
        endpoint = str(config.get("SMS_TENCENT_ENDPOINT") or "sms.tencentcloudapi.com").strip()
        # ``host[:port]`` means https; a scheme may be given (tests use http on the loopback).
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"SMS_TENCENT_ENDPOINT must be a host name (or http[s]://host[:port]), "
                             f"not {endpoint!r}")
        self.scheme, self.host = parts.scheme, parts.netloc
        self.timeout = _config_number(config, "SMS_TIMEOUT_SECONDS", float, 3)
        self.retries = _config_number(config, "SMS_RETRIES", int, 1)
        if not 0 < self.timeout or not 0 <= self.retries <= MAX_RETRIES:
            raise ValueError(f"SMS_TIMEOUT_SECONDS must be above 0 and SMS_RETRIES 0 to {MAX_RETRIES}")
        if self.timeout * (self.retries + 1) > MAX_SEND_SECONDS:
            raise ValueError(f"SMS_TIMEOUT_SECONDS × (SMS_RETRIES + 1) must be at most {MAX_SEND_SECONDS} "
                             "seconds: a sign-in waits for the send")
        self.deadline_seconds = self.timeout * (self.retries + 1)

        # Imported here: only a deployment that uses the gateway pays for the SDK's large modules.
        from tencentcloud.common import credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            self._credential = credential.Credential(self.secret_id, self.secret_key)
        except TencentCloudSDKException as exc:
            problem = exc.get_message()
            raise ValueError(f"TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY: {problem}") from None
        # The SDK's DEBUG log prints each request body, the code with it: keep it out of any log.
        sdk_logger = logging.getLogger("tencentcloud_sdk_common")
        if sdk_logger.getEffectiveLevel() < logging.INFO:
            sdk_logger.setLevel(logging.INFO)

    # -- sending ----------------------------------------------------------------------------

    def send_message(self, message: SmsMessage) -> None:
        masked = mask_phone(message.phone)
        try:
            phone = e164(message.phone)
        except SmsError as exc:
            logger.error("SMS gateway tencent: not sent, %s", exc)
            raise
        params = {"PhoneNumberSet": [phone], "SmsSdkAppId": self.sdk_app_id, "SignName": self.sign_name,
                  "TemplateId": self.template_id, "TemplateParamSet": [message.code, str(message.minutes)]}
        attempts = self.retries + 1
        deadline = time.monotonic() + self.deadline_seconds
        made = 0
        while True:
            made += 1
            try:
                left = deadline - time.monotonic()
                serial_no, request_id = self._attempt(params, phone, min(self.timeout, left))
            except _Failure as exc:
                failure = _scrubbed(exc, message.code)
                if (failure.transient and made < attempts
                        and deadline - time.monotonic() >= _MIN_ATTEMPT_SECONDS):
                    logger.warning("SMS gateway tencent: attempt %d of %d to %s failed, trying again: "
                                   "%s: %s (RequestId %s)", made, attempts, masked, failure.code,
                                   failure.message, failure.request_id or "-")
                    continue
                break
            logger.info("SMS gateway tencent: sent to %s (SerialNo %s, RequestId %s, attempt %d)",
                        masked, serial_no, request_id, made)
            return
        logger.error("SMS gateway tencent: not sent to %s after %d attempt(s): %s: %s (RequestId %s)",
                     masked, made, failure.code, failure.message, failure.request_id or "-")
        raise SmsError(f"{failure.code}: {failure.message}")

    def _attempt(self, params: dict, phone: str, timeout: float) -> tuple[str, str]:
        """One ``SendSms``, answered or given up within ``timeout`` seconds: (SerialNo, RequestId).

        The SDK's timeout is requests' — per connect and per read, so a gateway trickling its
        answer could outlast it. The call therefore runs in a thread of its own that we stop
        waiting for at ``timeout``; the thread ends by itself when requests gives up."""
        outcome: dict = {}

        def call():
            try:
                outcome["response"] = self._client(timeout).SendSms(self._request(params))
            except Exception as exc:  # handed to the waiting thread, classified there
                outcome["error"] = exc

        worker = threading.Thread(target=call, name="sms-tencent", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise _Failure("Timeout", f"no answer within {timeout:.1f} s", transient=True)
        if "error" in outcome:
            raise _classify(outcome["error"])
        response = outcome["response"]
        request_id = response.RequestId or "-"
        statuses = [s for s in (response.SendStatusSet or []) if s.PhoneNumber in (phone, None)]
        if not statuses:
            raise _Failure("NoSendStatus", "the answer has no status for the number", request_id)
        status = statuses[0]
        if status.Code != "Ok":
            raise _Failure(status.Code or "NoCode", status.Message or "", request_id,
                           transient=_is_internal(status.Code))
        return status.SerialNo or "-", request_id

    def _client(self, timeout: float):
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        http = HttpProfile(protocol=self.scheme, endpoint=self.host, reqMethod="POST", reqTimeout=timeout)
        return sms_client.SmsClient(self._credential, self.region,
                                    ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http))

    @staticmethod
    def _request(params: dict):
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        for name, value in params.items():
            setattr(request, name, value)
        return request


def _classify(exc: Exception) -> _Failure:
    """An SDK exception as a failure. The service's own answers carry a RequestId: those are
    refusals, except ``InternalError``. Without one the service did not answer (network, timeout,
    a proxy's 5xx page, a body that is not API 3.0): worth another attempt."""
    code = getattr(exc, "code", None) or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(message, bytes):  # the SDK passes a non-200 body through as bytes
        message = message.decode("utf-8", "replace")
    request_id = getattr(exc, "requestId", None)
    return _Failure(str(code), str(message), request_id, transient=not request_id or _is_internal(str(code)))


def _scrubbed(failure: _Failure, code: str) -> _Failure:
    # Whatever the gateway echoed goes to the log: short, on one line, and never the code.
    message = _one_line(failure.message)[:300].replace(code, "******")
    return _Failure(failure.code, message, failure.request_id, failure.transient)
