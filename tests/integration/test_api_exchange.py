"""The keyed API (issue 20 items 2–5): keys (missing, wrong, revoked, expired, offline, out of scope),
each key's rate limit, every call in 操作日志, data through the one visibility rule, keyset pages with
cursors bound to their query, ``updated_since`` for incremental sync, 批量核验, and bad input as a 4xx
problem in Chinese. Every response is checked against the published OpenAPI document (``contract``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from models import ApiKey, AuditLog, Batch, Certificate, OrgStatus, Registration, RegistrationStatus, db
from models.base import utcnow
from tests.factories import issued_certificates, user
from workflows import apikeys
from workflows.certificate import CERTIFICATE
from workflows.engine import setting_state
from workflows.visibility import clause

PROBLEM = "application/problem+json"
ALL_SCOPES = ("verify", "certificates", "registrations", "batches")


def make_key(session, owner: str, *, scopes=None, by: str | None = None, rate_limit: int | None = None):
    """A key of ``owner``'s organization, made by its admin (or ``by``, e.g. the province)."""
    org = user(session, owner).organization
    scopes = [s for s in (scopes or ALL_SCOPES) if s in apikeys.scopes_for(org)]
    values = MultiDict([("name", f"{owner} 的对接系统"), ("expires_on", str((utcnow() + timedelta(days=30)).date()))]
                       + [("scopes", s) for s in scopes])
    if rate_limit is not None:
        values["rate_limit"] = str(rate_limit)
    key, token = apikeys.create_key(session, user(session, by or owner), org, values)
    session.commit()
    return key, token


