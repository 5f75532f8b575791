"""接口密钥 (issue 20): who creates and revokes an organization's API keys, what a key may read, and
how a call proves it holds one.

A key belongs to one organization and reads what that organization's users see — the one
visibility rule (``workflows.visibility``), with ``KeyPrincipal`` standing in for a user — narrowed
to the scopes it was given, all read-only. The token is ``csk_<key_id>_<secret>``: ``key_id`` finds
the row, the secret is compared with its stored SHA-256 digest in constant time. Revoking, expiry
and an organization taken offline are read on every call, so each takes effect at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import false, select, true
from sqlalchemy.orm import Session

from models import ApiKey, AuditLog, Organization, OrgKind, OrgStatus, Role
from models.base import PROVINCE_TZ, local_day_start, local_today, utcnow
from models.user import Permission
from workflows import FormErrors, WorkflowError
from workflows.audit import Kind, log
from workflows.validators import FormFields
from workflows.visibility import clause

TOKEN_PREFIX = "csk_"
_TOKEN = re.compile(r"^csk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")

# scope code → (中文, the organization kinds whose users see such rows at all)
SCOPES: dict[str, tuple[str, frozenset[OrgKind]]] = {
    "verify": ("批量核验", frozenset(OrgKind)),
    "certificates": ("证书", frozenset({OrgKind.province, OrgKind.authority, OrgKind.institution,
                                      OrgKind.direct_institution, OrgKind.enterprise, OrgKind.school})),
    "registrations": ("注册人员", frozenset({OrgKind.province, OrgKind.ministry, OrgKind.enterprise})),
    "batches": ("批次状态", frozenset({OrgKind.province, OrgKind.authority, OrgKind.institution,
                                   OrgKind.direct_institution})),
}
DEFAULT_RATE_LIMIT = 600  # calls per minute
MAX_RATE_LIMIT = 6000
MAX_VALID_DAYS = 366 * 2  # a key lasts at most about two years; then a new one is made

NO_TOKEN = "缺少接口密钥：请在请求头中提供 Authorization: Bearer <接口密钥>"
BAD_TOKEN = "接口密钥无效"
REVOKED = "该接口密钥已吊销"
EXPIRED = "该接口密钥已过期"
OFFLINE = "该接口密钥所属机构已下线，密钥不可用"


def scope_label(code: str) -> str:
    return SCOPES[code][0] if code in SCOPES else code


def scopes_for(org: Organization | None) -> list[str]:
    """The scopes a key of ``org`` may be given: what its users may see at all."""
    if org is None:
        return []
    return [code for code, (_, kinds) in SCOPES.items() if org.kind in kinds]


# -- who manages keys --------------------------------------------------------------------------------
def _manager_org(user) -> Organization | None:
    own = getattr(user, "organization", None)
    if (own is None or not getattr(user, "is_enabled", False) or getattr(user, "role", None) != Role.admin
            or not user.has(Permission.user_manage)):
        return None
    return own


def manages_keys_of(user, org: Organization | None) -> bool:
    """The province's administrator, for any organization; an organization's administrator, for its own."""
    own = _manager_org(user)
    if own is None or org is None:
        return False
    return own.kind == OrgKind.province or own.id == org.id


def keys_clause(user):
    """The keys ``user`` manages, as a predicate on ApiKey (接口密钥's rows)."""
    own = _manager_org(user)
    if own is None:
        return false()
    if own.kind == OrgKind.province:
        return true()
    return ApiKey.organization_id == own.id


def may_manage_keys(user) -> bool:
    return _manager_org(user) is not None


def key_organizations(session: Session, user) -> list[Organization]:
    """Whose keys ``user`` may create (新建's choice): every active organization it sees for the
    province's administrator, its own (when active) for an organization's — ``manages_keys_of``'s rule."""
    own = _manager_org(user)
    if own is None:
        return []
    if own.kind != OrgKind.province:
        return [own] if own.status == OrgStatus.active else []
    stmt = select(Organization).where(Organization.status == OrgStatus.active, clause(user, Organization))
    return list(session.scalars(stmt.order_by(Organization.path, Organization.id)))


def offered_scopes(user) -> list[str]:
    """The scopes 新建 offers ``user``: all for the province's administrator (``create_key`` refuses those
    the chosen organization's kind cannot see), its own organization's for another."""
    own = _manager_org(user)
    if own is None:
        return []
    return list(SCOPES) if own.kind == OrgKind.province else scopes_for(own)


def chooses_organization(user) -> bool:
    """新建 asks for the organization (the province's administrator) or fixes it (its own)."""
    own = _manager_org(user)
    return own is not None and own.kind == OrgKind.province


# -- creating and revoking ------------------------------------------------------------------------------
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _parse_day(raw) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw or "").strip())
    except ValueError:
        raise ValueError("请选择有效期至（格式 2027-01-31）") from None


