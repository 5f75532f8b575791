"""注册申报 (SPEC §5.5; 002 §3.1.3–3.1.4, 004 §3.2–§3.4): the individual's 注册申报, the
enterprise's 注册申报管理 (查看, 上报 behind the 企业承诺书, 退回, 查询, 同意撤回, 补正资质),
注册人员查询 with 导出, 人员到期预警, and the province's and ministry's 注册审查.

Every decision is in workflows.registration; every row is loaded through visibility. 上报 is
never fired from a form field: the commitment page stores, in the session, when it showed the
企业承诺书 (under a random token, so two tabs do not clash) and the POST builds the
``Commitment`` from that time. The generic list action and the detail page's button lead there.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField, StringField, TextAreaField

from admin_views.actions import TransitionForm, WorkflowModelView, perform, transition_logs
from admin_views.forms import TypedForm
from admin_views.model_views import SecureModelView
from models import Organization, Person, Registration, RegistrationKind, RegistrationStatus, db
from models.base import local_today, utcnow
from models.org import OrgKind
from models.registration import SPECIALTIES
from models.user import Permission
from workflows import WorkflowError
from workflows.privacy import mask_id_number
from workflows.registration import (
    COMMITMENT_SECONDS,
    COMMITMENT_TEXT,
    COMMITMENT_TICK,
    DECISIONS,
    REGISTRATION,
    REPORT,
    REPORTED_STATES,
    WITHDRAWABLE,
    Commitment,
    awaiting_acceptance,
    awaiting_decision,
    correct_qualification,
    correction_clause,
    corrects_qualification,
    declare,
    expiring_clause,
    may_correct,
    may_report,
    needs_correction,
    registered_clause,
)
from workflows.search import TermKind, starts_with

R = RegistrationStatus
REVIEWERS = (OrgKind.province, OrgKind.ministry)
# session[COMMITMENT_SESSION_KEY] = {token: ISO time (naive UTC) the 企业承诺书 was shown}
COMMITMENT_SESSION_KEY = "registration_commitments"
MAX_OPEN_COMMITMENTS = 5  # commitment pages open at once (tabs) per session


# -- forms: the fields each page posts (workflows.registration judges the values) ------------------
class DeclareForm(TypedForm):
    """新增申报."""

    kind = StringField()
    specialty = StringField()
    enterprise = StringField()
    explanation = TextAreaField()


class CommitmentForm(TypedForm):
    """确认上报 on the 企业承诺书 page: the page's token and the tick."""

    token = HiddenField()
    ticked = StringField()


class CorrectionForm(TypedForm):
    """补正资质 (the copy of the certificate comes as files)."""

    qualification_no = StringField()


# -- columns -----------------------------------------------------------------------------------
def _red_reason(view, context, model, name):
    if model.reason and model.status in (R.returned, R.rejected):
        return Markup('<span class="reason-red">{}</span>').format(model.reason)
    return "-"


def _pre_registration(view, context, model, name):
    if not model.pre_registration:
        return "-"
    if needs_correction(model):
        return Markup('<span class="text-danger">预注册（待补正资质）</span>')
    return "预注册（已补正）" if model.qualification_no else "预注册"


def _days_left(view, context, model, name):
    days = days_left(model)
    if days is None:
        return "-"
    if days < 0:
        return Markup('<span class="text-danger">已过期 {} 天</span>').format(-days)
    return Markup('<span class="{}">{} 天</span>').format("text-danger" if days <= 30 else "", days)


def days_left(reg: Registration) -> int | None:
    return (reg.valid_until - local_today()).days if reg.valid_until else None


def _value(value):
    return value if value not in (None, "") else "-"


