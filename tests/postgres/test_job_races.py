"""The job queue on PostgreSQL (issue 16 item 2): several workers on several hosts claim at once
(FOR UPDATE SKIP LOCKED) and every job runs exactly once."""

from __future__ import annotations

import multiprocessing

from pg_helpers import collect, job_worker, user
from sqlalchemy import select

from models import Job, JobChunk, JobKind, JobStatus, db
from workflows.jobs import enqueue

WORKERS = 4
JOBS = 24


def test_concurrent_workers_run_every_job_exactly_once(pg_app, tmp_path):
    session = db.session
    owners = ["province", "jinan", "qingdao", "inst_jinan", "inst_qingdao", "direct_inst"]
    for i in range(JOBS):
        enqueue(session, user(session, owners[i % len(owners)]), kind=JobKind.export, title=f"证书库{i}",
                endpoint="certificate_library", arguments="", total=2, limit=JOBS)
    session.commit()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    processes = [ctx.Process(target=job_worker, args=(url, str(tmp_path), f"w{n}", barrier, results), daemon=True)
                 for n in range(WORKERS)]
    for p in processes:
        p.start()
    out = collect(results, processes, JOBS + WORKERS, timeout=120)
    errors = [o[1] for o in out if o[0] == "error"]
    assert not errors, "\n".join(errors)
    ran = sorted(job_id for who, job_id in out if who not in ("done", "error"))
    jobs = session.scalars(select(Job).order_by(Job.id)).all()
    assert ran == [j.id for j in jobs]  # each once, none twice
    assert {j.status for j in jobs} == {JobStatus.done} and {j.attempts for j in jobs} == {1}
    assert len({who for who, _ in out if who != "done"}) > 1  # the work was shared
    for job in jobs:
        data = session.scalar(select(JobChunk.data).where(JobChunk.job_id == job.id))
        assert data.decode().startswith(f"job {job.id} by ")


def test_the_queue_rules_hold_on_postgresql(pg_app, tmp_path, monkeypatch):
    """tests/unit/test_jobs.py's rules, each on a clean queue, on PostgreSQL (FOR UPDATE there
    refuses what SQLite ignores: a lock over an outer join, for one)."""
    from sqlalchemy import delete

    from tests.unit import test_jobs as unit

    session = db.session
    checks = [
        (unit.test_claims_take_the_oldest_job_once, ()),
        (unit.test_only_the_claim_holder_writes, ()),
        (unit.test_a_silent_worker_loses_its_job_to_the_next_attempt_then_it_fails, ()),
        (unit.test_finish_stores_the_file_in_chunks_and_expire_deletes_it, (tmp_path, monkeypatch)),
        (unit.test_a_stopping_worker_hands_the_job_back_without_spending_an_attempt, ()),
        (unit.test_housekeeping_requeues_a_dead_workers_job, ()),
        (unit.test_the_worker_runs_a_job_to_its_file, (tmp_path,)),
    ]
    for check, extra in checks:
        session.execute(delete(Job))
        session.commit()
        check(session, *extra)
