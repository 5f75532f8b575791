"""Concurrent certificate-number allocation on PostgreSQL (SPEC §4): throughput, duplicates, gaps.

Several OS processes (4 by default), each with its own app and engine like gunicorn workers,
allocate numbers of the same segment key as fast as they can, one transaction per allocation
(50 transactions of 20 numbers each by default). Every ``--rollback-every``-th transaction is
rolled back instead of committed: its numbers must be handed out again, never left as a gap.

    python bench/numbering.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres

A scratch database is created on that server and dropped at the end (CREATE DATABASE needs the
privilege); the database in the URL is only used to connect. Exit status 1 on any duplicate or gap.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from approval import scratch_postgres  # bench/ is on sys.path when run as a script

REGION, OCCUPATION, LEVEL = "3701", "001", "5"


def worker(url: str, tmp: str, transactions: int, size: int, rollback_every: int, barrier, results) -> None:
    from app import create_app
    from models import db
    from models.base import local_today
    from workflows.numbering import SegmentKey, allocate_numbers

    key = SegmentKey(local_today().year, REGION, OCCUPATION, LEVEL)
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                      "SMS_OUTBOX_PATH": f"{tmp}/sms_outbox.log"})
    with app.app_context():
        db.session.connection()  # connect before the start signal
        db.session.rollback()
        barrier.wait(timeout=120)
        started = time.monotonic()
        committed: list[str] = []
        rolled_back = done = 0
        while done < transactions:
            numbers = allocate_numbers(db.session, key, size)
            if rollback_every and (done + rolled_back + 1) % rollback_every == 0:
                db.session.rollback()
                rolled_back += 1
                continue
            db.session.commit()
            committed.extend(numbers)
            done += 1
        finished = time.monotonic()
        db.session.remove()
        db.engine.dispose()
    results.put((started, finished, committed, rolled_back))


def ordinal(number: str) -> int:
    """Position across segment indexes: index 1 serial 0001 is 1, index 2 serial 0001 is 10,000."""
    return (int(number[10]) - 1) * 9999 + int(number[11:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", required=True, help="PostgreSQL server to run on")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=50, help="committed transactions per process")
    parser.add_argument("--size", type=int, default=20, help="numbers per transaction")
    parser.add_argument("--rollback-every", type=int, default=10, help="roll back every n-th transaction (0: never)")
    args = parser.parse_args(argv)

    from sqlalchemy import select

    from app import create_app
    from models import NumberSegment, db

    with scratch_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "SMS_OUTBOX_PATH": f"{tmp}/sms_outbox.log"})
        with app.app_context():
            db.create_all()
            version = db.session.connection().exec_driver_sql("SHOW server_version").scalar()
            db.session.remove()
            db.engine.dispose()

        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(args.processes), ctx.Queue()
        processes = [
            ctx.Process(target=worker, daemon=True,
                        args=(url, tmp, args.transactions, args.size, args.rollback_every, barrier, results))
            for _ in range(args.processes)
        ]
        for p in processes:
            p.start()
        outcomes = [results.get(timeout=600) for _ in processes]
        for p in processes:
            p.join(timeout=30)

        started = min(o[0] for o in outcomes)
        finished = max(o[1] for o in outcomes)
        numbers = [n for o in outcomes for n in o[2]]
        rolled_back = sum(o[3] for o in outcomes)
        duplicates = len(numbers) - len(set(numbers))
        ordinals = sorted({ordinal(n) for n in numbers})
        gaps = (ordinals[-1] - len(ordinals)) if ordinals else 0  # missing positions in 1..max
        with app.app_context():
            positions = db.session.scalars(select(NumberSegment.position).where(
                NumberSegment.region_code == REGION, NumberSegment.occupation_code == OCCUPATION,
                NumberSegment.level_code == LEVEL)).all()
            db.session.remove()
            db.engine.dispose()
        in_segments = sum(positions)

    elapsed = finished - started
    transactions = args.processes * args.transactions
    print(f"PostgreSQL {version}: {args.processes} processes × {args.transactions} transactions × "
          f"{args.size} numbers, same segment key")
    print(f"  {len(numbers):,} numbers in {elapsed:.2f} s: {len(numbers) / elapsed:,.0f} numbers/s, "
          f"{transactions / elapsed:,.0f} transactions/s ({rolled_back} more rolled back)")
    print(f"  duplicates: {duplicates}, gaps: {gaps}, segment positions: {in_segments:,}")
    ok = duplicates == 0 and gaps == 0 and in_segments == len(numbers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
