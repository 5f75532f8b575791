"""A loopback stand-in for Tencent Cloud SMS (API 3.0, ``SendSms`` 2021-01-11).

It answers as the service does: HTTP 200 with ``{"Response": {...}}`` — a ``SendStatusSet`` with
one status per number, or a top-level ``Error`` — and it checks each request's TC3-HMAC-SHA256
``Authorization`` by recomputing it from the test secret, per Tencent's documented algorithm
(written out here, not borrowed from the SDK, so a signing mistake in either shows). A request
signed wrongly gets ``AuthFailure.SignatureFailure``, as from the real service. Tests queue what
the next requests get: a refusal, an HTTP 500, a body that is not JSON, a delay longer than the
sender's timeout, an answer trickled a byte at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_ID = "AKIDtestloopback0000000000000000"
SECRET_KEY = "test-secret-key-loopback-000000"
SDK_APP_ID = "1400000001"
SIGN_NAME = "建设行业证书管理"
TEMPLATE_ID = "1234567"

_AUTH = re.compile(r"TC3-HMAC-SHA256 "
                   r"Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/(?P<service>[a-z]+)/tc3_request, "
                   r"SignedHeaders=(?P<signed>[a-z;-]+), Signature=(?P<signature>[0-9a-f]{64})$")


def gateway_config(server: FakeTencentSms, **over) -> dict:
    """App settings that point ``SMS_SENDER=tencent`` at ``server``."""
    return {"SMS_SENDER": "tencent", "TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
            "SMS_TENCENT_SDK_APP_ID": SDK_APP_ID, "SMS_TENCENT_SIGN_NAME": SIGN_NAME,
            "SMS_TENCENT_TEMPLATE_ID": TEMPLATE_ID, "SMS_TENCENT_ENDPOINT": server.url,
            "SMS_TIMEOUT_SECONDS": 1, "SMS_RETRIES": 1, **over}


def tc3_signature(secret_key: str, *, method: str, path: str, query: str, content_type: str, host: str,
                  body: bytes, timestamp: str, date: str, service: str) -> str:
    """Tencent Cloud API 3.0 signature v3 (TC3-HMAC-SHA256), signed headers content-type;host."""
    canonical = "\n".join([method, path, query, f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Received:
    headers: dict
    body: dict | None
    signature_ok: bool
    problem: str = ""

    @property
    def code(self) -> str:
        """The verification code: template parameter {1}."""
        return self.body["TemplateParamSet"][0]


@dataclass
class Reply:
    """What one request gets. ``kind``: ok · status (a per-number refusal) · error (top-level) ·
    http (a bare status and body, as from a proxy) · sleep (answer ok after ``seconds``) · drip."""

    kind: str = "ok"
    code: str = ""
    message: str = ""
    status: int = 200
    body: bytes = b""
    seconds: float = 0.0
    phone: str = ""  # the number the status names, if not the one sent to


@dataclass
class FakeTencentSms:
    secret_key: str = SECRET_KEY
    received: list[Received] = field(default_factory=list)
    replies: deque = field(default_factory=deque)
    stopping: threading.Event = field(default_factory=threading.Event)
    always: Reply | None = None  # answer every request so (after the queue)
    url: str = ""

    def answer(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        try:
            return self.replies.popleft()
        except IndexError:
            return self.always or Reply()

    def start(self) -> FakeTencentSms:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = fake.check(self.headers, raw, self.path)
                fake.received.append(received)
                reply = fake.next_reply()
                if not received.signature_ok:
                    reply = Reply("error", "AuthFailure.SignatureFailure",
                                  f"The provided credentials could not be validated. {received.problem}")
                try:
                    self.respond(reply, received)
                except OSError:  # the client gave up (its timeout): nothing to answer
                    pass

            def respond(self, reply: Reply, received: Received):
                request_id = str(uuid.uuid4())
                if reply.kind == "sleep" and fake.stopping.wait(reply.seconds):
                    return
                if reply.kind == "http":
                    return self.send(reply.status, reply.body, "text/html")
                if reply.kind == "error":
                    payload = {"Error": {"Code": reply.code, "Message": reply.message}, "RequestId": request_id}
                else:
                    phone = reply.phone or (received.body or {}).get("PhoneNumberSet", [""])[0]
                    code, message = ("Ok", "send success") if reply.kind in ("ok", "sleep", "drip") else (
                        reply.code, reply.message)
                    payload = {"SendStatusSet": [{
                        "SerialNo": "2645:" + uuid.uuid4().hex[:24] if code == "Ok" else "", "PhoneNumber": phone,
                        "Fee": 1 if code == "Ok" else 0, "SessionContext": "", "Code": code, "Message": message,
                        "IsoCode": "CN"}], "RequestId": request_id}
                body = json.dumps({"Response": payload}, ensure_ascii=False).encode()
                if reply.kind == "drip":
                    return self.drip(body, reply.seconds)
                self.send(200, body, "application/json")

            def send(self, status: int, body: bytes, content_type: str):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def drip(self, body: bytes, pause: float):
                # Headers at once, then one byte per pause: each read is quick, the answer never ends.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                for i in range(len(body)):
                    if fake.stopping.wait(pause):
                        return
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="fake-tencent-sms",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def check(self, headers, raw: bytes, path: str) -> Received:
        """Records the request and verifies it is a SendSms of API 3.0 signed with our secret."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        plain = {k: v for k, v in headers.items()}
        match = _AUTH.match(headers.get("Authorization", ""))
        problems = []
        if match is None:
            problems.append("no TC3-HMAC-SHA256 Authorization")
        else:
            timestamp = headers.get("X-TC-Timestamp", "")
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
                problems.append("X-TC-Timestamp missing or off by more than 5 minutes")
            elif datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d") != match["date"]:
                problems.append("credential date is not the timestamp's UTC date")
            expected = tc3_signature(self.secret_key, method="POST", path=path.split("?")[0], query="",
                                     content_type=headers.get("Content-Type", ""), host=headers.get("Host", ""),
                                     body=raw, timestamp=timestamp, date=match["date"], service=match["service"])
            if match["id"] != SECRET_ID or match["service"] != "sms" or match["signed"] != "content-type;host":
                problems.append("wrong credential scope")
            if not hmac.compare_digest(expected, match["signature"]):
                problems.append("signature mismatch")
        if headers.get("X-TC-Action") != "SendSms" or headers.get("X-TC-Version") != "2021-01-11":
            problems.append("not SendSms 2021-01-11")
        return Received(plain, body, not problems, "; ".join(problems))
