"""操作日志 (SPEC §8; 003 §四): what the organization's users did, read-only and searchable.

Rows are written by ``workflows.audit.log`` (sign-ins, transitions, edits, data fixes, password
resets, exports, downloads). This view only reads them, through the base view's visibility hook
(``workflows.visibility._audit_clause``: the province all; an organization its own users' rows
and its descendants'; an individual none, the view is closed to them). Filters come from the
query string (类型, 开始日期 / 结束日期 in Beijing time, 用户); a value that cannot be used is
dropped with a Chinese message and the list shows as if it had not been given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, flash, g, request
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from admin_views.base import SecureModelView
from models import AuditLog, User
from models.base import PROVINCE_TZ, format_local
from models.org import OrgKind
from models.user import Permission
from workflows.audit import Kind
from workflows.search import MAX_TERM, TermKind, starts_with

DATE_FORMAT = "%Y-%m-%d"


# -- rules worth testing on their own ---------------------------------------------------------
def kind_label(kind: str | None) -> str:
    """类型 in Chinese; a kind without a label is shown as it is stored."""
    return Kind.LABELS.get(kind, kind or "")


def local_day_start_utc(day: date) -> datetime:
    """00:00 of a Beijing date as the naive UTC timestamp the table stores."""
    return datetime.combine(day, time.min, tzinfo=PROVINCE_TZ).astimezone(UTC).replace(tzinfo=None)


def _parse_date(value: str) -> date:
    return datetime.strptime(value, DATE_FORMAT).date()


@dataclass
class LogFilters:
    """What the query string asks for, after dropping what cannot be used (``errors``)."""

    kind: str | None = None
    start: date | None = None
    end: date | None = None
    user: str | None = None
    errors: list = field(default_factory=list)

    @property
    def start_utc(self) -> datetime | None:
        return local_day_start_utc(self.start) if self.start else None

    @property
    def end_utc(self) -> datetime | None:
        """The first instant after the end date (exclusive), in UTC."""
        return local_day_start_utc(self.end + timedelta(days=1)) if self.end else None


def parse_filters(args) -> LogFilters:
    """类型, 开始日期, 结束日期 and 用户 from ``args`` (a mapping of query arguments)."""
    found = LogFilters()
    kind = (args.get("kind") or "").strip()
    if kind:
        if kind in Kind.LABELS:
            found.kind = kind
        else:
            found.errors.append(f"操作类型「{kind[:MAX_TERM]}」不存在，已忽略该条件")
    for name, label in (("start", "开始日期"), ("end", "结束日期")):
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        try:
            setattr(found, name, _parse_date(raw))
        except ValueError:
            found.errors.append(f"{label}「{raw[:MAX_TERM]}」格式不正确（应为 YYYY-MM-DD，如 2024-03-01），已忽略该条件")
    if found.start and found.end and found.end < found.start:
        found.errors.append(f"结束日期 {found.end:%Y-%m-%d} 早于开始日期 {found.start:%Y-%m-%d}，已忽略日期条件")
        found.start = found.end = None
    who = (args.get("user") or "").strip()
    if who:
        if len(who) > MAX_TERM:
            found.errors.append("用户名过长，已忽略该条件")
        else:
            found.user = who
    return found


def before_after_rows(detail) -> list[tuple[str, object, object]] | None:
    """(字段, 修改前, 修改后) of an edit's detail, or None when it has another shape.

    Two shapes are written: ``{"field": {"before": …, "after": …}, …}`` and
    ``{"before": {…}, "after": {…}}``."""
    if not isinstance(detail, dict) or not detail:
        return None
    before, after = detail.get("before"), detail.get("after")
    if set(detail) <= {"before", "after"} and isinstance(before or {}, dict) and isinstance(after or {}, dict) \
            and (isinstance(before, dict) or isinstance(after, dict)):
        before, after = before or {}, after or {}
        names = list(before) + [k for k in after if k not in before]
        return [(str(name), before.get(name), after.get(name)) for name in names]
    pairs = list(detail.items())
    if all(isinstance(v, dict) and v and set(v) <= {"before", "after"} for _, v in pairs):
        return [(str(name), v.get("before"), v.get("after")) for name, v in pairs]
    return None


def show_value(value) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# -- columns ------------------------------------------------------------------------------------
def _user(view, context, model, name):
    person = model.user.name if model.user is not None else ""
    username = model.username or ""
    return f"{username}（{person}）" if person and username else (username or person or "-")


def _organization(view, context, model, name):
    return model.organization.name if model.organization is not None else "-"


def _kind(view, context, model, name):
    return kind_label(model.kind)


def _object(view, context, model, name):
    if not model.object_type:
        return "-"
    return f"{model.object_type} #{model.object_id}" if model.object_id is not None else model.object_type


def _detail(view, context, model, name):
    detail = model.detail
    if detail in (None, {}, []):
        return "-"
    rows = before_after_rows(detail)
    if rows is None:
        text = json.dumps(detail, ensure_ascii=False, indent=2, sort_keys=True, default=str)
        return Markup('<pre class="mb-0" id="audit-detail-json">{}</pre>').format(text)
    body = Markup("").join(
        Markup("<tr><td>{}</td><td>{}</td><td>{}</td></tr>").format(field_name, show_value(b), show_value(a))
        for field_name, b, a in rows
    )
    return Markup('<table class="table table-sm table-bordered mb-0" id="audit-detail-changes">'
                  "<thead><tr><th>字段</th><th>修改前</th><th>修改后</th></tr></thead><tbody>{}</tbody></table>"
                  ).format(body)


def _users_named(term: str):
    return AuditLog.user_id.in_(select(User.id).where(starts_with(User.name, term)))


def _who(term: str):
    """用户名 (as typed, or in lower case: the search box upper-cases codes) or 姓名, by prefix."""
    candidates = {term, term.lower()}
    return or_(*(starts_with(AuditLog.username, t) for t in candidates), _users_named(term))


class OperationLogView(SecureModelView):
    """操作日志: every organization kind with 操作日志 permission; individuals not. Read-only."""

    kinds = tuple(OrgKind)
    permission = Permission.audit_view
    list_template = "logs/list.html"
    column_list = ("created_at", "user", "organization", "kind", "summary", "ip")
    column_details_list = ("created_at", "user", "organization", "kind", "summary", "object", "ip", "detail")
    column_labels = {"created_at": "时间", "user": "用户", "organization": "机构", "kind": "类型", "summary": "内容",
                     "ip": "IP", "object": "操作对象", "detail": "详细信息"}
    column_formatters = {"user": _user, "organization": _organization, "kind": _kind}
    column_formatters_detail = {**column_formatters, "object": _object, "detail": _detail}
    column_sortable_list = ("created_at",)
    column_default_sort = [("created_at", True), ("id", True)]
    search_hint = "用户名或姓名"
    search_rules = {kind: _who for kind in TermKind if kind != TermKind.empty}

    export_filename = "操作日志"
    export_columns = [
        ("时间", lambda r: format_local(r.created_at), True),
        ("用户名", lambda r: r.username or "", True),
        ("姓名", lambda r: r.user.name if r.user is not None else "", True),
        ("机构", lambda r: r.organization.name if r.organization is not None else "", True),
        ("类型", lambda r: kind_label(r.kind), True),
        ("内容", lambda r: r.summary, True),
        ("IP", lambda r: r.ip or "", True),
    ]

    def __init__(self, **kwargs):
        super().__init__(AuditLog, **kwargs)

    def get_query(self):
        return super().get_query().options(joinedload(AuditLog.user), joinedload(AuditLog.organization))

    # -- filters from the query string ------------------------------------------------------------
    def filters(self) -> LogFilters:
        """Parsed once per request; what was dropped is said once, in Chinese."""
        if "audit_log_filters" not in g:
            found = parse_filters(request.args)
            for message in found.errors:
                flash(message, "error")
            g.audit_log_filters = found
        return g.audit_log_filters

    def scope_query(self, query):
        found = self.filters()
        if found.kind:
            query = query.where(AuditLog.kind == found.kind)
        if found.start_utc:
            query = query.where(AuditLog.created_at >= found.start_utc)
        if found.end_utc:
            query = query.where(AuditLog.created_at < found.end_utc)
        if found.user:
            query = query.where(or_(AuditLog.username == found.user,
                                    AuditLog.user_id.in_(select(User.id).where(User.name == found.user))))
        return query

    # read-only: no 新建 / 编辑 / 删除 routes at all (404), not Flask-Admin's redirect to the list
    def create_view(self):
        abort(404)

    def edit_view(self):
        abort(404)

    def delete_view(self):
        abort(404)

    def kind_options(self):
        return list(Kind.LABELS.items())


def register(admin) -> None:
    admin.add_view(OperationLogView(name="操作日志", category="系统管理", endpoint="audit_log"))
