"""The admin and its menus (ARCHITECTURE: menus follow the manuals; each role sees its entries)."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user
from sqlalchemy import func, select

from models import Batch, BatchStatus, Certificate, db
from models.certificate import CertificateStatus
from models.org import OrgKind
from workflows.batch import awaiting_review
from workflows.visibility import visible

APP_NAME = "建设行业人员证书管理后台"


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
        return self.render("admin/home.html", cards=self._cards())

    def _count(self, model, *where):
        stmt = visible(current_user, select(func.count()).select_from(model), model)
        for w in where:
            stmt = stmt.where(w)
        return db.session.scalar(stmt) or 0

    def _cards(self):
        kind = current_user.kind
        cards = []
        waiting = awaiting_review(current_user)
        if waiting:
            cards.append(("待审核批次", self._count(Batch, Batch.status.in_(waiting)),
                          url_for("batch_review.index_view", tab="pending")))
        if kind in (OrgKind.institution, OrgKind.direct_institution):
            cards.append(("待提交批次", self._count(Batch, Batch.status == BatchStatus.draft),
                          url_for("batch.index_view", tab="draft")))
            cards.append(("审核不通过批次", self._count(Batch, Batch.status == BatchStatus.rejected),
                          url_for("batch.index_view", tab="rejected")))
        if kind in (OrgKind.institution, OrgKind.direct_institution, OrgKind.authority, OrgKind.province):
            endpoint = "certificate_library" if kind == OrgKind.province else "certificate"
            cards.append(("有效证书总数", self._count(Certificate, Certificate.status == CertificateStatus.valid),
                          url_for(f"{endpoint}.index_view")))
        return cards


def init_app(app: Flask) -> None:
    admin = Admin(
        app,
        name=APP_NAME,
        theme=Bootstrap4Theme(base_template="layout.html", fluid=True),
        index_view=HomeView(name="首页", url="/admin"),
    )
    from admin_views import (
        accounts,
        appeals,
        batches,
        business,
        certificates,
        enterprise,
        messages,
        printing,
        registrations,
    )

    batches.register(admin)
    certificates.register(admin)
    printing.register(admin)
    business.register(admin)
    accounts.register(admin)
    enterprise.register(admin)
    registrations.register(admin)
    appeals.register(admin)
    messages.register(admin)

    @app.context_processor
    def _unread():
        return {"unread_messages": lambda: messages.unread_count(current_user)}
