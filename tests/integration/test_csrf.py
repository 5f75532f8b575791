"""CSRF on every POST (ARCHITECTURE: Flask-WTF's ``CSRFProtect`` over the whole app).

The routes come from the app's ``url_map``, so a POST route added later is covered without
touching this file. Each is posted by a signed-in user who could use it — the organization
that owns the row, with a form that would succeed — once without a token and once with a
forged one: 400, the Chinese message, and the database does not move.
"""

from __future__ import annotations

import io
import re
import shutil
import sqlite3
from datetime import date

import pytest
from flask import url_for
from sqlalchemy import select

from app import create_app
from models import Attachment, Batch, BatchStatus, Candidate, Certificate, Level, Occupation, User, db
from models.attachment import AttachmentKind
from models.base import utcnow
from tests.conftest import Browser, _config
from workflows.validators import make_id_number

MESSAGE = "页面已过期或缺少安全令牌"
# Who posts to a route: the first of these who may open the route's view (an owner first).
ACTORS = ("inst_jinan", "jinan", "province", "enterprise", "person")
# Tables that change on harmless requests (sign-in, logging): not compared.
VOLATILE_TABLES = {"audit_log", "sms_code", "user_account", "user_permission", "user_session"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def _rules():
    """Every POST route of the app, read from an app built on a throwaway configuration."""
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return sorted((rule.rule, rule.endpoint) for rule in app.url_map.iter_rules()
                  if "POST" in rule.methods and not rule.endpoint.endswith("static")
                  and not rule.rule.startswith(API_PREFIX))


# The API's POSTs are exempt: a keyed call carries its key in a header, which no other site can make a
# browser send; the session cookie opens nothing there (test_api_posts_ignore_the_session_cookie).
API_PREFIX = "/api/v1/"


POST_RULES = _rules()


def fill(rule: str, ident: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "xlsx" if m.group(1) == "export_type" else ident, rule)


class Site:
    """One app on a private copy of the demo for the module; put back whenever a test moved it."""

    def __init__(self, template, folder):
        self.template = folder / "csrf-template.db"
        self.path = folder / "csrf.db"
        shutil.copyfile(template, self.template)
        app = create_app(_config(self.template, folder))
        with app.app_context():
            self.rows = self._prepare()
            db.session.remove()
            db.engine.dispose()
        shutil.copyfile(self.template, self.path)
        self.app = create_app(_config(self.path, folder))
        self.browsers = {}
        self.actors = {}

    @staticmethod
    def _prepare() -> dict:
        """An attachment on inst_jinan's draft, and the ids a would-be-successful form needs."""
        inst = db.session.scalar(select(User).where(User.username == "inst_jinan"))
        batch = db.session.scalars(select(Batch).where(Batch.institution_id == inst.organization_id,
                                                       Batch.status == BatchStatus.draft).order_by(Batch.id)).first()
        attachment = Attachment(owner_type="batch", owner_id=batch.id, kind=AttachmentKind.image, filename="scan.png",
                                content_type="image/png", size=len(PNG), sha256="0" * 64, data=PNG,
                                created_at=utcnow())
        db.session.add(attachment)
        db.session.commit()
        candidate = db.session.scalar(select(Candidate.id).where(Candidate.batch_id == batch.id).limit(1))
        certificate = db.session.scalar(select(Certificate.id).where(Certificate.issuer_id == inst.organization_id))
        return {
            "batch": batch.id, "candidate": candidate, "attachment": attachment.id, "certificate": certificate,
            "occupation": db.session.scalar(select(Occupation.id).where(Occupation.name == "砌筑工")),
            "level": db.session.scalar(select(Level.id).where(Level.name == "初级工(五级)")),
        }

    def browser(self, who) -> Browser:
        if who not in self.browsers:
            self.browsers[who] = Browser(self.app.test_client(), self.app).login(who)
        return self.browsers[who]

    def actor_for(self, endpoint: str) -> str:
        """The first of ACTORS whose browser opens the view the route belongs to."""
        view = endpoint.split(".")[0]
        if view not in self.actors:
            self.actors[view] = ACTORS[2]  # province for sign-in pages and views nobody opens
            admin_views = {v.endpoint: v for v in self.app.extensions["admin"][0]._views}
            if view in admin_views and view != "admin":
                index = "index_view" if hasattr(admin_views[view], "index_view") else "index"
                with self.app.test_request_context():
                    url = url_for(f"{view}.{index}")
                for who in ACTORS:
                    if self.browser(who).get(url).status_code == 200:
                        self.actors[view] = who
                        break
        return self.actors[view]

    def form(self, endpoint: str) -> dict:
        """Every field any of our POST forms uses, filled so the request would succeed."""
        rows = self.rows
        row = rows["certificate"] if endpoint.startswith("certificate") else rows["batch"]
        return {
            "id": str(row), "rowid": str(row), "list_form_pk": str(row), "candidate_id": str(rows["candidate"]),
            "attachment_id": str(rows["attachment"]), "transition": "delete", "action": "wf_delete",
            "name": "没有令牌的改名", "reason": "没有令牌", "note": "没有令牌", "failed": "1",
            "id_number": make_id_number("370102", date(1998, 8, 8), 5, "男"),
            "occupation_id": str(rows["occupation"]), "level_id": str(rows["level"]),
            "username": "inst_jinan", "password": "Demo@2026", "code": "000000",
            "old_password": "Demo@2026", "new_password": "Csrf@2026x", "confirm_password": "Csrf@2026x",
            "files": (io.BytesIO(PNG), "scan.png"), "file": (io.BytesIO(b"PK"), "a.xlsx"),
        }

    def snapshot(self) -> dict:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return {table.name: conn.execute(f'SELECT * FROM "{table.name}" ORDER BY 1').fetchall()
                    for table in db.metadata.sorted_tables if table.name not in VOLATILE_TABLES}
        finally:
            conn.close()

    def restore(self):
        db.session.remove()
        db.engine.dispose()
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)


