"""我的导出 (issue 16; SPEC §11): export jobs, their progress, their files, and the job worker.

A list's 导出 of more than EXPORT_INLINE_MAX_ROWS rows is queued (``SecureModelView.export_xlsx_view``)
and run here by ``flask jobs worker``: the job replays the list's query string as its owner, in a
request context of its own, so the file holds exactly what the list showed, through the same
visibility — and the owner's right to it is checked again when it runs. The queue's rules are in
``workflows.jobs``; this module is the Flask side: the page, the JSON its progress bars poll, the
download (the owner's only, logged), and the worker command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
from datetime import timedelta

import click
from flask import Flask, current_app, flash, jsonify, redirect, request, url_for
from flask.cli import with_appcontext
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_views.access import client_ip
from admin_views.ecert import ZIP_MIMETYPE, zip_handler
from admin_views.exporting import XLSX_MIMETYPE, file_response, job_view, sign_in_owner, temp_file_path
from admin_views.listing import AtLeast
from admin_views.model_views import SecureModelView
from models import Job, JobChunk, JobKind, JobStatus, db
from models.base import SQLITE_BEGIN, read_only, utcnow
from workflows import WorkflowError
from workflows.audit import Kind, log
from workflows.jobs import Claim, Worker, WorkerSettings

logger = logging.getLogger(__name__)

MSG_EXPIRED = "导出文件已过期，请重新导出"
MSG_NOT_READY = "导出尚未完成，请稍后再下载"


def _size(view, context, model, name):
    if not model.size:
        return ""
    return f"{model.size / 1024 / 1024:.1f} MB" if model.size >= 1024 * 1024 else f"{max(1, model.size // 1024)} KB"


def _progress(view, context, model, name):
    """A progress bar: rows written of total; the page's script moves it while the job runs."""
    if model.status == JobStatus.failed:
        return Markup('<span class="text-danger job-error">{}</span>').format(model.error or "失败")
    if model.status == JobStatus.expired:
        return "文件已删除"
    return Markup(
        '<div class="job-progress" data-job="{id}" data-status="{status}">'
        '<progress max="100" value="{percent}">{percent}%</progress> '
        '<small class="job-progress-label">{label}</small></div>'
    ).format(id=model.id, status=model.status.value, percent=model.percent, label=_progress_label(model))


def _progress_label(job: Job) -> str:
    unit = "张" if job.kind == JobKind.ecert_zip else "条"  # electronic certificates, or rows
    if job.status == JobStatus.done:
        return f"{job.total:,} {unit}"
    if job.status == JobStatus.queued:
        return f"排队中，共 {job.total:,} {unit}"
    return f"{job.progress:,} / {job.total:,} {unit}"


def _status(view, context, model, name):
    css = {JobStatus.done: "success", JobStatus.failed: "danger", JobStatus.running: "primary",
           JobStatus.queued: "secondary", JobStatus.expired: "light"}[model.status]
    return Markup('<span class="badge badge-{} job-status" data-job="{}">{}</span>').format(
        css, model.id, model.status.label)


def _download(view, context, model, name):
    if model.status == JobStatus.done and not _expired(model):
        return Markup('<a class="btn btn-sm btn-primary job-download" href="{}">下载</a>').format(
            url_for(".download_view", id=model.id))
    return ""


def _expired(job: Job) -> bool:
    return job.status == JobStatus.expired or (job.expires_at is not None and job.expires_at <= utcnow())


class ExportJobView(SecureModelView):
    """我的导出: the user's own export jobs (visibility: the owner only), newest first."""

    individual = True
    can_view_details = False
    column_display_actions = False  # a row's one operation is its 下载 column
    list_template = "exports/list.html"
    column_list = ("title", "status", "progress", "size", "created_at", "expires_at", "download")
    column_labels = {"title": "导出内容", "status": "状态", "progress": "进度", "size": "文件大小",
                     "created_at": "创建时间", "expires_at": "有效期至", "download": "操作"}
    column_formatters = {"status": _status, "progress": _progress, "size": _size, "download": _download}
    column_default_sort = ("id", True)
    column_sortable_list = ()

    def __init__(self, **kwargs):
        super().__init__(Job, **kwargs)

    def is_visible(self):
        return False  # reached from the navigation bar, beside 我的消息

    @expose("/")
    def index_view(self):
        """The list; ``finished`` names the jobs this page saw end (exports.js reloads with it):
        each one done says 「导出成功」 (004 §3.3.2), each failed one its reason."""
        for raw in request.args.get("finished", "").split(",")[:10]:
            if not raw.isdigit():
                continue
            job = self.visible_query().filter(Job.id == int(raw)).first()  # the owner's own only
            if job is not None and job.status == JobStatus.done and not _expired(job):
                flash(f"导出成功：{job.title}，共 {job.total:,} 条，请点击「下载」保存文件", "success")
            elif job is not None and job.status == JobStatus.failed:
                flash(f"导出失败：{job.title}：{job.error or '未知原因'}", "error")
        return super().index_view()

    @expose("/status.json")
    def status_view(self):
        """The progress bars' poll: the user's jobs still in flight, and any that ended in the last
        minute (so the page learns that one finished)."""
        recent = utcnow() - timedelta(minutes=1)
        stmt = self.visible_query().filter(
            (Job.status.in_((JobStatus.queued, JobStatus.running))) | (Job.finished_at >= recent)
        ).order_by(Job.id.desc()).limit(50)
        return jsonify(jobs=[{"id": j.id, "status": j.status.value, "label": j.status.label,
                              "percent": j.percent, "text": _progress_label(j), "error": j.error}
                             for j in stmt])

    @expose("/download/<int:id>")
    def download_view(self, id):
        """The owner's file: any other user's job is a 404, as a job that never existed."""
        job = self.get_one(id)
        if job.status != JobStatus.done or _expired(job):
            flash(MSG_EXPIRED if _expired(job) else (job.error or MSG_NOT_READY), "error")
            return redirect(url_for(".index_view"))
        path = temp_file_path("download-")
        try:
            with open(path, "wb") as fh:
                for (data,) in db.session.execute(select(JobChunk.data).where(JobChunk.job_id == job.id)
                                                  .order_by(JobChunk.seq)).yield_per(4):
                    fh.write(data)
            log(db.session, current_user, Kind.DOWNLOAD, f"下载导出文件：{job.title}（任务 {job.id}）", obj=job,
                ip=client_ip())
            db.session.commit()
        except BaseException:
            os.unlink(path)
            raise
        zipped = job.kind == JobKind.ecert_zip
        return file_response(path, job.filename or f"导出-{job.id}.{'zip' if zipped else 'xlsx'}",
                             ZIP_MIMETYPE if zipped else XLSX_MIMETYPE)