class Api:
    """The test client as an API consumer: the test's session commits before each call."""

    def __init__(self, app, contract):
        self.client, self.contract = app.test_client(), contract

    def get(self, url, token=None, **kw):
        db.session.commit()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.contract(self.client.get(url, headers=headers, **kw))

    def post(self, url, token=None, **kw):
        db.session.commit()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.contract(self.client.post(url, headers=headers, **kw))

    def walk(self, url, token, limit=2, **query) -> list[dict]:
        """Every page of a list, following next_cursor."""
        items, cursor = [], None
        for _ in range(10_000):
            params = {"limit": limit, **query, **({"cursor": cursor} if cursor else {})}
            resp = self.get(url, token, query_string=params)
            assert resp.status_code == 200, resp.json
            items += resp.json["items"]
            cursor = resp.json["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("the pages never ended")


@pytest.fixture
def api(app, contract):
    return Api(app, contract)


def problem(resp, status: int, words: str):
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == PROBLEM
    assert words in resp.json["detail"], resp.json
    return resp.json


# -- keys -----------------------------------------------------------------------------------------------------
def test_the_secret_is_stored_only_as_its_digest(session):
    key, token = make_key(session, "inst_jinan")
    assert token.startswith(f"csk_{key.key_id}_")
    secret = token.rsplit("_", 1)[1] if token.count("_") == 2 else token[len(f"csk_{key.key_id}_"):]
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in " ".join(str(v) for v in vars(key).values())
    logged = session.scalars(select(AuditLog).where(AuditLog.object_type == "api_key", AuditLog.object_id == key.id)).all()
    assert logged and all(secret not in (row.summary + str(row.detail)) for row in logged)


@pytest.mark.parametrize(("header", "words"), [
    (None, "缺少接口密钥"),
    ("Basic dXNlcjpwYXNz", "缺少接口密钥"),
    ("Bearer not-a-key", "接口密钥无效"),
    ("Bearer csk_000000000000_" + "A" * 43, "接口密钥无效"),
])
def test_no_key_or_a_wrong_one_is_401(api, header, words):
    resp = api.client.get("/api/v1/certificates", headers={"Authorization": header} if header else {})
    problem(api.contract(resp), 401, words)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_right_key_id_with_a_wrong_secret_is_401_like_an_unknown_key(api, session):
    key, token = make_key(session, "inst_jinan")
    forged = f"csk_{key.key_id}_" + "B" * 43
    assert problem(api.get("/api/v1/certificates", forged), 401, "接口密钥无效")["detail"] == apikeys.BAD_TOKEN


def test_revoking_takes_effect_at_the_next_request(api, session):
    key, token = make_key(session, "inst_jinan")
    assert api.get("/api/v1/certificates", token).status_code == 200
    apikeys.revoke_key(session, user(session, "inst_jinan"), key)
    problem(api.get("/api/v1/certificates", token), 401, "已吊销")
    with pytest.raises(apikeys.WorkflowError):
        apikeys.revoke_key(session, user(session, "inst_jinan"), key)


def test_an_expired_key_and_a_key_of_an_offline_organization_are_401(api, session):
    key, token = make_key(session, "inst_jinan")
    key.expires_at = utcnow() - timedelta(seconds=1)
    problem(api.get("/api/v1/certificates", token), 401, "已过期")
    other, other_token = make_key(session, "inst_qingdao")
    with setting_state():
        other.organization.status = OrgStatus.offline
    problem(api.get("/api/v1/batches", other_token), 401, "已下线")


def test_a_scope_the_key_lacks_is_403(api, session):
    key, token = make_key(session, "inst_jinan", scopes=["batches"])
    problem(api.get("/api/v1/certificates", token), 403, "证书")
    problem(api.post("/api/v1/verify/bulk", token, json={"items": [{"number": "1", "name": "张三"}]}), 403, "批量核验")
    assert api.get("/api/v1/batches", token).status_code == 200


def test_a_key_gets_only_scopes_its_kind_of_organization_sees(session):
    org = user(session, "inst_jinan").organization
    with pytest.raises(apikeys.FormErrors) as refused:
        apikeys.create_key(session, user(session, "inst_jinan"), org, MultiDict(
            [("name", "x"), ("scopes", "registrations"), ("expires_on", str((utcnow() + timedelta(days=9)).date()))]))
    assert "scopes" in refused.value.errors
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_only_the_province_makes_keys_for_another_organization(session):
    qingdao = user(session, "inst_qingdao").organization
    values = MultiDict([("name", "x"), ("scopes", "certificates"),
                        ("expires_on", str((utcnow() + timedelta(days=9)).date()))])
    with pytest.raises(apikeys.WorkflowError):
        apikeys.create_key(session, user(session, "inst_jinan"), qingdao, values)
    with pytest.raises(apikeys.WorkflowError):
        apikeys.create_key(session, user(session, "province_reviewer"), qingdao, values)
    key, _ = apikeys.create_key(session, user(session, "province"), qingdao, values)
    assert key.organization_id == qingdao.id


def test_each_key_has_its_own_rate_limit(api, session):
    _, slow = make_key(session, "inst_jinan", rate_limit=2)
    _, other = make_key(session, "inst_qingdao")
    assert api.get("/api/v1/batches", slow).status_code == 200
    assert api.get("/api/v1/batches", slow).status_code == 200
    refused = api.get("/api/v1/batches", slow)
    problem(refused, 429, "每分钟 2 次")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert api.get("/api/v1/batches", other).status_code == 200


def test_every_call_is_in_the_operation_log_with_its_key_endpoint_and_rows(api, session):
    key, token = make_key(session, "inst_jinan")
    page = api.get("/api/v1/certificates", token, query_string={"limit": 3}).json
    api.get("/api/v1/certificates/000000000000000", token)
    rows = session.scalars(select(AuditLog).where(AuditLog.kind == "api").order_by(AuditLog.id)).all()
    assert [(r.detail["endpoint"], r.detail["rows"], r.detail["status"]) for r in rows] == [
        ("/api/v1/certificates", len(page["items"]), 200), ("/api/v1/certificates/000000000000000", 0, 404)]
    assert all(r.object_id == key.id and r.organization_id == key.organization_id and r.detail["key"] == key.key_id
               for r in rows)
    assert "接口调用" in rows[0].summary and key.name in rows[0].summary


# -- data through visibility -------------------------------------------------------------------------------
@pytest.mark.parametrize("owner", ["province", "jinan", "inst_jinan", "direct_inst", "enterprise", "school"])
def test_a_key_sees_exactly_its_organizations_certificates(api, session, owner):
    _, token = make_key(session, owner, by="province")
    seen = [item["number"] for item in api.walk("/api/v1/certificates", token, limit=1000)]
    expected = session.scalars(select(Certificate.number).where(clause(user(session, owner), Certificate))).all()
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


@pytest.mark.parametrize(("owner", "url", "model", "column"), [
    ("inst_jinan", "/api/v1/batches", Batch, Batch.code),
    ("jinan", "/api/v1/batches", Batch, Batch.code),
    ("enterprise", "/api/v1/registered-persons", Registration, Registration.registration_number),
    ("ministry", "/api/v1/registered-persons", Registration, Registration.registration_number),
    ("province", "/api/v1/registered-persons", Registration, Registration.registration_number),
])
def test_batches_and_registered_persons_follow_the_same_rule(api, session, owner, url, model, column):
    _, token = make_key(session, owner, by="province")
    field = "code" if model is Batch else "registration_number"
    seen = [item[field] for item in api.walk(url, token, limit=3)]
    stmt = select(column).where(clause(user(session, owner), model))
    if model is Registration:
        stmt = stmt.where(Registration.status == RegistrationStatus.approved)
    assert sorted(seen) == sorted(session.scalars(stmt).all())
    assert seen, f"the demo gives {owner} something to see"


def test_a_foreign_number_answers_like_one_that_does_not_exist(api, session):
    _, token = make_key(session, "inst_jinan")
    foreign = session.scalars(select(Certificate.number).where(
        Certificate.issuer_id == user(session, "inst_qingdao").organization_id)).first()
    mine = session.scalars(select(Certificate.number).where(
        Certificate.issuer_id == user(session, "inst_jinan").organization_id)).first()
    assert api.get(f"/api/v1/certificates/{mine}", token).json["number"] == mine
    hidden = problem(api.get(f"/api/v1/certificates/{foreign}", token), 404, "未找到")
    absent = problem(api.get("/api/v1/certificates/999999999999999", token), 404, "未找到")
    assert hidden == absent
    foreign_batch = session.scalars(select(Batch.code).where(
        Batch.institution_id == user(session, "inst_qingdao").organization_id)).first()
    assert problem(api.get(f"/api/v1/batches/{foreign_batch}", token), 404, "未找到") == problem(
        api.get("/api/v1/batches/NO-SUCH-BATCH", token), 404, "未找到")


# -- pages and cursors --------------------------------------------------------------------------------------
def test_pages_are_stable_under_inserts_and_changes(api, session):
    """A row inserted or changed while a client pages comes at the end; nothing is skipped or repeated
    but the changed row, which comes again with its new state."""
    _, token = make_key(session, "inst_jinan")
    before = session.scalars(select(Certificate.number).where(
        Certificate.issuer_id == user(session, "inst_jinan").organization_id)).all()
    first = api.get("/api/v1/certificates", token, query_string={"limit": 2}).json
    seen = [item["number"] for item in first["items"]]
    # meanwhile: a new certificate is issued, and one already seen is cancelled
    new = [c.number for c in issued_certificates(session, "inst_jinan")]
    CERTIFICATE.fire(session, user(session, "province"), session.scalars(
        select(Certificate).where(Certificate.number == seen[0])).one(), "cancel", reason="持证人申请注销")
    rest = api.walk("/api/v1/certificates", token, limit=2, cursor=first["next_cursor"]) if first["next_cursor"] else []
    numbers = seen + [item["number"] for item in rest]
    assert set(numbers) == set(before) | set(new)
    assert numbers.count(seen[0]) == 2 and rest[-1]["number"] in new + [seen[0]]
    again = [item for item in rest if item["number"] == seen[0]]
    assert again[0]["status"] == "cancelled"
    assert len(numbers) == len(set(numbers)) + 1


def test_updated_since_gives_what_changed_including_a_holders_new_name(api, session):
    _, token = make_key(session, "inst_jinan")
    certificate = session.scalars(select(Certificate).where(
        Certificate.issuer_id == user(session, "inst_jinan").organization_id).order_by(Certificate.id)).first()
    session.commit()
    mark = utcnow()
    assert api.get("/api/v1/certificates", token, query_string={"updated_since": mark.isoformat() + "Z"}).json[
        "items"] == []
    certificate.person.name = "王改名"  # a data fix or an approved name change: the holder changed
    session.commit()
    changed = api.get("/api/v1/certificates", token, query_string={"updated_since": mark.isoformat() + "+00:00"}).json
    holders = {item["number"]: item["holder_name"] for item in changed["items"]}
    assert holders[certificate.number] == "王改名"
    assert set(holders) == {c.number for c in certificate.person.certificates
                            if c.issuer_id == certificate.issuer_id}
    # a time without offset is Beijing time: 8 hours later than the same digits in UTC
    naive = (mark + timedelta(hours=8)).isoformat()
    assert {i["number"] for i in api.get("/api/v1/certificates", token,
                                         query_string={"updated_since": naive}).json["items"]} == set(holders)


def test_a_cursor_serves_only_the_query_that_made_it(api, session):
    _, token = make_key(session, "inst_jinan")
    _, other = make_key(session, "inst_jinan")
    cursor = api.get("/api/v1/certificates", token, query_string={"limit": 1}).json["next_cursor"]
    assert cursor
    problem(api.get("/api/v1/certificates", other, query_string={"cursor": cursor}), 400, "游标与本次查询不符")
    problem(api.get("/api/v1/batches", token, query_string={"cursor": cursor}), 400, "游标与本次查询不符")
    problem(api.get("/api/v1/certificates", token, query_string={"cursor": cursor, "updated_since": "2020-01-01"}),
            400, "游标与本次查询不符")
    problem(api.get("/api/v1/certificates", token, query_string={"cursor": cursor[:-2] + "xx"}), 400, "游标无效")
    problem(api.get("/api/v1/certificates", token, query_string={"cursor": "bm90IGEgY3Vyc29y"}), 400, "游标无效")
    # the page size may change between pages
    assert api.get("/api/v1/certificates", token, query_string={"cursor": cursor, "limit": 5}).status_code == 200


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": str(10**9)}, "limit"),
    ({"limit": str(10**30)}, "limit"), ({"limit": "abc"}, "limit"), ({"limit": "1.5"}, "limit"),
    ({"updated_since": "yesterday"}, "updated_since"), ({"updated_since": "0001-01-01T00:00:00"}, "updated_since"),
    ({"updated_since": "9999-12-31T23:59:59-12:00"}, "updated_since"),
    ({"page": "2"}, "page"), ({"offset": "100"}, "offset"), ({"cursor": "x" * 501}, "cursor"),
])
def test_bad_list_parameters_are_422_in_chinese(api, session, query, field):
    _, token = make_key(session, "inst_jinan")
    body = problem(api.get("/api/v1/certificates", token, query_string=query), 422, "参数")
    assert field in body["errors"]["query"]
    message = " ".join(body["errors"]["query"][field])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message


