"""The job queue (issue 16): long work runs once, in a worker process, with visible progress.

The queue is the ``job`` table itself. Why not a task-queue library: none of the well-kept ones
serves both the embedded default (SQLite, no other service) and PostgreSQL — Celery, RQ, Dramatiq
and arq need Redis or RabbitMQ, Procrastinate and PgQueuer are PostgreSQL-only, and Huey's SQL
storage (peewee) deletes a task when a worker takes it, so a killed worker loses it. The job row
is what 我的导出 shows anyway (status, progress, file, expiry), so the queue is a few statements
on it, each a compare-and-set:

    queued ──claim──▶ running ──finish──▶ done ──expire──▶ expired
                        │ ├──fail──▶ failed
                        │ └──release (worker stopping) ─▶ queued
                        └──reap (heartbeat older than the lease): queued again, or failed
                                                           after ``max_attempts``

A claim writes a fresh token on the row; every later write of that worker names the token, so a
worker whose lease ran out (stalled, or its job re-claimed after it was presumed dead) can no
longer touch the job: exactly one run's result is kept. Claims take the oldest queued job with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several workers on several hosts never wait on one
another) and under SQLite's ``BEGIN IMMEDIATE`` (one writer at a time) on SQLite.

No Flask here: the worker loop receives a session factory and the handlers by kind.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import User
from models.base import utcnow
from models.job import IN_FLIGHT, Job, JobChunk, JobKind, JobStatus
from workflows import WorkflowError
from workflows.audit import Kind, log

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
MSG_INTERRUPTED = "导出任务多次中断，未能完成，请重新导出"
MSG_BROKEN = "导出失败，请稍后重新导出；如仍失败请联系管理员"


class JobLost(Exception):
    """The claim moved on: the lease ran out and the job was requeued or failed, or taken again."""


class Stopping(Exception):
    """The worker was asked to stop: the job goes back to the queue for another worker."""


# -- asked for by a user ------------------------------------------------------------------------
def enqueue(session: Session, owner: User, *, kind: JobKind, title: str, endpoint: str, arguments: str,
            total: int, limit: int, ip: str | None = None) -> Job:
    """Queue a job for ``owner``, refused beyond ``limit`` jobs in flight (queued or running).

    The owner's row is locked first (PostgreSQL ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
    already serialises writers), so two clicks at once cannot both pass the limit.
    """
    session.execute(select(User.id).where(User.id == owner.id).with_for_update())
    flying = session.scalar(select(func.count()).select_from(Job).where(
        Job.owner_id == owner.id, Job.status.in_(IN_FLIGHT))) or 0
    if flying >= limit:
        raise WorkflowError(f"您已有 {flying} 个导出任务正在进行，请等待完成后再导出（最多同时 {limit} 个）")
    job = Job(kind=kind, owner_id=owner.id, title=title[:100], endpoint=endpoint, arguments=arguments[:2000],
              status=JobStatus.queued, total=total, progress=0, attempts=0, created_at=utcnow())
    session.add(job)
    session.flush()
    log(session, owner, Kind.EXPORT, f"导出{title}：共 {total:,} 条，已加入导出队列（任务 {job.id}）", obj=job, ip=ip)
    return job


# -- the worker's side: compare-and-set on the claim ---------------------------------------------
@dataclass(frozen=True)
class Claim:
    job_id: int
    token: str
    kind: JobKind
    attempt: int


def claim(session: Session, worker: str, *, now: datetime | None = None) -> Claim | None:
    """Take the oldest queued job, or None. Commits nothing: the caller commits at once."""
    now = now or utcnow()
    job_id = session.scalar(select(Job.id).where(Job.status == JobStatus.queued).order_by(Job.id).limit(1)
                            .with_for_update(of=Job, skip_locked=True))
    if job_id is None:
        return None
    token = secrets.token_hex(16)
    taken = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.running, claim_token=token, worker=worker[:100], attempts=Job.attempts + 1,
                heartbeat_at=now, started_at=func.coalesce(Job.started_at, now), progress=0, error=None)
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1:
        return None
    kind, attempt = session.execute(select(Job.kind, Job.attempts).where(Job.id == job_id)).one()
    return Claim(job_id, token, kind, attempt)


def _mine(claim_: Claim):
    return (Job.id == claim_.job_id, Job.claim_token == claim_.token, Job.status == JobStatus.running)


def beat(session: Session, claim_: Claim, progress: int, total: int | None = None, *,
         now: datetime | None = None) -> None:
    """Progress and heartbeat in one write; ``JobLost`` when the claim is no longer ours."""
    values = {"progress": progress, "heartbeat_at": now or utcnow()}
    if total is not None:
        values["total"] = total
    if session.execute(update(Job).where(*_mine(claim_)).values(**values)
                       .execution_options(synchronize_session=False)).rowcount != 1:
        raise JobLost(claim_.job_id)


def finish(session: Session, claim_: Claim, *, filename: str, path: str, rows: int, ttl: timedelta,
           now: datetime | None = None) -> None:
    """Store the file (in chunks) and mark the job done, in one transaction, if still ours."""
    now = now or utcnow()
    job = session.scalars(select(Job).where(*_mine(claim_)).with_for_update(of=Job)).first()
    if job is None:
        raise JobLost(claim_.job_id)
    session.execute(delete(JobChunk).where(JobChunk.job_id == job.id))
    size = 0
    with open(path, "rb") as fh:
        for seq, data in enumerate(iter(lambda: fh.read(CHUNK_BYTES), b"")):
            session.add(JobChunk(job_id=job.id, seq=seq, data=data))
            size += len(data)
            session.flush()  # one chunk in memory at a time
    job.status, job.claim_token = JobStatus.done, None
    job.progress = job.total = rows
    job.filename, job.size = filename[:200], size
    job.finished_at, job.expires_at, job.heartbeat_at = now, now + ttl, now
    log(session, job.owner, Kind.EXPORT, f"导出{job.title}：已完成，{rows:,} 条（任务 {job.id}）", obj=job,
        detail={"worker": job.worker, "attempt": job.attempts, "bytes": size})


def fail(session: Session, claim_: Claim, message: str, *, now: datetime | None = None) -> None:
    job = session.scalars(select(Job).where(*_mine(claim_))).first()
    if job is None:
        raise JobLost(claim_.job_id)
    _failed(session, job, message, now or utcnow())


def _failed(session: Session, job: Job, message: str, now: datetime) -> None:
    job.status, job.claim_token, job.error, job.finished_at = JobStatus.failed, None, message[:500], now
    log(session, job.owner, Kind.EXPORT, f"导出{job.title}：失败（任务 {job.id}）：{message}", obj=job,
        detail={"worker": job.worker, "attempt": job.attempts})


def release(session: Session, claim_: Claim) -> None:
    """A stopping worker hands its job back at once (not after the lease): it is not an attempt."""
    session.execute(update(Job).where(*_mine(claim_))
                    .values(status=JobStatus.queued, claim_token=None, attempts=Job.attempts - 1, progress=0)
                    .execution_options(synchronize_session=False))


def reap(session: Session, *, lease: timedelta, max_attempts: int, now: datetime | None = None) -> list[Job]:
    """Running jobs whose worker stopped beating (killed, host lost): queued again while attempts
    remain, else failed with a message — never 「进行中」 forever."""
    now = now or utcnow()
    cutoff = now - lease
    stale = session.scalars(select(Job).where(Job.status == JobStatus.running, Job.heartbeat_at < cutoff)
                            .order_by(Job.id).with_for_update(of=Job, skip_locked=True)).all()
    for job in stale:
        if job.attempts >= max_attempts:
            _failed(session, job, MSG_INTERRUPTED, now)
        else:
            log(session, job.owner, Kind.EXPORT,
                f"导出{job.title}：执行中断（{job.worker or '未知'}），重新排队（任务 {job.id}）", obj=job,
                detail={"worker": job.worker, "attempt": job.attempts, "heartbeat_at": job.heartbeat_at.isoformat()})
            job.status, job.claim_token, job.progress = JobStatus.queued, None, 0
    return stale


def expire(session: Session, *, now: datetime | None = None) -> int:
    """Files past their expiry are deleted; the job stays in 我的导出 as 已过期."""
    now = now or utcnow()
    ids = list(session.scalars(select(Job.id).where(Job.status == JobStatus.done, Job.expires_at < now)
                               .with_for_update(of=Job, skip_locked=True)))
    if ids:
        session.execute(delete(JobChunk).where(JobChunk.job_id.in_(ids)))
        session.execute(update(Job).where(Job.id.in_(ids), Job.status == JobStatus.done)
                        .values(status=JobStatus.expired).execution_options(synchronize_session=False))
    return len(ids)


# -- the worker loop -------------------------------------------------------------------------------
Progress = Callable[[int, "int | None"], None]
# handler(claim, progress) -> (filename, path of the file written, rows); raises WorkflowError to fail
Handler = Callable[[Claim, Progress], tuple[str, str, int]]


@dataclass
class WorkerSettings:
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 2
    poll_seconds: float = 1.0
    beat_seconds: float = 2.0
    ttl: timedelta = timedelta(hours=24)
    housekeeping_seconds: float = 5.0


class Worker:
    """Claims and runs jobs one at a time until ``stop()``; run several processes to run more.

    ``session_factory()`` gives a new ``Session``: each step (claim, beat, finish) is its own short
    transaction, so a job that writes for minutes never holds a lock or a transaction open.
    ``read_factory()`` gives one for reading only (on SQLite a deferred transaction, which takes no
    write lock: an idle worker polling the queue never makes a user's request wait).
    """

    def __init__(self, name: str, session_factory: Callable[[], Session], handlers: dict[JobKind, Handler],
                 settings: WorkerSettings | None = None, read_factory: Callable[[], Session] | None = None):
        self.name = name
        self.session_factory = session_factory
        self.read_factory = read_factory or session_factory
        self.handlers = handlers
        self.settings = settings or WorkerSettings()
        self.stopping = False
        self._housekept = 0.0

    def stop(self) -> None:
        self.stopping = True

    def run(self, *, once: bool = False) -> int:
        """Loop until stopped (``once``: until the queue is empty). Returns the jobs run."""
        ran = 0
        while not self.stopping:
            self.housekeeping()
            if self.run_one():
                ran += 1
                continue
            if once:
                break
            self._sleep(self.settings.poll_seconds)
        return ran

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.2, end - time.monotonic()))

    def _write(self, fn, *args, **kwargs):
        with self.session_factory() as session:
            result = fn(session, *args, **kwargs)
            session.commit()
            return result

    def housekeeping(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._housekept < self.settings.housekeeping_seconds:
            return
        self._housekept = time.monotonic()
        try:
            reaped = self._write(lambda session: [  # read before the commit expires the rows
                (job.id, job.worker, job.status.value)
                for job in reap(session, lease=self.settings.lease, max_attempts=self.settings.max_attempts)])
            for job_id, worker, status in reaped:
                logger.warning("job %s: worker %s stopped beating, %s", job_id, worker, status)
            self._write(expire)
        except Exception:  # a database hiccup must not end the worker
            logger.exception("job housekeeping failed")

    def _queue_empty(self) -> bool:
        with self.read_factory() as session:
            return session.scalar(select(Job.id).where(Job.status == JobStatus.queued).limit(1)) is None

    def run_one(self) -> bool:
        """Claim and run one job; False when there was none."""
        if self._queue_empty():  # a read first: idle workers do not take SQLite's write lock each second
            return False
        claimed = self._write(claim, self.name)
        if claimed is None:
            return False
        logger.info("job %s (%s) claimed by %s, attempt %s", claimed.job_id, claimed.kind, self.name, claimed.attempt)
        handler = self.handlers.get(claimed.kind)
        last = [0.0]

        def progress(done: int, total: int | None = None) -> None:
            if self.stopping:
                raise Stopping()
            if time.monotonic() - last[0] >= self.settings.beat_seconds:
                last[0] = time.monotonic()
                self._write(beat, claimed, done, total)

        try:
            if handler is None:
                raise WorkflowError("不支持的任务类型")
            progress(0)
            filename, path, rows = handler(claimed, progress)
            try:
                self._write(finish, claimed, filename=filename, path=path, rows=rows, ttl=self.settings.ttl)
            finally:
                os.unlink(path)
        except Stopping:
            self._write(release, claimed)
            logger.info("job %s handed back: worker %s stopping", claimed.job_id, self.name)
        except JobLost:
            logger.warning("job %s: claim of %s lost (lease ran out); its result is dropped", claimed.job_id, self.name)
        except WorkflowError as exc:
            self._try_fail(claimed, exc.message)
        except Exception:
            logger.exception("job %s failed", claimed.job_id)
            self._try_fail(claimed, MSG_BROKEN)
        return True

    def _try_fail(self, claimed: Claim, message: str) -> None:
        try:
            self._write(fail, claimed, message)
        except JobLost:
            pass
