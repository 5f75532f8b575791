"""A real PostgreSQL for tests/postgres and tests/served (shared/ARCHITECTURE.md "Tests").

The session starts its own throwaway cluster: ``initdb`` into a temp dir (as the ``postgres``
system user when we run as root, since initdb refuses root), ``pg_ctl start`` on a free
loopback port with durability switched off for speed, trust authentication. The migrated
schema and ``seed demo`` are built once into a template database; every test gets its own
``CREATE DATABASE … TEMPLATE`` copy (a file copy on the server, a fraction of a second).

Where the binaries are missing the tests skip with a clear message, or fail under
``REQUIRE_POSTGRES=1`` (which ``.ci/run`` sets).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

TEST_DB = "certoffice_test"
TEMPLATE_DB = "certoffice_template"
PG_USER = "postgres"


# -- finding the binaries -------------------------------------------------------------------
def _version_key(path: str) -> tuple:
    match = re.search(r"/postgresql/([0-9.]+)/bin", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


def find_pg_bin() -> tuple[Path | None, str]:
    """(bin dir, where it came from or why none): env PG_BIN, else the highest Debian version under
    /usr/lib/postgresql, else ``pg_config --bindir``."""
    env = os.environ.get("PG_BIN")
    if env:
        path = Path(env)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path, f"PG_BIN={env}"
        return None, f"PG_BIN={env} holds no initdb and pg_ctl"
    found = [p for p in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(p, "initdb"))]
    if found:
        return Path(max(found, key=_version_key)), "/usr/lib/postgresql/*/bin"
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            bindir = ""
        if bindir and (Path(bindir) / "initdb").exists() and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir), "pg_config --bindir"
    return None, "no initdb found in /usr/lib/postgresql/*/bin nor in `pg_config --bindir`"


def _missing(message: str):
    """Skip, or fail under REQUIRE_POSTGRES=1."""
    text = f"PostgreSQL tests need a PostgreSQL server: {message}"
    if os.environ.get("REQUIRE_POSTGRES", "").strip() not in ("", "0"):
        pytest.fail(text + " (REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(text + " (set REQUIRE_POSTGRES=1 to make this a failure)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the cluster ------------------------------------------------------------------------------
class PgCluster:
    """One throwaway cluster in a temp dir; every server command runs as ``postgres`` under root."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        # Not under pytest's basetemp: that is 0700 root and the postgres user could not enter it.
        self.base = Path(tempfile.mkdtemp(prefix="certoffice-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self.port: int | None = None
        self.running = False
        self.sock.mkdir()
        if self.as_root:
            entry = pwd.getpwnam(PG_USER)
            for path in (self.base, self.sock):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def command(self, name: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / name), *args]
        return ["runuser", "-u", PG_USER, "--", *cmd] if self.as_root else cmd

    def run(self, name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(name, *args), capture_output=True, text=True, timeout=timeout,
                              cwd=self.base, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                               + self.server_log())
        return proc

    def server_log(self) -> str:
        try:
            return "server.log:\n" + self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-locale",
                 "--no-sync", "--no-instructions")

    def start(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
                # the last setting wins, so a retry simply appends a new port
                fh.write(
                    f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.sock}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 100\n"
                )
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
            except RuntimeError:
                if attempt == attempts:
                    raise
                time.sleep(0.2)
                continue
            self.running = True
            return

    def stop(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    @contextlib.contextmanager
    def admin(self):
        """An autocommit connection to the maintenance database, for CREATE/DROP DATABASE."""
        import psycopg

        conn = psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def create_database(self, name: str, template: str | None = None) -> None:
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with self.admin() as conn:
            conn.execute(sql)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_cluster():
    bin_dir, looked = find_pg_bin()
    if bin_dir is None:
        _missing(f"{looked} (on Debian: apt-get install postgresql, or set PG_BIN)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            _missing("running as root, and there is no 'postgres' system user to run initdb as")
        if shutil.which("runuser") is None:
            _missing("running as root, and runuser (util-linux) is missing")
    cluster = PgCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster) -> str:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/certoffice_test`` — an empty database."""
    pg_cluster.create_database(TEST_DB)
    return pg_cluster.url(TEST_DB)


# -- apps on PostgreSQL -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_template(pg_cluster, pg_url, tmp_path_factory) -> str:
    """A database holding the schema and `seed demo`, built once; tests copy it."""
    from app import create_app
    from models import db
    from seed.demo import build_demo
    from tests.postgres.pg_helpers import app_config, build_schema

    pg_cluster.create_database(TEMPLATE_DB)
    app = create_app(app_config(pg_cluster.url(TEMPLATE_DB), tmp_path_factory.mktemp("pg-template")))
    with app.app_context():
        build_schema()
        build_demo(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()  # CREATE DATABASE … TEMPLATE needs the template free of connections
    return TEMPLATE_DB


@pytest.fixture
def fresh_db(pg_cluster):
    """``fresh_db(template=None)`` → the URL of a new database, dropped at the end of the test."""
    names = []

    def make(template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        pg_cluster.create_database(name, template)
        names.append(name)
        return pg_cluster.url(name)

    yield make
    for name in names:
        pg_cluster.drop_database(name)


