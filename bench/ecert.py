"""Time 电子证书 (issue 19): producing and signing one electronic certificate, 1,000 of them as a
job into one .zip, and the files' size. Targets: one < 200 ms, 1,000 < 60 s on 2 cores, each < 300 KB.

    python bench/ecert.py                       # SQLite, a temp file: the demo and a 1,000-candidate batch
    python bench/ecert.py --count 200           # a quicker run

"One" is what a 下载电子证书 click costs in the web process: load the certificate, its current issue,
draw the PDF/A page, sign it (the signer is loaded once per process, as in a served worker). The
first call of a process also loads fpdf2, pyHanko and the font's character map: printed apart.
A holder's name with a character outside GB 2312 takes the full font: printed apart too.
The job is the real one: the batch's 下载电子证书(压缩包) queued as its institution's user and run by
the job worker's code in this process (one worker: one core signs, as `make run` runs one).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from app import create_app
from models import Certificate, Job, JobChunk, JobKind, JobStatus, User, db
from seed.demo import build_demo
from workflows.ecert_document import make_demo_ca
from workflows.jobs import enqueue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="certificates in the job (default 1,000)")
    parser.add_argument("--one", type=int, default=50, help="single certificates to time (default 50)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-ecert-"))
    key = make_demo_ca(str(folder / "key"), "山东省住房和城乡建设厅", password="bench")
    # not TESTING: the app as it is served (its start-up objects frozen out of the collector's walk)
    app = create_app({"TESTING": False, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'b.db'}",
                      "SMS_OUTBOX_PATH": str(folder / "sms.log"), "ECERT_SIGNING_PKCS12": key,
                      "ECERT_SIGNING_PASSWORD": "bench", "ECERT_ZIP_MAX": max(args.count, 5000),
                      "JOB_BEAT_SECONDS": 0.5})
    with app.app_context():
        db.create_all()
        build_demo(db.session)
        db.session.commit()
        batch_id, approval = approved_batch(args.count)
    print(f"database: the demo, SQLite in {folder}; a batch of {args.count:,} candidates approved in {approval:.2f} s "
          f"(its {args.count:,} electronic certificates issued with it)")

    from admin_views.ecert import electronic_pdf

    with app.test_request_context():
        ids = db.session.scalars(select(Certificate.id).where(Certificate.batch_id == batch_id)
                                 .order_by(Certificate.id)).all()
        started = time.perf_counter()
        electronic_pdf(db.session.get(Certificate, ids[-1]))
        print(f"first in a process (imports, font map, key): {1000 * (time.perf_counter() - started):.0f} ms")
        times, sizes = [], []
        for cid in ids[:args.one]:
            db.session.expire_all()
            started = time.perf_counter()
            pdf = electronic_pdf(db.session.get(Certificate, cid))
            times.append(time.perf_counter() - started)
            sizes.append(len(pdf))
        times.sort()
        print(f"one electronic certificate ({args.one} certificates): median {1000 * statistics.median(times):.0f} ms, "
              f"p95 {1000 * times[int(0.95 * (len(times) - 1))]:.0f} ms, max {1000 * times[-1]:.0f} ms "
              f"(target < 200 ms)")
        print(f"size: median {statistics.median(sizes) / 1024:.1f} KB, max {max(sizes) / 1024:.1f} KB "
              f"(target < 300 KB)")

        rare = db.session.get(Certificate, ids[0])
        rare.person.name = "王䶮"  # U+4DAE, CJK Extension A: outside GB 2312, drawn from the full font
        db.session.flush()
        rare_times = []
        for _ in range(5):
            started = time.perf_counter()
            size = len(electronic_pdf(rare))
            rare_times.append(time.perf_counter() - started)
        print(f"a name outside GB 2312 (the full font): median {1000 * statistics.median(rare_times):.0f} ms, "
              f"{size / 1024:.1f} KB")
        db.session.rollback()

    seconds, size, entries = run_zip_job(app, batch_id)
    print(f"{entries:,} electronic certificates as a job into one .zip: {seconds:.1f} s "
          f"({1000 * seconds / max(entries, 1):.0f} ms each; target < 60 s), {size / 1024 / 1024:.1f} MB")


def approved_batch(count: int) -> tuple[int, float]:
    """A batch of ``count`` candidates of inst_jinan through submit and both approvals; (id, seconds
    of the province approval, which issues the certificates and their electronic certificates)."""
    from approval import candidate_rows

    from seed.reference import ensure_reference
    from workflows.batch import BATCH, create_batch
    from workflows.scope import scope_name_pairs

    inst, authority, province = (db.session.scalars(select(User).where(User.username == name)).one()
                                 for name in ("inst_jinan", "jinan", "province"))
    occupations, levels = ensure_reference(db.session)
    batch = create_batch(db.session, inst, f"电子证书基准 {count} 人",
                         candidate_rows(count, scope_name_pairs(db.session, inst.organization)), occupations, levels)
    BATCH.fire(db.session, inst, batch, "submit")
    BATCH.fire(db.session, authority, batch, "authority_approve")
    db.session.commit()
    started = time.perf_counter()
    BATCH.fire(db.session, province, batch, "province_approve")
    db.session.commit()
    return batch.id, time.perf_counter() - started


def run_zip_job(app, batch_id: int) -> tuple[float, int, int]:
    """The batch's 下载电子证书(压缩包) as inst_jinan asks for it on the batch's page, run by the job
    worker's code (admin_views.exports.build_worker); (seconds from queueing to the stored file, bytes, PDFs)."""
    from admin_views.exports import build_worker

    with app.app_context():
        inst = db.session.scalars(select(User).where(User.username == "inst_jinan")).one()
        started = time.perf_counter()
        job = enqueue(db.session, inst, kind=JobKind.ecert_zip, title="电子证书（基准）", endpoint="certificate",
                      arguments=urlencode({"base": "http://127.0.0.1:5000/", "batch_id": batch_id}),
                      total=0, limit=10)
        db.session.commit()
        job_id = job.id
    with app.app_context():
        build_worker(app).run(once=True)
        seconds = time.perf_counter() - started
        job = db.session.get(Job, job_id)
        if job.status != JobStatus.done:
            raise SystemExit(f"the job ended {job.status.value}: {job.error}")
        data = b"".join(db.session.scalars(select(JobChunk.data).where(JobChunk.job_id == job_id)
                                           .order_by(JobChunk.seq)))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = len([n for n in archive.namelist() if n.endswith(".pdf")])
    return seconds, len(data), entries


if __name__ == "__main__":
    main()