def create_key(session: Session, actor, org: Organization | None, values, *, today: date | None = None,
               ip: str | None = None) -> tuple[ApiKey, str]:
    """新建接口密钥. Returns (the key, the token — shown once, never stored)."""
    if org is None or not manages_keys_of(actor, org):
        raise FormErrors({"organization_id": "请选择所属机构"}) if org is None else WorkflowError("无权为该机构新建接口密钥")
    if org.status != OrgStatus.active:
        raise WorkflowError("该机构未启用或已下线，不能新建接口密钥")
    today = today or local_today()
    form = FormFields(values)
    name = form.text("name", "密钥名称", 50)
    allowed = scopes_for(org)
    wanted = values.getlist("scopes") if hasattr(values, "getlist") else list(values.get("scopes") or [])
    wanted = [code for code in dict.fromkeys(str(c) for c in wanted)]
    if not wanted:
        form.errors["scopes"] = "请至少选择一项数据范围"
    elif any(code not in allowed for code in wanted):
        form.errors["scopes"] = "所选数据范围超出该机构可见的数据"
    expires_on = form.check("expires_on", _parse_day, values.get("expires_on"))
    if expires_on is not None and not today < expires_on <= today + timedelta(days=MAX_VALID_DAYS):
        form.errors["expires_on"] = f"有效期至应晚于今天，且不超过 {MAX_VALID_DAYS} 天"
    rate = form.check("rate_limit", _rate, values.get("rate_limit"))
    form.raise_if_any()
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(organization=org, name=name, key_id=key_id, secret_hash=_digest(secret),
                 scopes=",".join(code for code in SCOPES if code in wanted), rate_limit=rate,
                 expires_at=local_day_start(expires_on + timedelta(days=1)), created_by_id=actor.id,
                 created_at=utcnow())
    session.add(key)
    session.flush()
    log(session, actor, Kind.EDIT, f"新建接口密钥「{name}」（{org.name}，{key_id}，"
        f"{'、'.join(scope_label(c) for c in key.scope_codes)}，有效期至 {expires_on}）", obj=key, ip=ip,
        detail={"key": key_id, "organization": org.name, "scopes": list(key.scope_codes),
                "expires_on": expires_on.isoformat(), "rate_limit": rate})
    return key, f"{TOKEN_PREFIX}{key_id}_{secret}"


def _rate(raw) -> int:
    text = str(raw if raw is not None else "").strip()
    if not text:
        return DEFAULT_RATE_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_RATE_LIMIT:
        raise ValueError(f"每分钟调用上限应为 1 到 {MAX_RATE_LIMIT} 的整数")
    return int(text)


def revoke_key(session: Session, actor, key: ApiKey, *, ip: str | None = None) -> None:
    """吊销: the next call with the key is refused (401)."""
    if not manages_keys_of(actor, key.organization):
        raise WorkflowError("无权吊销该接口密钥")
    if key.revoked_at is not None:
        raise WorkflowError("该接口密钥已吊销")
    key.revoked_at, key.revoked_by_id = utcnow(), actor.id
    log(session, actor, Kind.EDIT, f"吊销接口密钥「{key.name}」（{key.organization.name}，{key.key_id}）", obj=key,
        ip=ip, detail={"key": key.key_id})


def state_label(key: ApiKey, now: datetime | None = None) -> str:
    now = now or utcnow()
    if key.revoked_at is not None:
        return "已吊销"
    if key.expires_at <= now:
        return "已过期"
    return "有效"


