"""HTTP clients for tests/served: a signed-in browser over a real socket, and the served site.

``Visitor`` is a ``requests.Session`` that signs in as a person does (GET the form for its CSRF
token, POST the password, read the SMS code the development sender appended to the outbox, POST
it) and carries its CSRF token into every form it posts. ``Site`` is a deployment: its base URL,
its processes, and its database (read and written directly to set up and check what happened).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Demo@2026"
SECRET = "served-tests-secret"
# tests/served: the province's 20,000 certificates are an export job; a city's ~1,250 are written at
# once; a dead job worker's job is taken up again after 4 s
SERVED_ENV = {
    "SECRET_KEY": SECRET,
    "SMS_SENDER": "outbox",
    "SMS_SHOW_CODE": "false",
    "EXPORT_INLINE_MAX_ROWS": "5000",
    "JOB_LEASE_SECONDS": "4",
    "JOB_BEAT_SECONDS": "0.5",
    "JOB_POLL_SECONDS": "0.2",
    "JOB_WORKER_NICE": "0",
    "VERIFY_RATE_LIMIT": "100000",
    "PYTHONUNBUFFERED": "1",
}
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CODE_RE = re.compile(r"验证码[：:]?\s*(\d{6})")
_phone_locks: dict[str, threading.Lock] = {}
_phone_locks_guard = threading.Lock()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served_env(database_url: str, folder: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORT_", "JOB_", "SMS_"))}
    env.update(SERVED_ENV)
    env.update({"DATABASE_URL": database_url, "SMS_OUTBOX_PATH": str(folder / "sms_outbox.log"),
                "PYTHONPATH": str(REPO)}, **extra)
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


class Served:
    """A server process (gunicorn or flask run) and the job worker beside it."""

    def __init__(self, name: str, command: list[str], env: dict, folder: Path, database_url: str):
        self.name, self.command, self.env, self.folder = name, command, env, folder
        self.database_url = database_url
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _spawn(self, label: str, command: list[str]) -> subprocess.Popen:
        log = self.folder / f"{label}-{len(self.logs)}.log"
        self.logs.append(log)
        return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start(self) -> Served:
        self.server = self._spawn(self.name, self.command)
        self.start_job_worker()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "/login", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within 60 s:\n{self.log_tail()}")

    def start_job_worker(self) -> subprocess.Popen:
        worker = self._spawn("jobs", flask_command("jobs", "worker"))
        self.workers.append(worker)
        return worker

    def web_worker_pids(self) -> list[int]:
        """gunicorn's worker processes (children of the master); flask run has none."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.server.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def log_tail(self, chars: int = 6000) -> str:
        parts = []
        for log in self.logs:
            with contextlib.suppress(OSError):
                parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def server_errors(self) -> list[str]:
        """Tracebacks the server processes logged (a 500 leaves one)."""
        found = []
        for log in self.logs:
            with contextlib.suppress(OSError):
                text = log.read_text(errors="replace")
                found += [chunk[:1500] for chunk in text.split("Traceback (most recent call last):")[1:]]
        return found

    def stop(self) -> None:
        for proc in [*self.workers, self.server]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.server]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


class Site:
    def __init__(self, served):
        self.served = served
        self.base = served.base
        self.engine = create_engine(served.database_url, pool_pre_ping=True)
        self.outbox = Path(served.env["SMS_OUTBOX_PATH"])
        self.is_postgres = served.database_url.startswith("postgresql")

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def phone_of(self, username: str) -> str:
        return self.scalar("SELECT phone FROM user_account WHERE username = :u", u=username)

    def visitor(self, username: str | None = None) -> Visitor:
        visitor = Visitor(self)
        if username:
            visitor.sign_in(username)
        return visitor

    def idle_in_transaction(self) -> int:
        """PostgreSQL connections of the app left inside a transaction with nothing running."""
        dbname = self.served.database_url.rsplit("/", 1)[1]
        return self.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                           "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()", d=dbname)

    def settled(self, timeout: float = 3.0) -> int:
        """idle-in-transaction connections once the server had ``timeout`` seconds to finish responding."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.idle_in_transaction()
            if count == 0 or time.monotonic() > deadline:
                return count
            time.sleep(0.1)


class Visitor(requests.Session):
    """One browser. ``sign_in`` is the real two steps; ``post`` adds the page's CSRF token."""

    def __init__(self, site: Site):
        super().__init__()
        self.site = site
        self.base = site.base
        self.token: str | None = None
        self.username: str | None = None

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path, **kw):  # noqa: D102 - requests' own
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 60)
        return super().get(self.url(path), **kw)

    def post(self, path, data=None, *, csrf: bool = True, token_from: str | None = None, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 60)
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.token or self.fetch_token(token_from or "/admin/")
        return super().post(self.url(path), data=data, **kw)

    def fetch_token(self, path: str) -> str:
        page = self.get(path, allow_redirects=True).text
        match = CSRF_RE.search(page)
        assert match, f"no CSRF token on {path}: {page[:300]}"
        self.token = match.group(1)
        return self.token

    def sign_in(self, username: str, password: str = PASSWORD) -> Visitor:
        phone = self.site.phone_of(username)
        with _phone_locks_guard:
            lock = _phone_locks.setdefault(phone or username, threading.Lock())
        with lock:  # one code in flight per phone: a second sign-in's code closes the first's
            before = self._outbox_lines(phone)
            self.token = None
            resp = self.post("/login", {"username": username, "password": password}, token_from="/login")
            assert resp.status_code == 302 and "/login/sms" in resp.headers.get("Location", ""), \
                f"{username}: {resp.status_code} {resp.text[:500]}"
            code = self._new_code(phone, before)
            self.token = None
            resp = self.post("/login/sms", {"code": code}, token_from="/login/sms")
            assert resp.status_code == 302 and "/login" not in resp.headers["Location"], \
                f"{username}: SMS step {resp.status_code} {resp.text[:500]}"
        self.username = username
        self.token = None
        self.fetch_token("/admin/")
        return self

    def _outbox_lines(self, phone: str | None) -> int:
        try:
            text_ = self.site.outbox.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        return sum(1 for line in text_.splitlines() if f"\t{phone}\t" in line)

    def _new_code(self, phone: str | None, before: int) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [line for line in self.site.outbox.read_text(encoding="utf-8").splitlines()
                     if f"\t{phone}\t" in line]
            if len(lines) > before:
                return CODE_RE.search(lines[-1]).group(1)
            time.sleep(0.05)
        raise AssertionError(f"no SMS code for {phone} in the outbox")

    def copy(self) -> Visitor:
        """Another browser holding this one's cookies: a replayed (stolen) session."""
        other = Visitor(self.site)
        for cookie in self.cookies:
            other.cookies.set_cookie(cookie)
        other.token = self.token
        return other

    def signed_in(self) -> bool:
        resp = self.get("/admin/")
        return resp.status_code == 200 and 'id="logout-button"' in resp.text

    def sent_to_login(self) -> bool:
        resp = self.get("/admin/")
        return resp.status_code == 302 and resp.headers["Location"].split("?")[0].endswith("/login")
