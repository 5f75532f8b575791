"""导出 and downloads: a list streamed to .xlsx through the list's own visibility, filters and
sort (inline when small, an export job when large), finished files sent without holding a
transaction, the 「导出成功」 cookie, and the operation-log line every download leaves (SPEC §8, §11).
"""

from __future__ import annotations

import os
import re
import tempfile
from urllib.parse import quote

from flask import Response, abort, current_app, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user, login_user
from sqlalchemy.orm import Session
from werkzeug.wsgi import wrap_file

from admin_views.access import client_ip, registered_view
from admin_views.listing import AtLeast
from models import Job, JobKind, User, db
from models.base import local_today, read_only
from workflows import WorkflowError
from workflows.audit import Kind, log
from workflows.auth import login_refusal
from workflows.excel import write_xlsx
from workflows.jobs import enqueue

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def temp_file_path(prefix: str, suffix: str = ".xlsx") -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    return path


def file_response(path: str, download_name: str, mimetype: str) -> Response:
    """A finished file on disk as a download, with no database work left to do (issue 16): the body
    never touches a session, so no transaction outlives the request however the download ends.

    The path is unlinked at once; the open handle keeps the data until the response is closed —
    completed, aborted by the client, or the worker killed — and then the disk space is freed."""
    fh = open(path, "rb")
    try:
        os.unlink(path)
        size = os.fstat(fh.fileno()).st_size
        response = Response(wrap_file(request.environ, fh), mimetype=mimetype, direct_passthrough=True)
    except BaseException:
        fh.close()
        raise
    response.content_length = size
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(download_name)}"
    response.headers["Cache-Control"] = "no-store"
    return response


EXPORT_DONE_COOKIE = "export_done"
_EXPORT_TOKEN = re.compile(r"^[A-Za-z0-9]{8,40}$")


def export_done(response: Response, rows: int) -> Response:
    """「导出成功」 (004 §3.3.2) for an export sent as a download: the page that asked stays where it
    is, so the response says so in a short-lived cookie — ``<the page's token>.<rows>`` — which
    admin.js, waiting on that page, turns into the message (no inline script: the CSP stays). The
    token is what the page sent (``export_token``), so one tab's download never speaks in another's."""
    token = request.values.get("export_token", "")
    if _EXPORT_TOKEN.match(token):
        response.set_cookie(EXPORT_DONE_COOKIE, f"{token}.{int(rows)}", max_age=120, path="/",
                            secure=request.is_secure, httponly=False, samesite="Strict")
    return response


def log_download(obj, what: str) -> None:
    """Every export and file download is in the operation log (SPEC §8, §11)."""
    log(db.session, current_user, Kind.DOWNLOAD, what, obj=obj, ip=client_ip())

# -- Flask-Admin adapter (checked against Flask-Admin 2.2.1) --------------------------------------
# ModelView parses the list's query string (page, sort, search, filters) in private methods and
# has no public equivalent: an export reads the list exactly as the list page reads it.
def list_arguments(view):
    """(the list's ViewArgs — ``extra_args`` for a link back —, the sort column's name or None)."""
    args = view._get_list_extra_args()
    sort = view._get_column_by_idx(args.sort)
    return args, (sort[0] if sort else None)


