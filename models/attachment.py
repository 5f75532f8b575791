"""Uploaded files, stored in the database so every app process sees them (ARCHITECTURE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import StrEnum, db, enum_column_type, utcnow


class AttachmentKind(StrEnum):
    document = "document"
    image = "image"

    @property
    def label(self) -> str:
        return {"document": "文档", "image": "图片"}[self.value]


class Attachment(db.Model):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(40))
    owner_id: Mapped[int] = mapped_column()
    kind: Mapped[AttachmentKind] = mapped_column(enum_column_type(AttachmentKind))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str | None] = mapped_column(String(40))  # 营业执照, 资质证书, 申辩材料 …
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.filename


Index("ix_attachment_owner", Attachment.owner_type, Attachment.owner_id)
