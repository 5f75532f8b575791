"""Batches of qualified candidates (批次, SPEC §5.1)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class BatchStatus(StrEnum):
    draft = "draft"
    authority_review = "authority_review"
    province_review = "province_review"
    approved = "approved"
    rejected = "rejected"
    deleted = "deleted"  # only ever seen in the TransitionLog: the row itself is removed

    @property
    def label(self) -> str:
        return BATCH_STATUS_LABELS[self]


BATCH_STATUS_LABELS = {
    BatchStatus.draft: "待提交",
    BatchStatus.authority_review: "审核中(主管部门)",
    BatchStatus.province_review: "审核中(省厅)",
    BatchStatus.approved: "审核通过",
    BatchStatus.rejected: "审核不通过",
    BatchStatus.deleted: "已删除",
}


class Batch(db.Model):
    __tablename__ = "batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # 批次代码
    name: Mapped[str] = mapped_column(String(100))
    institution_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    # Denormalised from the institution so row visibility is one indexed equality (SPEC §1).
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    status: Mapped[BatchStatus] = mapped_column(enum_column_type(BatchStatus), default=BatchStatus.draft, index=True)
    candidate_count: Mapped[int] = mapped_column(default=0)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    # when the batch last changed (models.changes stamps every flush that changes it): the API's sync
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    institution = relationship("Organization", foreign_keys=[institution_id])
    authority = relationship("Organization", foreign_keys=[authority_id])
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", order_by="Candidate.row_no"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return self.name

    @property
    def failed_candidates(self) -> list[Candidate]:
        return [c for c in self.candidates if c.failed]


class Candidate(db.Model):
    """A qualified candidate in a batch: one row of the uploaded template."""

    __tablename__ = "candidate"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"), index=True)
    row_no: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    gender: Mapped[str | None] = mapped_column(String(2))
    birth_date: Mapped[date | None] = mapped_column()
    phone: Mapped[str | None] = mapped_column(String(11))
    employer_name: Mapped[str | None] = mapped_column(String(200))
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupation.id"), index=True)
    level_id: Mapped[int | None] = mapped_column(ForeignKey("level.id"))
    failed: Mapped[bool] = mapped_column(default=False)  # reviewer marked 审核不通过
    fail_note: Mapped[str | None] = mapped_column(Text)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", use_alter=True), index=True)

    batch: Mapped[Batch] = relationship(back_populates="candidates")
    occupation = relationship("Occupation")
    level = relationship("Level")

    def __str__(self) -> str:
        return f"{self.name} {self.id_number}"


Index("ix_batch_institution_status", Batch.institution_id, Batch.status)
Index("ix_batch_authority_status", Batch.authority_id, Batch.status)
Index("ix_batch_changed", Batch.updated_at, Batch.id)  # the API's sync pages
