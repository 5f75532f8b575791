"""Time 电子证书 (issue 19): producing and signing one electronic certificate, 1,000 of them as a
job into one .zip, and the files' size. Targets: one < 200 ms, 1,000 < 60 s on 2 cores, each < 300 KB.

    python bench/ecert.py                       # SQLite, a temp file: the demo plus 1,200 certificates
    python bench/ecert.py --count 200           # a quicker run of the job

"One" is what a 下载电子证书 click costs in the web process: load the certificate, its current issue,
draw the PDF/A page, sign it (the signer is loaded once per process, as in a served worker). The
first call of a process also loads fpdf2, pyHanko and the font's character map: printed apart.
A holder's name with a character outside GB 2312 takes the full font: printed apart too.
The job is the real one: queued as the province's user, run by the job worker's code in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from app import create_app
from models import Certificate, CertificateStatus, db
from seed.demo import build_demo
from seed.scale import build_scale
from workflows.ecert_document import make_demo_ca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="certificates in the job (default 1,000)")
    parser.add_argument("--one", type=int, default=50, help="single certificates to time (default 50)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-ecert-"))
    key = make_demo_ca(str(folder / "key"), "山东省住房和城乡建设厅", password="bench")
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'b.db'}",
                      "SMS_OUTBOX_PATH": str(folder / "sms.log"), "ECERT_SIGNING_PKCS12": key,
                      "ECERT_SIGNING_PASSWORD": "bench", "ECERT_ZIP_MAX": max(args.count, 5000)})
    with app.app_context():
        db.create_all()
        build_demo(db.session)
        db.session.commit()
        build_scale(db.engine, args.count + 200, seed=19, echo=lambda *a, **k: None)
    print(f"database: demo + scale ({args.count + 200:,} certificates), SQLite in {folder}")

    from admin_views.ecert import electronic_pdf

    with app.test_request_context():
        ids = db.session.scalars(select(Certificate.id).where(Certificate.status == CertificateStatus.valid)
                                 .order_by(Certificate.id.desc()).limit(max(args.count, args.one) + 1)).all()
        first = db.session.get(Certificate, ids[-1])
        started = time.perf_counter()
        electronic_pdf(first)
        print(f"first in a process (imports, font map, key): {1000 * (time.perf_counter() - started):.0f} ms")
        times, sizes = [], []
        for cid in ids[:args.one]:
            db.session.expire_all()
            started = time.perf_counter()
            pdf = electronic_pdf(db.session.get(Certificate, cid))
            times.append(time.perf_counter() - started)
            sizes.append(len(pdf))
        db.session.commit()
        times.sort()
        print(f"one electronic certificate ({args.one} certificates): median {1000 * statistics.median(times):.0f} ms, "
              f"p95 {1000 * times[int(0.95 * (len(times) - 1))]:.0f} ms, max {1000 * times[-1]:.0f} ms "
              f"(target < 200 ms)")
        print(f"size: median {statistics.median(sizes) / 1024:.1f} KB, max {max(sizes) / 1024:.1f} KB (target < 300 KB)")

        rare = db.session.get(Certificate, ids[0])
        rare.person.name = "王䶮"  # U+4DAE, CJK Extension A: outside GB 2312
        db.session.flush()
        rare_times = []
        for _ in range(5):
            started = time.perf_counter()
            size = len(electronic_pdf(rare))
            rare_times.append(time.perf_counter() - started)
        print(f"a name outside GB 2312 (full font): median {1000 * statistics.median(rare_times):.0f} ms, {size / 1024:.1f} KB")
        db.session.rollback()

    job_ids = ids[:args.count]
    seconds, size, entries = run_zip_job(app, job_ids)
    print(f"{len(job_ids):,} electronic certificates as a job into one .zip: {seconds:.1f} s "
          f"({1000 * seconds / len(job_ids):.0f} ms each; target < 60 s), {entries:,} files, {size / 1024 / 1024:.1f} MB")


def run_zip_job(app, certificate_ids: list[int]) -> tuple[float, int, int]:
    """Queue the .zip job as the province's user and run it with the job worker's code; (seconds, bytes, files)."""
    from admin_views.ecert import enqueue_zip
    from admin_views.exports import run_jobs_once
    from models import Job, User

    with app.test_request_context():
        province = db.session.scalar(select(User).where(User.username == "province"))
        started = time.perf_counter()
        job = enqueue_zip(province, certificate_ids)
        db.session.commit()
        job_id = job.id
    run_jobs_once(app)
    seconds = time.perf_counter() - started
    with app.app_context():
        job = db.session.get(Job, job_id)
        from workflows.jobs import read_file

        data = read_file(db.session, job)
        with zipfile.ZipFile(_bytes_io(data)) as archive:
            entries = len([n for n in archive.namelist() if n.endswith(".pdf")])
        return seconds, len(data), entries


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


if __name__ == "__main__":
    main()
