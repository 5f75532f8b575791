"""系统管理 › 接口密钥 (issue 20 item 3): the province creates keys for any organization, an
organization's administrator for its own; the token is shown once and stored only as its SHA-256
digest; it works against the API until 吊销, and the very next call is refused; an expired key is
refused; nobody else opens the screen, and another organization's key is a 404 on every URL; a
missing CSRF token, or input the rules refuse, stores nothing and answers in Chinese, never a 500."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from admin_views.api_keys import ONE_TIME_WARNING
from admin_views.hardening import MSG_NUL
from models import ApiKey, AuditLog, Organization
from models.base import local_today, utcnow
from tests.conftest import Browser
from tests.factories import user

LIST, NEW, DETAILS, REVOKE = "/admin/api_key/", "/admin/api_key/new/", "/admin/api_key/details/", "/admin/api_key/revoke/"
TOKEN = re.compile(r"csk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
CSRF_MESSAGE = "页面已过期或缺少安全令牌"


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def org_of(session, username) -> Organization:
    return user(session, username).organization


def key_count(session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey))


def form(org_id, **overrides) -> dict:
    values = {"organization_id": str(org_id), "name": "人事系统对接", "scopes": ["certificates", "batches"],
              "expires_on": (local_today() + timedelta(days=30)).isoformat(), "rate_limit": "600"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def create(client: Browser, org_id, **overrides):
    return client.post(NEW, form(org_id, **overrides), token_from=NEW)


def created_token(resp) -> str:
    assert resp.status_code == 200, text(resp)[:2000]
    match = TOKEN.search(text(resp))
    assert match, text(resp)[:3000]
    return match.group(0)


def api(app, path, token=None):
    """A call of the API, as another system makes it: no session, the key in the header."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Browser(app.test_client(), app).get(path, headers=headers)


def key_of(session, token) -> ApiKey:
    return session.scalars(select(ApiKey).where(ApiKey.key_id == TOKEN.match(token).group(1))).one()


# -- who creates what ---------------------------------------------------------------------------------
def test_the_province_creates_keys_for_an_institution_and_for_itself(login, session):
    province = login("province")
    page = text(province.get(NEW))
    institution, own = org_of(session, "inst_jinan"), org_of(session, "province")
    assert f'value="{institution.id}"' in page and f'value="{own.id}"' in page  # any active organization
    for code in ("verify", "certificates", "registrations", "batches"):  # all four, each with its kinds
        assert f'id="scope-{code}"' in page
    assert "适用于：" in page

    token = created_token(create(province, institution.id, name="培训中心数据同步"))
    key = key_of(session, token)
    assert (key.organization_id, key.name, key.scope_codes) == (institution.id, "培训中心数据同步",
                                                                 ("certificates", "batches"))
    assert key.created_by_id == user(session, "province").id and key.rate_limit == 600
    token = created_token(create(province, own.id, name="省厅数据中心", scopes=["registrations", "verify"],
                                 rate_limit="1200"))
    key = key_of(session, token)
    assert key.organization_id == own.id and key.scope_codes == ("verify", "registrations") and key.rate_limit == 1200

    listing = text(province.get(LIST))
    assert "培训中心数据同步" in listing and "省厅数据中心" in listing
    assert f"csk_{key.key_id}_…" in listing and token not in listing
    assert "证书、批次状态" in listing and "批量核验、注册人员" in listing
    # 新建 and 吊销 are in 操作日志 (create_key / revoke_key write them)
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.object_type == "api_key", AuditLog.summary.like("新建接口密钥%"))) == 2


def test_an_institution_creates_its_own_key_and_not_anothers(login, session):
    client = login("inst_jinan")
    home = text(client.get("/admin/"))
    assert LIST in home and "接口密钥" in home  # 系统管理 › 接口密钥
    own, other = org_of(session, "inst_jinan"), org_of(session, "inst_qingdao")
    page = text(client.get(NEW))
    assert 'id="organization-readonly"' in page and own.name in page and other.name not in page
    assert 'id="scope-registrations"' not in page  # an institution's users never see registrations
    assert {'id="scope-verify"', 'id="scope-certificates"', 'id="scope-batches"'} <= set(
        re.findall(r'id="scope-\w+"', page))

    token = created_token(create(client, own.id))
    assert key_of(session, token).organization_id == own.id

    before = key_count(session)
    for forged in (other.id, org_of(session, "province").id, 99999999, "abc", ""):
        resp = create(client, forged, name="越权密钥")
        assert resp.status_code == 200 and "请选择所属机构" in text(resp), forged
        assert not TOKEN.search(text(resp))
    assert key_count(session) == before
    assert session.scalar(select(ApiKey).where(ApiKey.name == "越权密钥")) is None


