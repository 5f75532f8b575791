"""数据维护 (SPEC §7): the province's system administrator finds a person, certificate,
organization or candidate and corrects its fields with a reason (workflows.datafix)."""

from __future__ import annotations

from flask import abort, flash, redirect, request
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import StringField

from admin_views.access import AccessMixin
from admin_views.actions import perform
from models import Candidate, Certificate, Organization, OrgKind, Person, db
from models.user import Permission
from workflows import WorkflowError
from workflows.datafix import FIXABLE, display, fix
from workflows.search import TermKind, classify
from workflows.visibility import get_visible, visible

MAX_RESULTS = 20
# the query argument that names the row: <table>_id, so the row's kind is in its name
ARGS = {kind: f"{kind}_id" for kind in FIXABLE}


class FixForm(FlaskForm):
    """数据维护 of one row: the mandatory 修改原因 (workflows.datafix checks it). The fields to correct
    are the names posted, whatever they are: ``fix`` refuses a name it does not correct (状态、编号 …)
    with its message, and leaves a field that was not posted as it is."""

    reason = StringField()


def _matches(kind: str, term: str):
    """Exact, indexed lookups by what the term looks like (no scans of million-row tables)."""
    term_kind, text = classify(term)
    if term_kind == TermKind.empty:
        return None
    if kind == "person":
        return or_(Person.id_number == text.upper(), Person.name == text)
    if kind == "certificate":
        return Certificate.number == text
    if kind == "organization":
        return or_(Organization.code == text, Organization.credit_code == text.upper(), Organization.name == text)
    return or_(Candidate.id_number == text.upper(), Candidate.name == text)


class DataFixView(AccessMixin, BaseView):
    kinds = (OrgKind.province,)
    permission = Permission.data_fix

    @expose("/")
    def index(self):
        kind = request.args.get("kind") or "person"
        if kind not in FIXABLE:
            flash("不支持维护该类数据", "error")
            kind = "person"
        term = (request.args.get("q") or "").strip()
        rows = None
        if term:
            model = FIXABLE[kind][0]
            predicate = _matches(kind, term)
            rows = [] if predicate is None else list(db.session.scalars(visible(
                current_user, select(model).where(predicate).order_by(model.id).limit(MAX_RESULTS), model)))
        return self.render("datafix/index.html", kinds={k: v[1] for k, v in FIXABLE.items()}, kind=kind, term=term,
                           rows=rows, arg=ARGS[kind])

    def _target(self):
        for kind, arg in ARGS.items():
            if arg in request.values:
                try:
                    return kind, get_visible(db.session, current_user, FIXABLE[kind][0], request.values[arg])
                except WorkflowError:
                    abort(404)
        abort(404)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        kind, obj = self._target()
        _, label, fields = FIXABLE[kind]
        form = FixForm()
        typed = {}
        if request.method == "POST":
            ignored = {"csrf_token", "reason", ARGS[kind]}
            typed = {name: value for name, value in request.form.items() if name not in ignored}

            def save():
                changed = fix(db.session, current_user, kind, obj, typed, form.reason.data)
                return f"已保存：{'、'.join(changed)}（已记入操作日志）"

            if perform(save):
                return redirect(self.get_url(".edit_view", **{ARGS[kind]: obj.id}))
            obj = get_visible(db.session, current_user, FIXABLE[kind][0], obj.id)
        current = {name: display(getattr(obj, name)) or "" for name in fields}
        return self.render("datafix/edit.html", kind=kind, label=label, obj=obj, fields=fields, current=current,
                           typed=typed, arg=ARGS[kind], reason=form.reason.data or "")


def register(admin) -> None:
    admin.add_view(DataFixView(name="数据维护", category="系统管理", endpoint="data_fix"))
