"""批次管理 (003 §六.1, §七.1, §八.1): 创建批次, 我的批次, 审核批次.

Views declare columns, tabs and pages; every decision is in workflows.batch and
workflows.candidates, every row is loaded through workflows.visibility.
"""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import StringField

from admin_views.access import AccessMixin, client_ip, may_open
from admin_views.actions import AttachmentFilesMixin, WorkflowModelView, perform, review_tabs, transition_logs
from admin_views.forms import RowForm, values
from models import Attachment, Batch, BatchStatus, Candidate, db
from models.org import OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.audit import Kind, log
from workflows.batch import BATCH, awaiting_review, can_edit, mark_candidate, may_mark_candidates
from workflows.candidates import (
    add_attachments,
    import_batch,
    remove_attachment,
    remove_candidate,
    rename_batch,
    save_candidate,
)
from workflows.excel import build_candidate_template
from workflows.scope import scope_choices, scope_name_pairs
from workflows.search import TermKind, starts_with
from workflows.visibility import NotFoundError, get_visible

ISSUERS = (OrgKind.institution, OrgKind.direct_institution)
REVIEWERS = (OrgKind.authority, OrgKind.province)
S = BatchStatus
CANDIDATES_PER_PAGE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- forms (the templates write the inputs by hand, with these names) -----------------------


class RenameForm(RowForm):
    name = StringField()


class AttachForm(RowForm):
    files = MultipleFileField()
    next = StringField()


class AttachmentForm(FlaskForm):
    attachment_id = StringField()
    next = StringField()


class CandidateMarkForm(FlaskForm):
    candidate_id = StringField()
    failed = StringField()
    note = StringField()


class CandidateRowForm(FlaskForm):
    candidate_id = StringField()


class CandidateForm(FlaskForm):
    """在线编辑考生信息: workflows.candidates.save_candidate checks every field as the import does."""

    name = StringField()
    id_number = StringField()
    phone = StringField()
    employer_name = StringField()
    occupation_id = StringField()
    level_id = StringField()


class BatchCreateForm(FlaskForm):
    name = StringField()
    file = FileField()


def _files(field) -> list[tuple[str, bytes]]:
    return [(f.filename or "", f.read()) for f in field.data or ()]


def _reason(view, context, model, name):
    if model.reject_reason and model.status == S.rejected:
        return Markup('<span class="reason-red">{}</span>').format(model.reject_reason)
    return "-"


def _visible_or_404(model, ident):
    try:
        return get_visible(db.session, current_user, model, ident)
    except NotFoundError:
        abort(404)