# -- the token: shown once, stored as a digest, works until revoked ---------------------------------
def test_the_token_is_shown_once_and_only_its_digest_is_stored(login, session):
    client = login("inst_jinan")
    resp = create(client, org_of(session, "inst_jinan").id)
    token = created_token(resp)
    page = text(resp)
    assert resp.headers["Cache-Control"] == "no-store"
    assert ONE_TIME_WARNING in page and "Authorization: Bearer" in page and "/api/v1/docs" in page
    key_id, secret = TOKEN.match(token).groups()
    key = key_of(session, token)
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(getattr(key, column.key)) for column in ApiKey.__table__.columns]
    assert not any(secret in value or token in value for value in stored)
    assert not any(secret in str(row.summary) + str(row.detail) for row in session.scalars(select(AuditLog)))

    again = text(client.get(f"{DETAILS}?id={key.id}"))
    assert f"csk_{key_id}_…" in again and secret not in again and ONE_TIME_WARNING not in again
    assert secret not in text(client.get(LIST))


def test_the_token_reads_the_api_until_revoked_and_the_next_call_is_refused(app, login, session):
    client = login("inst_jinan")
    token = created_token(create(client, org_of(session, "inst_jinan").id))
    key = key_of(session, token)
    resp = api(app, "/api/v1/certificates?limit=2", token)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert len(resp.json["items"]) <= 2
    assert api(app, "/api/v1/registered-persons", token).status_code == 403  # not in its scopes

    details = text(client.get(f"{DETAILS}?id={key.id}"))
    assert 'id="key-revoke-button"' in details and "data-confirm=" in details
    resp = client.post(REVOKE, {"id": str(key.id)}, token_from=f"{DETAILS}?id={key.id}")
    assert resp.status_code == 302
    assert "已吊销接口密钥" in text(client.get(resp.headers["Location"]))
    session.refresh(key)
    assert key.revoked_at is not None and key.revoked_by_id == user(session, "inst_jinan").id

    refused = api(app, "/api/v1/certificates?limit=2", token)
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    assert refused.json["detail"] == "该接口密钥已吊销"
    page = text(client.get(f"{DETAILS}?id={key.id}"))
    assert "已吊销" in page and 'id="key-revoke-button"' not in page
    # revoking twice is refused with the reason, and changes nothing
    revoked_at = key.revoked_at
    resp = client.post(REVOKE, {"id": str(key.id)}, token_from=LIST)
    assert "该接口密钥已吊销" in text(client.get(resp.headers["Location"]))
    session.refresh(key)
    assert key.revoked_at == revoked_at


def test_an_expired_key_is_refused(app, login, session):
    client = login("province")
    token = created_token(create(client, org_of(session, "inst_jinan").id))
    key = key_of(session, token)
    key.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    resp = api(app, "/api/v1/certificates", token)
    assert resp.status_code == 401 and "已过期" in resp.json["detail"]
    listing = text(client.get(f"{LIST}?tab=expired"))
    assert key.name in listing and "已过期" in listing


def test_the_list_shows_the_last_call_and_the_details_the_calls(app, login, session):
    client = login("inst_jinan")
    token = created_token(create(client, org_of(session, "inst_jinan").id, name="调用记录测试"))
    key = key_of(session, token)
    assert "从未调用" in text(client.get(LIST))
    assert api(app, "/api/v1/certificates?limit=3", token).status_code == 200
    call = session.scalars(select(AuditLog).where(AuditLog.object_type == "api_key", AuditLog.object_id == key.id,
                                                  AuditLog.kind == "api")).one()
    listing = text(client.get(LIST))
    assert "从未调用" not in listing and call.created_at and "最近调用" in listing
    details = text(client.get(f"{DETAILS}?id={key.id}"))
    calls = details.split('id="key-calls"', 1)[1].split("</table>", 1)[0]
    assert "GET /api/v1/certificates" in calls and "<td>200</td>" in calls
    assert f"<td>{call.detail['rows']}</td>" in calls


def test_the_list_costs_one_query_for_the_last_calls(app, login, session):
    """最近调用 of every key on the page in one query (each key's newest call by the index), not one per key."""
    from sqlalchemy import event

    from models import db

    client = login("province")
    for n in range(4):
        create(client, org_of(session, "inst_jinan").id, name=f"密钥{n}")
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "audit_log" in statement and "api_key" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(LIST).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(seen) == 1, seen


