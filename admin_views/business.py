"""证书业务处理 (003 §六.3, §七.3, §八.3; 000 §二(二); 001): 申请业务, 已申请业务, the review
lists per kind (变更管理 / 补办管理 / 注销管理) and the province's 业务总览.

The applicant's forms call workflows.business; every row is loaded through visibility.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import HiddenField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired

from admin_views.actions import AttachmentFilesMixin, WorkflowModelView, perform, review_tabs, transition_logs
from admin_views.certificates import MAX_ID, BusinessPrintView, DateFromFilter, DateToFilter, ReadableFilters
from admin_views.forms import RowForm, TypedForm
from admin_views.model_views import SecureModelView
from models import (
    ApplicationItem,
    ApplicationKind,
    ApplicationStatus,
    Attachment,
    Certificate,
    CertificateApplication,
    ChangeField,
    Person,
    db,
)
from models.base import local_day_start
from models.certificate import CertificateStatus
from models.org import OrgKind
from models.user import Permission
from workflows.business import (
    APPLICANT_KINDS,
    BUSINESS,
    PENDING_STATES,
    REVIEWS,
    SOCIAL_SECURITY,
    add_lost_certificate,
    attach_images,
    awaiting_review,
    draft_refusal,
    movable_by,
    names_free_employer,
    offered_kinds,
    receiving_enterprises,
    remove_lost_certificate,
    start_cancel,
    start_change,
    start_reissue,
    submit_new,
)
from workflows.privacy import mask_id_number
from workflows.search import MAX_TERM, TermKind, classify, starts_with
from workflows.visibility import NotFoundError, get_visible, visible

A = ApplicationStatus
REVIEW_ORDER = [A.pending_authority, A.pending_province, A.approved, A.rejected]
REVIEWERS = (OrgKind.authority, OrgKind.province)


# -- forms: the fields each page posts (the workflows judge the values) ------------------------------
class ItemForm(RowForm):
    """A form on an application's page: the application, and the item a button acts on."""

    item_id = HiddenField()


class LostPickForm(TypedForm):
    """选择遗失证书: the ticked certificates (ids this user may pick, else a 404)."""

    certificate_id = SelectMultipleField(choices=[], validate_choice=False,
                                         validators=[DataRequired("请选择遗失证书")])


class ExplanationForm(TypedForm):
    """注销 and 补办: 申请说明."""

    explanation = TextAreaField()


class ChangeForm(ExplanationForm):
    """变更: the new values of the chosen fields (``fields`` come with the page's address)."""

    step = HiddenField()
    new_name = StringField()
    new_id_number = StringField()
    new_employer_id = StringField()
    new_employer_name = StringField()


def _visible_or_404(model, ident):
    try:
        return get_visible(db.session, current_user, model, ident)
    except NotFoundError:
        abort(404)


def _numbers(view, context, model, name):
    return "、".join(item.certificate.number for item in model.items)


def _holder(view, context, model, name, masked: bool = False):
    if model.person is None:
        return "-"  # a 补办 draft before its first lost certificate
    id_number = model.old_id_number or model.person.id_number
    return f"{model.old_name or model.person.name} {mask_id_number(id_number) if masked else id_number}"


def _holder_masked(view, context, model, name):
    """The list's 姓名/身份证号: the number masked (issue 17); the details page shows it in full."""
    return _holder(view, context, model, name, masked=True)


def _reason(view, context, model, name):
    if model.reject_reason and model.status == A.rejected:
        return Markup('<span class="reason-red">{}</span>').format(model.reject_reason)
    return "-"


def _persons(*predicates):
    return CertificateApplication.person_id.in_(select(Person.id).where(*predicates))


def _with_number(term):
    return CertificateApplication.id.in_(
        select(ApplicationItem.application_id).join(Certificate, Certificate.id == ApplicationItem.certificate_id)
        .where(Certificate.number == term))


# -- 业务总览's filters (003 §八.3): 业务类型, 审核状态, 发起业务时间 from … to … (Beijing dates) -----
class KindFilter(sqla_filters.EnumEqualFilter):
    url_key = "kind"

    def __init__(self):
        super().__init__(CertificateApplication.kind, "业务类型", options=[(k.value, k.label) for k in ApplicationKind])

    def clean(self, value):
        return ApplicationKind(value)  # ValueError: ignored with a message, never a 500

    def operation(self):
        return "等于"