class BatchView(AttachmentFilesMixin, WorkflowModelView):
    """我的批次 for institutions, 审核批次 for authorities and the province: one table, two menus."""

    workflow = BATCH
    permission = None
    details_template = "batch/details.html"
    column_list = ("code", "name", "institution", "candidate_count", "status", "reject_reason", "submitted_at",
                   "reviewed_at")
    column_labels = {
        "code": "批次代码", "name": "批次名称", "institution": "单位", "candidate_count": "总人数",
        "status": "审核状态", "reject_reason": "审核不通过原因", "submitted_at": "报名时间",
        "reviewed_at": "审核时间", "created_at": "创建时间", "authority": "主管部门",
    }
    column_details_list = ("code", "name", "institution", "authority", "candidate_count", "status", "reject_reason",
                           "created_at", "submitted_at", "reviewed_at")
    column_formatters = {"reject_reason": _reason}
    column_formatters_detail = column_formatters
    column_sortable_list = ("code", "name", "candidate_count", "submitted_at", "reviewed_at")
    column_default_sort = ("id", True)
    search_hint = "批次名称或批次代码"
    search_rules = {
        TermKind.code: lambda term: Batch.code == term,
        TermKind.text: lambda term: starts_with(Batch.name, term),
    }

    def __init__(self, *, kinds, tabs, permission, **kwargs):
        self.kinds = kinds
        self.tabs = tabs
        self.permission = permission
        super().__init__(Batch, **kwargs)

    def get_query(self):
        return super().get_query().options(joinedload(Batch.institution))

    def row_edit_url(self, row, row_id, return_url):
        """修改: a draft or rejected batch of its institution, edited on its details page (003 §六.1
        可编辑批次合格人员信息)."""
        if can_edit(current_user, row):
            return f"{self.row_url('.details_view', row_id, return_url)}#candidates"
        return None

    def row_buttons(self, obj) -> list:
        """下载电子证书(压缩包) of an approved batch's certificates (issue 19), on its details page."""
        endpoint = next((e for e in ("certificate", "certificate_library") if may_open(e)), None)
        if obj.status != BatchStatus.approved or endpoint is None:
            return super().row_buttons(obj)
        return [*super().row_buttons(obj), ("ecert-zip", "下载电子证书(压缩包)", url_for(
            f"{endpoint}.ecert_zip_view", batch_id=obj.id, url=self.get_url(".details_view", id=obj.id)))]

    def row_links(self, row):
        """审核日志 of a submitted batch (003 §六.1 查看批次审核日志), on its details page."""
        if row.submitted_at is None:
            return []
        return [("审核日志", f"{self.row_url('.details_view', row.id)}#review-log", "row-log")]

    # -- the batch detail page: candidates, attachments, 审核日志 --------------------------
    def batch_page(self, batch: Batch) -> dict:
        page = max(request.args.get("cpage", 1, type=int) or 1, 1)
        candidates = db.session.scalars(
            select(Candidate).options(joinedload(Candidate.occupation), joinedload(Candidate.level))
            .where(Candidate.batch_id == batch.id).order_by(Candidate.row_no, Candidate.id)
            .limit(CANDIDATES_PER_PAGE).offset((page - 1) * CANDIDATES_PER_PAGE)
        ).all()
        attachments = db.session.scalars(
            select(Attachment).where(Attachment.owner_type == "batch", Attachment.owner_id == batch.id)
            .order_by(Attachment.id)
        ).all()
        logs = transition_logs("batch", batch.id)
        return {
            "candidates": candidates,
            "page": page,
            "pages": max((batch.candidate_count + CANDIDATES_PER_PAGE - 1) // CANDIDATES_PER_PAGE, 1),
            "attachments": attachments,
            "logs": logs,
            "editable": can_edit(current_user, batch),
            "reviewing": may_mark_candidates(current_user, batch),
        }

    @expose("/rename/", methods=("POST",))
    def rename_view(self):
        form = RenameForm()
        batch = _visible_or_404(Batch, form.id.data)
        return self.run_on_row(batch.id, lambda: rename_batch(db.session, current_user, batch, form.name.data),
                               "批次名称已修改")

    @expose("/attach/", methods=("POST",))
    def attach_view(self):
        form = AttachForm()
        batch = _visible_or_404(Batch, form.id.data)
        files = _files(form.files)
        cfg = current_app.config
        response = self.run_on_row(batch.id, lambda: add_attachments(
            db.session, current_user, batch, files, max_documents=cfg["BATCH_MAX_DOCUMENTS"],
            max_images=cfg["BATCH_MAX_IMAGES"], max_bytes=cfg["ATTACHMENT_MAX_BYTES"]), "资料已上传")
        if form.next.data == "wizard":
            return redirect(url_for("batch_create.attachments_view", id=batch.id))
        return response

    @expose("/attachment/delete/", methods=("POST",))
    def attachment_delete_view(self):
        form = AttachmentForm()
        attachment = _visible_or_404(Attachment, form.attachment_id.data)
        batch = _visible_or_404(Batch, attachment.owner_id)
        response = self.run_on_row(batch.id, lambda: remove_attachment(db.session, current_user, batch, attachment),
                                   "资料已删除")
        if form.next.data == "wizard":
            return redirect(url_for("batch_create.attachments_view", id=batch.id))
        return response

    @expose("/candidate/mark/", methods=("POST",))
    def candidate_mark_view(self):
        form = CandidateMarkForm()
        candidate = _visible_or_404(Candidate, form.candidate_id.data)
        failed = form.failed.data == "1"
        return self.run_on_row(candidate.batch_id, lambda: mark_candidate(
            db.session, current_user, candidate, failed, form.note.data),
            "已标记考生审核不通过" if failed else "已取消标记")

    @expose("/candidate/delete/", methods=("POST",))
    def candidate_delete_view(self):
        candidate = _visible_or_404(Candidate, CandidateRowForm().candidate_id.data)
        return self.run_on_row(candidate.batch_id, lambda: remove_candidate(db.session, current_user, candidate),
                               "考生已删除")

    @expose("/candidate/edit/", methods=("GET", "POST"))
    def candidate_edit_view(self):
        """在线编辑考生信息 (003 §六.1): add (no candidate_id) or edit one candidate."""
        batch = _visible_or_404(Batch, request.values.get("id"))
        candidate = None
        if request.values.get("candidate_id"):
            candidate = _visible_or_404(Candidate, request.values.get("candidate_id"))
            if candidate.batch_id != batch.id:
                abort(404)
        form = CandidateForm()
        typed = values(form) if request.method == "POST" else {
            "name": candidate.name if candidate else "", "id_number": candidate.id_number if candidate else "",
            "phone": (candidate.phone or "") if candidate else "",
            "employer_name": (candidate.employer_name or "") if candidate else "",
            "occupation_id": str(candidate.occupation_id) if candidate else "",
            "level_id": str(candidate.level_id or "") if candidate else "",
        }
        if request.method == "POST":
            if perform(lambda: save_candidate(db.session, current_user, batch, candidate, typed), "考生信息已保存"):
                return redirect(self.get_url(".details_view", id=batch.id))
        elif not can_edit(current_user, batch):
            abort(404)
        # only the institution's 职业(工种)范围 (SPEC §2), levels from 初级 to 高级技师; the level list
        # follows the chosen occupation (candidate-form.js; without scripts, the chosen one's levels).
        # save_candidate refuses a pair outside the scope whatever is posted.
        choices = scope_choices(db.session, batch.institution)
        chosen = next((c for c in choices if str(c[0].id) == typed["occupation_id"]), None)
        levels = chosen[1] if chosen is not None else _distinct_levels(choices)
        return self.render("batch/candidate_form.html", batch=batch, candidate=candidate, values=typed,
                           occupations=[o for o, _ in choices], levels=levels,
                           scope={str(o.id): [[lv.id, lv.name] for lv in lvs] for o, lvs in choices})


def _distinct_levels(choices) -> list:
    seen = {}
    for _, levels in choices:
        for level in levels:
            seen.setdefault(level.id, level)
    return sorted(seen.values(), key=lambda lv: lv.code, reverse=True)


class BatchCreateView(AccessMixin, BaseView):
    """创建批次: name → 示例文档下载 → upload (row errors below the form) → 上传资料 → 确认上传."""

    kinds = ISSUERS
    permission = Permission.batch_manage

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = BatchCreateForm()
        errors, name = [], form.name.data or ""
        if request.method == "POST":
            data = form.file.data.read() if form.file.data else b""
            cfg = current_app.config

            def upload():
                if not data:
                    raise WorkflowError("请选择填写好的合格人员文件")
                batch, result = import_batch(db.session, current_user, name, data,
                                             max_rows=cfg["IMPORT_MAX_ROWS"], max_bytes=cfg["UPLOAD_MAX_BYTES"])
                if batch is None:  # row errors: nothing is kept, each is listed below the form
                    errors.extend(result.errors)
                    raise WorkflowError(f"文件中有 {len(errors)} 处错误，请修改后重新上传；批次未保存")
                return batch

            done = perform(upload)
            if done:
                flash(f"已导入 {done.value.candidate_count} 名合格人员，请上传批次相关资料", "success")
                return redirect(url_for(".attachments_view", id=done.value.id))
        return self.render("batch/create.html", errors=errors, name=name)

    @expose("/template.xlsx")
    def template_view(self):
        """示例文档下载: dropdowns limited to the institution's scope, ID column as text."""
        # the template's validated rows end where an upload's limit does (IMPORT_MAX_ROWS)
        data = build_candidate_template(scope_name_pairs(db.session, current_user.organization),
                                        max_rows=current_app.config["IMPORT_MAX_ROWS"])
        log(db.session, current_user, Kind.DOWNLOAD, "下载合格人员示例文档", ip=client_ip())
        db.session.commit()
        from urllib.parse import quote

        response = Response(data, mimetype=XLSX)
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote('合格人员示例文档.xlsx')}"
        return response

    @expose("/attachments/<int:id>")
    def attachments_view(self, id):
        batch = _visible_or_404(Batch, id)
        if not can_edit(current_user, batch):
            abort(404)
        attachments = db.session.scalars(
            select(Attachment).where(Attachment.owner_type == "batch", Attachment.owner_id == batch.id)
        ).all()
        return self.render("batch/attachments_step.html", batch=batch, attachments=attachments)

    @expose("/confirm/<int:id>", methods=("POST",))
    def confirm_view(self, id):
        batch = _visible_or_404(Batch, id)
        flash(f"批次「{batch.name}」已进入我的批次-待提交", "success")
        return redirect(url_for("batch.index_view", tab="draft"))


def register(admin) -> None:
    category = "批次管理"
    admin.add_view(BatchCreateView(name="创建批次", category=category, endpoint="batch_create",
                                   url="/admin/batch-create"))
    admin.add_view(BatchView(
        kinds=ISSUERS, permission=Permission.batch_manage, name="我的批次", category=category, endpoint="batch",
        tabs=[
            ("draft", "待提交", lambda: Batch.status == S.draft),
            ("reviewing", "审核中", lambda: Batch.status.in_((S.authority_review, S.province_review))),
            ("approved", "审核通过", lambda: Batch.status == S.approved),
            ("rejected", "审核不通过", lambda: Batch.status == S.rejected),
        ],
    ))
    admin.add_view(BatchView(
        kinds=REVIEWERS, permission=Permission.batch_review, name="审核批次", category=category,
        endpoint="batch_review",
        tabs=review_tabs(awaiting_review, Batch.status, [S.authority_review, S.province_review, S.approved, S.rejected]),
    ))
