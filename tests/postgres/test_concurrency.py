"""Concurrency and locking on a real PostgreSQL (SPEC §4 numbers, §5 optimistic locking).

The races run in separate OS processes (``spawn``: each builds its own app and engine, like
gunicorn workers) released together by a ``multiprocessing.Barrier`` right before they fire.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter, defaultdict

import pytest
from pg_helpers import (
    PAIR_SEGMENT,
    STALE_MESSAGE,
    STATE_MESSAGE_PREFIX,
    app_config,
    approve_worker,
    build_schema,
    collect,
    reviewable_batch,
    user,
)
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from models import Base, Batch, BatchStatus, Candidate, Certificate, NumberSegment, TransitionLog, db
from models.base import local_today, utcnow
from workflows import StaleObjectError, WorkflowError
from workflows.batch import BATCH
from workflows.numbering import SegmentKey, allocate_numbers

CANDIDATES = 30


def race(app, tmp_path, plans: list[tuple[str, list[int]]]) -> list[tuple]:
    """Run ``approve_worker`` once per (username, batch ids) plan, all in step; return every outcome."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(plans))
    results = ctx.Queue()
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    processes = [
        ctx.Process(target=approve_worker, args=(url, str(tmp_path), username, ids, barrier, results), daemon=True)
        for username, ids in plans
    ]
    for p in processes:
        p.start()
    outcomes = collect(results, processes, sum(len(ids) for _, ids in plans))
    errors = [o for o in outcomes if o[2] == "error"]
    assert not errors, "\n\n".join(f"{o[0]} batch {o[1]}: {o[3]}" for o in errors)
    assert len(outcomes) == sum(len(ids) for _, ids in plans), f"missing results: {outcomes}"
    db.session.expire_all()
    return outcomes


def serial(number: str) -> int:
    return int(number[-4:])


def segment_numbers(session, prefix: str) -> list[str]:
    """Every certificate number issued from the segment ``prefix`` (YY RRRR OOO L X)."""
    return list(session.scalars(select(Certificate.number).where(Certificate.number.startswith(prefix))))


def segment_row(session, prefix: str) -> NumberSegment:
    return session.scalars(
        select(NumberSegment).where(
            NumberSegment.year == 2000 + int(prefix[:2]), NumberSegment.region_code == prefix[2:6],
            NumberSegment.occupation_code == prefix[6:9], NumberSegment.level_code == prefix[9],
            NumberSegment.seg_index == int(prefix[10]),
        )
    ).one()


def assert_contiguous(session, prefix: str) -> int:
    """Serials 1..N with no gap and no duplicate, and the segment's position is N."""
    numbers = segment_numbers(session, prefix)
    serials = sorted(serial(n) for n in numbers)
    assert serials == list(range(1, len(serials) + 1)), f"gaps or duplicates in {prefix}: {serials}"
    assert segment_row(session, prefix).position == len(serials)
    return len(serials)


def issued(session, batch_id: int) -> list[str]:
    return list(session.scalars(select(Certificate.number).where(Certificate.batch_id == batch_id)))


def test_the_race_segment_starts_empty(pg_app):
    """The gap checks below count every number of the segment: the demo must issue none in it."""
    prefix = f"{local_today():%y}3701{PAIR_SEGMENT[0]}{PAIR_SEGMENT[1]}"
    assert segment_numbers(db.session, prefix) == []


# -- a. two processes, different batches, the same number segment ------------------------------
def test_simultaneous_approvals_of_different_batches_share_a_segment_without_gaps(pg_app, tmp_path):
    rounds = 3
    pairs = [(reviewable_batch(db.session, tag=10 * r + 1, count=CANDIDATES),
              reviewable_batch(db.session, tag=10 * r + 2, count=CANDIDATES)) for r in range(rounds)]
    db.session.commit()

    outcomes = race(pg_app, tmp_path, [("province", [a for a, _ in pairs]),
                                       ("province_reviewer", [b for _, b in pairs])])

    assert [o[2] for o in outcomes] == ["ok"] * (2 * rounds), outcomes
    all_numbers = []
    for a, b in pairs:
        for batch_id in (a, b):
            batch = db.session.get(Batch, batch_id)
            assert batch.status == BatchStatus.approved
            numbers = issued(db.session, batch_id)
            assert len(numbers) == CANDIDATES
            # one allocation per batch: each batch holds one consecutive block, never interleaved
            serials = sorted(serial(n) for n in numbers)
            assert serials == list(range(serials[0], serials[0] + CANDIDATES)), serials
            linked = db.session.scalar(select(func.count()).select_from(Candidate).where(
                Candidate.batch_id == batch_id, Candidate.certificate_id.is_not(None)))
            assert linked == CANDIDATES
            all_numbers.extend(numbers)
    assert len(all_numbers) == len(set(all_numbers)) == 2 * rounds * CANDIDATES
    prefixes = {n[:11] for n in all_numbers}
    assert len(prefixes) == 1, prefixes  # both competed for the same segment
    prefix = prefixes.pop()
    assert prefix[2:6] == "3701" and prefix[10] == "1"
    assert assert_contiguous(db.session, prefix) == 2 * rounds * CANDIDATES