class ApplicationStatusFilter(sqla_filters.EnumEqualFilter):
    url_key = "status"

    def __init__(self, states):
        super().__init__(CertificateApplication.status, "审核状态", options=[(s.value, s.label) for s in states])
        self.states = states

    def clean(self, value):
        state = ApplicationStatus(value)
        if state not in self.states:
            raise ValueError(value)
        return state

    def operation(self):
        return "等于"


class SubmittedFromFilter(DateFromFilter):
    url_key = "submitted_from"

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= local_day_start(value))


class SubmittedToFilter(DateToFilter):
    url_key = "submitted_to"

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) < local_day_start(value + timedelta(days=1)))


def overview_filters() -> list:
    """New instances per view: a filter keeps per-view state once bound."""
    return [KindFilter(), ApplicationStatusFilter(REVIEW_ORDER),
            SubmittedFromFilter(CertificateApplication.submitted_at, "发起业务时间"),
            SubmittedToFilter(CertificateApplication.submitted_at, "发起业务时间")]


class ApplicationView(ReadableFilters, AttachmentFilesMixin, WorkflowModelView):
    """已申请业务 for applicants; 变更/补办/注销管理 and 业务总览 for reviewers."""

    workflow = BUSINESS
    individual = False
    details_template = "business/details.html"
    list_template = "business/application_list.html"

    def may_new_reissue(self) -> bool:
        """已申请业务 offers 新建申请 (证书遗失补办, 001) to the applicants who may start a 补办."""
        return self.endpoint in ("application", "lost_reissue") and ApplicationKind.reissue in offered_kinds(
            current_user)
    column_list = ("kind", "numbers", "holder", "old_employer_name", "created_at", "submitted_at", "reviewed_at",
                   "status", "reject_reason")
    column_labels = {
        "kind": "业务类型", "numbers": "证书编号", "holder": "姓名/身份证号", "old_employer_name": "工作单位",
        "created_at": "创建时间", "submitted_at": "发起业务时间", "reviewed_at": "审核时间", "status": "审核状态",
        "reject_reason": "审核不通过原因", "applicant_org": "申请单位", "explanation": "申请说明",
        "reviewing_authority": "审核主管部门",
    }
    column_details_list = ("kind", "numbers", "holder", "old_employer_name", "applicant_org", "reviewing_authority",
                           "explanation", "submitted_at", "reviewed_at", "status", "reject_reason")
    column_formatters = {"numbers": _numbers, "holder": _holder_masked, "reject_reason": _reason}
    column_formatters_detail = {**column_formatters, "holder": _holder}
    column_sortable_list = ("submitted_at", "reviewed_at", "created_at")
    column_default_sort = ("id", True)
    search_hint = "证书编号、身份证号或姓名"
    search_rules = {
        TermKind.certificate_number: _with_number,
        TermKind.id_number: lambda term: _persons(Person.id_number == term),
        TermKind.text: lambda term: _persons(starts_with(Person.name, term)),
    }

    def __init__(self, *, kinds, tabs, permission=None, kind=None, individual=False, submitted_only=False,
                 filters=None, **kwargs):
        self.kinds = kinds
        self.tabs = tabs
        self.permission = permission
        self.application_kind = kind
        self.individual = individual
        self.submitted_only = submitted_only
        if filters is not None:
            self.column_filters = filters()
        super().__init__(CertificateApplication, **kwargs)

    def row_clause(self):
        """A list of one kind (变更管理, 补办管理, 注销管理, 证书遗失重打申请) lists, opens and acts on
        only that kind: another kind's id in its URL is a 404, as on the list."""
        if self.application_kind is not None:
            return CertificateApplication.kind == self.application_kind
        return None

    def scope_query(self, query):
        if self.submitted_only:  # 业务总览: 所有已发起证书业务 (003 §八.3), not the applicants' drafts
            query = query.where(CertificateApplication.status != A.draft)
        return query

    def get_query(self):
        return super().get_query().options(
            selectinload(CertificateApplication.items).joinedload(ApplicationItem.certificate),
            joinedload(CertificateApplication.person),
        )

    # -- the detail page ---------------------------------------------------------------------
    def application_page(self, app: CertificateApplication) -> dict:
        images = db.session.scalars(select(Attachment).where(
            Attachment.owner_type == "application", Attachment.owner_id == app.id).order_by(Attachment.id)).all()
        logs = transition_logs("application", app.id)
        editable = draft_refusal(current_user, app) is None
        return {"images": images, "logs": logs, "editable": editable,
                "may_pick_lost": editable and app.kind == ApplicationKind.reissue,
                "social_security": SOCIAL_SECURITY, "reviews": REVIEWS}

    # -- 选择遗失证书 (001 证书遗失补证申请) -----------------------------------------------------------
    LOST_PAGE = 50

    def pickable(self, app: CertificateApplication):
        """The certificates this user sees that may go into ``app``: once the draft has its holder,
        only that holder's (a certificate of another holder is a forged id here, as a hidden one)."""
        stmt = visible(current_user, select(Certificate), Certificate)
        if app.person_id is not None:
            stmt = stmt.where(Certificate.person_id == app.person_id)
        return stmt

    def lost_candidates(self, app: CertificateApplication, term: str) -> tuple[list, bool]:
        """选择遗失证书's list: valid certificates the draft may take — the holder's, or before the
        first one those of every holder this user sees (an enterprise: its employees'), narrowed
        by certificate number, ID number or name — without the ones already in the draft."""
        stmt = self.pickable(app).where(Certificate.status == CertificateStatus.valid,
                                        Certificate.id.notin_([i.certificate_id for i in app.items] or [0]))
        stmt = stmt.where(movable_by(current_user))
        if term:
            kind, term = classify(term)
            rule = ApplyView.search_rules.get(kind)
            if rule is None:
                return [], False
            stmt = stmt.where(rule(term))
        rows = db.session.scalars(stmt.options(joinedload(Certificate.person), joinedload(Certificate.occupation),
                                               joinedload(Certificate.level))
                                  .order_by(Certificate.person_id, Certificate.number).limit(self.LOST_PAGE + 1)).all()
        return rows[:self.LOST_PAGE], len(rows) > self.LOST_PAGE

    @staticmethod
    def open_applications(certificates) -> dict:
        """The submitted, undecided application already holding each certificate (one query)."""
        ids = [c.id for c in certificates]
        if not ids:
            return {}
        rows = db.session.execute(
            select(ApplicationItem.certificate_id, CertificateApplication)
            .join(CertificateApplication, CertificateApplication.id == ApplicationItem.application_id)
            .where(ApplicationItem.certificate_id.in_(ids),
                   CertificateApplication.status.in_(PENDING_STATES))).all()
        return {certificate_id: app for certificate_id, app in rows}

    def _lost_draft(self) -> CertificateApplication:
        app = _visible_or_404(CertificateApplication, request.values.get("id"))
        if app.kind != ApplicationKind.reissue:
            abort(404)
        return app

    @expose("/lost/", methods=("GET",))
    def lost_view(self):
        """选择遗失证书: the certificates to tick, then 添加遗失证书; back on the draft, 提交申请."""
        app = self._lost_draft()
        refusal = draft_refusal(current_user, app)
        if refusal is not None:
            flash(refusal, "error")
            return redirect(self.get_url(".details_view", id=app.id))
        term = (request.args.get("lost_q") or "").strip()[:MAX_TERM]
        candidates, more = self.lost_candidates(app, term)
        return self.render("business/lost_picker.html", model=app, candidates=candidates, more=more, term=term,
                           open_applications=self.open_applications(candidates), page_size=self.LOST_PAGE)

    @expose("/lost/add/", methods=("POST",))
    def lost_add_view(self):
        """Every ticked certificate into the draft, or none: an id this user may not pick is a 404,
        a refusal (not valid, already applied for, another holder) names the certificate."""
        app = self._lost_draft()
        form = LostPickForm()
        if not form.validate():
            flash(form.first_error(), "error")
            return redirect(self.get_url(".lost_view", id=app.id))
        wanted = list(dict.fromkeys(form.certificate_id.data))
        try:
            ids = [int(raw) for raw in wanted]
        except ValueError:
            abort(404)
        if not all(0 < i <= MAX_ID for i in ids):
            abort(404)
        found = {c.id: c for c in db.session.scalars(self.pickable(app).where(Certificate.id.in_(ids)))}
        if len(found) != len(ids):
            abort(404)
        certificates = [found[i] for i in ids]

        def add_all():
            for certificate in certificates:
                add_lost_certificate(db.session, current_user, app, certificate)

        numbers = "、".join(c.number for c in certificates)
        return self.run_on_row(app.id, add_all, f"已添加遗失证书 {numbers}")

    @expose("/images/", methods=("POST",))
    def images_view(self):
        app = _visible_or_404(CertificateApplication, RowForm().id.data)
        files = [(f.filename or "", f.read()) for f in request.files.getlist("files")]
        return self.run_on_row(app.id, lambda: attach_images(db.session, current_user, app, files), "图片已上传")

    @expose("/lost/remove/", methods=("POST",))
    def lost_remove_view(self):
        form = ItemForm()
        app = _visible_or_404(CertificateApplication, form.id.data)
        item = next((i for i in app.items if str(i.id) == form.item_id.data), None)
        if item is None:
            abort(404)
        return self.run_on_row(app.id, lambda: remove_lost_certificate(db.session, current_user, app, item), "已移除")


