"""导出 and 我的导出 (issue 16; SPEC §11): small exports at once, large ones as jobs, files for their owner.

The worker runs in-process here (``build_worker(app).run(once=True)``) over the test's database;
tests/served runs it as the separate process it is in production, and kills it.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import timedelta
from urllib.parse import parse_qs

import openpyxl
import pytest
from sqlalchemy import func, select

from admin_views.exports import build_worker
from models import AuditLog, Job, JobChunk, JobStatus, db
from models.base import utcnow
from tests.factories import user
from workflows.audit import Kind

LIBRARY = "/admin/certificate_library/"


def rows_of(data: bytes) -> list[list]:
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    return [list(r) for r in ws.iter_rows(values_only=True)]


def run_jobs(app) -> int:
    return build_worker(app).run(once=True)


def test_a_small_export_is_sent_at_once_and_holds_no_connection(app, login):
    browser = login("inst_jinan")
    resp = browser.post("/admin/certificate/export.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert resp.headers["Content-Length"] == str(len(resp.data)) and resp.headers["Cache-Control"] == "no-store"
    assert len(rows_of(resp.data)) > 1
    assert db.engine.pool.checkedout() == 0
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_an_abandoned_download_leaves_no_connection_and_no_file(app, login, tmp_path, monkeypatch):
    """The client reads one chunk and goes away: nothing of the request stays behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own: others export beside it
    before = set(os.listdir(tempfile.gettempdir()))
    browser = login("province")
    db.session.commit()
    with app.app_context():
        resp = browser.client.post(LIBRARY + "export.xlsx", data={"csrf_token": browser.token}, buffered=False)
        first = next(iter(resp.response))
        assert first.startswith(b"PK")
        resp.close()
    assert db.engine.pool.checkedout() == 0
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("export-")}


def test_a_large_export_becomes_a_job_with_the_rows_the_list_shows(app, login, session):
    browser = login("province")
    inline = rows_of(browser.post(LIBRARY + "export.xlsx?search=张").data)
    assert len(inline) > 2
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    resp = browser.post(LIBRARY + "export.xlsx?search=张")
    assert resp.status_code == 302 and "/admin/my_export/" in resp.headers["Location"]
    job = session.scalars(select(Job)).one()
    assert (job.status, job.total, job.title) == (JobStatus.queued, len(inline) - 1, "证书库")
    assert parse_qs(job.arguments) == {"search": ["张"]}  # the list's query string, replayed by the job
    page = browser.get("/admin/my_export/").get_data(as_text=True)
    assert "已加入导出队列" in page and "排队中" in page and "exports.js" in page
    assert run_jobs(app) == 1
    session.expire_all()
    assert job.status == JobStatus.done and job.filename.startswith("证书-")
    page = browser.get("/admin/my_export/").get_data(as_text=True)
    assert "已完成" in page and f"/admin/my_export/download/{job.id}" in page
    download = browser.get(f"/admin/my_export/download/{job.id}")
    assert download.status_code == 200 and rows_of(download.data) == inline
    assert "filename*=UTF-8''" in download.headers["Content-Disposition"]
    logged = session.scalars(select(AuditLog.summary).where(AuditLog.kind == Kind.DOWNLOAD,
                                                            AuditLog.object_type == "job")).all()
    assert logged == [f"下载导出文件：证书库（任务 {job.id}）"]
    session.commit()  # the test's own connection back to the pool: none other may be out
    assert db.engine.pool.checkedout() == 0


def test_the_progress_poll_shows_only_the_users_own_jobs(app, login, session):
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    province, jinan = login("province"), login("jinan")
    province.post(LIBRARY + "export.xlsx")
    jinan.post("/admin/certificate/export.xlsx")
    own = province.get("/admin/my_export/status.json").get_json()["jobs"]
    assert len(own) == 1 and own[0]["status"] == "queued" and own[0]["text"].startswith("排队中")
    assert [j["id"] for j in jinan.get("/admin/my_export/status.json").get_json()["jobs"]] != [own[0]["id"]]


@pytest.mark.parametrize("path", ["/admin/my_export/download/{id}", "/admin/my_export/download/99999999",
                                  "/admin/my_export/download/99999999999999999999"])
def test_a_job_file_is_its_owners_alone(app, login, session, path):
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    login("province").post(LIBRARY + "export.xlsx")
    run_jobs(app)
    job = session.scalars(select(Job)).one()
    for who in ("jinan", "province_reviewer"):  # another organization, and a colleague
        resp = login(who).get(path.format(id=job.id))
        assert resp.status_code == 404 and "页面或记录不存在" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == Kind.DOWNLOAD)) == 0