@pytest.mark.parametrize("query", [{"cursor": "a\x00b"}, {"updated_since": "2026\x00"}, {"limit\x00": "1"}])
def test_a_nul_byte_anywhere_is_a_400_problem_before_any_query(api, session, query):
    _, token = make_key(session, "inst_jinan")
    problem(api.get("/api/v1/certificates", token, query_string=query), 400, "空字符")


# -- 批量核验 -------------------------------------------------------------------------------------------------
def test_bulk_check_answers_like_the_page_for_each_item(api, session):
    _, token = make_key(session, "enterprise2", scopes=["verify"])
    certificates = session.scalars(select(Certificate).order_by(Certificate.id).limit(5)).all()
    items = [{"number": c.number, "name": c.person.name} for c in certificates]
    items += [{"number": certificates[0].number, "name": "不是他"}, {"number": "999999999999999", "name": "张三"},
              {"number": f" {certificates[1].number[:4]} {certificates[1].number[4:]} ", "name": certificates[1].person.name}]
    resp = api.post("/api/v1/verify/bulk", token, json={"items": items})
    assert resp.status_code == 200
    results = resp.json["results"]
    assert [r["found"] for r in results] == [True] * 5 + [False, False, True]
    assert results[5] == {"number": certificates[0].number, "found": False, "certificate": None}
    assert results[6]["certificate"] is None
    assert resp.json["found"] == 6
    single = api.get("/api/v1/verify/certificate", query_string=items[0]).json
    assert results[0]["certificate"] == single
    assert results[0]["certificate"]["holder_name"].endswith("*")