COLUMN_LABELS = {
    "person_name": "姓名", "id_number": "身份证号", "kind": "申报类型", "specialty": "注册专业",
    "enterprise": "聘用企业", "status": "状态", "created_at": "申报时间", "reported_at": "上报时间",
    "registration_number": "注册编号", "valid_until": "有效期至", "reason": "退回/不予注册理由",
    "pre_registration": "预注册", "withdraw_requested_at": "申请撤回时间", "explanation": "申报说明",
    "qualification_no": "企业资质证书号", "decided_at": "办结时间", "days_left": "剩余天数",
    "ministry_at": "报送部级时间",
}
COLUMN_FORMATTERS = {
    "person_name": lambda v, c, m, n: m.person.name,
    "id_number": lambda v, c, m, n: m.person.id_number,
    "kind": lambda v, c, m, n: m.kind.label,
    "specialty": lambda v, c, m, n: m.specialty_label,
    "enterprise": lambda v, c, m, n: m.enterprise.name,
    "reason": _red_reason,
    "pre_registration": _pre_registration,
    "days_left": _days_left,
    "registration_number": lambda v, c, m, n: _value(m.registration_number),
    "valid_until": lambda v, c, m, n: _value(m.valid_until),
    "explanation": lambda v, c, m, n: _value(m.explanation),
    "qualification_no": lambda v, c, m, n: _value(m.qualification_no),
}
# lists show the 身份证号 masked (issue 17: privacy by display); the details page in full
LIST_FORMATTERS = {**COLUMN_FORMATTERS, "id_number": lambda v, c, m, n: mask_id_number(m.person.id_number)}


def _persons(*predicates):
    return Registration.person_id.in_(select(Person.id).where(*predicates))


SEARCH_RULES = {
    TermKind.id_number: lambda term: _persons(Person.id_number == term),
    TermKind.code: lambda term: [Registration.registration_number == term,
                                 _persons(starts_with(Person.name, term))],
    TermKind.text: lambda term: [_persons(starts_with(Person.name, term)),
                                 Registration.registration_number == term],
}
SEARCH_HINT = "姓名、身份证号或注册编号"


class RegistrationColumns:
    """What every registration list shares: labels, formatters, search, eager loading."""

    column_labels = COLUMN_LABELS
    column_formatters = LIST_FORMATTERS
    column_formatters_detail = COLUMN_FORMATTERS
    column_sortable_list = ("created_at", "reported_at", "valid_until")
    column_default_sort = ("id", True)
    column_details_list = ("person_name", "id_number", "kind", "specialty", "enterprise", "explanation", "status",
                           "created_at", "reported_at", "pre_registration", "qualification_no",
                           "withdraw_requested_at", "registration_number", "valid_until", "decided_at", "reason")
    search_rules = SEARCH_RULES
    search_hint = SEARCH_HINT

    def get_query(self):
        return super().get_query().options(joinedload(Registration.person), joinedload(Registration.enterprise))


class RegistrationView(RegistrationColumns, WorkflowModelView):
    """注册申报 lists: the individual's, the enterprise's and the reviewers'."""

    workflow = REGISTRATION
    details_template = "registration/details.html"
    list_template = "registration/list.html"

    def __init__(self, *, kinds, tabs=(), permission=None, individual=False, **kwargs):
        self.kinds = kinds
        self.tabs = list(tabs)
        self.permission = permission
        self.individual = individual
        super().__init__(Registration, **kwargs)

    # -- no path fires 上报 without the commitment page ------------------------------------
    def _bulk_transition(self, name, ids):
        if name == REPORT:
            return self.ask_more(ids, ".report_view")
        return super()._bulk_transition(name, ids)

    @expose("/transition/", methods=("POST",))
    def transition_view(self):
        form = TransitionForm()
        if form.transition.data == REPORT:
            obj = self.get_one(form.id.data)
            flash("上报前请仔细阅读企业承诺书", "warning")
            return redirect(url_for("registration_manage.report_view", id=obj.id))
        return super().transition_view()

    def available_transitions(self, obj):
        """Detail buttons: 上报 is a link to the commitment page (``may_report``)."""
        return [t for t in super().available_transitions(obj) if t.name != REPORT]

    def row_transitions(self, row) -> list:
        """The 操作 column: 上报 too (点击某一人员操作列中的【上报】按钮，进入详情页面, 002 §3.1.4)."""
        report = self.workflow.transition(REPORT)
        return ([report] if self.may_report(row) else []) + self.available_transitions(row)

    def may_report(self, obj) -> bool:
        return may_report(current_user, obj)

    def may_correct(self, obj) -> bool:
        return may_correct(current_user, obj)

    # -- the detail page ---------------------------------------------------------------------
    def review_log(self, reg: Registration) -> list:
        """审核日志: every transition of this declaration, oldest first."""
        return transition_logs(REGISTRATION.object_type, reg.id)

    def new_declaration_url(self) -> str | None:
        return None

    def correction_count(self) -> int:
        return 0


