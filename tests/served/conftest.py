"""tests/served (shared/ARCHITECTURE.md "Tests"): the app as it is deployed, driven over HTTP.

Two deployments, each started as real processes on a free loopback port and always stopped:

* ``gunicorn_pg`` — gunicorn with 2 sync workers on a PostgreSQL the session starts
  (tests/pgserver.py), plus a job worker (``flask jobs worker``): what a province runs.
* ``flask_sqlite`` — ``make run``'s configuration: the database built by ``flask db upgrade`` and
  ``flask seed demo`` in a fresh folder, served by ``flask run`` (threaded), plus a job worker.

Both hold the demo (SPEC §12) and a small province-scale set (``seed scale --certificates 20000``:
accounts ``sc_…`` with a city's ~1,250 certificates, the province's 20,000), so an export is
large enough to abort mid-way and the province's is a job. Clients sign in as a browser does —
password, then the SMS code the development sender wrote to the outbox (tests/served/web.py).
The PostgreSQL tests skip or fail (REQUIRE_POSTGRES=1) with the rest of tests/postgres.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.served.web import REPO, Served, Site, flask_command, served_env

HERE = Path(__file__).resolve().parent
SCALE_CERTIFICATES = 20_000


def _run(command: list[str], env: dict, what: str) -> None:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def served_pg_template(pg_cluster, pg_template, tmp_path_factory) -> str:
    """The demo template plus ``seed scale --certificates 20000``, built once for tests/served."""
    name = "certoffice_served_template"
    pg_cluster.create_database(name, pg_template)
    folder = tmp_path_factory.mktemp("served-template")
    _run(flask_command("seed", "scale", "--certificates", str(SCALE_CERTIFICATES)),
         served_env(pg_cluster.url(name), folder), "seed scale on PostgreSQL")
    return name


@pytest.fixture(scope="module")
def gunicorn_pg(pg_cluster, served_pg_template, tmp_path_factory):
    """gunicorn (2 workers) on a fresh copy of the served template, and a job worker."""
    folder = tmp_path_factory.mktemp("gunicorn-pg")
    name = f"served_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    pg_cluster.create_database(name, served_pg_template)
    url = pg_cluster.url(name)
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--timeout", "60", "--graceful-timeout", "5",
               "--bind", "127.0.0.1:{port}", "app:create_app()"]
    served = Served("gunicorn", command, served_env(url, folder), folder, url)
    try:
        served.start()
        yield Site(served)
    finally:
        served.stop()
        pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """What ``make run`` builds on first run: ``flask db upgrade``, ``flask seed demo`` — plus the scale set."""
    folder = tmp_path_factory.mktemp("make-run")
    path = folder / "certoffice.db"
    env = served_env(f"sqlite:///{path}", folder)
    _run(flask_command("db", "upgrade"), env, "flask db upgrade")
    _run(flask_command("seed", "demo"), env, "flask seed demo")
    _run(flask_command("seed", "scale", "--certificates", str(SCALE_CERTIFICATES)), env, "seed scale on SQLite")
    return path


@pytest.fixture(scope="module")
def flask_sqlite(sqlite_template, tmp_path_factory):
    """``make run``'s server — ``flask run`` (threaded) on SQLite — and its job worker."""
    folder = tmp_path_factory.mktemp("flask-sqlite")
    path = folder / "certoffice.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    command = flask_command("run", "--host", "127.0.0.1", "--port", "{port}")
    served = Served("flask-run", command, served_env(url, folder), folder, url)
    try:
        served.start()
        yield Site(served)
    finally:
        served.stop()


@pytest.fixture(params=["gunicorn_pg", "flask_sqlite"])
def site(request):
    """Each deployment in turn."""
    return request.getfixturevalue(request.param)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.served)