# -- who may not -------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["province_reviewer", "jinan_reviewer", "enterprise_op", "ministry", "person"])
def test_others_never_see_the_screen(login, session, who):
    owner = login("province")
    key = key_of(session, created_token(create(owner, org_of(session, "inst_jinan").id)))
    client = login(who)
    assert LIST not in text(client.get("/admin/"))
    for url in (LIST, NEW, f"{DETAILS}?id={key.id}"):
        assert client.get(url).status_code in (403, 404), url
    before = key_count(session)
    assert client.post(NEW, form(org_of(session, "inst_jinan").id), token_from="/admin/").status_code in (403, 404)
    assert client.post(REVOKE, {"id": str(key.id)}, token_from="/admin/").status_code in (403, 404)
    session.refresh(key)
    assert key.revoked_at is None and key_count(session) == before


def test_another_organizations_key_is_a_404(login, session):
    province = login("province")
    foreign = key_of(session, created_token(create(province, org_of(session, "inst_qingdao").id, name="青岛的密钥")))
    client = login("inst_jinan")
    assert "青岛的密钥" not in text(client.get(LIST))
    assert "青岛的密钥" not in text(client.get(f"{LIST}?search=csk_{foreign.key_id}_x"))
    for ident in (foreign.id, 99999999):
        assert client.get(f"{DETAILS}?id={ident}").status_code == 404
        assert client.post(REVOKE, {"id": str(ident)}, token_from=LIST).status_code == 404
    session.refresh(foreign)
    assert foreign.revoked_at is None
    # the province finds it by its number
    assert "青岛的密钥" in text(province.get(f"{LIST}?search={foreign.key_id}"))


def test_posts_without_the_csrf_token_change_nothing(login, session):
    client = login("province")
    org = org_of(session, "inst_jinan")
    before = key_count(session)
    resp = client.post(NEW, form(org.id), csrf=False)
    assert resp.status_code == 400 and CSRF_MESSAGE in text(resp)
    assert key_count(session) == before
    key = key_of(session, created_token(create(client, org.id)))
    resp = client.post(REVOKE, {"id": str(key.id)}, csrf=False)
    assert resp.status_code == 400 and CSRF_MESSAGE in text(resp)
    resp = client.post(REVOKE, {"id": str(key.id), "csrf_token": "forged"})
    assert resp.status_code == 400
    session.refresh(key)
    assert key.revoked_at is None


# -- bad input -----------------------------------------------------------------------------------------
today = local_today()
BAD = [
    ({"name": ""}, "请填写密钥名称"),
    ({"name": "   "}, "请填写密钥名称"),
    ({"name": "名" * 51}, "密钥名称不能超过50个字符"),
    ({"scopes": None}, "请至少选择一项数据范围"),
    ({"scopes": ["registrations"]}, "所选数据范围超出该机构可见的数据"),  # an institution: no registrations
    ({"scopes": ["certificates", "write"]}, "所选数据范围超出该机构可见的数据"),
    ({"expires_on": (today - timedelta(days=1)).isoformat()}, "有效期至应晚于今天"),
    ({"expires_on": today.isoformat()}, "有效期至应晚于今天"),
    ({"expires_on": (today + timedelta(days=733)).isoformat()}, "不超过 732 天"),
    ({"expires_on": "2027-02-30"}, "请选择有效期至"),
    ({"expires_on": ""}, "请选择有效期至"),
    ({"rate_limit": "0"}, "每分钟调用上限应为 1 到 6000 的整数"),
    ({"rate_limit": str(10**9)}, "每分钟调用上限应为 1 到 6000 的整数"),
    ({"rate_limit": "abc"}, "每分钟调用上限应为 1 到 6000 的整数"),
    ({"rate_limit": "-5"}, "每分钟调用上限应为 1 到 6000 的整数"),
    ({"rate_limit": "1e3"}, "每分钟调用上限应为 1 到 6000 的整数"),
]


@pytest.mark.parametrize(("who", "overrides", "message"), [("inst_jinan", o, m) for o, m in BAD] + [
    ("province", {"scopes": ["registrations"]}, "所选数据范围超出该机构可见的数据"),
    ("province", {"organization_id": ""}, "请选择所属机构"),
], ids=lambda v: repr(v)[:40] if not isinstance(v, str) else v)
def test_bad_input_is_refused_field_by_field(login, session, who, overrides, message):
    client = login(who)
    org = org_of(session, "inst_jinan")
    before = key_count(session)
    resp = create(client, org.id, **overrides)
    assert resp.status_code == 200
    page = text(resp)
    assert message in page and "接口密钥未保存" in page and 'class="invalid-feedback' in page
    assert not TOKEN.search(page)
    assert key_count(session) == before


@pytest.mark.parametrize("field", ["rate_limit", "name", "expires_on", "organization_id"])
def test_a_nul_byte_is_refused_before_anything(login, session, field):
    client = login("inst_jinan")
    before = key_count(session)
    resp = create(client, org_of(session, "inst_jinan").id, **{field: "6\x000"})
    assert resp.status_code == 400 and MSG_NUL in text(resp)
    assert key_count(session) == before
