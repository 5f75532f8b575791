"""电子证书 (issue 19) in the back office: producing one for a certificate a user may see, the
下载电子证书 route of the views that show certificates, and the .zip of many as a job.

What an electronic certificate says and when it is current is ``workflows.ecert``; the file is
``workflows.ecert_document``; the signing key is read by ``admin_views.ecert_keys``, the address
its QR code opens is ``admin_views.verify``'s.

Who may download is who sees the certificate (``workflows.visibility``: the holder's individual
account, the holder's enterprise or school, the issuing institution, the city authority, the
province) among those who may open the screen the link is on: the route is exposed on each view
that shows certificates (证书查看, 证书库, 业务打印, 学员基本信息（企业）, 我的基本信息), so that
view's own access rule (kinds, permission) gates it, as ``AttachmentFilesMixin.file_view`` does.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from urllib.parse import parse_qsl, quote, urlencode

from flask import Flask, Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from werkzeug.datastructures import MultiDict

from admin_views.access import client_ip
from admin_views.ecert_keys import signing_key
from admin_views.exporting import job_view, sign_in_owner
from models import Batch, Certificate, Job, JobKind, User, db
from models.base import format_local, local_today, utcnow
from models.certificate import CertificateStatus
from workflows import NotFoundError, WorkflowError, ecert, ecert_document
from workflows.audit import Kind, log
from workflows.jobs import enqueue
from workflows.visibility import get_visible, load_visible, visible

PDF_MIMETYPE = "application/pdf"
ZIP_MIMETYPE = "application/zip"
DOWNLOAD_LABEL = "下载电子证书"
ZIP_LABEL = "下载电子证书(压缩包)"
MSG_NONE_VALID = "所选证书中没有有效证书，不能下载电子证书"
README_NAME = "说明.txt"
CHUNK = 50  # certificates read per transaction by the .zip job


def filename(certificate: Certificate) -> str:
    return f"电子证书_{certificate.number}.pdf"


def refusal(certificate: Certificate) -> str:
    return f"证书「{certificate.number}」状态为{certificate.status.label}，不能下载电子证书"


def electronic_data(certificate: Certificate) -> tuple[dict[str, str], ecert_document.Face]:
    """What the file of the certificate's current electronic certificate says, read (and, for a
    certificate older than electronic certificates, its first issue written) in the session's
    transaction; WorkflowError for a certificate that is not valid. Drawing and signing come
    after, so a caller may commit first and hold no transaction while they run."""
    from admin_views.verify import ecert_url

    issued = ecert.current(db.session, certificate)
    if issued is None:
        raise WorkflowError(refusal(certificate))
    data = ecert.metadata(issued, ecert.naming().department_code, ecert.department_name(db.session))
    return data, ecert_document.Face(verify_url=ecert_url(issued.identifier))


def electronic_pdf(certificate: Certificate) -> bytes:
    """The signed PDF of the certificate's current electronic certificate, or WorkflowError (a
    certificate that is not valid has none). The caller checked visibility and logs the download."""
    key = signing_key()
    if key is None:  # said before anything is issued or drawn
        raise WorkflowError(ecert_document.NOT_CONFIGURED)
    data, face = electronic_data(certificate)
    return ecert_document.produce(data, face, key)


def pdf_response(pdf: bytes, name: str) -> Response:
    response = Response(pdf, mimetype=PDF_MIMETYPE)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def offered(certificate: Certificate) -> bool:
    """下载电子证书 is offered on a valid certificate (a cancelled or voided one has none)."""
    return CertificateStatus(certificate.status) == CertificateStatus.valid


class ElectronicDownloadMixin:
    """下载电子证书 of one certificate on a view that shows certificates. The argument is
    ``certificate_id`` (not ``id``): on a view over persons, ``id`` names a person."""

    def ecert_url(self, certificate: Certificate) -> str:
        return self.get_url(".ecert_view", certificate_id=certificate.id)

    def ecert_back(self, certificate: Certificate) -> str:
        """Where a refusal returns to when the link carried no ``url``."""
        return self.get_url(".index_view")

    @expose("/ecert/")
    def ecert_view(self):
        """The certificate's signed PDF (``?certificate_id=``, as details pages take ``?id=``),
        through visibility (another's, or a forged id, is a 404), logged; a certificate that is
        not valid, or a missing signing key, is refused in Chinese."""
        try:
            certificate = get_visible(db.session, current_user, Certificate, request.args.get("certificate_id"))
        except NotFoundError:
            abort(404)
        back = get_redirect_target() or self.ecert_back(certificate)
        try:
            pdf = electronic_pdf(certificate)
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(back)
        log(db.session, current_user, Kind.DOWNLOAD, f"下载电子证书「{certificate.number}」", obj=certificate,
            ip=client_ip())
        db.session.commit()
        return pdf_response(pdf, filename(certificate))


# -- many at once: a .zip job ----------------------------------------------------------------
def _selection(arguments) -> tuple[Batch | None, list[int]]:
    """(the batch, or None; the certificate ids asked for) of a zip request's or job's arguments.
    Only what the user sees counts: a batch outside visibility is a NotFoundError."""
    batch_id = arguments.get("batch_id")
    if batch_id:
        batch = get_visible(db.session, current_user, Batch, batch_id)
        ids = db.session.scalars(visible(current_user, select(Certificate.id).where(Certificate.batch_id == batch.id)
                                         .order_by(Certificate.number), Certificate)).all()
        return batch, list(ids)
    rows = load_visible(db.session, current_user, Certificate, arguments.getlist("id"))
    return None, sorted(c.id for c in rows.values())


def _valid_count(ids: list[int]) -> int:
    count = 0
    for start in range(0, len(ids), 500):
        count += len(db.session.scalars(select(Certificate.id).where(
            Certificate.id.in_(ids[start:start + 500]), Certificate.status == CertificateStatus.valid)).all())
    return count


class ElectronicZipMixin(ElectronicDownloadMixin):
    """下载电子证书(压缩包): the selected certificates of a list, or a batch's certificates (from
    the batch's details page), as one .zip produced by a job (我的导出: progress, then the file)."""

    def row_links(self, row):
        links = super().row_links(row)
        if offered(row):
            links.append((DOWNLOAD_LABEL, self.row_url(".ecert_view", row.id, param="certificate_id"), "row-ecert"))
        return links

    def row_buttons(self, obj) -> list:
        buttons = super().row_buttons(obj)
        if offered(obj):
            buttons.append(("ecert-download", DOWNLOAD_LABEL, self.get_url(".ecert_view", certificate_id=obj.id,
                                                                      url=self.get_url(".details_view", id=obj.id))))
        return buttons

    def ecert_back(self, certificate):
        return self.get_url(".details_view", id=certificate.id)

    @action("ecert_zip", ZIP_LABEL)
    def action_ecert_zip(self, ids):
        if not self.load_rows(ids):
            flash(NotFoundError().message, "error")
            return None
        return self._queue_zip(list(ids), None, get_redirect_target() or self.get_url(".index_view"))

    @expose("/ecert/zip/", methods=("GET", "POST"))
    def ecert_zip_view(self):
        """A batch's electronic certificates: GET says how many, POST (CSRF) queues the job."""
        back = get_redirect_target() or self.get_url(".index_view")
        if not request.values.get("batch_id"):
            abort(404)
        try:
            batch, ids = _selection(request.values)
        except NotFoundError:
            abort(404)
        if request.method == "POST":
            return self._queue_zip([], batch, back)
        return self.render("certificate/ecert_zip.html", batch=batch, total=len(ids), valid=_valid_count(ids),
                           back=back, limit=current_app.config["ECERT_ZIP_MAX"])

    def _queue_zip(self, ids, batch: Batch | None, back: str):
        arguments = {"batch_id": batch.id} if batch is not None else {"id": ids}
        _batch, chosen = _selection(_Args(arguments))
        valid = _valid_count(chosen)
        limit = current_app.config["ECERT_ZIP_MAX"]
        if not valid:
            flash(MSG_NONE_VALID if batch is None else f"批次「{batch.name}」没有有效证书，不能下载电子证书", "error")
            return redirect(back)
        if valid > limit:
            flash(f"有效证书共 {valid:,} 张，超过一次下载电子证书的上限 {limit:,} 张，请分批下载", "error")
            return redirect(back)
        query = urlencode({"base": request.url_root, **arguments}, doseq=True)
        if len(query) > 2000:  # Job.arguments; a list page's selection is far below it
            flash("所选证书过多，请分批下载电子证书", "error")
            return redirect(back)
        title = f"电子证书（批次 {batch.code}）" if batch is not None else f"电子证书（{valid} 张）"
        try:
            job = enqueue(db.session, current_user, kind=JobKind.ecert_zip, title=title, endpoint=self.endpoint,
                          arguments=query, total=valid, limit=current_app.config["EXPORT_JOBS_PER_USER"],
                          ip=client_ip())
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(back)
        flash(f"电子证书共 {valid:,} 张，已加入导出队列，可在「我的导出」查看进度并下载压缩包", "success")
        return redirect(url_for("my_export.index_view", job=job.id))


class _Args(dict):
    """A plain dict read as request arguments (``get``, ``getlist``)."""

    def getlist(self, key):
        value = self.get(key, [])
        return list(value) if isinstance(value, list | tuple) else [value]


def zip_handler(app: Flask):
    """The worker's handler for 下载电子证书(压缩包) jobs: (claim, progress) -> (name, path, PDFs).

    It runs as the job's owner in a request context of its own (the host the owner used, so the
    QR codes open the same site) and re-reads the selection through visibility and the view's
    access rule now: a certificate the owner no longer sees is left out (counted, never named),
    one no longer valid is named in 说明.txt. Each certificate is read in a short transaction of
    its own and drawn and signed after it, so the job never holds SQLite's write lock for long."""

    def run(claim, progress) -> tuple[str, str, int]:
        view, arguments, owner_id = job_view(app, claim.job_id, lambda v: isinstance(v, ElectronicZipMixin),
                                             "该列表不支持下载电子证书")
        args = MultiDict(parse_qsl(arguments, keep_blank_values=True))
        base = args.get("base") or "http://localhost/"
        with app.app_context(), app.test_request_context(f"{view.url}/", base_url=base):
            sign_in_owner(owner_id, view, refused="无法下载电子证书", denied="无权下载电子证书")
            key = signing_key()
            if key is None:
                raise WorkflowError(ecert_document.NOT_CONFIGURED)
            try:
                batch, ids = _selection(args)
            except NotFoundError:
                raise WorkflowError("该批次已不在您的查看范围内，不能下载电子证书") from None
            asked = len(args.getlist("id")) if batch is None else len(ids)
            db.session.commit()
            fd, path = tempfile.mkstemp(prefix=f"job-{claim.job_id}-", suffix=".zip")
            os.close(fd)
            try:
                made, skipped = _write_zip(path, ids, key, progress)
                _readme(path, made, skipped, hidden=max(asked - len(ids), 0), batch=batch)
            except BaseException:
                db.session.rollback()
                os.unlink(path)
                raise
            name = f"电子证书-{batch.code}.zip" if batch is not None else f"电子证书-{local_today():%Y%m%d}.zip"
        # every PDF in the file is a download (SPEC §8): one operation-log row for the job, with the
        # count, rather than one per certificate; written outside the request context (the worker
        # has no client address)
        with Session(db.engine) as session:
            log(session, session.get(User, owner_id), Kind.DOWNLOAD,
                f"下载电子证书（压缩包）：{made:,} 张（任务 {claim.job_id}）", obj=session.get(Job, claim.job_id),
                detail={"certificates": made, "skipped": len(skipped)})
            session.commit()
        return name, path, made

    return run


def _write_zip(path: str, ids: list[int], key, progress) -> tuple[int, list[tuple[str, str]]]:
    """One PDF per certificate still valid (stored: PDFs are compressed already); returns (PDFs
    written, [(number, status) of those left out]). Certificates are read 50 at a time in a short
    transaction; the pages are drawn and signed after it, in ECERT_JOB_PROCESSES processes."""
    made, skipped = 0, []

    def wanted():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            progress(start, len(ids))  # between chunks: no transaction is open here
            rows = db.session.scalars(
                visible(current_user, select(Certificate).options(
                    joinedload(Certificate.person), joinedload(Certificate.occupation),
                    joinedload(Certificate.level), joinedload(Certificate.issuer))
                    .where(Certificate.id.in_(chunk)), Certificate)).unique().all()
            by_id = {c.id: c for c in rows}  # gone from sight since: left out, not named
            found = []
            for ident in chunk:
                certificate = by_id.get(ident)
                if certificate is None:
                    continue
                try:
                    data, face = electronic_data(certificate)
                except WorkflowError:
                    skipped.append((certificate.number, certificate.status.label))
                    continue
                found.append((filename(certificate), data, face))
            db.session.commit()  # the transaction ends before drawing and signing
            yield from found

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        processes = int(current_app.config["ECERT_JOB_PROCESSES"]) if len(ids) >= CHUNK else 1
        for name, pdf in ecert_document.produce_many(wanted(), key, processes=processes):
            zf.writestr(name, pdf)
            made += 1
    progress(len(ids), len(ids))
    return made, skipped


def _readme(path: str, made: int, skipped: list[tuple[str, str]], *, hidden: int, batch: Batch | None) -> None:
    lines = [f"电子证书压缩包{'（批次 ' + batch.code + ' ' + batch.name + '）' if batch is not None else ''}",
             f"生成时间：{format_local(utcnow())}",
             f"包含电子证书：{made} 张（每张为带电子签名的PDF文件，可在证书查询页面上传核验）"]
    if skipped:
        lines.append(f"以下 {len(skipped)} 张证书已不是有效状态，未包含电子证书：")
        lines += [f"  {number}  {status}" for number, status in skipped]
    if hidden:
        lines.append(f"另有 {hidden} 张证书已不在您的查看范围内，未包含。")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(README_NAME, "\r\n".join(lines) + "\r\n")
