"""The admin and its menus (ARCHITECTURE: menus follow the manuals; each role sees its entries)."""

from __future__ import annotations

from flask import Flask, current_app, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.routing import BuildError

from admin_views.access import may_open
from admin_views.ecert import offered
from admin_views.enterprise import APPROVALS as CHANGE_APPROVALS
from admin_views.enterprise import changes_awaiting
from admin_views.listing import kept_for_organization
from models import (
    AccountRequest,
    AccountStatus,
    Anomaly,
    AnomalyStatus,
    ApplicationKind,
    Batch,
    BatchStatus,
    Certificate,
    CertificateApplication,
    Registration,
    RegistrationStatus,
    db,
)
from models.certificate import CertificateStatus
from models.org import OrgKind
from models.user import Permission
from workflows import appeals, batch, business
from workflows.accounts import ACCOUNT
from workflows.enterprise import ENTERPRISE_CHANGE
from workflows.registration import awaiting_acceptance, awaiting_decision, expiring_clause, registered_clause
from workflows.statistics import ISSUED_CHART_TITLE, VALID_CARD_LABEL, issued_per_month
from workflows.visibility import visible

APP_NAME = "建设行业人员证书管理后台"
CHART_KINDS = (OrgKind.province, OrgKind.authority, OrgKind.institution, OrgKind.direct_institution)
# 003 §三 省直所/单位首页: 可快捷创建批次、打印证书、发起证书业务、查看已申请证书业务; the enterprise's
# entry points of 000 §二(二), §三; the individual's 我的基本信息 (000, 001). (label, endpoint, element id)
QUICK_LINKS = {
    OrgKind.institution: [("创建批次", "batch_create.index", "quick-batch-create"),
                          ("打印证书", "certificate.index_view", "quick-print"),
                          ("发起证书业务", "business_apply.index_view", "quick-apply"),
                          ("查看已申请证书业务", "application.index_view", "quick-applications")],
    OrgKind.enterprise: [("学员基本信息（企业）", "student.index_view", "quick-students"),
                         ("发起证书业务", "business_apply.index_view", "quick-apply"),
                         ("证书遗失重打申请", "lost_reissue.index_view", "quick-lost-reissue"),
                         ("查看已申请证书业务", "application.index_view", "quick-applications")],
    OrgKind.school: [("学员基本信息（企业）", "student.index_view", "quick-students"),
                     ("查看已申请证书业务", "application.index_view", "quick-applications")],
    None: [("我的基本信息", "my_info.index_view", "quick-my-info"),
           ("注册申报", "declaration.index_view", "quick-declaration")],
}
QUICK_LINKS[OrgKind.direct_institution] = QUICK_LINKS[OrgKind.institution]
BUSINESS_CARDS = ((ApplicationKind.change, "待审核变更业务", "review_change"),
                  (ApplicationKind.reissue, "待审核补办业务", "review_reissue"),
                  (ApplicationKind.cancel, "待审核注销业务", "review_cancel"))


