"""Application factory (flaskr's shape): defaults → environment → test mapping.

There is no module-level app: ``flask --app app`` finds ``create_app`` itself, and gunicorn
runs ``'app:create_app()'``.
"""

from __future__ import annotations

import fcntl
import gc
import os
import sqlite3
from datetime import timedelta

import click
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

import settings
from models import db
from models.base import SQLITE_BEGIN


class CertOffice(Flask):
    """Flask, with the session cookie living exactly as long as an idle session may (SPEC §9).

    IDLE_TIMEOUT_MINUTES is the one setting: the server ends a session idle longer than that
    (admin_views.auth, workflows.sessions), and the signed cookie — refreshed on every request —
    lives that long too, read from the config at each request like the server's check, so 45 means
    45 and 10 means 10 for both. Flask's PERMANENT_SESSION_LIFETIME is not read."""

    @property
    def permanent_session_lifetime(self) -> timedelta:
        return timedelta(minutes=self.config["IDLE_TIMEOUT_MINUTES"])


def create_app(config: dict | None = None) -> Flask:
    app = CertOffice(__name__, instance_relative_config=True, template_folder="admin_views/templates",
                static_folder="admin_views/static")
    # Pages are rendered for every click (issue 16 "Served"): the templates' block tags leave no
    # blank lines behind, and JSON carries Chinese as UTF-8, not as \uXXXX escapes (the filters'
    # options are half the size).
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    app.json.ensure_ascii = False
    app.config.from_object(settings.Defaults)
    app.config.update(settings.from_environment())
    if config:
        app.config.update(config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config.get("DATABASE_URL") or (
            "sqlite:///" + os.path.join(app.instance_path, "certoffice.db")
        )
    if app.config["SECRET_KEY"] == settings.Defaults.SECRET_KEY and not app.debug and not app.testing:
        app.config["SECRET_KEY"] = _instance_secret(app)

    if not app.config["ECERT_SIGNING_PKCS12"] and not app.testing:
        _demo_signing_key(app)

    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=app.config["PROXY_COUNT"])

    # SMS_SENDER names a sender that can be built (a gateway with all its keys): a misconfigured
    # deployment stops here with the missing variables named, never at a user's sign-in.
    from workflows.sms import get_sender

    get_sender(app.config, app.instance_path)

    db.init_app(app)

    from flask_migrate import Migrate

    Migrate(app, db, render_as_batch=True, directory=os.path.join(os.path.dirname(__file__), "migrations"))

    import admin_views
    import seed

    admin_views.init_app(app)
    seed.init_app(app)
    app.cli.add_command(segments_cli)
    from admin_views.exports import jobs_cli

    app.cli.add_command(jobs_cli)
    if not app.testing:
        # What the app built at start (Flask-Admin's views and ~1,700 URL rules, the mappers, the
        # modules) lives as long as the process: moved out of the garbage collector's sight, a full
        # collection no longer walks it — a signed 电子证书 (issue 19), which allocates much, no longer
        # meets a 100-ms collection one time in ten. Tests build many apps and let them go: not there.
        gc.freeze()
    return app


def _instance_secret(app: Flask) -> str:
    """A per-installation secret kept in instance/ so `make run` is safe without configuration."""
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write(os.urandom(32).hex())
        os.chmod(path, 0o600)
    with open(path) as fh:
        return fh.read().strip()


def _demo_signing_key(app: Flask) -> None:
    """`make run` without a configured signing key: a demo CA and signing certificate in instance/ecert/,
    made once, named 「演示用，非正式」 in their subjects (issue 19). A deployment sets ECERT_SIGNING_PKCS12."""
    from workflows.ecert_document import make_demo_ca

    directory = os.path.join(app.instance_path, "ecert")
    path, secret = os.path.join(directory, "demo-signing.p12"), os.path.join(directory, "demo-password")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # gunicorn's workers start at once: one of them makes it
        if not os.path.exists(path):
            password = os.urandom(16).hex()
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password)
            make_demo_ca(directory, "山东省住房和城乡建设厅", password=password)
    with open(secret) as fh:
        app.config["ECERT_SIGNING_PKCS12"], app.config["ECERT_SIGNING_PASSWORD"] = path, fh.read().strip()


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    """SQLite: WAL, foreign keys, a busy timeout, and transactions begun by us (see below)."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # pysqlite must not emit its own BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """BEGIN IMMEDIATE takes SQLite's write lock up front, so two processes never both read a
    number segment and then race to write it (SPEC §4); it also makes SAVEPOINTs reliable.

    Work that only reads, for long (an export job walking 200,000 certificates), asks for a
    deferred transaction instead (``read_only(engine)``): in WAL mode it takes no lock at all, so
    users' requests keep writing while it runs (issue 16)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(SQLITE_BEGIN, 'IMMEDIATE')}")


@click.group("segments", help="证书号段 (SPEC §4).")
def segments_cli():
    pass


@segments_cli.command("rollover")
@click.option("--year", type=int, default=None, help="Year to prepare (default: next year).")
def segments_rollover(year):
    """Create next year's segments ahead of time for every key used this year."""
    from models.base import local_today
    from workflows.numbering import rollover

    year = year or local_today().year + 1
    created = rollover(db.session, year)
    db.session.commit()
    click.echo(f"{year} 年新建号段 {created} 个")
