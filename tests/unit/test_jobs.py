"""The job queue (workflows/jobs.py, issue 16): claims, leases, retries, files, expiry.

Each rule is a compare-and-set on the job row; these tests drive it through a real database
(the demo on SQLite) with the clock passed in, and the worker loop with real handlers that write
real files. The same statements run on PostgreSQL in tests/postgres/test_job_races.py, where
several processes claim at once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditLog, Job, JobChunk, JobKind, JobStatus, db
from models.base import read_only, utcnow
from tests.factories import user
from workflows import WorkflowError, jobs
from workflows.audit import Kind

LEASE = timedelta(seconds=60)


def queue(session, who="province", title="证书库", total=10, limit=3):
    job = jobs.enqueue(session, user(session, who), kind=JobKind.export, title=title, endpoint="certificate_library",
                       arguments="search=王", total=total, limit=limit)
    session.commit()
    return job


def test_enqueue_records_the_request_and_logs_it(session):
    job = queue(session, total=12_345)
    assert (job.status, job.progress, job.total, job.attempts) == (JobStatus.queued, 0, 12_345, 0)
    assert job.arguments == "search=王" and job.owner.username == "province"
    row = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.EXPORT).order_by(AuditLog.id.desc())).first()
    assert row.summary == f"导出证书库：共 12,345 条，已加入导出队列（任务 {job.id}）" and row.object_id == job.id


def test_a_user_may_have_only_so_many_jobs_in_flight(session):
    for _ in range(2):
        queue(session, limit=2)
    with pytest.raises(WorkflowError, match="您已有 2 个导出任务正在进行"):
        queue(session, limit=2)
    session.rollback()
    queue(session, who="jinan", limit=2)  # another user's are not counted
    first = session.scalars(select(Job).where(Job.owner_id == user(session, "province").id)).first()
    first.status = JobStatus.done  # one ended: room again
    session.commit()
    queue(session, limit=2)


def test_claims_take_the_oldest_job_once(session):
    a, b = queue(session), queue(session, who="jinan")
    first = jobs.claim(session, "w1")
    second = jobs.claim(session, "w2")
    session.commit()
    assert (first.job_id, second.job_id) == (a.id, b.id) and first.token != second.token
    assert jobs.claim(session, "w3") is None
    session.refresh(a)
    assert (a.status, a.worker, a.attempts, a.claim_token) == (JobStatus.running, "w1", 1, first.token)


def test_only_the_claim_holder_writes(session):
    job = queue(session)
    mine = jobs.claim(session, "w1")
    session.commit()
    jobs.beat(session, mine, 5, 10)
    forged = jobs.Claim(mine.job_id, "0" * 32, mine.kind, 1)
    for write in (lambda: jobs.beat(session, forged, 6),
                  lambda: jobs.fail(session, forged, "x"),
                  lambda: jobs.finish(session, forged, filename="f.xlsx", path=__file__, rows=1, ttl=LEASE)):
        with pytest.raises(jobs.JobLost):
            write()
    session.commit()
    session.refresh(job)
    assert (job.status, job.progress) == (JobStatus.running, 5)


def test_a_silent_worker_loses_its_job_to_the_next_attempt_then_it_fails(session):
    job = queue(session)
    now = utcnow()
    first = jobs.claim(session, "w1", now=now)
    session.commit()
    assert jobs.reap(session, lease=LEASE, max_attempts=2, now=now + timedelta(seconds=59)) == []
    assert [j.id for j in jobs.reap(session, lease=LEASE, max_attempts=2, now=now + timedelta(seconds=61))] == [job.id]
    session.commit()
    session.refresh(job)
    assert (job.status, job.claim_token, job.attempts) == (JobStatus.queued, None, 1)
    with pytest.raises(jobs.JobLost):  # the presumed-dead worker wakes up: its writes are refused
        jobs.beat(session, first, 9)
    second = jobs.claim(session, "w2", now=now + timedelta(seconds=62))
    session.commit()
    assert second.attempt == 2
    jobs.reap(session, lease=LEASE, max_attempts=2, now=now + timedelta(seconds=200))
    session.commit()
    session.refresh(job)
    assert (job.status, job.error) == (JobStatus.failed, jobs.MSG_INTERRUPTED)
    summaries = list(session.scalars(select(AuditLog.summary).where(AuditLog.object_type == "job",
                                                                    AuditLog.object_id == job.id)))
    assert any("执行中断（w1），重新排队" in s for s in summaries) and any("失败" in s for s in summaries)


def test_finish_stores_the_file_in_chunks_and_expire_deletes_it(session, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK_BYTES", 1000)
    data = bytes(range(256)) * 10  # 2,560 bytes: three chunks
    path = tmp_path / "f.xlsx"
    path.write_bytes(data)
    job = queue(session)
    mine = jobs.claim(session, "w1")
    now = utcnow()
    jobs.finish(session, mine, filename="证书-20261207.xlsx", path=str(path), rows=42, ttl=timedelta(hours=24),
                now=now)
    session.commit()
    session.refresh(job)
    assert (job.status, job.size, job.total, job.progress, job.percent) == (JobStatus.done, 2560, 42, 42, 100)
    assert job.expires_at == now + timedelta(hours=24) and job.claim_token is None
    chunks = session.scalars(select(JobChunk.data).where(JobChunk.job_id == job.id).order_by(JobChunk.seq)).all()
    assert [len(c) for c in chunks] == [1000, 1000, 560] and b"".join(chunks) == data
    assert jobs.expire(session, now=now + timedelta(hours=23)) == 0
    assert jobs.expire(session, now=now + timedelta(hours=25)) == 1
    session.commit()
    session.refresh(job)
    assert job.status == JobStatus.expired
    assert session.scalar(select(func.count()).select_from(JobChunk).where(JobChunk.job_id == job.id)) == 0


def test_a_stopping_worker_hands_the_job_back_without_spending_an_attempt(session):
    job = queue(session)
    mine = jobs.claim(session, "w1")
    jobs.release(session, mine)
    session.commit()
    session.refresh(job)
    assert (job.status, job.attempts, job.claim_token) == (JobStatus.queued, 0, None)


# -- the worker loop -----------------------------------------------------------------------------
def worker(handler, **settings):
    engine = db.engine
    return jobs.Worker("test-worker", lambda: Session(engine), {JobKind.export: handler},
                       jobs.WorkerSettings(beat_seconds=0, **settings))


def test_the_worker_runs_a_job_to_its_file(session, tmp_path):
    job = queue(session)
    beats = []

    def handler(claim, progress):
        path = tmp_path / "out.xlsx"
        path.write_bytes(b"PK-data")
        for n in (0, 500, 1000):
            progress(n, 1000)
            with Session(read_only(db.engine)) as reader:  # as the page would read it, meanwhile
                beats.append(reader.scalar(select(Job.progress).where(Job.id == claim.job_id)))
        return "证书.xlsx", str(path), 1000

    assert worker(handler).run(once=True) == 1
    session.expire_all()
    assert (job.status, job.filename, job.size, job.total) == (JobStatus.done, "证书.xlsx", 7, 1000)
    assert beats == [0, 500, 1000]  # each heartbeat committed: the page's progress bar reads it
    assert not (tmp_path / "out.xlsx").exists()  # the worker's copy is gone once stored


@pytest.mark.parametrize(("error", "message"), [
    (WorkflowError("无法导出：账号已停用"), "无法导出：账号已停用"),
    (RuntimeError("disk on fire"), jobs.MSG_BROKEN),
])
def test_a_failing_job_says_why_in_chinese(session, error, message):
    job = queue(session)

    def handler(claim, progress):
        raise error

    worker(handler).run(once=True)
    session.expire_all()
    assert (job.status, job.error) == (JobStatus.failed, message)


def test_a_worker_told_to_stop_hands_its_job_back(session, tmp_path):
    job = queue(session)
    w = None

    def handler(claim, progress):
        w.stop()  # SIGTERM arrives while the job writes
        progress(10, 100)
        raise AssertionError("progress must raise once the worker is stopping")

    w = worker(handler)
    w.run()
    session.expire_all()
    assert (job.status, job.attempts) == (JobStatus.queued, 0)


def test_housekeeping_requeues_a_dead_workers_job(session):
    job = queue(session)
    jobs.claim(session, "dead", now=utcnow() - timedelta(minutes=5))
    session.commit()
    worker(lambda c, p: None, lease=LEASE).housekeeping(force=True)
    session.expire_all()
    assert (job.status, job.attempts) == (JobStatus.queued, 1)


def test_housekeeping_names_the_job_it_took_back_and_fails_nowhere(session, caplog):
    """The warning names the job, read before the commit expired the row (reading it after raised
    DetachedInstanceError, logged as 「job housekeeping failed」, and skipped that round's expiry)."""
    job = queue(session)
    jobs.claim(session, "dead", now=utcnow() - timedelta(minutes=5))
    session.commit()
    with caplog.at_level("WARNING", logger="workflows.jobs"):
        worker(lambda c, p: None, lease=LEASE).housekeeping(force=True)
    assert [r.getMessage() for r in caplog.records] == [f"job {job.id}: worker dead stopped beating, queued"]