def test_bulk_check_takes_a_thousand_and_refuses_more(api, session):
    _, token = make_key(session, "inst_jinan", scopes=["verify"])
    thousand = [{"number": f"9{i:014d}", "name": "张三"} for i in range(1000)]
    assert api.post("/api/v1/verify/bulk", token, json={"items": thousand}).json["found"] == 0
    body = problem(api.post("/api/v1/verify/bulk", token, json={"items": thousand + thousand[:1]}), 422, "参数")
    assert "1000" in str(body["errors"])


@pytest.mark.parametrize("body", [
    {}, {"items": []}, {"items": "263701001510001"}, {"items": [{"number": 263701001510001, "name": "张三"}]},
    {"items": [{"number": "263701001510001"}]}, {"items": [{"number": "1", "name": "张三", "id": "x"}]},
    {"items": [{"number": "1\x00", "name": "张三"}]}, {"items": [{"number": "1", "name": "张" * 51}]},
    {"items": [None]}, {"items": [{"number": "1", "name": "张三"}], "extra": 1},
])
def test_bad_bulk_bodies_are_422_in_chinese(api, session, body):
    _, token = make_key(session, "inst_jinan", scopes=["verify"])
    problem(api.post("/api/v1/verify/bulk", token, json=body), 422, "参数")


def test_a_bulk_body_that_is_not_json_is_a_4xx_problem(api, session):
    _, token = make_key(session, "inst_jinan", scopes=["verify"])
    resp = api.client.post("/api/v1/verify/bulk", headers={"Authorization": f"Bearer {token}"}, data=b"\xff\xfe",
                           content_type="application/json")
    problem(api.contract(resp), 400, "参数")
    assert resp.json["errors"] == {"json": ["请求体不是有效的 JSON"]}


def test_an_item_takes_no_query_parameter(api, session):
    _, token = make_key(session, "inst_jinan")
    mine = session.scalars(select(Certificate.number).where(
        Certificate.issuer_id == user(session, "inst_jinan").organization_id)).first()
    body = problem(api.get(f"/api/v1/certificates/{mine}", token, query_string={"fields": "all"}), 422, "参数")
    assert body["errors"]["query"]["fields"] == ["不支持的参数"]
