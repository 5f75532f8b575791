"""接口密钥 (issue 20): an organization's key to the data-exchange API.

The secret is shown once when the key is created and stored only as its SHA-256 digest (a random
256-bit secret needs no slow hash: nothing about it can be guessed from a dictionary). ``key_id`` is
the public half of the token, the row a call names; revoking sets ``revoked_at``, read by every call.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import db, utcnow


class ApiKey(db.Model):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # the token's public part
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the secret part
    scopes: Mapped[str] = mapped_column(String(100))  # scope codes, comma-separated (workflows.apikeys.SCOPES)
    rate_limit: Mapped[int] = mapped_column()  # calls per minute
    expires_at: Mapped[datetime] = mapped_column()  # naive UTC: the end of the chosen day, Beijing time
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    organization = relationship("Organization")
    created_by = relationship("User", foreign_keys=[created_by_id])
    revoked_by = relationship("User", foreign_keys=[revoked_by_id])

    @property
    def scope_codes(self) -> tuple[str, ...]:
        return tuple(code for code in (self.scopes or "").split(",") if code)

    def __str__(self) -> str:
        return self.name