class HomeView(AdminIndexView):
    """首页 (003 §三): what waits for the user, linking to the filtered lists."""

    def is_visible(self):
        return True

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        if current_user.must_change_password:
            return redirect(url_for("auth.change_password"))
        return self.render("admin/home.html", cards=self._cards(), waiting=self._waiting_to_report(),
                           issued_chart=self._issued_chart(), chart_title=ISSUED_CHART_TITLE,
                           quick_links=self._quick_links(), mine=self._mine())

    def _quick_links(self):
        """[(label, url, element id)]: the quick links of this kind of user that would open for it."""
        links = []
        for label, endpoint, element_id in QUICK_LINKS.get(current_user.kind, []):
            url = _link(endpoint)
            if url is not None and may_open(endpoint.split(".", 1)[0]):
                links.append((label, url, element_id))
        return links

    def _mine(self):
        """An individual's 首页: their certificates and their declarations (注册申报), or None."""
        if current_user.organization is not None:
            return None
        certificates = db.session.scalars(visible(current_user, select(Certificate).order_by(
            Certificate.issue_date.desc(), Certificate.id.desc()), Certificate)).all()
        declarations = db.session.scalars(visible(current_user, select(Registration).order_by(
            Registration.created_at.desc(), Registration.id.desc()), Registration)).all()
        return {"certificates": certificates, "declarations": declarations, "ecert_url": _ecert_url,
                "declaration_url": _link("declaration.index_view") if may_open("declaration") else None}

    def _issued_chart(self):
        """003 §三: 近6个月发证数量 of the organization and its descendants, for those that issue
        or review certificates; [(month, count, None)] for the SVG bar chart, or None."""
        if current_user.kind not in CHART_KINDS:
            return None
        return kept_for_organization("issued per month", "HOME_FIGURES_SECONDS", lambda: [
            (label, count, None) for label, count in issued_per_month(db.session, current_user, months=6)])

    def _waiting_to_report(self):
        """002 §3.1.3 企业首页: the 待上报人员 list itself, not only its count (the latest 10)."""
        if current_user.kind != OrgKind.enterprise:
            return None
        stmt = visible(current_user, select(Registration).where(Registration.status == RegistrationStatus.unreported)
                       .order_by(Registration.created_at.desc(), Registration.id.desc()).limit(10), Registration)
        return list(db.session.scalars(stmt))

    def _count(self, model, *where):
        stmt = visible(current_user, select(func.count()).select_from(model), model)
        for w in where:
            stmt = stmt.where(w)
        return db.session.scalar(stmt) or 0

    def _cards(self):
        """(label, count, link or None): what waits for this user (SPEC §8; 002 §3.1.3 企业首页:
        待上报人员 and figures). Counts go through visibility; a card whose list is not there
        (yet) shows its count without a link."""
        kind = current_user.kind
        cards = []
        figures = []  # totals, after the work that waits (003 §三: 总有效证书数量的展示)
        waiting = batch.awaiting_review(current_user)
        if waiting:
            cards.append(("待审核批次", self._count(Batch, Batch.status.in_(waiting)),
                          _link("batch_review.index_view", tab="pending")))
        if kind in (OrgKind.institution, OrgKind.direct_institution):
            cards.append(("待提交批次", self._count(Batch, Batch.status == BatchStatus.draft),
                          _link("batch.index_view", tab="draft")))
            cards.append(("审核不通过批次", self._count(Batch, Batch.status == BatchStatus.rejected),
                          _link("batch.index_view", tab="rejected")))
        if kind in (OrgKind.institution, OrgKind.direct_institution, OrgKind.authority, OrgKind.province):
            endpoint = "certificate_library" if kind == OrgKind.province else "certificate"
            valid = kept_for_organization("valid certificates", "HOME_FIGURES_SECONDS", lambda: self._count(
                Certificate, Certificate.status == CertificateStatus.valid))
            figures.append((VALID_CARD_LABEL, valid, _link(f"{endpoint}.index_view")))
        # 待审核的证书业务 (003 §三), one card per kind as 变更管理 / 补办管理 / 注销管理 list them
        business_waiting = business.awaiting_review(current_user)
        if business_waiting:
            counts = dict(db.session.execute(visible(current_user, select(
                CertificateApplication.kind, func.count()).where(CertificateApplication.status.in_(business_waiting))
                .group_by(CertificateApplication.kind), CertificateApplication)).all())
            for kind_, label, endpoint in BUSINESS_CARDS:
                cards.append((label, counts.get(kind_, 0), _link(f"{endpoint}.index_view", tab="pending")))
        if kind in (OrgKind.institution, OrgKind.direct_institution, OrgKind.enterprise, OrgKind.school) \
                and current_user.has(Permission.business_apply):
            cards.append(("审核中证书业务", self._count(CertificateApplication,
                                                 CertificateApplication.status.in_(business.PENDING_STATES)),
                          _link("application.index_view", tab="pending")))
        if kind is None:  # an individual: their certificates and declarations (below the cards)
            cards.append(("我的有效证书", self._count(Certificate, Certificate.status == CertificateStatus.valid),
                          _link("my_info.index_view")))
            cards.append(("我的注册申报", self._count(Registration), _link("declaration.index_view")))
        # 注册申报 (SPEC §5.5): the enterprise reports, the province and the ministry accept and decide
        if kind == OrgKind.enterprise and current_user.has(Permission.registration_manage):
            days = int(current_app.config["EXPIRY_WARNING_DAYS"])
            cards += [
                ("待上报人员", self._count(Registration, Registration.status == RegistrationStatus.unreported),
                 _link("registration_manage.index_view", tab="unreported")),
                ("已注册人员", self._count(Registration, registered_clause()), _link("registered.index_view")),
                ("人员到期预警", self._count(Registration, expiring_clause(days)), _link("expiring.index_view")),
            ]
        accepting = awaiting_acceptance(current_user)
        if accepting:
            cards.append(("待受理注册", self._count(Registration, Registration.status.in_(accepting)),
                          _link("registration_review.index_view", tab="unaccepted")))
        deciding = awaiting_decision(current_user)
        if deciding:
            cards.append(("待审查注册", self._count(Registration, Registration.status.in_(deciding)),
                          _link("registration_review.index_view", tab="accepted")))
        # 申辩管理: the enterprise answers, the province decides
        if appeals.awaiting_appeal(current_user):
            cards.append(("待申辩", self._count(Anomaly, Anomaly.status == AnomalyStatus.open),
                          _link("appeal.index_view", tab="open")))
        deciding = appeals.awaiting_decision(current_user)
        if deciding:
            cards.append(("待处理申辩", self._count(Anomaly, Anomaly.status.in_(deciding)),
                          _link("appeal_review.index_view", tab="pending")))
        # 注册审核 and 企业信息变更 (SPEC §5.3, §5.4): the city authority, then the province for names
        if ACCOUNT.awaiting(current_user, *ACCOUNT.transitions):  # 审核通过 and 审核不通过 wait in one state
            cards.append(("待审核注册账号", self._count(AccountRequest, AccountRequest.status == AccountStatus.pending),
                          _link("account_review.index_view")))
        if ENTERPRISE_CHANGE.awaiting(current_user, *CHANGE_APPROVALS):
            cards.append(("待审核企业信息变更", len(changes_awaiting(current_user)),
                          _link("enterprise_change_review.index_view")))
        return cards + figures


