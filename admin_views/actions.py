"""Actions: what a view does to rows, and how it reports it.

``perform`` is the one way a view runs a change (commit and say so, or roll back and say why);
``WorkflowModelView`` turns a workflow's transition table into the list's bulk actions and the
details page's buttons — reasons are collected by a form and an empty one is refused by the
engine, not only by the browser; ``transition_logs`` and ``review_tabs`` report a workflow's
history and queues; ``AttachmentFilesMixin`` serves the files attached to a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote

from flask import Response, abort, flash, redirect, request
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import StringField

from admin_views.access import client_ip
from admin_views.forms import RowForm
from admin_views.model_views import SecureModelView
from models import Attachment, TransitionLog, db
from workflows import FormErrors, NotFoundError, StaleObjectError, WorkflowError
from workflows.audit import Kind, log
from workflows.engine import Workflow
from workflows.visibility import clause, get_visible


def submit_form(save, unsaved: str):
    """The POST of a plain form (企业信息, 机构资料, 人员管理): ``save()`` changes the rows and returns
    the success message; a refusal rolls everything back and comes back field by field.

    Returns (saved, errors, values): values are what was typed, to fill the form again."""
    if request.method != "POST":
        return False, {}, None
    done = perform(save, unsaved=unsaved)
    return done.ok, done.errors, request.form


class TransitionForm(RowForm):
    """A transition's button on a details page (admin/workflow_details.html): which transition, on
    which row, the page's version of the row (a concurrent change is refused), and the reason. A
    transition's own inputs are posted as ``data_<name>`` (business/details.html's 社保 tick) and go to
    its guards as ``ctx.data``: ``inputs()`` reads them."""

    transition = StringField()
    version = StringField()
    reason = StringField()

    @staticmethod
    def inputs() -> dict[str, str]:
        # the names are the transitions' own, not this form's: read as posted, the prefix removed
        return {key[5:]: value for key, value in request.form.items() if key.startswith("data_") and value}


class ReasonForm(FlaskForm):
    """The reason page of a bulk transition that needs one (审核不通过 …)."""

    reason = StringField()


@dataclass
class Done:
    """What ``perform`` did: ``ok``, the change's return value, and a refused form's field errors."""

    ok: bool
    value: object = None
    errors: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok


def perform(change, success: str | None = None, *, unsaved: str | None = None) -> Done:
    """The one way a view runs an action and reports it: ``change()`` makes its changes through
    workflows.*; they are committed and ``success`` is flashed (or, without one, the string
    ``change`` returned). A refusal — any ``WorkflowError`` — rolls all of it back and flashes its
    Chinese message, after ``unsaved`` where a form names what was not saved; ``FormErrors`` also
    come back field by field. Nothing is half-written, and nothing is left unsaid."""
    try:
        value = change()
        db.session.commit()
    except FormErrors as exc:
        db.session.rollback()
        flash(f"{unsaved}：{exc.message}" if unsaved else exc.message, "error")
        return Done(False, None, exc.errors)
    except WorkflowError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return Done(False)
    message = success if success is not None else value
    if isinstance(message, str) and message:
        flash(message, "success")
    return Done(True, value)


# -- Flask-Admin adapter (checked against Flask-Admin 2.2.1) --------------------------------------
# ``@action`` declares a view's actions on its class; there is no public way to add one per
# instance, so a workflow's transitions are added to the two private tables ``init_actions`` fills.
def add_action(view, name: str, text: str, handler, confirmation: str | None) -> None:
    """A list action ``name`` labelled ``text`` that calls ``handler(ids)``, confirmed when asked."""
    view._actions.append((name, text))
    view._actions_data[name] = (handler, text, confirmation)


class WorkflowModelView(SecureModelView):
    """List actions and detail buttons generated from ``workflow``'s transition table."""

    workflow: Workflow = None
    details_template = "admin/workflow_details.html"

    def init_actions(self):
        super().init_actions()
        for transition in self.workflow.transitions.values():
            if not (transition.bulk and transition.manual):
                continue
            add_action(self, f"wf_{transition.name}", transition.label,
                       partial(self._bulk_transition, transition.name), transition.confirm)

    def is_action_allowed(self, name):
        if name.startswith("wf_"):
            transition = self.workflow.transitions.get(name[3:])
            return transition is not None and transition in self.offered_transitions()
        return super().is_action_allowed(name)

    def offered_transitions(self):
        """What this user may be offered on this list; ``manual=False`` ones are fired only by code."""
        return [t for t in self.workflow.offered(current_user) if t.manual]

    def run_on_row(self, row_id, fn, success: str):
        """Run a workflows.* change of one row's contents, report it, back to its page."""
        perform(fn, success)
        return redirect(self.get_url(".details_view", id=row_id))

    # the details page offers a reason box on every transition, not only where it is mandatory
    optional_reason = False

    def row_buttons(self, obj) -> list:
        """Links beside the transitions on the details page: [(element id, label, url)]."""
        return []

    def available_transitions(self, obj):
        """Buttons for the detail page: what this user may fire on this row now."""
        return [t for t in self.workflow.available(current_user, obj) if t.manual]

    # the 操作 column's word for a transition where the manual's differs from the details page's
    # button: a reviewer's 审核通过 and 审核不通过 are one 审核 (003 §八.1 点击审核，跳转至审核详情页);
    # None keeps a transition out of the column (it stays in 批量操作 and on the details page)
    row_words: dict = {}

    def row_word(self, transition) -> str | None:
        if transition.name in self.row_words:
            return self.row_words[transition.name]
        return "审核" if transition.label.startswith("审核") else transition.label

    def row_transitions(self, row) -> list:
        """What the 操作 column offers on ``row``: the details page's transitions."""
        return self.available_transitions(row)

    def row_transition_links(self, row, row_id, return_url) -> list[tuple[str, str, str]]:
        """One button per word, to the details page at that transition's button: what needs a reason,
        a look at the row or a confirmation is done there, as the manuals do (点击【上报】按钮，进入详情页面)."""
        if not self.can_view_details:
            return []
        words = {}
        for transition in self.row_transitions(row):
            word = self.row_word(transition)
            if word and word not in words:
                words[word] = transition
        if not words:
            return []
        url = self.row_url(".details_view", row_id, return_url)
        return [(word, f"{url}#btn-{t.name}", f"row-transition row-{t.name}" + (" row-danger" if t.danger else ""))
                for word, t in words.items()]

    # -- firing ----------------------------------------------------------------------------
    def _bulk_transition(self, name, ids):
        transition = self.workflow.transitions[name]
        if transition.needs_reason:
            return self.ask_more(ids, ".reason_view", transition=name)
        self._fire_and_report(name, ids, None)
        return None

    def ask_more(self, ids, endpoint: str, **args):
        """A bulk action that needs more than the selection (a reason, a commitment, a preview)
        leads to ``endpoint``'s page with the selected ids — when this list holds any of them.
        When it holds none it is refused here, with the message a missing row gets, rather than
        bounced to a page that would only answer 404."""
        if not self.load_rows(ids):
            flash(NotFoundError().message, "error")
            return None
        return redirect(self.get_url(endpoint, id=ids, url=get_redirect_target(), **args))

    def _fire_and_report(self, name, ids, reason):
        transition = self.workflow.transitions[name]
        rows = self.load_rows(ids)
        # a refusal here is a rule raised outside a row (should not happen) or a stale commit
        done = perform(lambda: self.workflow.fire_many(db.session, current_user, rows, ids, name, reason))
        if not done:
            return
        result = done.value
        category = "success" if not result.failed else ("warning" if result.succeeded else "error")
        flash(f"{transition.label}：{result.summary()}", category)

    def selected_rows(self):
        """(ids as sent, the visible rows by id, where to return) of a page acting on the rows a
        list action selected; 404 when none of them may be seen (forged or foreign ids)."""
        ids = request.values.getlist("id")
        rows = self.load_rows(ids)
        if not rows:
            abort(404)
        return ids, rows, get_redirect_target() or self.get_url(".index_view")

    def reason_transition(self, name):
        """What the reason form named ``name`` is for, or None (404): an offered transition with a
        mandatory reason. A view whose action spans several transitions answers for it here."""
        transition = self.workflow.transitions.get(name)
        if transition is None or not transition.needs_reason or transition not in self.offered_transitions():
            return None
        return transition

    def fire_with_reason(self, name, ids, reason) -> None:
        self._fire_and_report(name, ids, reason)

    @expose("/reason/", methods=("GET", "POST"))
    def reason_view(self):
        """The small form a transition with a mandatory reason opens (审核不通过 …)."""
        name = request.values.get("transition", "")
        transition = self.reason_transition(name)
        if transition is None:
            abort(404)
        ids, rows, return_url = self.selected_rows()
        if request.method == "POST":
            reason = (ReasonForm().reason.data or "").strip()
            if not reason:
                flash(f"请填写{transition.reason_label}", "error")
            else:
                self.fire_with_reason(name, ids, reason)
                return redirect(return_url)
        return self.render("admin/reason.html", transition=transition, rows=list(rows.values()), ids=ids,
                           return_url=return_url, title=self.workflow.title)

    @expose("/transition/", methods=("POST",))
    def transition_view(self):
        """One transition from the detail page; the page's version detects a concurrent change."""
        form = TransitionForm()
        name = form.transition.data or ""
        obj = self.get_one(form.id.data)
        return_url = get_redirect_target() or self.get_url(".details_view", id=obj.id)
        transition = self.workflow.transitions.get(name)
        if transition is None or not transition.manual:
            abort(404)

        def fire():
            seen = form.version.data
            if seen and hasattr(obj, "version") and str(obj.version) != seen:
                raise StaleObjectError()
            self.workflow.fire(db.session, current_user, obj, name, form.reason.data, **form.inputs())

        if not perform(fire, f"{transition.label}：操作成功"):
            # back to the row, where what is missing can be put right (an image, a reason …)
            return redirect(self.get_url(".details_view", id=obj.id, url=return_url))
        if sa_inspect(obj).was_deleted:
            return redirect(self.get_url(".index_view"))
        return redirect(return_url)