# -- b. two reviewers, the same batch ------------------------------------------------------------
def test_two_reviewers_approving_the_same_batch_issue_once(pg_app, tmp_path):
    rounds = 4
    batch_ids = [reviewable_batch(db.session, tag=100 + r, count=CANDIDATES) for r in range(rounds)]
    db.session.commit()

    outcomes = race(pg_app, tmp_path, [("province", batch_ids), ("province_reviewer", batch_ids)])

    by_batch = defaultdict(list)
    for username, batch_id, outcome, message, error_type in outcomes:
        by_batch[batch_id].append((username, outcome, message, error_type))
    stale_seen = 0
    for batch_id in batch_ids:
        results = by_batch[batch_id]
        assert Counter(r[1] for r in results) == {"ok": 1, "refused": 1}, results
        (_, _, message, error_type), = [r for r in results if r[1] == "refused"]
        if message == STALE_MESSAGE:
            assert error_type == StaleObjectError.__name__
            stale_seen += 1
        else:
            assert message.startswith(STATE_MESSAGE_PREFIX), f"unexpected refusal: {message}"

        batch = db.session.get(Batch, batch_id)
        assert batch.status == BatchStatus.approved
        assert len(issued(db.session, batch_id)) == batch.candidate_count == CANDIDATES
        logs = db.session.scalar(select(func.count()).select_from(TransitionLog).where(
            TransitionLog.object_type == "batch", TransitionLog.object_id == batch_id,
            TransitionLog.transition == "province_approve"))
        assert logs == 1
    # both loaded the batch before the barrier, so the loser's version check is what stops it
    assert stale_seen >= 1, f"the optimistic-locking path never ran: {outcomes}"
    numbers = [n for b in batch_ids for n in issued(db.session, b)]
    assert len(set(numbers)) == rounds * CANDIDATES
    assert assert_contiguous(db.session, numbers[0][:11]) == rounds * CANDIDATES


def test_reviewer_holding_a_stale_batch_gets_the_stale_message(pg_app):
    """Same race without processes: B read the batch, A approved and committed, then B fires.

    In a race B's guards can run after A's commit; whatever they say, the answer must be
    「该记录已被他人处理」, and nothing may be issued twice.
    """
    batch_id = reviewable_batch(db.session, tag=200, count=5)
    db.session.commit()
    with Session(db.engine) as other:
        reviewer = user(other, "province_reviewer")
        stale = other.get(Batch, batch_id)
        _ = stale.institution.parent, reviewer.permissions, reviewer.organization

        BATCH.fire(db.session, user(db.session, "province"), db.session.get(Batch, batch_id), "province_approve")
        db.session.commit()

        with pytest.raises(WorkflowError) as refused:
            BATCH.fire(other, reviewer, stale, "province_approve")
        other.rollback()
    db.session.expire_all()
    assert len(issued(db.session, batch_id)) == 5
    assert refused.value.message == STALE_MESSAGE


# -- c. rollbacks leave no gap -------------------------------------------------------------------
def key_for(occupation_code: str = "003", level_code: str = "5", year: int | None = None) -> SegmentKey:
    return SegmentKey(year or local_today().year, "3701", occupation_code, level_code)


def test_rolled_back_allocation_is_handed_out_again(pg_app):
    key = key_for("003")
    first = allocate_numbers(db.session, key, 5)
    assert [serial(n) for n in first] == [1, 2, 3, 4, 5]
    db.session.rollback()

    again = allocate_numbers(db.session, key, 5)
    assert again == first
    db.session.commit()
    assert [serial(n) for n in allocate_numbers(db.session, key, 1)] == [6]
    db.session.commit()


