"""Base views: every model view is a ``SecureModelView``; stateful ones a ``WorkflowModelView``.

``SecureModelView`` is the single hook for access (login, organization kind, permission) and
row visibility: list, count, detail, edit, delete, export and actions all load through
``workflows.visibility``. ``WorkflowModelView`` turns a workflow's transition table into the
list's bulk actions and the detail page's buttons; reasons are collected by a form and an
empty one is refused by the engine, not only by the browser.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from urllib.parse import quote

from flask import Response, abort, current_app, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.helpers import get_redirect_target
from flask_admin.model import typefmt
from flask_login import current_user
from sqlalchemy import false, or_
from sqlalchemy import inspect as sa_inspect
from werkzeug.wsgi import wrap_file

from models import Attachment, db
from models.base import CheckedInteger, format_local, local_today
from workflows import FormErrors, StaleObjectError, WorkflowError
from workflows.audit import Kind, log
from workflows.engine import Workflow
from workflows.excel import write_xlsx
from workflows.search import TermKind, classify
from workflows.visibility import clause, get_visible, load_visible

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def client_ip() -> str | None:
    """The address for the operation log. Behind a proxy, set PROXY_COUNT so ProxyFix (app.py)
    rewrites remote_addr from the proxy's header; a client's own X-Forwarded-For is never trusted."""
    return request.remote_addr


def user_may_enter(user, kinds=None, permission=None, individual=False) -> bool:
    """Menu and URL access: signed in, password current, right kind of organization, permission."""
    user = user._get_current_object() if hasattr(user, "_get_current_object") else user  # the proxy once
    if not getattr(user, "is_authenticated", False) or user.must_change_password:
        return False
    if user.organization is None:
        return individual
    if kinds is not None and user.organization.kind not in kinds:
        return False
    return permission is None or user.has(permission)


def may_open(endpoint: str) -> bool:
    """The current user may open the view registered as ``endpoint`` (links to other screens
    are shown only when they would open). Asked once per request (a list's rows ask it for each row)."""
    memo = getattr(request, "_may_open", None) if request else None
    if memo is not None and endpoint in memo:
        return memo[endpoint]
    admin = current_app.extensions["admin"][0]
    view = next((v for v in admin._views if getattr(v, "endpoint", None) == endpoint), None)
    answer = view is not None and view.is_accessible()
    if request:
        if memo is None:
            memo = request._may_open = {}
        memo[endpoint] = answer
    return answer


def kept_for_organization(what, setting: str, compute):
    """``compute()`` for the current user's organization (or, without one, the user), kept in this
    process for ``config[setting]`` seconds: figures every page or every 首页 shows and few
    need to the second — a select filter's options, the province's count of a million valid
    certificates (29 ms of PostgreSQL). Kept per app, so per database; 0 seconds keeps nothing.
    What visibility narrows depends only on the organization, so the key holds it."""
    seconds = current_app.config.get(setting, 60)
    org = current_user.organization
    key = (what, org.id if org is not None else None, None if org is not None else current_user.id)
    store = current_app.extensions.setdefault("kept_for_organization", {})
    now = time.monotonic()
    kept = store.get(key)
    if kept is not None and now - kept[0] < seconds:
        return kept[1]
    value = compute()
    if seconds > 0:
        if len(store) > 10_000:  # organizations come and go; the store stays small
            store.clear()
        store[key] = (now, value)
    return value


class AtLeast(int):
    """A count that stopped at its bound: behaves as the bound in arithmetic (pages), reads 「10,000+」."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class BoundedCount:
    """Flask-Admin's count query, filtered and searched as usual, but ``scalar()`` counts at most
    ``limit`` + 1 rows (``SELECT count(*) FROM (SELECT 1 … LIMIT n+1)``): the database stops
    reading once it has seen more than the bound."""

    def __init__(self, query, limit: int):
        self.query, self.limit = query, limit

    def __getattr__(self, name):
        attr = getattr(self.query, name)
        if not callable(attr):
            return attr

        def wrapped(*args, **kwargs):
            result = attr(*args, **kwargs)
            return BoundedCount(result, self.limit) if result.__class__ is self.query.__class__ else result

        return wrapped

    def scalar(self):
        from sqlalchemy import func, literal_column, select

        rows = self.query.with_entities(literal_column("1")).order_by(None).limit(self.limit + 1).subquery()
        n = db.session.scalar(select(func.count()).select_from(rows))
        return AtLeast(self.limit) if n > self.limit else n


class FilterConverter(sqla_filters.FilterConverter):
    """Flask-Admin picks a column's filters by its type's class name: our range-checked integers
    (models.base.CheckedInteger) filter as the integers they are."""

    def convert(self, type_name, column, name, **kwargs):
        if type_name == CheckedInteger.__name__:
            type_name = "Integer"
        return super().convert(type_name, column, name, **kwargs)


class AccessMixin:
    """Who may open a view: ``kinds`` of organization, a ``permission``, individuals or not."""

    kinds = None
    permission = None
    individual = False

    def is_accessible(self) -> bool:
        return user_may_enter(current_user, self.kinds, self.permission, self.individual)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


class SecureModelView(AccessMixin, ModelView):
    """A read-only, row-restricted model view unless a subclass opens more."""

    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    can_view_details = True
    can_set_page_size = False
    page_size = 20
    list_template = "admin/secure_list.html"
    # timestamps are stored in UTC and shown in Beijing time, to the second
    column_type_formatters = {
        **typefmt.BASE_FORMATTERS,
        datetime: lambda view, value, name: format_local(value),
        enum.Enum: lambda view, value, name: getattr(value, "label", value.value),  # states in Chinese
    }
    column_type_formatters_detail = column_type_formatters

    # search: TermKind -> callable(term) returning a predicate on the model (exact, indexed)
    search_rules: dict = {}
    search_hint = "搜索"
    filter_converter = FilterConverter()

    def __init__(self, model, session=None, **kwargs):
        super().__init__(model, session or db.session, **kwargs)

    # the 操作 column (issue 17): labelled buttons in the words of the screen's manual, last in the row
    details_label = "详情"  # 查看 where the manual of the screen says so (004 注册申报)
    edit_label = "修改"

    def row_links(self, row) -> list[tuple[str, str, str]]:
        """Links after 详情, 修改 and the row's transitions in its 操作 column: (label, url, css class).
        Route them with ``row_url`` (once per page), not ``url_for`` per row."""
        return []

    def may_edit_row(self, row) -> bool:
        """修改 is offered on this row (a view whose edit form refuses some rows says which)."""
        return True

    def row_edit_url(self, row, row_id, return_url) -> str | None:
        """Where 修改 leads for this row, or None: the edit form where the view has one."""
        if self.can_edit and self.may_edit_row(row):
            return self.row_url(".edit_view", row_id, return_url)
        return None

    def row_transition_links(self, row, row_id, return_url) -> list[tuple[str, str, str]]:
        return []

    def row_operations(self, row, row_id, return_url) -> list[tuple[str, str, str]]:
        """The row's 操作 column: 详情, 修改, what its workflow lets this user do to it now, then
        ``row_links`` — all from what the page has already loaded: no query and no routing per row."""
        ops = []
        if self.can_view_details:
            ops.append((self.details_label, self.row_url(".details_view", row_id, return_url), "row-details"))
        edit = self.row_edit_url(row, row_id, return_url)
        if edit:
            ops.append((self.edit_label, edit, "row-edit"))
        ops.extend(self.row_transition_links(row, row_id, return_url))
        ops.extend(self.row_links(row))
        return ops

    def cell(self, row, name: str):
        """A list cell, as Flask-Admin's ``get_list_value`` gives it but without the template context
        (no formatter here reads it): see admin/secure_list.html. No column is edited in the list."""
        return self._get_list_value(None, row, name, self.column_formatters, self.column_type_formatters)

    def detail_cell(self, row, name: str):
        """A field of the details page, as ``get_detail_value`` gives it, without the context."""
        return self._get_list_value(None, row, name, self.column_formatters_detail,
                                    self.column_type_formatters_detail)

    def row_url(self, endpoint: str, row_id, return_url: str | None = None, param: str = "id") -> str:
        """A row's link (详情, 修改, 变更 …) as ``get_url(endpoint, id=row_id, url=return_url)`` gives it,
        routed once per page and endpoint rather than once per row (issue 16 "Served": URL
        building was a fifth of a list page's render). ``param`` names the row's argument."""
        cache = g.setdefault("row_urls", {})
        key = (self.endpoint, endpoint, return_url, param)
        parts = cache.get(key)
        if parts is None:  # the id comes first in the query string, as Flask-Admin builds it
            marker = f"{param}=ROW"
            url = self.get_url(endpoint, **{param: "ROW"}, **({"url": return_url} if return_url else {}))
            head, _, tail = url.partition(marker)
            parts = cache[key] = (head + f"{param}=", tail)
        return f"{parts[0]}{quote(str(row_id), safe='')}{parts[1]}"

    def page_url(self, endpoint: str) -> str:
        """``get_url(endpoint)`` routed once per page (a row's 删除 form posts there)."""
        cache = g.setdefault("row_urls", {})
        key = (self.endpoint, endpoint)
        if key not in cache:
            cache[key] = self.get_url(endpoint)
        return cache[key]

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

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """A page number below 0 is the first page; one beyond LIST_MAX_PAGE the last allowed, with a
        message: a forged page=1000000000 never makes the database skip a billion rows."""
        deepest = current_app.config["LIST_MAX_PAGE"] - 1
        if page is not None and page < 0:
            page = 0
        elif page is not None and page > deepest:
            flash(f"页码超出范围（最多 {deepest + 1} 页），请缩小查询范围", "error")
            page = deepest
        one_pass = execute and bool(search) and not self.simple_list_pager
        g.count_from_ids = one_pass
        try:
            count, query = super().get_list(page, sort_column, sort_desc, search, filters, execute=False,
                                            page_size=page_size)
        finally:
            g.count_from_ids = False
        if not execute:
            return count, query
        if one_pass:
            return self._searched_page(query, page or 0, self.page_size if page_size is None else page_size)
        return count, (self._page_rows(query) if page else query.all())

    def _searched_page(self, query, page: int, size: int):
        """A search reads its matches once: their ids in the list's order, up to SEARCH_COUNT_LIMIT,
        give both the count and the page (issue 7: a surname matching ~8,000 persons cost two passes
        over their certificates, one to count and one for the first 20). A search is for finding:
        beyond the bound it reads 「1,000+」, and the pages past it are paginated as usual."""
        bound = current_app.config["SEARCH_COUNT_LIMIT"]
        # (a search over a one-to-many join may meet a row twice: each row once, in its first place)
        stmt = query.limit(bound + 1).offset(None).with_entities(self.model.id).statement
        ids = list(dict.fromkeys(db.session.scalars(stmt)))
        count = AtLeast(bound) if len(ids) > bound else len(ids)
        start = page * size if size else 0
        if size and start + size > bound < len(ids):  # a page beyond the bound: paginated as usual
            return count, self._page_rows(query)
        return count, self._rows_in_order(query, ids[start:start + size] if size else ids[:bound])

    def _rows_in_order(self, query, ids) -> list:
        if not ids:
            return []
        rows = {row.id: row for row in query.limit(None).offset(None).filter(self.model.id.in_(ids))}
        return [rows[ident] for ident in ids if ident in rows]

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        """Every order ends with the id, newest first: rows that tie on the sorted column (a status,
        a date) keep one order from page to page, so paging never shows a row twice or skips one."""
        query, joins = super()._apply_sorting(query, joins, sort_column, sort_desc)
        return query.order_by(self.model.id.desc()), joins

    def _page_rows(self, query) -> list:
        """A deep page joins after paginating: first the page's ids — filters, visibility and the sort
        over the bare table and its indexes, no eager-loaded joins — then those rows with their related
        columns (issue 7: page 1,000 of 证书库 read and joined 20,000 rows to keep 20)."""
        return self._rows_in_order(query, [ident for (ident,) in query.with_entities(self.model.id)])

    def get_count_query(self):
        """Counted up to a bound (LIST_COUNT_LIMIT, or EXPORT_MAX_ROWS for an export): a large
        table is never counted in full on every page (issue 7)."""
        if g.get("count_from_ids"):  # a search: get_list counts it from the ids it reads
            return None
        limit = g.get("count_limit") or current_app.config["LIST_COUNT_LIMIT"]
        return BoundedCount(self._narrow(self._visible(super().get_count_query())), limit)

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

    @expose("/action/", methods=("POST",))
    def action_view(self):
        """Bulk actions; one the user may not run is refused with a message, not silently."""
        name = request.form.get("action", "")
        if name and (name not in self._actions_data or not self.is_action_allowed(name)):
            flash("无权执行该操作", "error")
            return redirect(get_redirect_target() or self.get_url(".index_view"))
        return super().action_view()

    def organization_arg(self, name: str, *where):
        """The organization whose id the query string's ``name`` holds, when this user may see it and
        it meets ``where`` (a list narrowed to one organization); None otherwise, and the list is whole."""
        from sqlalchemy import select

        from models import Organization

        try:
            ident = int(request.args.get(name, ""))
        except ValueError:
            return None
        stmt = select(Organization).where(Organization.id == ident, *where)
        return db.session.scalars(stmt.where(clause(current_user, Organization))).first()

    def load_rows(self, ids) -> dict:
        """Rows of a bulk action's ``rowid`` values, through visibility and the view's ``row_clause``
        (forged ids, and rows the view does not hold — another kind's application — drop out)."""
        return load_visible(db.session, current_user, self.model, ids, self.row_clause())

    # -- search: exact predicates chosen by what the term looks like -----------------------
    def init_search(self):
        if self.search_rules:
            self._search_fields = []
            return True
        return super().init_search()

    def _apply_search(self, query, count_query, joins, count_joins, search):
        if not self.search_rules:
            return super()._apply_search(query, count_query, joins, count_joins, search)
        kind, term = classify(search)
        rule = self.search_rules.get(kind) or self.search_rules.get(TermKind.text)
        predicate = rule(term) if (rule is not None and kind != TermKind.empty) else false()
        if isinstance(predicate, (list, tuple)):
            predicate = or_(*predicate)
        query = query.filter(predicate)
        if count_query is not None:
            count_query = count_query.filter(predicate)
        return query, count_query, joins, count_joins

    def search_placeholder(self):
        return self.search_hint

    # -- 导出: streamed, constant memory, only visible rows (SPEC §11) ------------------------
    export_columns: list = []  # [(header, getter(row), is_text)]

    def export_query(self, query):
        """What the export_columns' getters read: the list's own objects, or — for a large list —
        plain rows of only the exported columns (``query.with_entities``), which is what keeps
        an export's time in the database and xlsxwriter rather than in building ORM objects."""
        return query
    export_filename = "导出"

    @property
    def can_stream_export(self) -> bool:
        return bool(self.export_columns)

    def export_list(self):
        """(count, query) of the list as it is filtered, searched and sorted now, counted up to
        EXPORT_MAX_ROWS (an ``AtLeast`` beyond it). Runs in the request that asks and, for a large
        export, again in the job (the same query string, the same user), so the file is what
        the list showed — through the same visibility."""
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        g.count_limit = current_app.config["EXPORT_MAX_ROWS"]  # the export's bound, not the list's
        try:
            return self.get_list(0, sort[0] if sort else None, args.sort_desc, args.search, args.filters,
                                 execute=False, page_size=0)
        finally:
            g.count_limit = None

    def too_many_to_export(self, count) -> str | None:
        limit = current_app.config["EXPORT_MAX_ROWS"]
        if isinstance(count, AtLeast):
            return f"导出数据共 {count} 条，超过上限 {limit:,} 条，请缩小查询范围后再导出"
        return None

    def write_export(self, query, path: str, progress=None) -> int:
        """The .xlsx of ``query``'s rows at ``path``; returns the rows written."""
        columns = self.export_columns

        def rows():
            for obj in self.export_query(query).yield_per(1000):
                yield [getter(obj) for _, getter, _ in columns]

        return write_xlsx(path, [h for h, _, _ in columns], rows(), sheet_name=self.name[:31],
                          text_columns={i for i, (_, _, is_text) in enumerate(columns) if is_text},
                          progress=progress)

    def export_download_name(self) -> str:
        return f"{self.export_filename}-{local_today():%Y%m%d}.xlsx"

    @expose("/export.xlsx", methods=("POST",))
    def export_xlsx_view(self):
        """导出: the list as it is filtered, searched and sorted now (the query string), as .xlsx. Up
        to EXPORT_INLINE_MAX_ROWS rows the file is written here and sent; more rows become an export
        job (我的导出: progress, then the file), so no request holds a worker for long (issue 16).
        A POST with the CSRF token: it may queue work in the user's name."""
        if not self.export_columns:
            abort(404)
        args = self._get_list_extra_args()
        count, query = self.export_list()
        refusal = self.too_many_to_export(count)
        if refusal:
            flash(refusal, "error")
            return redirect(self.get_url(".index_view", **args.extra_args))
        if count > current_app.config["EXPORT_INLINE_MAX_ROWS"]:
            return self._queue_export(count, args)
        path = temp_file_path("export-")
        try:
            rows = self.write_export(query, path)
            log(db.session, current_user, Kind.EXPORT, f"导出{self.name}：{rows:,} 条", object_type=self.endpoint,
                ip=client_ip())
            db.session.commit()
        except BaseException:
            os.unlink(path)
            raise
        return export_done(file_response(path, self.export_download_name(), XLSX_MIMETYPE), rows)

    def _queue_export(self, count: int, args):
        from models import JobKind
        from workflows.jobs import enqueue

        try:
            job = enqueue(db.session, current_user, kind=JobKind.export, title=self.name, endpoint=self.endpoint,
                          arguments=request.query_string.decode("utf-8", "replace"), total=int(count),
                          limit=current_app.config["EXPORT_JOBS_PER_USER"], ip=client_ip())
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(self.get_url(".index_view", **args.extra_args))
        flash(f"导出数据共 {int(count):,} 条，已加入导出队列，可在「我的导出」查看进度并下载", "success")
        return redirect(url_for("my_export.index_view", job=job.id))

    # -- tabs ----------------------------------------------------------------------------
    tabs: list = []  # [(key, label, predicate-callable or None)]

    def current_tab(self):
        keys = [t[0] for t in self.get_tabs()]
        wanted = request.args.get("tab")
        if wanted in keys:
            return wanted
        return keys[0] if keys else None

    def get_tabs(self):
        return self.tabs

    def tab_predicate(self):
        tab = self.current_tab()
        for key, _label, predicate in self.get_tabs():
            if key == tab and predicate is not None:
                return predicate()
        return None


class WorkflowModelView(SecureModelView):
    """List actions and detail buttons generated from ``workflow``'s transition table."""

    workflow: Workflow = None
    details_template = "admin/workflow_details.html"

    def init_actions(self):
        super().init_actions()
        for transition in self.workflow.transitions.values():
            if not (transition.bulk and transition.manual):
                continue
            name = f"wf_{transition.name}"
            self._actions.append((name, transition.label))
            self._actions_data[name] = (partial(self._bulk_transition, transition.name), transition.label,
                                        transition.confirm)

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
            return redirect(self.get_url(".reason_view", transition=name, id=ids, url=get_redirect_target()))
        self._fire_and_report(name, ids, None)
        return None

    def _fire_and_report(self, name, ids, reason):
        transition = self.workflow.transitions[name]
        rows = self.load_rows(ids)
        try:
            result = self.workflow.fire_many(db.session, current_user, rows, ids, name, reason)
            db.session.commit()
        except WorkflowError as exc:  # a rule raised outside a row (should not happen) or stale commit
            db.session.rollback()
            flash(exc.message, "error")
            return
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
            reason = (request.form.get("reason") or "").strip()
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
        name = request.form.get("transition", "")
        obj = self.get_one(request.form.get("id"))
        return_url = get_redirect_target() or self.get_url(".details_view", id=obj.id)
        transition = self.workflow.transitions.get(name)
        if transition is None or not transition.manual:
            abort(404)
        try:
            seen = request.form.get("version")
            if seen and hasattr(obj, "version") and str(obj.version) != seen:
                raise StaleObjectError()
            data = {key[5:]: value for key, value in request.form.items() if key.startswith("data_") and value}
            self.workflow.fire(db.session, current_user, obj, name, request.form.get("reason"), **data)
            db.session.commit()
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            # back to the row, where what is missing can be put right (an image, a reason …)
            return redirect(self.get_url(".details_view", id=obj.id, url=return_url))
        flash(f"{transition.label}：操作成功", "success")
        if sa_inspect(obj).was_deleted:
            return redirect(self.get_url(".index_view"))
        return redirect(return_url)


def submit_form(save, unsaved: str):
    """The POST of a plain form (企业信息, 机构资料, 人员管理): ``save()`` changes the rows and returns
    the success message; a refusal rolls everything back and comes back field by field.

    Returns (saved, errors, values): values are what was typed, to fill the form again."""
    if request.method != "POST":
        return False, {}, None
    done = perform(save, unsaved=unsaved)
    return done.ok, done.errors, request.form


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


def transition_logs(object_type: str, object_id: int) -> list:
    """The 审核日志 / 业务日志 of one row, oldest first, through visibility like every read."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from models import TransitionLog

    stmt = (select(TransitionLog).options(joinedload(TransitionLog.actor), joinedload(TransitionLog.organization))
            .where(TransitionLog.object_type == object_type, TransitionLog.object_id == object_id)
            .order_by(TransitionLog.id))
    return db.session.scalars(stmt.where(clause(current_user, TransitionLog))).all()


def temp_file_path(prefix: str, suffix: str = ".xlsx") -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    return path


def file_response(path: str, download_name: str, mimetype: str) -> Response:
    """A finished file on disk as a download, with no database work left to do (issue 16): the body
    never touches a session, so no transaction outlives the request however the download ends.

    The path is unlinked at once; the open handle keeps the data until the response is closed —
    completed, aborted by the client, or the worker killed — and then the disk space is freed."""
    fh = open(path, "rb")
    try:
        os.unlink(path)
        size = os.fstat(fh.fileno()).st_size
        response = Response(wrap_file(request.environ, fh), mimetype=mimetype, direct_passthrough=True)
    except BaseException:
        fh.close()
        raise
    response.content_length = size
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(download_name)}"
    response.headers["Cache-Control"] = "no-store"
    return response


EXPORT_DONE_COOKIE = "export_done"
_EXPORT_TOKEN = re.compile(r"^[A-Za-z0-9]{8,40}$")


def export_done(response: Response, rows: int) -> Response:
    """「导出成功」 (004 §3.3.2) for an export sent as a download: the page that asked stays where it
    is, so the response says so in a short-lived cookie — ``<the page's token>.<rows>`` — which
    admin.js, waiting on that page, turns into the message (no inline script: the CSP stays). The
    token is what the page sent (``export_token``), so one tab's download never speaks in another's."""
    token = request.values.get("export_token", "")
    if _EXPORT_TOKEN.match(token):
        response.set_cookie(EXPORT_DONE_COOKIE, f"{token}.{int(rows)}", max_age=120, path="/",
                            secure=request.is_secure, httponly=False, samesite="Strict")
    return response


def log_download(obj, what: str) -> None:
    """Every export and file download is in the operation log (SPEC §8, §11)."""
    log(db.session, current_user, Kind.DOWNLOAD, what, obj=obj, ip=client_ip())


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


def review_tabs(workflow: Workflow, state_column, order, reviews=("authority_approve", "province_approve")):
    """审核 tabs of a review list: 待审核 — the states waiting for this reviewer (sources of the
    review transitions it is offered); 已审核 — every state after those, and rejections."""

    def waiting():
        return workflow.awaiting(current_user, *reviews)

    def reviewed():
        states = waiting()
        first = min((order.index(s) for s in states if s in order), default=len(order))
        return set(order[first + 1:]) | {order[-1]}

    return [
        ("pending", "待审核", lambda: state_column.in_(waiting())),
        ("reviewed", "已审核", lambda: state_column.in_(reviewed())),
    ]