class ExportMixin:
    """导出 of a ``SecureModelView``: streamed, constant memory, only visible rows (SPEC §11)."""

    export_columns: list = []  # [(header, getter(row), is_text)]
    export_filename = "导出"

    def export_query(self, query):
        """What the export_columns' getters read: the list's own objects, or — for a large list —
        plain rows of only the exported columns (``query.with_entities``), which is what keeps
        an export's time in the database and xlsxwriter rather than in building ORM objects."""
        return query

    @property
    def can_stream_export(self) -> bool:
        return bool(self.export_columns)

    def export_list(self):
        """(count, query) of the list as it is filtered, searched and sorted now, counted up to
        EXPORT_MAX_ROWS (an ``AtLeast`` beyond it). Runs in the request that asks and, for a large
        export, again in the job (the same query string, the same user), so the file is what
        the list showed — through the same visibility."""
        args, sort = list_arguments(self)
        g.count_limit = current_app.config["EXPORT_MAX_ROWS"]  # the export's bound, not the list's
        try:
            return self.get_list(0, sort, args.sort_desc, args.search, args.filters, execute=False, page_size=0)
        finally:
            g.count_limit = None

    def too_many_to_export(self, count) -> str | None:
        limit = current_app.config["EXPORT_MAX_ROWS"]
        if isinstance(count, AtLeast):
            return f"导出数据共 {count} 条，超过上限 {limit:,} 条，请缩小查询范围后再导出"
        return None

    def write_export(self, query, path: str, progress=None) -> int:
        """The .xlsx of ``query``'s rows at ``path``; returns the rows written."""
        columns = self.export_columns

        def rows():
            for obj in self.export_query(query).yield_per(1000):
                yield [getter(obj) for _, getter, _ in columns]

        return write_xlsx(path, [h for h, _, _ in columns], rows(), sheet_name=self.name[:31],
                          text_columns={i for i, (_, _, is_text) in enumerate(columns) if is_text},
                          progress=progress)

    def export_download_name(self) -> str:
        return f"{self.export_filename}-{local_today():%Y%m%d}.xlsx"

    @expose("/export.xlsx", methods=("POST",))
    def export_xlsx_view(self):
        """导出: the list as it is filtered, searched and sorted now (the query string), as .xlsx. Up
        to EXPORT_INLINE_MAX_ROWS rows the file is written here and sent; more rows become an export
        job (我的导出: progress, then the file), so no request holds a worker for long (issue 16).
        A POST with the CSRF token: it may queue work in the user's name."""
        if not self.export_columns:
            abort(404)
        args, _sort = list_arguments(self)
        count, query = self.export_list()
        refusal = self.too_many_to_export(count)
        if refusal:
            flash(refusal, "error")
            return redirect(self.get_url(".index_view", **args.extra_args))
        if count > current_app.config["EXPORT_INLINE_MAX_ROWS"]:
            return self._queue_export(count, args)
        path = temp_file_path("export-")
        try:
            rows = self.write_export(query, path)
            log(db.session, current_user, Kind.EXPORT, f"导出{self.name}：{rows:,} 条", object_type=self.endpoint,
                ip=client_ip())
            db.session.commit()
        except BaseException:
            os.unlink(path)
            raise
        return export_done(file_response(path, self.export_download_name(), XLSX_MIMETYPE), rows)

    def _queue_export(self, count: int, args):
        try:
            job = enqueue(db.session, current_user, kind=JobKind.export, title=self.name, endpoint=self.endpoint,
                          arguments=request.query_string.decode("utf-8", "replace"), total=int(count),
                          limit=current_app.config["EXPORT_JOBS_PER_USER"], ip=client_ip())
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(self.get_url(".index_view", **args.extra_args))
        flash(f"导出数据共 {int(count):,} 条，已加入导出队列，可在「我的导出」查看进度并下载", "success")
        return redirect(url_for("my_export.index_view", job=job.id))


# -- what a job worker's handler does first --------------------------------------------------------
def job_view(app, job_id: int, fits, unsupported: str):
    """(view, arguments, owner id) of a job: the list view it was asked on (``fits(view)`` says it
    can run this kind of job, else WorkflowError(``unsupported``)), read without a write lock."""
    with Session(read_only(db.engine)) as session:
        job = session.get(Job, job_id)
        endpoint, arguments, owner_id = job.endpoint, job.arguments, job.owner_id
    view = registered_view(endpoint, app)
    if view is None or not fits(view):
        raise WorkflowError(unsupported)
    return view, arguments, owner_id


def sign_in_owner(owner_id: int, view, *, refused: str, denied: str) -> User:
    """A job runs as its owner, refused as the owner would be now (the account stopped or its
    organization offline: ``refused``＋the reason; the screen no longer open to them: ``denied``)."""
    owner = db.session.get(User, owner_id)
    refusal = login_refusal(owner)
    if refusal:
        raise WorkflowError(f"{refused}：{refusal}")
    login_user(owner)
    if not view.is_accessible():
        raise WorkflowError(denied)
    return owner