@pytest.fixture(scope="module")
def site(demo_template, tmp_path_factory):
    site = Site(demo_template, tmp_path_factory.mktemp("csrf"))
    with site.app.app_context():
        yield site
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def checked(site):
    """The site, with the database compared before and after the test (and put back if moved)."""
    before = site.snapshot()
    yield site
    after = site.snapshot()
    if after != before:
        site.restore()
        changed = sorted(name for name in before if before[name] != after.get(name))
        pytest.fail(f"the database changed: {changed}")


def refused(resp) -> bool:
    return resp.status_code == 400 and MESSAGE in resp.get_data(as_text=True)


@pytest.mark.parametrize(("rule", "endpoint"), POST_RULES, ids=[r for r, _ in POST_RULES])
def test_post_without_token_is_refused(checked, rule, endpoint):
    site = checked
    who = site.actor_for(endpoint)
    browser = site.browser(who)
    url = fill(rule, str(site.rows["batch"]))
    missing = browser.post(url, site.form(endpoint), csrf=False)
    assert refused(missing), (who, missing.status_code, missing.get_data(as_text=True)[:500])
    forged = browser.post(url, {**site.form(endpoint), "csrf_token": "forged-" + "0" * 40})
    assert refused(forged), (who, forged.status_code)
    assert browser.get("/admin/").status_code == 200, "the refused request must not sign the user out"


def test_api_posts_ignore_the_session_cookie(checked):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    api_posts = [rule.rule for rule in app.url_map.iter_rules()
                 if "POST" in rule.methods and rule.rule.startswith(API_PREFIX)]
    assert api_posts, "the API has a POST (批量核验)"
    browser = checked.browser("province")
    for rule in api_posts:
        resp = browser.client.post(fill(rule, "1"), json={"items": [{"number": "1", "name": "张三"}]})
        assert resp.status_code == 401 and resp.mimetype == "application/problem+json", (rule, resp.status_code)


def test_token_of_another_session_is_refused(checked):
    """A token is bound to its session: inst_qingdao's token does not work in inst_jinan's."""
    site = checked
    other = site.browser("inst_qingdao").token
    resp = site.browser("inst_jinan").post("/admin/batch/rename/", {**site.form("batch"), "csrf_token": other})
    assert refused(resp)


def test_token_survives_nothing_but_its_session(checked):
    """After sign-out the old token is dead: a replayed form is refused, not run anonymously."""
    site = checked
    browser = Browser(site.app.test_client(), site.app).login("inst_jinan")
    token = browser.token
    assert browser.post("/logout").status_code == 302
    resp = browser.post("/admin/batch/rename/", {**site.form("batch"), "csrf_token": token})
    assert refused(resp)


def test_the_form_would_work_with_its_token(site):
    """Control: the owner's rename with the token does go through, so the refusals above are
    the token's doing, not a bad form."""
    browser = site.browser("inst_jinan")
    form = site.form("batch")
    resp = browser.post("/admin/batch/rename/", {"id": form["id"], "name": form["name"]})
    assert resp.status_code == 302
    with site.app.app_context():
        assert db.session.get(Batch, site.rows["batch"]).name == form["name"]
    site.restore()
