"""Signed-in sessions kept on the server (issue 16; SPEC §9; 等保 三级 requires that a session ends).

The browser's session cookie is signed, so it cannot be forged — but a signed cookie alone cannot be
*ended*: a copy made before 退出 would open the site for as long as it is not idle. So a sign-in opens
a ``UserSession`` row and puts a random id in the cookie; every request must find that row open.

Why this and not server-side sessions (Flask-Session): the cookie keeps carrying the little it
holds (the CSRF token, a half-finished sign-in), nothing is written per request, and several
processes and hosts share the rows through the database they already share. The check costs one
indexed lookup beside the user's own, and the idle time is written at most once a minute.

Who ends what:
    退出                                  → that session
    修改密码                              → every other session of the user
    找回密码, 重置密码, 停用, 删除用户,
    取消绑定手机号                        → every session of the user
    机构下线                              → every session of the organization's users
    idle longer than IDLE_TIMEOUT_MINUTES → that session, at its next request
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from models import User, UserSession
from models.base import utcnow


class Reason:
    """Why a session ended; the message is what the browser holding it is told at its next click."""

    LOGOUT = "logout"
    IDLE = "idle"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    DISABLED = "disabled"
    PHONE_UNBOUND = "phone_unbound"
    ORG_OFFLINE = "org_offline"

    MESSAGES = {
        "logout": "您已退出登录，请重新登录",
        "idle": "登录超时，请重新登录",
        "password_changed": "密码已修改，请使用新密码重新登录",
        "password_reset": "密码已重置，请重新登录",
        "disabled": "账号已停用",
        "phone_unbound": "账号的绑定手机号已取消，请联系管理员",
        "org_offline": "所属机构已下线，无法登录",
    }


# an idle session's last_seen_at is written at most this often (a write per click would serialise
# every request on SQLite for nothing)
TOUCH_EVERY = timedelta(seconds=60)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()


def start(session: Session, user: User, *, now: datetime | None = None, ip: str | None = None,
          user_agent: str | None = None) -> str:
    """Open a session for ``user``; returns the id the cookie carries (only its hash is stored)."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(32)
    session.add(UserSession(sid_hash=_hash(sid), user_id=user.id, created_at=now, last_seen_at=now,
                            ip=(ip or "")[:45] or None, user_agent=(user_agent or "")[:200] or None))
    session.flush()
    return sid


def find_with_user(session: Session, sid: object) -> tuple[UserSession, User] | None:
    """The session row of a cookie's id, open or ended (None for anything else), and its user with
    the organization and permissions, in one statement: every request starts here."""
    if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
        return None
    stmt = (select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.sid_hash == _hash(sid))
            .options(joinedload(User.organization), joinedload(User.permission_rows)))
    found = session.execute(stmt).unique().first()
    return (found[0], found[1]) if found else None


def idle_too_long(row: UserSession, idle: timedelta, now: datetime | None = None) -> bool:
    return (now or utcnow()) - row.last_seen_at > idle


def touch(row: UserSession, now: datetime | None = None) -> bool:
    """Note activity; True when the row changed (the caller commits)."""
    now = now or utcnow()
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        return True
    return False


def end(row: UserSession, reason: str, now: datetime | None = None) -> None:
    if row.ended_at is None:
        row.ended_at, row.end_reason = now or utcnow(), reason


def end_all(session: Session, reason: str, *, user_ids=None, organization_id: int | None = None,
            keep: UserSession | None = None, now: datetime | None = None) -> int:
    """End the open sessions of ``user_ids`` (or of every user of ``organization_id``), except ``keep``.
    Returns how many ended."""
    stmt = update(UserSession).where(UserSession.ended_at.is_(None))
    if user_ids is not None:
        stmt = stmt.where(UserSession.user_id.in_(list(user_ids)))
    elif organization_id is not None:
        stmt = stmt.where(UserSession.user_id.in_(select(User.id).where(User.organization_id == organization_id)))
    else:
        raise ValueError("end_all needs user_ids or organization_id")
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep.id)
    result = session.execute(stmt.values(ended_at=now or utcnow(), end_reason=reason)
                             .execution_options(synchronize_session="fetch"))
    return result.rowcount


def message(row: UserSession | None) -> str:
    if row is None or row.end_reason is None:
        return "请重新登录"
    return Reason.MESSAGES.get(row.end_reason, "请重新登录")