class DeclarationView(RegistrationView):
    """注册申报 (individual): my declarations, 新增申报, 申请撤回 on the detail page."""

    details_label = "查看"  # 004 §3.2: 点击"查看"按钮，跳转至查看详情页面

    column_list = ("kind", "specialty", "enterprise", "status", "created_at", "registration_number", "valid_until",
                   "reason")

    def new_declaration_url(self) -> str | None:
        return self.get_url(".declare_view")

    @expose("/declare/", methods=("GET", "POST"))
    def declare_view(self):
        """新增申报: 申报类型, 注册专业, 聘用企业 (全称或统一社会信用代码), 申报说明."""
        form = DeclareForm()
        values = form.typed()
        if form.is_submitted():
            done = perform(lambda: declare(db.session, current_user, values),
                           "增项注册申报已提交，直接报送省级审批机构" if form.kind.data == RegistrationKind.additional.value
                           else "注册申报已提交，待聘用企业上报")
            if done:
                return redirect(self.get_url(".details_view", id=done.value.id))
        employer = current_user.person.employer if current_user.person is not None else None
        default_enterprise = employer.name if employer is not None and employer.kind == OrgKind.enterprise else ""
        return self.render("registration/declare.html", kinds=list(RegistrationKind), specialties=SPECIALTIES,
                           values=values, default_enterprise=default_enterprise)


