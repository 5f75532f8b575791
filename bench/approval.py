"""Time the province approval of one 5,000-candidate batch (SPEC §5.1 province_approve, §4 numbers).

The approval is the heaviest single transaction of the product: it creates the persons, allocates
the numbers of every (occupation, level) segment, inserts the certificates and links them back to
the candidates, all in one transaction. The batch belongs to the demo's ``inst_jinan`` and uses
every pair of its scope, so several segments are involved.

    python bench/approval.py                                  # SQLite, a temp file
    python bench/approval.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python bench/approval.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/scale --copy

With ``--postgres`` the bench creates a scratch database on that server (CREATE DATABASE needs
the privilege), builds the schema and the demo there, and drops it at the end: the database in
the URL is only used to connect. With ``--copy`` the scratch database is a copy of the one in the
URL (CREATE DATABASE … TEMPLATE; nothing else may be connected to it) — a database of `seed scale`
measures the approval among a million certificates and 800,000 persons — and is dropped after.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from app import create_app
from models import Certificate, User, db
from seed.demo import build_demo
from seed.reference import ensure_reference
from workflows.batch import BATCH, create_batch
from workflows.excel import CandidateRow as Row
from workflows.scope import scope_name_pairs
from workflows.validators import make_id_number

CANDIDATES = 5_000


@contextlib.contextmanager
def scratch_postgres(url: str, copy: bool = False):
    """A throwaway database on the server of ``url`` (empty, or a copy of the URL's database);
    yields its URL and drops it afterwards."""
    server = make_url(url)
    name = f"certoffice_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{server.database}"' if copy else ""))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def candidate_rows(count: int, pairs: list[tuple[str, str | None]]) -> list[Row]:
    """Clean template rows with valid, unique ID numbers, cycling through ``pairs``."""
    rows = []
    for i in range(count):
        birth = date(1970, 1, 1) + timedelta(days=i // 500)  # 500 sequence codes per birthday
        gender = "男" if i % 2 else "女"
        occupation, level = pairs[i % len(pairs)]
        rows.append(Row(row=i + 2, name=f"考生{i:05d}", id_number=make_id_number("370103", birth, i % 500, gender),
                        birth_date=birth, gender=gender, phone=f"137{i:08d}", employer_name=None,
                        occupation_name=occupation, level_name=level))
    return rows


def user(username: str) -> User:
    return db.session.scalars(select(User).where(User.username == username)).one()


def run(url: str, label: str, count: int, existing: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "SMS_OUTBOX_PATH": str(Path(tmp) / "sms_outbox.log")})
        with app.app_context():
            if existing:  # a copy of a database holding the demo (and maybe `seed scale`)
                label += f", among {db.session.scalar(select(func.count()).select_from(Certificate)):,} certificates"
            else:
                db.create_all()
                build_demo(db.session)
                db.session.commit()

            inst, authority, province = user("inst_jinan"), user("jinan"), user("province")
            occupations, levels = ensure_reference(db.session)
            pairs = scope_name_pairs(db.session, inst.organization)

            started = time.perf_counter()
            batch = create_batch(db.session, inst, f"基准测试批次 {count} 人", candidate_rows(count, pairs),
                                 occupations, levels)
            db.session.commit()
            created = time.perf_counter()
            BATCH.fire(db.session, inst, batch, "submit")
            db.session.commit()
            submitted = time.perf_counter()
            BATCH.fire(db.session, authority, batch, "authority_approve")
            db.session.commit()
            reviewed = time.perf_counter()

            BATCH.fire(db.session, province, batch, "province_approve")
            db.session.commit()
            approved = time.perf_counter()

            issued = db.session.scalar(select(func.count()).select_from(Certificate)
                                       .where(Certificate.batch_id == batch.id))
            if issued != count:
                raise SystemExit(f"expected {count} certificates, found {issued}")
            print(f"  create batch {created - started:.2f} s, submit {submitted - created:.2f} s, "
                  f"authority approval {reviewed - submitted:.2f} s ({len(pairs)} pairs, {label})")
            print(f"province approval of {count:,} candidates: {approved - reviewed:.2f} s ({label})")
            db.session.remove()
            db.engine.dispose()
            return approved - reviewed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server to run on (a scratch database is made)")
    parser.add_argument("--copy", action="store_true",
                        help="run on a copy of the --postgres URL's database (e.g. one of `seed scale`)")
    parser.add_argument("--candidates", type=int, default=CANDIDATES, help="batch size (default 5,000)")
    args = parser.parse_args(argv)
    if args.postgres:
        with scratch_postgres(args.postgres, copy=args.copy) as url:
            run(url, "PostgreSQL", args.candidates, existing=args.copy)
    else:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{Path(folder) / 'bench.db'}", "SQLite", args.candidates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
