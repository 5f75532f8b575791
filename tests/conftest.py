"""Shared fixtures (flaskr's conftest shape): a fresh app and database per test.

The demo database is built once per session into a template file and copied for every test,
so each test starts from SPEC §12's data in milliseconds and can change anything.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter

import pytest
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app import create_app
from models import TransitionLog, db
from tests.pgserver import fresh_db, pg_cluster, pg_template, pg_url  # noqa: F401 (fixtures: postgres, served)
from tests.signing import signing_config
from workflows.engine import ESCAPED, MODEL_OF_OBJECT_TYPE, PROTECTED

DEMO_PASSWORD = "Demo@2026"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _config(db_path, tmp_path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}",
        "SMS_OUTBOX_PATH": str(tmp_path / "sms_outbox.log"),
        "SMS_SHOW_CODE": True,
        "WTF_CSRF_ENABLED": True,
        **signing_config(),
    }


class StateChanges:
    """What the flushes of one test did: the updates of workflow state columns on rows already in
    the database, and the TransitionLog rows inserted, each under the savepoint it was flushed in
    (a savepoint rolled back takes both away: a refused transition leaves neither)."""

    def __init__(self):
        self.changes: list[tuple] = []  # (transaction, (model, id), "Batch#3.status: draft → approved")
        self.logs: list[tuple] = []  # (transaction, (model, id))
        self.rolled_back: set = set()

    def flushed(self, session) -> None:
        where = session.get_nested_transaction()
        for obj in session.dirty:
            names = PROTECTED.get(type(obj))
            if not names:
                continue
            state = sa_inspect(obj)
            escaped = state.info.get(ESCAPED, set())
            for name in names:
                history = state.attrs[name].history
                if not history.added:
                    continue
                if name in escaped:  # placed by a fixture or seed data (engine.setting_state)
                    escaped.discard(name)
                    continue
                before = history.deleted[0] if history.deleted else "?"
                self.changes.append((where, (type(obj), obj.id),
                                     f"{type(obj).__name__}#{obj.id}.{name}: {before} → {history.added[0]}"))
        for obj in session.new:
            if isinstance(obj, TransitionLog):
                self.logs.append((where, (MODEL_OF_OBJECT_TYPE.get(obj.object_type), obj.object_id)))

    def _kept(self, transaction) -> bool:
        while transaction is not None:
            if transaction in self.rolled_back:
                return False
            transaction = transaction.parent
        return True

    def unlogged(self) -> list[str]:
        """The state changes no TransitionLog row of the same row accounts for."""
        logged = Counter(key for where, key in self.logs if self._kept(where))
        out = []
        for where, key, text in self.changes:
            if self._kept(where):
                if logged[key]:
                    logged[key] -= 1
                else:
                    out.append(text)
        return out


_state_changes: StateChanges | None = None


@event.listens_for(Session, "after_flush")
def _count_state_changes(session, flush_context):
    if _state_changes is not None:
        _state_changes.flushed(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session, previous_transaction):
    if _state_changes is not None and previous_transaction.nested:
        _state_changes.rolled_back.add(previous_transaction)


@pytest.fixture(autouse=True)
def state_changes_are_logged():
    """In every test, no workflow state column changes without a TransitionLog row for that row
    (ISSUE 18: every state change goes through the engine)."""
    global _state_changes
    _state_changes = seen = StateChanges()
    try:
        yield seen
    finally:
        _state_changes = None
    unlogged = seen.unlogged()
    if unlogged:
        pytest.fail("state changed without a TransitionLog row (fire a transition): " + "; ".join(unlogged))


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """A SQLite file holding the migrated schema and `seed demo`, built once per session."""
    from seed.demo import build_demo

    folder = tmp_path_factory.mktemp("template")
    path = folder / "demo.db"
    app = create_app(_config(path, folder))
    with app.app_context():
        db.create_all()
        build_demo(db.session)
        db.session.commit()
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def _shared_app(demo_template, tmp_path_factory):
    """One app for the whole session: building one (Flask-Admin's ~1,700 URL rules) costs more
    than most tests; each test gets a fresh database file under it instead (``app``)."""
    folder = tmp_path_factory.mktemp("shared-app")
    path = folder / "test.db"
    shutil.copyfile(demo_template, path)
    app = create_app(_config(path, folder))
    return app, path, dict(app.config)


@pytest.fixture
def app(_shared_app, demo_template, tmp_path):
    """The app over a fresh copy of the demo database; its config as it was after the test."""
    app, path, config = _shared_app
    with app.app_context():
        db.engine.dispose()  # no pooled connection may outlive the file it opened
    shutil.copyfile(demo_template, path)
    app.config.update(config, SMS_OUTBOX_PATH=str(tmp_path / "sms_outbox.log"))
    app.extensions.pop("kept_for_organization", None)  # figures kept for a minute were the last database's
    try:
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        app.config.clear()
        app.config.update(config)


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture(scope="module")
def module_demo(demo_template, tmp_path_factory):
    """One demo copy shared by a module whose tests never commit (tables of refusals …)."""
    from tests.factories import shared_demo

    with shared_demo(demo_template, tmp_path_factory.mktemp("module-demo")) as app:
        yield app


@pytest.fixture
def rolled_session(module_demo):
    """The module's shared demo, with whatever the test did rolled back afterwards."""
    from tests.factories import rolled_back

    with rolled_back(module_demo) as s:
        yield s


class Browser:
    """The Flask test client plus what a signed-in user's browser does: carry the CSRF token.

    Each request runs in an app context of its own, as in production: its own ``g`` (the
    signed-in user, the CSRF token) and its own database session. Before each request the
    test's session commits, so the request sees what the test set up and SQLite's write lock
    is free; the test's objects are expired and reload what the request did.
    """

    def __init__(self, client, app):
        self.client = client
        self.app = app
        self.token = None

    def open(self, method, url, **kw):
        db.session.commit()
        with self.app.app_context():
            return self.client.open(url, method=method, buffered=True, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def csrf_token(self, url="/login") -> str:
        page = self.get(url).get_data(as_text=True)
        match = CSRF_RE.search(page)
        assert match, f"no CSRF token on {url}"
        self.token = match.group(1)
        return self.token

    def post(self, url, data=None, *, csrf=True, token_from=None, **kw):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.token or self.csrf_token(token_from or "/login")
        return self.open("POST", url, data=data, **kw)

    def sms_code(self) -> str:
        """The last code the development sender wrote to the outbox (SPEC §9)."""
        with open(self.app.config["SMS_OUTBOX_PATH"], encoding="utf-8") as fh:
            lines = [line for line in fh if line.strip()]
        match = re.search(r"验证码[：:]?\s*(\d{6})", lines[-1])
        assert match, lines[-1]
        return match.group(1)

    def login(self, username, password=DEMO_PASSWORD):
        """Sign in through the real two-step form: password, then the SMS code."""
        self.token = None
        resp = self.post("/login", {"username": username, "password": password}, token_from="/login")
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
        resp = self.post("/login/sms", {"code": self.sms_code()}, token_from="/login/sms")
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
        self.token = None
        self.csrf_token("/admin/")
        return self


@pytest.fixture
def browser(app):
    return Browser(app.test_client(), app)


@pytest.fixture
def contract(app):
    """``contract(resp)``: the response is one the app's published OpenAPI document describes (status,
    content type, body schema), checked by openapi-core, not by the code that wrote it (issue 20)."""
    import json

    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    document = app.test_client().get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.json["openapi"].startswith("3.")
    # problem+json is JSON: openapi-core reads only application/json as JSON unless told
    spec = OpenAPI.from_dict(document.json, config=Config(
        extra_media_type_deserializers={"application/problem+json": json.loads}))

    def check(resp):
        # the request as openapi-core needs it (method, path, query): the served one's body is consumed
        sent = resp.request
        bare = Request(EnvironBuilder(path=sent.path, method=sent.method, query_string=sent.query_string.decode("latin-1"),
                                      base_url=sent.host_url).get_environ())
        spec.validate_response(WerkzeugOpenAPIRequest(bare), WerkzeugOpenAPIResponse(resp))
        return resp

    return check


@pytest.fixture
def login(app):
    """``login("jinan")`` → a signed-in Browser for that demo account."""

    def _login(username, password=DEMO_PASSWORD):
        return Browser(app.test_client(), app).login(username, password)

    return _login
