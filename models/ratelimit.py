"""Fixed-window request counters for public pages (SPEC §10: 证书查询 is rate-limited).

Kept in the database, not in process memory, because several gunicorn processes (and
machines) answer the same visitor: only a shared counter limits them all together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import db


class RateLimitHit(db.Model):
    """How many requests ``key`` (e.g. ``verify:<client IP>``) made in the window starting at
    ``window_start``; ``workflows.verification.hit`` inserts or increments it atomically."""

    __tablename__ = "rate_limit_hit"
    # The unique index leads with ``key``: it is also the index for looking a key up.
    __table_args__ = (UniqueConstraint("key", "window_start", name="uq_rate_limit_hit_key_window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    window_start: Mapped[datetime] = mapped_column()  # naive UTC, a multiple of the window length
    # When the window is over: old rows are deleted by this, whatever window length each key uses.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    count: Mapped[int] = mapped_column(default=0)
