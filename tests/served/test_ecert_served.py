"""电子证书 served for real (issue 19): gunicorn on PostgreSQL signs a download with the key `make run`
made (instance/ecert), and a batch's .zip job — drawn and signed in processes the job worker spawns —
survives its worker being killed: the spawned processes end with it, another worker does the job
again, and the archive holds every valid certificate's file, each genuine."""

from __future__ import annotations

import io
import os
import signal
import time
import zipfile

import pytest

from tests.served.web import REPO
from workflows import ecert_document


def _roots() -> list:
    folder = REPO / "instance" / "ecert"
    key = ecert_document.SigningKey(str(folder / "demo-signing.p12"), (folder / "demo-password").read_text().strip())
    return ecert_document.trust_roots(key)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_download_and_a_batch_zip_that_outlives_a_killed_worker(gunicorn_pg):
    site = gunicorn_pg
    [(batch_id, username, valid)] = site.rows(
        "SELECT b.id, u.username, count(*) FROM batch b JOIN certificate c ON c.batch_id = b.id "
        "JOIN user_account u ON u.organization_id = b.institution_id "
        "WHERE c.status = 'valid' AND u.username LIKE 'sc\\_%' AND u.role = 'admin' "
        "GROUP BY b.id, u.username HAVING count(*) >= 80 ORDER BY count(*), b.id LIMIT 1")
    visitor = site.visitor(username)

    one = site.scalar("SELECT min(id) FROM certificate WHERE batch_id = :b AND status = 'valid'", b=batch_id)
    resp = visitor.get(f"/admin/certificate/ecert/?certificate_id={one}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/pdf", resp.text[:300]
    check = ecert_document.check_file(resp.content, _roots(), max_bytes=1 << 20)
    assert check.genuine, check.problem

    page = f"/admin/certificate/ecert/zip/?batch_id={batch_id}"
    assert f"{valid} 张" in visitor.get(page).text
    resp = visitor.post("/admin/certificate/ecert/zip/", {"batch_id": batch_id}, token_from=page)
    assert resp.status_code == 302 and "/admin/my_export/" in resp.headers["Location"], resp.text[:300]
    job_id = int(resp.headers["Location"].rsplit("=", 1)[1])

    worker = site.served.workers[0]
    deadline, spawned = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        job = next(j for j in visitor.get("/admin/my_export/status.json").json()["jobs"] if j["id"] == job_id)
        spawned = [pid for pid in _children(worker.pid)]
        if job["status"] == "running" and 0 < job["percent"] < 100 and len(spawned) >= 2:
            break
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    else:
        pytest.fail(f"the job never ran in spawned processes: {job}, children {spawned}")
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, as the OOM killer would
    worker.wait(timeout=10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in spawned):
        time.sleep(0.1)
    assert not [pid for pid in spawned if _alive(pid)], "the processes drawing PDFs outlived their worker"
    assert site.scalar("SELECT status FROM job WHERE id = :i", i=job_id) == "running"

    site.served.start_job_worker()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and site.scalar("SELECT status FROM job WHERE id = :i", i=job_id) != "done":
        time.sleep(0.2)
    status, attempts, error = site.rows("SELECT status, attempts, error FROM job WHERE id = :i", i=job_id)[0]
    assert (status, attempts) == ("done", 2), error
    download = visitor.get(f"/admin/my_export/download/{job_id}")
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    pdfs = [name for name in archive.namelist() if name.endswith(".pdf")]
    assert len(pdfs) == valid
    roots = _roots()
    for name in pdfs[:: max(1, len(pdfs) // 5)]:
        assert ecert_document.check_file(archive.read(name), roots, max_bytes=1 << 20).genuine, name
    log = site.rows("SELECT summary FROM audit_log WHERE object_type = 'job' AND object_id = :i ORDER BY id", i=job_id)
    assert any("执行中断" in s for (s,) in log) and any(f"下载电子证书（压缩包）：{valid:,} 张" in s for (s,) in log)
    assert site.settled() == 0
    assert not site.served.server_errors()