class ApplyView(SecureModelView):
    """申请业务 (003 §六.3): the valid certificates the user may apply for, with 变更 / 补办 / 注销."""

    column_list = ("number", "holder", "employer", "occupation", "level", "issue_date")
    column_labels = {"number": "证书编号", "holder": "姓名/身份证号", "employer": "工作单位",
                     "occupation": "职业(工种)", "level": "职业资格", "issue_date": "发证日期"}
    column_formatters = {
        "holder": lambda v, c, m, n: f"{m.person.name} {mask_id_number(m.person.id_number)}",
        "employer": lambda v, c, m, n: m.person.employer_display,
        "level": lambda v, c, m, n: m.level.name if m.level else "-",
    }
    column_sortable_list = ("number", "issue_date")
    column_default_sort = ("id", True)
    can_view_details = False
    kinds = APPLICANT_KINDS
    permission = Permission.business_apply
    individual = True
    search_hint = "证书编号、身份证号或姓名"
    search_rules = {
        TermKind.certificate_number: lambda term: Certificate.number == term,
        TermKind.id_number: lambda term: Certificate.person_id.in_(select(Person.id).where(Person.id_number == term)),
        TermKind.text: lambda term: Certificate.person_id.in_(
            select(Person.id).where(starts_with(Person.name, term))),
    }

    def __init__(self, **kwargs):
        super().__init__(Certificate, **kwargs)

    def is_accessible(self):
        from admin_views.access import user_may_enter

        if getattr(current_user, "is_authenticated", False) and current_user.organization is None:
            return user_may_enter(current_user, individual=True)
        return super().is_accessible()

    def scope_query(self, query):
        return query.where(Certificate.status == CertificateStatus.valid, movable_by(current_user))

    def get_query(self):
        return super().get_query().options(
            joinedload(Certificate.person).joinedload(Person.employer), joinedload(Certificate.occupation),
            joinedload(Certificate.level))

    def row_links(self, row):
        """each valid certificate with the applications this user may start"""
        words = {ApplicationKind.change: "变更", ApplicationKind.reissue: "补办", ApplicationKind.cancel: "注销"}
        return [(words[kind], self.row_url(f".{kind.value}_view", row.id, param="certificate_id"),
                 f"apply-{kind.value}") for kind in offered_kinds(current_user)]

    def _certificate(self):
        certificate = _visible_or_404(Certificate, request.values.get("certificate_id"))
        return certificate

    def _files(self):
        return [(f.filename or "", f.read()) for f in request.files.getlist("files")]

    def _submitted(self, kind: ApplicationKind, start):
        """``start()`` the application, its images and 提交申请, all or nothing; on to its page."""

        def change():
            app = start()
            submit_new(db.session, current_user, app, self._files())
            return app

        done = perform(change, f"{kind.label}申请已提交，进入已申请业务列表")
        return redirect(url_for("application.details_view", id=done.value.id)) if done else None

    @expose("/change/", methods=("GET", "POST"))
    def change_view(self):
        """变更: 请选择变更信息 → 请填写变更信息 + 上传文件 → 完成."""
        certificate = self._certificate()
        fields = request.values.getlist("fields")
        one_field = current_app.config["CHANGE_ONE_FIELD_PER_APPLICATION"]
        form = ChangeForm()
        if form.is_submitted() and form.step.data == "submit":
            done = self._submitted(ApplicationKind.change, lambda: start_change(
                db.session, current_user, certificate, fields, form.typed(), one_field_only=one_field))
            if done:
                return done
        return self.render("business/change_form.html", certificate=certificate, fields=fields,
                           all_fields=list(ChangeField), enterprises=receiving_enterprises(db.session),
                           one_field=one_field, free_text_employer=names_free_employer(current_user),
                           values=form.typed())

    @expose("/cancel/", methods=("GET", "POST"))
    def cancel_view(self):
        certificate = self._certificate()
        form = ExplanationForm()
        if form.is_submitted():
            done = self._submitted(ApplicationKind.cancel, lambda: start_cancel(
                db.session, current_user, certificate, form.explanation.data))
            if done:
                return done
        return self.render("business/simple_form.html", certificate=certificate, kind="cancel", title="注销申请",
                           values=form.typed())

    @expose("/reissue/", methods=("GET", "POST"))
    def reissue_view(self):
        """补办: 新建申请 → 申请说明 → 保存; then 选择遗失证书 and 提交申请 on the application page
        (001 证书遗失补证申请). From a certificate's 补办 button the draft starts with that one."""
        certificate = self._certificate() if "certificate_id" in request.values else None
        form = ExplanationForm()
        if form.is_submitted():
            done = perform(lambda: start_reissue(db.session, current_user, form.explanation.data, certificate),
                           "申请已保存，请选择遗失证书、上传申请表后提交申请" if certificate is None else
                           "申请已保存，请上传申请表后提交申请；同一持证人还有其他遗失证书的，可在「选择遗失证书」中添加")
            if done:
                return redirect(url_for("application.details_view", id=done.value.id))
        return self.render("business/simple_form.html", certificate=certificate, kind="reissue", title="补办申请",
                           values=form.typed())