def test_jobs_in_flight_are_limited_per_user(app, login, session):
    app.config.update(EXPORT_INLINE_MAX_ROWS=1, EXPORT_JOBS_PER_USER=2)
    browser = login("province")
    for _ in range(2):
        browser.post(LIBRARY + "export.xlsx")
    resp = browser.post(LIBRARY + "export.xlsx", follow_redirects=True)
    assert "您已有 2 个导出任务正在进行，请等待完成后再导出" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_an_expired_file_is_refused_with_a_message(app, login, session):
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    browser = login("province")
    browser.post(LIBRARY + "export.xlsx")
    run_jobs(app)
    job = session.scalars(select(Job)).one()
    job.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    resp = browser.get(f"/admin/my_export/download/{job.id}", follow_redirects=True)
    assert "导出文件已过期，请重新导出" in resp.get_data(as_text=True)
    run_jobs(app)  # the worker's housekeeping deletes the file
    session.expire_all()
    assert job.status == JobStatus.expired
    assert session.scalar(select(func.count()).select_from(JobChunk)) == 0
    assert "文件已删除" in browser.get("/admin/my_export/").get_data(as_text=True)


def test_a_job_is_run_as_its_owner_is_now(app, login, session):
    """The owner's right is checked again when the job runs: disabled meanwhile, no file."""
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    login("inst_jinan").post("/admin/certificate/export.xlsx")
    user(session, "inst_jinan").is_enabled = False
    session.commit()
    run_jobs(app)
    job = session.scalars(select(Job)).one()
    assert (job.status, job.error) == (JobStatus.failed, "无法导出：账号已停用")


def test_an_export_without_its_csrf_token_changes_nothing(app, login, session):
    browser = login("province")
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    resp = browser.post(LIBRARY + "export.xlsx", csrf=False)
    assert resp.status_code == 400 and "安全令牌" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == Kind.EXPORT)) == 0


# -- as an official opens it (issue 17 item 13) -------------------------------------------------------


def test_the_registered_export_opens_as_the_page_shows_it(app, login, session):
    """注册人员查询: 注册时间 in Beijing time as on the page (it was 8 hours behind), the header frozen
    with a filter, 身份证号 / 注册编号 / 聘用企业 wide enough for what they hold."""
    import re

    from models import Registration
    from models.base import format_local
    from workflows.excel import display_width

    browser = login("enterprise")
    page = browser.get("/admin/registered/").get_data(as_text=True)
    resp = browser.post("/admin/registered/export.xlsx", {"export_token": "abcdEFGH1234"},
                        token_from="/admin/registered/")
    assert resp.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    header = [c.value for c in ws[1]]
    assert header[:5] == ["姓名", "身份证号", "注册专业", "注册编号", "聘用企业"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{chr(64 + len(header))}{ws.max_row}"
    body = list(ws.iter_rows(min_row=2, values_only=True))
    assert body, "the demo enterprise has registered persons"
    for col, name in ((2, "身份证号"), (4, "注册编号"), (5, "聘用企业")):
        letter = chr(64 + col)
        widest = max(display_width(str(r[col - 1] or "")) for r in body)
        assert ws.column_dimensions[letter].width >= min(widest + 2, 60), name
    number_col, time_col = header.index("注册编号"), header.index("注册时间")
    for r in body:
        reg = session.scalars(select(Registration).where(Registration.registration_number == r[number_col])).one()
        shown = format_local(reg.decided_at)
        assert r[time_col].strftime("%Y-%m-%d %H:%M:%S") == shown  # the page's Beijing time
        assert shown[:16] in page or len(body) > 20
    # the page that asked says 「导出成功」: the download names its token (admin.js shows the message)
    cookie = re.search(r"export_done=([^;]+)", resp.headers["Set-Cookie"]).group(1)
    assert cookie == f"abcdEFGH1234.{len(body)}"
    assert "Max-Age=120" in resp.headers["Set-Cookie"] and "HttpOnly" not in resp.headers["Set-Cookie"]


def test_a_forged_export_token_sets_no_cookie(app, login):
    browser = login("inst_jinan")
    for token in ("", "short", "x" * 41, "a;b=c<script>"):
        resp = browser.post("/admin/certificate/export.xlsx", {"export_token": token})
        assert resp.status_code == 200 and "export_done" not in resp.headers.get("Set-Cookie", ""), token


def test_a_finished_job_says_export_succeeded_on_my_exports(app, login, session):
    browser = login("province")
    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    browser.post(LIBRARY + "export.xlsx?search=张")
    job = session.scalars(select(Job)).one()
    session.commit()  # the test's read ends before the worker writes
    assert run_jobs(app) == 1
    session.expire_all()
    page = browser.get(f"/admin/my_export/?finished={job.id}").get_data(as_text=True)
    assert f"导出成功：证书库，共 {job.total:,} 条" in page
    # another user's job id says nothing; nonsense is ignored
    other = login("jinan").get(f"/admin/my_export/?finished={job.id},abc,-1").get_data(as_text=True)
    assert "导出成功" not in other
