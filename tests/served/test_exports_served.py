"""Exports served for real (issue 16 items 1, 2, 7): no transaction or connection outlives a
download however it ends, and a large export is a job that survives its worker being killed."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openpyxl
import pytest

CITY_ACCOUNTS = ("sc_auth_370100", "sc_auth_370200", "sc_auth_370300", "sc_auth_370600", "sc_auth_370700")
CERTIFICATES = "/admin/certificate/export.xlsx"


def _rows(data: bytes) -> int:
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    return sum(1 for _ in ws.iter_rows(values_only=True)) - 1


def _write_lock_free(site) -> bool:
    """SQLite: another writer takes the write lock within 1 s (the busy timeout of this check)."""
    path = site.served.database_url.split("sqlite:///", 1)[1]
    conn = sqlite3.connect(path, timeout=1)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_parallel_exports_half_aborted_leave_nothing_open(site):
    """20 exports at once, every other one dropped after its first byte (and, on gunicorn, a worker
    killed while they run): then a new sign-in and a write go through at once, no connection is
    left inside a transaction, and the complete downloads hold every row."""
    visitors = [site.visitor(CITY_ACCOUNTS[i % len(CITY_ACCOUNTS)]) for i in range(20)]
    expected = {u: site.scalar("SELECT count(*) FROM certificate c JOIN organization o ON o.id = c.authority_id "
                               "JOIN user_account u ON u.organization_id = o.id WHERE u.username = :u", u=u)
                for u in CITY_ACCOUNTS}
    assert min(expected.values()) > 500
    start = threading.Barrier(len(visitors))

    def export(i: int):
        visitor = visitors[i]
        start.wait(timeout=30)
        try:
            resp = visitor.post(CERTIFICATES, stream=True)
            if resp.status_code != 200:
                return ("status", resp.status_code)
            if i % 2:  # aborted mid-way: one byte, then the socket is closed
                first = resp.raw.read(1)
                resp.raw._fp.close()
                resp.close()
                return ("aborted", len(first))
            return ("complete", _rows(resp.content) == expected[visitor.username])
        except Exception as exc:  # a connection killed with its worker
            return ("error", type(exc).__name__)

    killed = []
    with ThreadPoolExecutor(max_workers=len(visitors)) as pool:
        futures = [pool.submit(export, i) for i in range(len(visitors))]
        if site.is_postgres:
            time.sleep(0.3)
            pids = site.served.web_worker_pids()
            os.kill(pids[0], signal.SIGKILL)  # a worker dies mid-export: its connection with it
            killed.append(pids[0])
        outcomes = [f.result(timeout=180) for f in futures]

    complete = [o for o in outcomes if o[0] == "complete"]
    assert len([o for o in outcomes if o[0] == "aborted"]) >= 5, outcomes
    assert complete and all(ok for _, ok in complete), outcomes
    assert not [o for o in outcomes if o[0] == "status"], outcomes
    if not killed:
        assert len(complete) == 10, outcomes
    # after it all: a sign-in and a write, at once
    began = time.monotonic()
    after = site.visitor("jinan")
    resp = after.post("/admin/message/read-all/")
    assert resp.status_code == 302, resp.text[:500]
    assert time.monotonic() - began < 10
    if site.is_postgres:
        assert site.settled() == 0
    else:
        assert _write_lock_free(site)
    assert not [e for e in site.served.server_errors() if "SIGKILL" not in e and "WORKER TIMEOUT" not in e]


def test_a_large_export_is_a_job_that_outlives_a_killed_worker(gunicorn_pg):
    """The province's 20,000 certificates: queued, progress shown while it runs, the job worker
    killed (SIGKILL) mid-file — another worker takes the job up after the lease and finishes it."""
    site = gunicorn_pg
    province = site.visitor("sc_province")
    total = site.scalar("SELECT count(*) FROM certificate")
    resp = province.post("/admin/certificate_library/export.xlsx")
    assert resp.status_code == 302 and "/admin/my_export/" in resp.headers["Location"], resp.text[:300]
    job_id = int(resp.headers["Location"].rsplit("=", 1)[1])
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = province.get("/admin/my_export/status.json").json()["jobs"]
        job = next(j for j in jobs if j["id"] == job_id)
        seen.append((job["status"], job["percent"]))
        if job["status"] == "running" and 0 < job["percent"] < 100:
            break
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    else:
        pytest.fail(f"the job never showed progress: {seen[-5:]}")
    worker = site.served.workers[0]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert site.scalar("SELECT status FROM job WHERE id = :i", i=job_id) == "running"  # as the dead worker left it
    site.served.start_job_worker()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and site.scalar("SELECT status FROM job WHERE id = :i", i=job_id) != "done":
        time.sleep(0.2)
    status, attempts = site.rows("SELECT status, attempts FROM job WHERE id = :i", i=job_id)[0]
    assert (status, attempts) == ("done", 2)
    page = province.get("/admin/my_export/").text
    assert f"/admin/my_export/download/{job_id}" in page and "已完成" in page
    download = province.get(f"/admin/my_export/download/{job_id}")
    assert download.status_code == 200 and _rows(download.content) == total
    other = site.visitor("sc_auth_370100")
    assert other.get(f"/admin/my_export/download/{job_id}").status_code == 404  # the owner's alone
    log = site.rows("SELECT summary FROM audit_log WHERE object_type = 'job' AND object_id = :i ORDER BY id", i=job_id)
    assert any("执行中断" in s for (s,) in log) and any("已完成" in s for (s,) in log)
    assert site.settled() == 0