# -- a call -------------------------------------------------------------------------------------------------
class KeyRefused(Exception):
    """A call's key is missing, unknown, revoked or expired (401), or lacks the scope (403)."""

    def __init__(self, status: int, message: str, key: ApiKey | None = None):
        super().__init__(message)
        self.code, self.message, self.key = status, message, key


@dataclass(frozen=True)
class KeyPrincipal:
    """Who a keyed call reads as: its organization, as one of its users (``workflows.visibility``)
    would — never an individual, never a person's own rows — with no permission of a user."""

    key: ApiKey

    is_authenticated = True
    is_enabled = True
    id = None
    person_id = None
    role = None

    @property
    def organization(self) -> Organization:
        return self.key.organization

    @property
    def organization_id(self) -> int:
        return self.key.organization_id

    @property
    def username(self) -> str:
        return f"接口密钥 {self.key.key_id}"

    def has(self, permission) -> bool:
        return False


def authenticate(session: Session, authorization: str | None, scope: str | None, *,
                 now: datetime | None = None) -> ApiKey:
    """The key an ``Authorization: Bearer csk_…`` header names, if it may make this call."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if not token or scheme.lower() != "bearer":
        raise KeyRefused(401, NO_TOKEN)
    match = _TOKEN.match(token.strip())
    if match is None:
        raise KeyRefused(401, BAD_TOKEN)
    key_id, secret = match.groups()
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
        raise KeyRefused(401, BAD_TOKEN)
    now = now or utcnow()
    if key.revoked_at is not None:
        raise KeyRefused(401, REVOKED, key)
    if key.expires_at <= now:
        raise KeyRefused(401, EXPIRED, key)
    if key.organization.status != OrgStatus.active:
        raise KeyRefused(401, OFFLINE, key)
    if scope is not None and scope not in key.scope_codes:
        raise KeyRefused(403, f"该接口密钥没有「{scope_label(scope)}」数据范围", key)
    return key


def record_call(session: Session, key: ApiKey, method: str, endpoint: str, rows: int, status: int, *,
                ip: str | None = None) -> None:
    """One 操作日志 row per call: the key, the endpoint, how many rows it returned."""
    log(session, KeyPrincipal(key), Kind.API,
        f"接口调用 {method} {endpoint[:200]}：{status}，{rows} 条（密钥「{key.name}」{key.key_id}）",
        obj=key, ip=ip, username=f"接口密钥 {key.key_id}",
        detail={"key": key.key_id, "endpoint": endpoint[:300], "method": method, "rows": rows, "status": status})


# -- a key's calls, as 操作日志 holds them (record_call) ---------------------------------------------------------
def _calls_of(ids):
    return (AuditLog.object_type == ApiKey.__tablename__, AuditLog.object_id.in_(ids), AuditLog.kind == Kind.API)


def last_calls(session: Session, key_ids) -> dict[int, datetime]:
    """最近调用 of each of ``key_ids`` (a list page's keys), in one grouped query: {key id: time}."""
    ids = sorted({int(i) for i in key_ids if i is not None})
    if not ids:
        return {}
    # the newest call of each key, read backwards along ix_audit_log_object (type, id, row id) and stopping
    # at the first: a key called 600 times a minute has ~860,000 rows a day, none of them read
    newest = (select(AuditLog.created_at).where(AuditLog.object_type == ApiKey.__tablename__,
                                                AuditLog.object_id == ApiKey.id, AuditLog.kind == Kind.API)
              .order_by(AuditLog.id.desc()).limit(1).correlate(ApiKey).scalar_subquery())
    stmt = select(ApiKey.id, newest).where(ApiKey.id.in_(ids))
    return {key_id: at for key_id, at in session.execute(stmt) if at is not None}


def recent_calls(session: Session, key: ApiKey, limit: int = 20) -> list[AuditLog]:
    """The newest ``limit`` calls made with ``key`` (its 操作日志 rows of kind 接口调用), newest first."""
    stmt = select(AuditLog).where(*_calls_of([key.id])).order_by(AuditLog.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def valid_through(key: ApiKey) -> date:
    """有效期至: the Beijing day a key is valid through (``expires_at`` is the instant the next one begins)."""
    return (key.expires_at.replace(tzinfo=UTC).astimezone(PROVINCE_TZ) - timedelta(microseconds=1)).date()
