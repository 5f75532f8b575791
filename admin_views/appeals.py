"""申辩管理 (004 §3.5; SPEC §5.5): anomalies flagged against an enterprise, its answer, the decision.

The enterprise answers under 注册管理 (待申辩 / 已申辩 / 全部) with a text and up to five files; the
province decides under 注册审查 (待处理 / 已处理 / 全部) with 申辩通过 / 申辩不通过, and runs
异常筛查. One view class, two menu entries; every rule is in workflows.appeals, every row
and file is loaded through workflows.visibility.
"""

from __future__ import annotations

from flask import abort, redirect
from flask_admin import expose
from flask_login import current_user
from flask_wtf.file import MultipleFileField
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import StringField

from admin_views.actions import AttachmentFilesMixin, WorkflowModelView, perform, transition_logs
from admin_views.forms import RowForm
from models import Anomaly, AnomalyStatus, Attachment, Person, db
from models.org import OrgKind
from models.user import Permission
from workflows import StaleObjectError
from workflows.appeals import APPEAL, DECISIONS, REFUSAL, may_appeal, scan_anomalies, submit_appeal
from workflows.privacy import mask_id_number
from workflows.search import TermKind, starts_with

A = AnomalyStatus
MAX_FILES = 5
ACCEPT_FILES = ".jpg,.jpeg,.png,.pdf,.doc,.docx"
BRIEF = 24  # characters of a description shown in the list


class AnswerForm(RowForm):
    """申辩: the text and files; workflows.registration.submit_appeal checks both. ``version`` is
    the row's as the page showed it (a concurrent decision is 「该记录已被他人处理」)."""

    version = StringField()
    answer = StringField()
    files = MultipleFileField()


def _person(view, context, model, name):
    return f"{model.person.name} {model.person.id_number}" if model.person is not None else "-"


def _person_masked(view, context, model, name):
    """The list's 人员: the 身份证号 masked (issue 17); the details page shows it in full."""
    return f"{model.person.name} {mask_id_number(model.person.id_number)}" if model.person is not None else "-"


def _brief(view, context, model, name):
    """The list keeps one line per row; the whole text is on hover and on the detail page."""
    text = getattr(model, name) or ""
    if len(text) <= BRIEF:
        return text or "-"
    return Markup('<span title="{}">{}…</span>').format(text, text[:BRIEF])


def _decision(view, context, model, name):
    if not model.decision:
        return "-"
    if model.status == A.rejected:
        return Markup('<span class="reason-red">{}</span>').format(model.decision)
    return model.decision


def _persons(*predicates):
    return Anomaly.person_id.in_(select(Person.id).where(*predicates))


class AppealView(AttachmentFilesMixin, WorkflowModelView):
    """申辩管理: the enterprise's list (``appeal``) and the province's (``appeal_review``)."""

    workflow = APPEAL
    details_template = "appeal/details.html"
    list_template = "appeal/list.html"
    column_labels = {
        "kind": "异常类型", "person": "人员(姓名/身份证号)", "enterprise": "企业", "description": "异常说明",
        "status": "状态", "created_at": "发现时间", "answered_at": "申辩时间", "answer": "申辩说明",
        "decided_at": "处理时间", "decision": "处理意见",
    }
    column_formatters = {"person": _person_masked, "description": _brief, "decision": _decision}
    column_formatters_detail = {"person": _person, "decision": _decision}
    column_sortable_list = ("created_at", "answered_at", "decided_at")
    column_default_sort = ("id", True)
    search_hint = "人员姓名或身份证号"
    search_rules = {
        TermKind.id_number: lambda term: _persons(Person.id_number == term),
        TermKind.text: lambda term: _persons(starts_with(Person.name, term)),
    }

    def __init__(self, *, kinds, permission, tabs, reviewer=False, **kwargs):
        self.kinds = kinds
        self.permission = permission
        self.tabs = tabs
        self.reviewer = reviewer  # the province's list: the 企业 column and 异常筛查
        base = ("kind", "person", "description", "status", "created_at", "answered_at", "decided_at", "decision")
        self.column_list = ("enterprise", *base) if reviewer else base
        self.column_details_list = ("kind", "person", "enterprise", "description", "status", "created_at",
                                    "answered_at", "answer", "decided_at", "decision")
        super().__init__(Anomaly, **kwargs)

    row_words = dict.fromkeys(DECISIONS, "处理")  # one 处理 in the 操作 column opens both decisions

    def get_query(self):
        return super().get_query().options(joinedload(Anomaly.person), joinedload(Anomaly.enterprise))

    def row_links(self, row):
        """申辩 on an open anomaly of this user's enterprise: the form on its details page."""
        if not self.may_answer(row):
            return []
        return [("申辩", f"{self.row_url('.details_view', row.id)}#appeal-form-card", "row-appeal")]

    # -- the detail page --------------------------------------------------------------------------
    def may_answer(self, anomaly: Anomaly) -> bool:
        """The 申辩 form: an open anomaly of this user's enterprise (the engine decides again on POST)."""
        return may_appeal(current_user, anomaly)

    def appeal_page(self, anomaly: Anomaly) -> dict:
        files = db.session.scalars(select(Attachment).where(
            Attachment.owner_type == "anomaly", Attachment.owner_id == anomaly.id).order_by(Attachment.id)).all()
        logs = transition_logs(APPEAL.object_type, anomaly.id)
        return {"files": files, "logs": logs, "may_answer": self.may_answer(anomaly), "max_files": MAX_FILES,
                "accept": ACCEPT_FILES, "refusal": REFUSAL}

    @expose("/answer/", methods=("POST",))
    def answer_view(self):
        """申辩: text and files in one POST; a refused one stores nothing (submit_appeal checks first)."""
        form = AnswerForm()
        anomaly = self.get_one(form.id.data)
        files = [(f.filename or "", f.read()) for f in form.files.data or ()]

        def answer():
            seen = form.version.data
            if seen and str(anomaly.version) != seen:
                raise StaleObjectError()
            submit_appeal(db.session, current_user, anomaly, form.answer.data or "", files)

        return self.run_on_row(anomaly.id, answer, "申辩已提交，等待省厅处理")

    # -- 异常筛查 ------------------------------------------------------------------------------------
    @expose("/scan/", methods=("POST",))
    def scan_view(self):
        if not self.reviewer:
            abort(404)

        def scan():
            added = scan_anomalies(db.session, current_user)
            return f"异常筛查完成：新增 {added} 条异常信息" if added else "异常筛查完成：未发现新的异常信息"

        perform(scan)
        return redirect(self.get_url(".index_view"))


def _enterprise_tabs():
    return [
        ("open", "待申辩", lambda: Anomaly.status == A.open),
        ("answered", "已申辩", lambda: Anomaly.status.in_((A.appealed, A.accepted, A.rejected))),
        ("all", "全部", None),
    ]


def _province_tabs():
    return [
        ("pending", "待处理", lambda: Anomaly.status == A.appealed),
        ("done", "已处理", lambda: Anomaly.status.in_((A.accepted, A.rejected))),
        ("all", "全部", None),
    ]


def register(admin) -> None:
    """Adds this module's views to the admin."""
    admin.add_view(AppealView(kinds=(OrgKind.enterprise,), permission=Permission.registration_manage,
                              tabs=_enterprise_tabs(), name="申辩管理", category="注册管理", endpoint="appeal"))
    admin.add_view(AppealView(kinds=(OrgKind.province,), permission=Permission.registration_review,
                              tabs=_province_tabs(), reviewer=True, name="申辩管理", category="注册审查",
                              endpoint="appeal_review"))