def test_waiting_allocation_gets_the_numbers_a_rolled_back_one_released(pg_app):
    """B blocks on A's row lock; A rolls back; B gets serial 0001 — no gap, no duplicate."""
    key = key_for("004")
    allocate_numbers(db.session, key, 1)  # the segment row exists, so B really waits on A's lock
    db.session.commit()

    result: dict = {}
    engine = db.engine  # the thread has no app context

    def other_allocation():
        try:
            with Session(engine) as other:
                result["numbers"] = allocate_numbers(other, key, 3)
                other.commit()
        except Exception as exc:  # surfaced by the assertion below
            result["error"] = exc

    a_numbers = allocate_numbers(db.session, key, 10)
    assert [serial(n) for n in a_numbers] == list(range(2, 12))
    thread = threading.Thread(target=other_allocation)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive(), f"B did not wait for A's lock: {result}"
    db.session.rollback()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "error" not in result, result
    assert [serial(n) for n in result["numbers"]] == [2, 3, 4]


# -- d. full segments -----------------------------------------------------------------------------
def fill(session, key: SegmentKey, indexes, position: int = NumberSegment.SERIAL_MAX) -> None:
    for index in indexes:
        session.add(NumberSegment(year=key.year, region_code=key.region_code, occupation_code=key.occupation_code,
                                  level_code=key.level_code, seg_index=index, position=position, created_at=utcnow()))
    session.flush()


def test_full_index_nine_refuses_with_the_segment_named(pg_app):
    key = key_for("010")
    fill(db.session, key, range(1, 10))
    with pytest.raises(WorkflowError) as refused:
        allocate_numbers(db.session, key, 1)
    assert "第9号段" in refused.value.message
    assert str(key.year) in refused.value.message


def test_full_segment_opens_the_next_index(pg_app):
    key = key_for("011")
    fill(db.session, key, [1])
    number = allocate_numbers(db.session, key, 1)[0]
    assert len(number) == 15 and number[10] == "2" and number.endswith("0001")
    db.session.commit()

    spanning = key_for("012")
    fill(db.session, spanning, [1], position=NumberSegment.SERIAL_MAX - 1)
    numbers = allocate_numbers(db.session, spanning, 3)
    assert [(n[10], serial(n)) for n in numbers] == [("1", 9999), ("2", 1), ("2", 2)]


def test_approval_into_a_full_segment_changes_nothing(pg_app):
    batch_id = reviewable_batch(db.session, tag=300, count=3)
    key = key_for(*PAIR_SEGMENT)  # the batch's pair of a 济南 institution
    fill(db.session, key, range(1, 10))
    db.session.commit()

    batch = db.session.get(Batch, batch_id)
    with pytest.raises(WorkflowError) as refused:
        BATCH.fire(db.session, user(db.session, "province"), batch, "province_approve")
    assert "第9号段" in refused.value.message
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Batch, batch_id).status == BatchStatus.province_review
    assert issued(db.session, batch_id) == []


# -- e. the demo seed on PostgreSQL ---------------------------------------------------------------
def row_counts(session) -> dict[str, int]:
    return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_demo_seed_reruns_cleanly(pg_app):
    from seed.demo import build_demo

    seeded = row_counts(db.session)
    assert seeded["certificate"] > 0 and seeded["batch"] > 0
    for _ in range(2):
        build_demo(db.session, reset=True)
        db.session.commit()
        assert row_counts(db.session) == seeded


# -- f. migrations match the models ---------------------------------------------------------------
def test_migrations_build_the_models_schema(fresh_db, tmp_path):
    from app import create_app

    app = create_app(app_config(fresh_db(), tmp_path))
    with app.app_context():
        build_schema()  # `flask db upgrade` on an empty database
        try:
            inspector = inspect(db.engine)
            tables = set(inspector.get_table_names()) - {"alembic_version"}
            assert tables == set(Base.metadata.tables)
            for name, table in Base.metadata.tables.items():
                reflected = {c["name"]: c for c in inspector.get_columns(name)}
                assert set(reflected) == set(table.columns.keys()), name
                for column in table.columns:
                    assert reflected[column.name]["nullable"] == column.nullable, f"{name}.{column.name} nullability"
                indexes = {i["name"] for i in inspector.get_indexes(name) if not i.get("duplicates_constraint")}
                assert indexes == {i.name for i in table.indexes}, f"{name} indexes"
        finally:
            db.session.remove()
            db.engine.dispose()