class ManageView(RegistrationView):
    """注册申报管理 (enterprise): 查看, 上报, 退回, 查询, 同意撤回, 补正资质. Returned
    declarations leave this page (004 §3.2.3)."""

    details_label = "查看"

    column_list = ("person_name", "id_number", "kind", "specialty", "status", "created_at", "reported_at",
                   "withdraw_requested_at", "pre_registration")

    def scope_query(self, query):
        return query.where(Registration.status != R.returned)

    # -- 上报: the 企业承诺书 read for COMMITMENT_SECONDS, measured by the server ----------------
    def _open_commitments(self) -> dict:
        stored = session.get(COMMITMENT_SESSION_KEY)
        return dict(stored) if isinstance(stored, dict) else {}

    def _remember(self, token: str, shown_at: datetime) -> None:
        pending = self._open_commitments()
        pending[token] = shown_at.isoformat()
        if len(pending) > MAX_OPEN_COMMITMENTS:  # the oldest pages give way
            pending = dict(sorted(pending.items(), key=lambda kv: kv[1])[-MAX_OPEN_COMMITMENTS:])
        session[COMMITMENT_SESSION_KEY] = pending

    def _forget(self, token: str) -> None:
        pending = self._open_commitments()
        pending.pop(token, None)
        session[COMMITMENT_SESSION_KEY] = pending

    def _shown_at(self, token: str) -> datetime | None:
        raw = self._open_commitments().get(token or "")
        try:
            return datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None

    @expose("/report/", methods=("GET", "POST"))
    def report_view(self):
        """上报 (004 §3.2.2; 002 §3.1.4): one or many rows → 企业承诺书 → 60 s → tick → 确认."""
        if self.workflow.transition(REPORT) not in self.offered_transitions():
            abort(404)
        ids, rows, return_url = self.selected_rows()
        if request.method == "POST":
            return self._confirm_report(ids, rows, return_url)
        # rows that cannot be reported say so at once (已经上报过的再次点击上报，会出现提示)
        refused = {}
        for raw, obj in rows.items():
            if not self.may_report(obj):
                try:
                    self.workflow.check(db.session, current_user, obj, REPORT)
                except WorkflowError as exc:
                    refused[raw] = f"{obj}：{exc.message}"
        if len(refused) == len(rows):
            flash("上报：" + "；".join(refused.values()), "error")
            return redirect(return_url)
        token, shown_at = secrets.token_urlsafe(16), utcnow()
        self._remember(token, shown_at)
        reportable = [obj for raw, obj in rows.items() if raw not in refused]
        return self._commitment_page(token, [i for i in ids if i not in refused], reportable,
                                     list(refused.values()), return_url, _remaining(shown_at))

    def _commitment_page(self, token, ids, reportable, refused, return_url, remaining):
        return self.render("registration/commitment.html", token=token, ids=ids, rows=reportable, refused=refused,
                           return_url=return_url, text=COMMITMENT_TEXT, tick=COMMITMENT_TICK,
                           seconds=COMMITMENT_SECONDS, remaining=max(int(remaining), 0))

    def _confirm_report(self, ids, rows, return_url):
        form = CommitmentForm()
        token = form.token.data
        shown_at = self._shown_at(token)
        commitment = Commitment(shown_at=shown_at, ticked=form.ticked.data == "1") if shown_at else None
        done = perform(lambda: self.workflow.fire_many(db.session, current_user, rows, ids, REPORT,
                                                       commitment=commitment))
        if not done:
            return redirect(return_url)
        result = done.value
        category = "success" if not result.failed else ("warning" if result.succeeded else "error")
        flash(f"上报：{result.summary()}", category)
        if commitment is None:  # no page was shown under this token: show it now
            return redirect(self.get_url(".report_view", id=ids, url=return_url))
        unread = commitment.seconds_read() < COMMITMENT_SECONDS or not commitment.ticked
        if not result.succeeded and unread:
            # the same page, the same token: the countdown goes on from where it is
            reportable = [obj for obj in rows.values() if self.may_report(obj)]
            return self._commitment_page(token, ids, reportable, [], return_url, _remaining(shown_at))
        self._forget(token)
        return redirect(return_url)

    # -- 补正资质 (004 §3.2.6) ----------------------------------------------------------------
    def _corrections(self):
        return self.visible_query().where(correction_clause())

    def correction_count(self) -> int:
        if not corrects_qualification(current_user):
            return 0
        return self._corrections().count()

    @expose("/correct/", methods=("GET", "POST"))
    def correct_view(self):
        """补正资质: the qualification number now held; the copy of the certificate when the number
        is not the one on the enterprise's record."""
        if not corrects_qualification(current_user):
            abort(404)
        pending = self._corrections().options(joinedload(Registration.person)).all()
        form = CorrectionForm()
        if form.is_submitted():
            files = [(f.filename or "", f.read()) for f in request.files.getlist("files")]

            def correct():
                count = correct_qualification(db.session, current_user, form.qualification_no.data, files)
                return f"补正资质成功：{count} 条预注册申报已更新"

            if perform(correct):
                return redirect(self.get_url(".index_view"))
        org = db.session.get(Organization, current_user.organization_id)
        return self.render("registration/correct.html", pending=pending, on_record=org.qualification_no if org else None,
                           values=form.typed())


def _remaining(shown_at: datetime) -> int:
    """Seconds still to read, by the clock the 上报 guard uses (the page and the rule agree)."""
    return max(math.ceil(COMMITMENT_SECONDS - Commitment(shown_at=shown_at, ticked=False).seconds_read()), 0)


def _manage_tabs():
    return [
        ("unreported", "未上报", lambda: Registration.status == R.unreported),
        ("reported", "已上报", lambda: Registration.status.in_(REPORTED_STATES)),
        ("withdraw", "申请撤回", lambda: Registration.withdraw_requested_at.is_not(None)
         & Registration.status.in_(WITHDRAWABLE)),
        ("all", "全部", None),
    ]