# -- running an export job -----------------------------------------------------------------------
def export_handler(app: Flask):
    """The worker's handler for export jobs: (claim, progress) -> (download name, file path, rows)."""

    def run(claim: Claim, progress) -> tuple[str, str, int]:
        view, arguments, owner_id = job_view(app, claim.job_id, lambda v: getattr(v, "export_columns", None),
                                             "该列表不支持导出")
        # a fresh app context: its own database session, removed when the job ends
        with app.app_context(), app.test_request_context(f"{view.url}/", query_string=arguments):
            # only reads from here on: on SQLite a deferred transaction, so users keep writing
            db.session.connection(execution_options={SQLITE_BEGIN: "DEFERRED"})
            sign_in_owner(owner_id, view, refused="无法导出", denied="无权导出该列表")
            count, query = view.export_list()
            refusal = view.too_many_to_export(count)
            if refusal:
                raise WorkflowError(refusal)
            total = int(count) if not isinstance(count, AtLeast) else None
            progress(0, total)
            fd, path = tempfile.mkstemp(prefix=f"job-{claim.job_id}-", suffix=".xlsx")
            os.close(fd)
            try:
                rows = view.write_export(query, path, progress=lambda n: progress(n, None))
            except BaseException:
                os.unlink(path)
                raise
            return view.export_download_name(), path, rows

    return run


def worker_settings(config) -> WorkerSettings:
    return WorkerSettings(
        lease=timedelta(seconds=float(config["JOB_LEASE_SECONDS"])),
        max_attempts=int(config["JOB_MAX_ATTEMPTS"]),
        poll_seconds=float(config["JOB_POLL_SECONDS"]),
        beat_seconds=float(config["JOB_BEAT_SECONDS"]),
        ttl=timedelta(hours=float(config["EXPORT_FILE_TTL_HOURS"])),
    )


def build_worker(app: Flask, name: str | None = None) -> Worker:
    engine = db.engine
    return Worker(name or f"{socket.gethostname()}:{os.getpid()}", lambda: Session(engine),
                  {JobKind.export: export_handler(app), JobKind.ecert_zip: zip_handler(app)},
                  worker_settings(app.config),
                  read_factory=lambda: Session(read_only(engine)))


def lower_priority(nice: int) -> None:
    """Give the pages' CPU to the web workers: an export waits, a click should not.

    ``nice`` alone is not enough on Linux: with autogroups (the default on desktops and most
    servers) the scheduler first shares the CPU between sessions, and a worker started in its own
    session (``make run``'s background job, a systemd service, ``setsid``) competed as an equal
    with gunicorn whatever its nice value — measured by bench/served.py: 0.65 of 2 cores for one
    niced worker. So the worker also lowers its autogroup's weight, and asks for SCHED_BATCH (a
    CPU-bound task, never preferred on wake-up). Under systemd, give the service a low CPUWeight."""
    if nice <= 0:
        return
    # each step is best effort: where the system refuses one (no autogroups, another OS, a
    # container without /proc), the worker still runs, only with less of a step back
    with contextlib.suppress(OSError):
        os.nice(nice)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError):
        with open("/proc/self/autogroup", "w") as fh:
            fh.write(str(min(nice, 19)))


@click.group("jobs", help="导出任务 (issue 16): the job worker.")
def jobs_cli():
    pass


@jobs_cli.command("worker")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit.")
@click.option("--name", default=None, help="Worker name in the logs (default host:pid).")
@with_appcontext
def worker_command(once, name):
    """Run export jobs until stopped (SIGTERM/SIGINT hand a running job back to the queue)."""
    app = current_app._get_current_object()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lower_priority(int(app.config.get("JOB_WORKER_NICE") or 0))
    worker = build_worker(app, name)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    click.echo(f"job worker {worker.name} started")
    ran = worker.run(once=once)
    click.echo(f"job worker {worker.name} stopped after {ran} job(s)")


def register(admin) -> None:
    admin.add_view(ExportJobView(name="我的导出", endpoint="my_export"))
