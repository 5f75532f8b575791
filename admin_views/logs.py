"""操作日志 (SPEC §8; 003 §四): what the organization's users did, read-only and searchable.

Rows are written by ``workflows.audit.log`` (sign-ins, transitions, edits, data fixes, password
resets, exports, downloads). This view only reads them, through the base view's visibility hook
(``workflows.visibility._audit_clause``: the province all; an organization its own users' rows
and its descendants'; an individual none, the view is closed to them). Filters come from the
query string (类型, 开始日期 / 结束日期 in Beijing time, 用户); a value that cannot be used is
dropped with a Chinese message and the list shows as if it had not been given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import abort, current_app, flash, g, request
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import joinedload

from admin_views.access import registered_view
from admin_views.model_views import SecureModelView
from models import AuditLog, User, db
from models.base import PROVINCE_TZ, format_local
from models.org import OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.audit import OBJECT_LABELS, Kind, field_label
from workflows.search import MAX_TERM, TermKind, starts_with
from workflows.visibility import get_visible

DATE_FORMAT = "%Y-%m-%d"


# -- rules worth testing on their own ---------------------------------------------------------
def kind_label(kind: str | None) -> str:
    """类型 in Chinese (``Kind.label``: audit.log writes only Kinds); a value no Kind names, put in
    the table behind its back, is shown as it is stored."""
    try:
        return Kind(kind).label
    except ValueError:
        return kind or ""


def local_day_start_utc(day: date) -> datetime:
    """00:00 of a Beijing date as the naive UTC timestamp the table stores."""
    return datetime.combine(day, time.min, tzinfo=PROVINCE_TZ).astimezone(UTC).replace(tzinfo=None)


def _parse_date(value: str) -> date:
    return datetime.strptime(value, DATE_FORMAT).date()


@dataclass
class LogFilters:
    """What the query string asks for, after dropping what cannot be used (``errors``)."""

    kind: Kind | None = None
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
        try:
            found.kind = Kind(kind)
        except ValueError:
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


def _is_change(value) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= {"before", "after"}


def detail_rows(detail, object_type: str | None = None):
    """What a row's detail says, in Chinese: (changes, facts) — changes as (字段, 修改前, 修改后),
    facts as (项目, 内容). None when there is no detail.

    Edits are written in two shapes, ``{"field": {"before": …, "after": …}, …}`` and
    ``{"before": {…}, "after": {…}}``; any other key (a data fix's reason, a job's worker) is a fact."""
    if detail in (None, {}, [], ""):
        return None
    if not isinstance(detail, dict):
        return [], [("内容", show_value(detail, object_type))]
    changes, facts = [], []
    before, after = detail.get("before"), detail.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        if isinstance(before, dict) and isinstance(after, dict):
            names = list(before) + [k for k in after if k not in before]
            changes += [(field_label(n, object_type), show_value(before.get(n), object_type, n),
                         show_value(after.get(n), object_type, n)) for n in names]
            detail = {k: v for k, v in detail.items() if k not in ("before", "after")}
    for name, value in detail.items():
        if _is_change(value):
            changes.append((field_label(name, object_type), show_value(value.get("before"), object_type, name),
                            show_value(value.get("after"), object_type, name)))
        else:
            facts.append((field_label(name, object_type), show_value(value, object_type, name)))
    return changes, facts


# detail keys whose numbers come in pairs (a paper size, a field's position): 210 × 297
MEASURES = {"paper", "fields"}


def show_value(value, object_type: str | None = None, key: str | None = None) -> str:
    """A detail's value as an official reads it: lists joined with 、, nested fields with their
    Chinese names — never JSON."""
    if value is None or value == "" or value == [] or value == {}:
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict):
        return "；".join(f"{field_label(k, object_type)}：{show_value(v, object_type, key if key in MEASURES else k)}"
                        for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if key in MEASURES:
            return " × ".join(str(v) for v in value)
        return "、".join(show_value(v, object_type) for v in value)
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


def _ip(view, context, model, name):
    if model.ip:
        return model.ip
    return Markup('—<small class="text-muted audit-no-ip">（系统）</small>')  # the job worker, the CLI


def object_name(row: AuditLog) -> str:
    """操作对象 by its name: 「人员：张三 370102…」 for a row this user may see now; a list's name
    for an export; the kind and record number of a row since deleted or out of sight."""
    if not row.object_type:
        return "-"
    label = OBJECT_LABELS.get(row.object_type)
    if label is None:  # an export names the list it came from (its endpoint)
        view = registered_view(row.object_type)
        return f"列表：{view.name}" if view is not None else "-"
    if row.object_id is None:
        return label
    model = next((m.class_ for m in db.Model.registry.mappers
                  if getattr(m.class_, "__tablename__", None) == row.object_type), None)
    if model is not None:
        try:
            return f"{label}：{get_visible(db.session, current_user, model, row.object_id)}"
        except WorkflowError:
            pass
    return f"{label}（记录 {row.object_id}，已删除或无权查看）"


def _object(view, context, model, name):
    return object_name(model)


def _detail(view, context, model, name):
    found = detail_rows(model.detail, model.object_type)
    if found is None:
        return "-"
    changes, facts = found
    out = Markup("")
    if changes:
        body = Markup("").join(Markup("<tr><td>{}</td><td>{}</td><td>{}</td></tr>").format(*r) for r in changes)
        out += Markup('<table class="table table-sm table-bordered mb-2" id="audit-detail-changes">'
                      "<thead><tr><th>字段</th><th>修改前</th><th>修改后</th></tr></thead><tbody>{}</tbody></table>"
                      ).format(body)
    if facts:
        body = Markup("").join(Markup("<tr><th>{}</th><td>{}</td></tr>").format(*r) for r in facts)
        out += Markup('<table class="table table-sm table-bordered mb-0" id="audit-detail-facts">'
                      "<tbody>{}</tbody></table>").format(body)
    return out


# 内容 is searched for a name anywhere in it (「数据维护：人员「张三 …」」) by LIKE '%…%', which no
# b-tree index answers: so only over a bounded run of rows, found by the primary key — the newest
# SUMMARY_SEARCH_ROWS, or as many from the 开始日期 on. A search reads at most that many summaries,
# however large the log grows.
SUMMARY_SEARCH_ROWS = 100_000


def _summary_window():
    found = g.get("audit_log_filters")
    start = found.start_utc if found is not None else None
    if start is not None:
        first = select(func.min(AuditLog.id)).where(AuditLog.created_at >= start).scalar_subquery()
        return and_(AuditLog.id >= first, AuditLog.id < first + SUMMARY_SEARCH_ROWS)
    last = select(func.max(AuditLog.id)).scalar_subquery()
    return AuditLog.id > last - SUMMARY_SEARCH_ROWS


def _contains(column, term: str):
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def _reach() -> int:
    """How many of a search's newest matches the request can use: the search's bound (the list
    counts to SEARCH_COUNT_LIMIT, an export to EXPORT_MAX_ROWS) or the rows up to the page asked."""
    try:
        page = max(int(request.args.get("page", 0)), 0)
    except ValueError:
        page = 0
    bound = g.get("count_limit") or current_app.config["SEARCH_COUNT_LIMIT"]
    return max(bound, (page + 1) * OperationLogView.page_size) + 1


def _newest(predicate, reach: int):
    """The ids of the newest ``reach`` rows meeting ``predicate`` (ids grow with time)."""
    inner = select(AuditLog.id).where(predicate).order_by(AuditLog.id.desc()).limit(reach).subquery()
    return select(inner.c.id)


def _who(term: str):
    """用户名 (as typed, or in lower case: the search box upper-cases codes) or 姓名, by prefix; or
    the term anywhere in 内容 (a person's or an organization's name the summary holds).

    The union of the newest ids two ways find, each through its own index, and no more of each
    than the request can show: the rows of the users so named (the users' indexes, then
    ix_audit_log_user_id); and, within the primary key's bounded run, 内容 containing the term or a
    sign-in under an unknown 用户名 (no user to find it by). An OR of these read the whole log on a
    search that finds little (bench/audit_log.py)."""
    reach = _reach()
    candidates = {term, term.lower()}
    users = select(User.id).where(or_(*(starts_with(User.username, t) for t in candidates),
                                      starts_with(User.name, term)))
    unknown = and_(AuditLog.user_id.is_(None), or_(*(starts_with(AuditLog.username, t) for t in candidates)))
    in_run = and_(_summary_window(), or_(_contains(AuditLog.summary, term), unknown))
    return AuditLog.id.in_(union(_newest(AuditLog.user_id.in_(users), reach), _newest(in_run, reach)))


class OperationLogView(SecureModelView):
    """操作日志: every organization kind with 操作日志 permission; individuals not. Read-only."""

    kinds = tuple(OrgKind)
    permission = Permission.audit_view
    list_template = "logs/list.html"
    column_list = ("created_at", "user", "organization", "kind", "summary", "ip")
    column_details_list = ("created_at", "user", "organization", "kind", "summary", "object", "ip", "detail")
    column_labels = {"created_at": "时间", "user": "用户", "organization": "机构", "kind": "类型", "summary": "内容",
                     "ip": "IP", "object": "操作对象", "detail": "详细信息"}
    column_formatters = {"user": _user, "organization": _organization, "kind": _kind, "ip": _ip}
    column_formatters_detail = {**column_formatters, "object": _object, "detail": _detail}
    column_sortable_list = ("created_at",)
    column_default_sort = [("created_at", True), ("id", True)]
    search_hint = "用户名、姓名或内容中的名称"
    search_rules = {kind: _who for kind in TermKind if kind != TermKind.empty}

    export_filename = "操作日志"
    export_columns = [
        ("时间", lambda r: format_local(r.created_at), True),
        ("用户名", lambda r: r.username or "", True),
        ("姓名", lambda r: r.user.name if r.user is not None else "", True),
        ("机构", lambda r: r.organization.name if r.organization is not None else "", True),
        ("类型", lambda r: kind_label(r.kind), True),
        ("内容", lambda r: r.summary, True),
        ("IP", lambda r: r.ip or "—（系统）", True),
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
        return [(kind.value, kind.label) for kind in Kind]


def register(admin) -> None:
    admin.add_view(OperationLogView(name="操作日志", category="系统管理", endpoint="audit_log"))
