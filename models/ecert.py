"""电子证书 (issue 19): each issue of a certificate as a signed electronic certificate.

A certificate's electronic certificate is issued when the certificate is (batch approval, a
reissue's approval, 激活) and again after a name or ID number change; each issue is one row with
its own 证照标识 (``identifier``, built by ``workflows.ecert``). The PDF itself is produced and
signed on request from the certificate's current data, so it is not stored: only which issue is
current, and when and why an earlier one stopped being current (``ended_at``, ``end_reason``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class ElectronicEnd(StrEnum):
    """Why an issue of an electronic certificate is no longer current (what 证书查询 says)."""

    cancelled = "cancelled"  # 注销 (by the province, or an approved 注销 application)
    voided = "voided"  # 作废, and 补办作废: the reissue has a new number and its own issue
    changed = "changed"  # 姓名 or 身份证号 changed: a new issue of the same certificate replaces it

    @property
    def label(self) -> str:
        return {"cancelled": "已注销", "voided": "已作废", "changed": "已变更，请以新证为准"}[self.value]


class ElectronicCertificate(db.Model):
    __tablename__ = "electronic_certificate"
    __table_args__ = (UniqueConstraint("certificate_id", "sequence", name="uq_electronic_certificate_issue"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), index=True)
    sequence: Mapped[int] = mapped_column()  # 1 for the first issue of this certificate, then 2, 3 …
    identifier: Mapped[str] = mapped_column(String(100), unique=True)  # 证照标识
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[ElectronicEnd | None] = mapped_column(enum_column_type(ElectronicEnd))

    certificate = relationship("Certificate")

    def __str__(self) -> str:
        return self.identifier