def transition_logs(object_type: str, object_id: int) -> list:
    """The 审核日志 / 业务日志 of one row, oldest first, through visibility like every read."""
    stmt = (select(TransitionLog).options(joinedload(TransitionLog.actor), joinedload(TransitionLog.organization))
            .where(TransitionLog.object_type == object_type, TransitionLog.object_id == object_id)
            .order_by(TransitionLog.id))
    return db.session.scalars(stmt.where(clause(current_user, TransitionLog))).all()

def review_tabs(awaiting, state_column, order):
    """审核 tabs of a review list: 待审核 — the states ``awaiting(user)`` says wait for this reviewer
    (the workflow module's answer: the sources of the review transitions it is offered); 已审核 —
    every state after those, and rejections."""

    def waiting():
        return awaiting(current_user)

    def reviewed():
        states = waiting()
        first = min((order.index(s) for s in states if s in order), default=len(order))
        return set(order[first + 1:]) | {order[-1]}

    return [
        ("pending", "待审核", lambda: state_column.in_(waiting())),
        ("reviewed", "已审核", lambda: state_column.in_(reviewed())),
    ]


class AttachmentFilesMixin:
    """Download a document or preview an image of a row this view shows (batch resources,
    business application photos) — only through the attachment owner's visibility."""

    @expose("/file/<int:attachment_id>")
    def file_view(self, attachment_id):
        try:
            attachment = get_visible(db.session, current_user, Attachment, attachment_id)
        except WorkflowError:
            abort(404)
        log(db.session, current_user, Kind.DOWNLOAD, f"下载附件 {attachment.filename}", obj=attachment,
            ip=client_ip())
        db.session.commit()
        inline = attachment.kind.value == "image" and request.args.get("inline") == "1"
        response = Response(attachment.data, mimetype=attachment.content_type)
        disposition = "inline" if inline else "attachment"
        response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(attachment.filename)}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