def _ecert_url(certificate) -> str | None:
    """下载电子证书 of a valid certificate on an individual's 首页, through 我的基本信息's route (issue 19)."""
    if not offered(certificate) or not may_open("my_info"):
        return None
    return _link("my_info.ecert_view", certificate_id=certificate.id, url=request.full_path)


def _link(endpoint: str, **values) -> str | None:
    """The list a home card opens; None while that screen is not registered, so 首页 never fails."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def init_app(app: Flask) -> None:
    from admin_views.hardening import csp_nonce

    admin = Admin(
        app,
        name=APP_NAME,
        theme=Bootstrap4Theme(base_template="layout.html", fluid=True),
        index_view=HomeView(name="首页", url="/admin"),
        csp_nonce_generator=csp_nonce,  # the nonce of this response's Content-Security-Policy
    )
    from admin_views import (
        accounts,
        api_keys,
        appeals,
        batches,
        business,
        certificates,
        datafix,
        enterprise,
        exports,
        logs,
        messages,
        organizations,
        persons,
        printing,
        registrations,
        settings,
        statistics,
        users,
    )

    batches.register(admin)
    certificates.register(admin)
    printing.register(admin)
    business.register(admin)
    accounts.register(admin)
    enterprise.register(admin)
    persons.register(admin)
    registrations.register(admin)
    appeals.register(admin)
    messages.register(admin)
    exports.register(admin)
    settings.register(admin)
    organizations.register(admin)
    users.register(admin)
    api_keys.register(admin)
    logs.register(admin)
    statistics.register(admin)
    datafix.register(admin)

    @app.context_processor
    def _unread():
        return {"unread_messages": lambda: messages.unread_count(current_user)}

    app.jinja_env.globals["kept_menu"] = kept_menu


def kept_menu(view, render):
    """The navigation bar's menus, drawn once per kind of user and per screen (issue 16 "Served":
    asking each of ~45 views whether it is accessible, then routing each link, was a tenth of a
    page). What the menu shows depends only on what every ``is_accessible`` reads — role, kind of
    organization (none for an individual), permissions, a password to change — and on the
    current screen (the active entry), so that is the key; ``render()`` draws it as Flask-Admin
    does."""
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return render()
    org = user.organization
    key = (getattr(view, "endpoint", None), user.role, org.kind if org is not None else None,
           user.must_change_password, user.permissions, request.script_root)
    menus = current_app.extensions.setdefault("kept_menus", {})
    html = menus.get(key)
    if html is None:
        if len(menus) > 5_000:
            menus.clear()
        html = menus[key] = render()
    return html
