"""我的消息 (SPEC §8; 002 §3.1): what the transitions that concern a user told them.

Every transition's ``notify`` writes ``Message`` rows (workflows.engine); this view lists the
user's own (visibility: ``Message.user_id``), and the navigation bar shows the unread count on
every page. A message is marked read when its owner opens it (详情, a GET: only the owner can
reach their own row, another user's id is a 404) or by 标为已读 / 全部标为已读 (POST).
"""

from __future__ import annotations

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select

from admin_views.actions import perform
from admin_views.model_views import SecureModelView
from models import Message, db
from workflows.messages import mark_read, read_all


def unread_count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return db.session.scalar(select(func.count()).select_from(Message).where(
        Message.user_id == user.id, Message.is_read.is_(False))) or 0


def _title(view, context, model, name):
    """The title opens the message (and so marks it read), as 详情 does."""
    return Markup('<a href="{}" class="message-link">{}</a>').format(
        view.get_url(".details_view", id=model.id, url=request.full_path), model.title)


def _state(view, context, model, name):
    if model.is_read:
        return "已读"
    return Markup('<span class="badge badge-danger">未读</span>')


class MessageView(SecureModelView):
    """Every signed-in user's own messages: 未读 / 全部, 标为已读, 全部标为已读."""

    individual = True
    column_list = ("is_read", "title", "body", "created_at")
    column_details_list = ("title", "body", "created_at", "is_read")
    column_labels = {"is_read": "状态", "title": "标题", "body": "内容", "created_at": "时间"}
    column_formatters = {"is_read": _state, "title": _title}
    column_formatters_detail = {"is_read": _state}
    column_default_sort = ("id", True)
    list_template = "admin/message_list.html"
    tabs = [
        ("unread", "未读", lambda: Message.is_read.is_(False)),
        ("all", "全部", None),
    ]

    def __init__(self, **kwargs):
        super().__init__(Message, **kwargs)

    def is_visible(self):
        return False  # reached from the navigation bar's 我的消息 (with the unread count)

    @expose("/details/")
    def details_view(self):
        """Opening one's own message reads it (issue 17): the badge counts one fewer on this very page."""
        message = self.get_one(request.args.get("id"))  # through visibility: only the owner's row
        if not message.is_read:
            mark_read([message])
            db.session.commit()
        return super().details_view()

    @action("mark_read", "标为已读")
    def action_mark_read(self, ids):
        rows = self.load_rows(ids)  # another user's message id drops out here: 记录不存在
        mark_read(rows.values())
        db.session.commit()
        missing = len(set(ids)) - len(rows)
        if not rows:
            flash("标为已读：所选消息不存在", "error")
        elif missing:
            flash(f"已将 {len(rows)} 条消息标为已读，{missing} 条消息不存在", "warning")
        else:
            flash(f"已将 {len(rows)} 条消息标为已读", "success")

    @expose("/read-all/", methods=("POST",))
    def read_all_view(self):
        perform(lambda: f"已将 {read_all(db.session, current_user)} 条消息标为已读")
        return redirect(self.get_url(".index_view"))


def register(admin) -> None:
    admin.add_view(MessageView(name="我的消息", endpoint="message"))
