"""``SecureModelView``: every model view is one (stateful ones a ``WorkflowModelView``,
admin_views.actions). It is read-only unless a subclass opens more, and it is composed of one
mixin per concern — who may open it (admin_views.access), its list (admin_views.listing) and its
export (admin_views.exporting) — around the one hook of row visibility, which is here: list,
count, details, edit, delete, export and actions all load through ``workflows.visibility``.
"""

from __future__ import annotations

from flask import abort
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user

from admin_views.access import AccessMixin, refuse
from admin_views.exporting import ExportMixin
from admin_views.listing import ListingMixin
from models import db
from workflows.visibility import clause, load_visible


class SecureModelView(AccessMixin, ExportMixin, ListingMixin, ModelView):
    """A read-only, row-restricted model view unless a subclass opens more."""

    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    can_view_details = True

    def __init__(self, model, session=None, **kwargs):
        super().__init__(model, session or db.session, **kwargs)

    # Flask-Admin answers a 新建, 修改 or 删除 the view does not open with a bare redirect to the
    # list; here the user is told why
    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        return super().create_view() if self.can_create else refuse(self)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        return super().edit_view() if self.can_edit else refuse(self)

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        return super().delete_view() if self.can_delete else refuse(self)

    # -- the one visibility hook (Django's get_queryset) ----------------------------------
    def scope_query(self, query):
        """Further per-view narrowing (tabs, kind of rows); visibility is applied around it."""
        return query

    def row_clause(self):
        """A view's own limit on every row it touches — list, count, details, forms, actions —
        beside visibility (主管部门管理 shows only the organizations the user manages)."""
        return None

    def _visible(self, query):
        query = query.where(clause(current_user, self.model))
        extra = self.row_clause()
        return query.where(extra) if extra is not None else query

    def visible_query(self):
        """Every row this user may see, before tabs and per-view narrowing (details, actions)."""
        return self._visible(super().get_query())

    def _narrow(self, query):
        query = self.scope_query(query)
        predicate = self.tab_predicate()
        return query.where(predicate) if predicate is not None else query

    def get_query(self):
        return self._narrow(self.visible_query())

    def get_one(self, id):
        """Details, edit, delete: a row outside visibility is a 404, like one that never existed."""
        try:
            ident = int(id)
        except (TypeError, ValueError):
            abort(404)
        obj = self.visible_query().filter(self.model.id == ident).first()
        if obj is None:
            abort(404)
        return obj

    def load_rows(self, ids) -> dict:
        """Rows of a bulk action's ``rowid`` values, through visibility and the view's ``row_clause``
        (forged ids, and rows the view does not hold — another kind's application — drop out)."""
        return load_visible(db.session, current_user, self.model, ids, self.row_clause())