class ReviewView(RegistrationView):
    """注册审查 (province, ministry): 受理, 审查通过 / 准予注册, 不予注册 — the actions follow the
    user's kind from the workflow table."""

    column_list = ("person_name", "id_number", "kind", "specialty", "enterprise", "status", "reported_at",
                   "pre_registration")
    # 受理 keeps its word; the decisions after it are one 审查 button to the details page
    row_words = {name: "审查" for name in DECISIONS}

    def scope_query(self, query):
        return query.where(Registration.reported_at.is_not(None))


def _review_tabs():
    def accepting():
        return awaiting_acceptance(current_user)

    def deciding():
        return awaiting_decision(current_user)

    return [
        ("unaccepted", "待受理", lambda: Registration.status.in_(accepting())),
        ("accepted", "待审查", lambda: Registration.status.in_(deciding())),
        ("done", "已处理", lambda: Registration.status.notin_(accepting() | deciding())),
        ("all", "全部", None),
    ]


class RegisteredView(RegistrationColumns, SecureModelView):
    """注册人员查询 (004 §3.3; 002 已注册人员): the enterprise's registrations in force, 导出."""

    details_template = "registration/registered_details.html"
    kinds = (OrgKind.enterprise,)
    permission = Permission.registration_manage
    column_list = ("person_name", "id_number", "specialty", "registration_number", "decided_at", "valid_until")
    column_labels = {**COLUMN_LABELS, "decided_at": "注册时间"}
    column_details_list = ("person_name", "id_number", "kind", "specialty", "enterprise", "registration_number",
                           "decided_at", "valid_until", "qualification_no")
    column_sortable_list = ("registration_number", "decided_at", "valid_until")
    export_filename = "注册人员"
    export_columns = [
        ("姓名", lambda r: r.person.name, True),
        ("身份证号", lambda r: r.person.id_number, True),
        ("注册专业", lambda r: r.specialty_label, True),
        ("注册编号", lambda r: r.registration_number, True),
        ("聘用企业", lambda r: r.enterprise.name, True),
        ("注册类型", lambda r: r.kind.label, True),
        ("注册时间", lambda r: r.decided_at, False),
        ("有效期至", lambda r: r.valid_until, False),
    ]

    def __init__(self, **kwargs):
        super().__init__(Registration, **kwargs)

    def scope_query(self, query):
        return query.where(registered_clause())


class ExpiringView(RegisteredView):
    """人员到期预警 (004 §3.4): registrations in force expiring within EXPIRY_WARNING_DAYS."""

    column_list = ("person_name", "id_number", "specialty", "registration_number", "valid_until", "days_left")
    column_default_sort = ("valid_until", False)
    export_filename = "人员到期预警"
    export_columns = [*RegisteredView.export_columns, ("剩余天数", days_left, False)]

    def warning_days(self) -> int:
        return int(current_app.config["EXPIRY_WARNING_DAYS"])

    def scope_query(self, query):
        return query.where(expiring_clause(self.warning_days()))


def register(admin) -> None:
    """Adds this module's views to the admin."""
    admin.add_view(DeclarationView(kinds=(), individual=True, name="注册申报", category="注册申报",
                                   endpoint="declaration"))
    admin.add_view(ManageView(kinds=(OrgKind.enterprise,), permission=Permission.registration_manage,
                              tabs=_manage_tabs(), name="注册申报管理", category="注册管理",
                              endpoint="registration_manage"))
    admin.add_view(RegisteredView(name="注册人员查询", category="注册管理", endpoint="registered"))
    admin.add_view(ExpiringView(name="人员到期预警", category="注册管理", endpoint="expiring"))
    admin.add_view(ReviewView(kinds=REVIEWERS, permission=Permission.registration_review, tabs=_review_tabs(),
                              name="注册审查", category="注册审查", endpoint="registration_review"))
