"""Background jobs (issue 16): long exports run outside the request that asked for them.

A ``Job`` is queued by a user's request and run by a job worker process (``flask jobs worker``);
its row is both the queue entry and what 我的导出 shows (status, progress, file). The file it
produces lives in the database in ``JobChunk`` rows, like attachments, so any web process on
any host can hand it to its owner.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    expired = "expired"

    @property
    def label(self) -> str:
        return {"queued": "排队中", "running": "进行中", "done": "已完成", "failed": "失败",
                "expired": "已过期"}[self.value]


IN_FLIGHT = (JobStatus.queued, JobStatus.running)


class JobKind(StrEnum):
    export = "export"
    ecert_zip = "ecert_zip"  # 下载电子证书(压缩包) (issue 19): signed PDFs in one .zip

    @property
    def label(self) -> str:
        return {"export": "导出", "ecert_zip": "电子证书"}[self.value]


class Job(db.Model):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_column_type(JobKind))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    # what the owner sees: 「证书查看」, and where the job's input comes from: a list view's endpoint
    # and the query string it was filtered, searched and sorted with when 导出 was clicked
    title: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[JobStatus] = mapped_column(enum_column_type(JobStatus), default=JobStatus.queued)
    total: Mapped[int] = mapped_column(default=0)  # rows to write, as counted when queued/started
    progress: Mapped[int] = mapped_column(default=0)  # rows written
    attempts: Mapped[int] = mapped_column(default=0)
    # the claim: a worker owns a running job while its token is on the row and its heartbeat is recent
    claim_token: Mapped[str | None] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(500))
    filename: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()

    owner = relationship("User")

    @property
    def percent(self) -> int:
        if self.status == JobStatus.done:
            return 100
        return min(99, self.progress * 100 // self.total) if self.total else 0

    def __str__(self) -> str:
        return f"{self.kind.label}{self.title}"


# claiming reads the oldest queued job; the owner's list and the in-flight limit read by owner
Index("ix_job_status_id", Job.status, Job.id)
Index("ix_job_owner_status", Job.owner_id, Job.status)


class JobChunk(db.Model):
    """One piece (≤ 1 MB) of a job's file: a download streams them without holding a whole file."""

    __tablename__ = "job_chunk"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
