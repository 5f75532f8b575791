"""我的消息 (SPEC §8): the one writer of ``Message`` rows.

The engine writes a transition's messages through ``send``; the few messages that are not a
transition's (a 申报 waiting for its enterprise, an anomaly waiting for its 申辩) do the same, so
every message has one shape: the recipients are enabled users, the actor is never told of what
they did themselves, and the row names the object it is about.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Message, User
from workflows.audit import Kind, log


def members(session: Session, org_ids: Iterable[int | None]) -> set[int]:
    """The enabled users of the organizations ``org_ids`` (None ids are passed over)."""
    org_ids = {i for i in org_ids if i}
    if not org_ids:
        return set()
    return set(session.scalars(select(User.id).where(User.organization_id.in_(org_ids), User.is_enabled.is_(True))))


def send(session: Session, *, title: str, body: str | None, obj=None, object_type: str | None = None,
         org_ids: Iterable[int | None] = (), user_ids: Iterable[int | None] = (), besides: int | None = None) -> int:
    """One message to each enabled user of ``org_ids`` and to each of ``user_ids``, about ``obj``
    (or ``object_type`` alone), except ``besides`` (the actor). Returns how many were written."""
    recipients = members(session, org_ids) | {i for i in user_ids if i}
    recipients.discard(besides)
    object_type = object_type or (getattr(obj, "__tablename__", None) if obj is not None else None)
    object_id = getattr(obj, "id", None)
    for user_id in sorted(recipients):
        session.add(Message(user_id=user_id, title=title[:200], body=body, object_type=object_type,
                            object_id=object_id))
    return len(recipients)


def mark_read(messages: Iterable[Message]) -> None:
    """标为已读 (or opened by their owner): messages loaded through visibility, so only one's own."""
    for message in messages:
        message.is_read = True


def read_all(session: Session, user) -> int:
    """全部标为已读: every unread message of ``user``, in the 操作日志; returns how many."""
    result = session.execute(update(Message).where(Message.user_id == user.id, Message.is_read.is_(False))
                             .values(is_read=True))
    log(session, user, Kind.EDIT, f"我的消息：全部标为已读（{result.rowcount} 条）", object_type="message")
    return result.rowcount
