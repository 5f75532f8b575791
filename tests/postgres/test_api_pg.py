"""The keyed API on PostgreSQL (issue 20): keyset pages over microsecond timestamps and row values,
bad input refused before PostgreSQL sees it (NUL bytes in a JSON body, which PostgreSQL refuses in
text), and one key's rate limit held by the database counter when its calls arrive at once."""

from __future__ import annotations

import threading

from sqlalchemy import select

from models import Certificate, db
from tests.factories import user
from tests.integration.test_api_exchange import Api, make_key
from workflows.visibility import clause


def _api(pg_app):
    return Api(pg_app, lambda resp: resp)


def test_pages_give_each_visible_certificate_once_on_postgresql(pg_app):
    api = _api(pg_app)
    for owner in ("province", "inst_jinan", "enterprise"):
        _, token = make_key(db.session, owner, by="province")
        seen = [item["number"] for item in api.walk("/api/v1/certificates", token, limit=7)]
        expected = db.session.scalars(select(Certificate.number).where(
            clause(user(db.session, owner), Certificate))).all()
        assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen)), owner


def test_bad_input_is_a_4xx_problem_on_postgresql(pg_app):
    api = _api(pg_app)
    _, token = make_key(db.session, "inst_jinan")
    bodies = [{"items": [{"number": "2637\x00", "name": "张三"}]}, {"items": [{"number": "1", "name": "\x00"}]}]
    for body in bodies:
        resp = api.post("/api/v1/verify/bulk", token, json=body)
        assert resp.status_code == 422 and resp.mimetype == "application/problem+json", resp.get_data(as_text=True)
    for url in ("/api/v1/certificates/" + "9" * 40, "/api/v1/batches/%00", "/api/v1/registered-persons/x%00"):
        resp = api.get(url, token)
        assert resp.status_code in (400, 403, 404) and resp.mimetype == "application/problem+json", (url, resp.status_code)
    resp = api.get("/api/v1/certificates", token, query_string={"updated_since": "0001-01-01T00:00:00+14:00"})
    assert resp.status_code == 422


def test_one_keys_limit_holds_when_its_calls_arrive_at_once(pg_app):
    _, token = make_key(db.session, "inst_jinan", rate_limit=5)
    db.session.commit()
    statuses, start = [], threading.Barrier(12)

    def call():
        client = pg_app.test_client()
        start.wait()
        with pg_app.app_context():
            statuses.append(client.get("/api/v1/batches", headers={"Authorization": f"Bearer {token}"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [429] * 7