class LostReissueView(ApplicationView):
    """证书管理 → 证书遗失重打申请 (000 §三.5, 001): 已经提交的补证申请 … 看到审批状态."""

    column_labels = {**ApplicationView.column_labels, "status": "审批状态"}
    # every row is a 补办 of this enterprise's employees: no 业务类型 nor 工作单位 column
    column_list = ("numbers", "holder", "submitted_at", "reviewed_at", "status", "reject_reason")


def _tabs_for_applicant():
    return [
        ("all", "全部", None),
        ("draft", "待提交", lambda: CertificateApplication.status == A.draft),
        ("pending", "审核中", lambda: CertificateApplication.status.in_(PENDING_STATES)),
        ("approved", "审核通过", lambda: CertificateApplication.status == A.approved),
        ("rejected", "审核不通过", lambda: CertificateApplication.status == A.rejected),
    ]


def register(admin) -> None:
    category = "证书业务处理"
    admin.add_view(ApplyView(name="申请业务", category=category, endpoint="business_apply"))
    admin.add_view(ApplicationView(kinds=APPLICANT_KINDS, permission=Permission.business_apply, individual=True,
                                   tabs=_tabs_for_applicant(), name="已申请业务", category=category,
                                   endpoint="application"))
    for kind, name in ((ApplicationKind.change, "变更管理"), (ApplicationKind.reissue, "补办管理"),
                       (ApplicationKind.cancel, "注销管理")):
        admin.add_view(ApplicationView(kinds=REVIEWERS, permission=Permission.business_review, kind=kind,
                                       tabs=review_tabs(awaiting_review, CertificateApplication.status, REVIEW_ORDER), name=name, category=category,
                                       endpoint=f"review_{kind.value}"))
    admin.add_view(ApplicationView(kinds=(OrgKind.province,), permission=Permission.business_review,
                                   tabs=[("all", "全部", None)], submitted_only=True, filters=overview_filters,
                                   name="业务总览", category=category, endpoint="business_overview"))
    admin.add_view(BusinessPrintView(name="业务打印", category=category, endpoint="business_print"))
    # 证书管理 → 证书遗失重打申请 (000 §三, 001): the enterprise's 补办 applications and their 审批状态,
    # 新建申请 as in 已申请业务
    admin.add_view(LostReissueView(kinds=(OrgKind.enterprise,), permission=Permission.business_apply,
                                   kind=ApplicationKind.reissue, tabs=_tabs_for_applicant(),
                                   name="证书遗失重打申请", category="证书管理", endpoint="lost_reissue"))
