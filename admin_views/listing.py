"""Lists: what a list page shows and how it finds it — counting to a bound, exact searches,
paging that stays cheap at any depth, tabs, and the 操作 column of each row.

``ListingMixin`` is the list half of ``SecureModelView`` (admin_views.model_views); the rows it
starts from are the view's visible rows (``visible_query``), never the whole table.
"""

from __future__ import annotations

import enum
import time
from datetime import datetime
from urllib.parse import quote

from flask import current_app, flash, g, has_app_context, request
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import typefmt
from flask_login import current_user
from sqlalchemy import false, func, literal_column, or_, select

from admin_views.access import refuse
from models import Organization, db
from models.base import CheckedInteger, format_local
from workflows.search import TermKind, classify
from workflows.visibility import clause


def kept_for_organization(what, setting: str, compute):
    """``compute()`` for the current user's organization (or, without one, the user), kept in this
    process for ``config[setting]`` seconds: figures every page or every 首页 shows and few
    need to the second — a select filter's options, the province's count of a million valid
    certificates (29 ms of PostgreSQL). Kept per app, so per database; 0 seconds keeps nothing.
    What visibility narrows depends only on the organization, so the key holds it."""
    seconds = current_app.config[setting]
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


class ConfigValue:
    """A view attribute read from the app's config at each use (``page_size = ConfigValue("PAGE_SIZE")``):
    views are built before any request, so a class constant would miss the deployment's setting.
    A view (or a test) that sets its own value keeps it; read on the class, it is the setting
    within an app (``OperationLogView.page_size``) and the descriptor itself outside one."""

    def __init__(self, key: str):
        self.key = key

    def __set_name__(self, owner, name):
        self.slot = f"_{name}"

    def __get__(self, view, owner=None):
        if view is not None and self.slot in view.__dict__:
            return view.__dict__[self.slot]
        if view is None and not has_app_context():  # Flask-Admin's metaclass looks at every attribute
            return self
        return current_app.config[self.key]

    def __set__(self, view, value):
        view.__dict__[self.slot] = value

    def __delete__(self, view):
        """The view's own value dropped: the setting again."""
        view.__dict__.pop(self.slot, None)


# -- Flask-Admin adapter (checked against Flask-Admin 2.2.1) --------------------------------------
# The list overrides three private members of ModelView, which have no public equivalent:
#   ``_apply_sorting(query, joins, sort_column, sort_desc)`` — to end every order with the id;
#   ``_apply_search(query, count_query, joins, count_joins, search)`` — exact searches (search_rules);
#   ``_search_fields`` — emptied by ``init_search`` when search_rules replace Flask-Admin's search.
# Cells go through the public ``get_list_value`` / ``get_detail_value`` and actions through
# ``get_actions_list``; nothing else private is touched here.


class ListingMixin:
    """The list page of a ``SecureModelView``: bounded counts, exact searches, cheap deep pages,
    tabs and the 操作 column."""

    can_set_page_size = False
    page_size = ConfigValue("PAGE_SIZE")  # rows a page shows; a view may set its own
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
        return self.get_list_value(None, row, name)

    def detail_cell(self, row, name: str):
        """A field of the details page, as ``get_detail_value`` gives it, without the context."""
        return self.get_detail_value(None, row, name)

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

    # -- paging and counting ------------------------------------------------------------
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

    @expose("/action/", methods=("POST",))
    def action_view(self):
        """Bulk actions; one the user may not run is refused with a message, not silently."""
        name = request.form.get("action", "")
        if name and name not in {allowed for allowed, _text in self.get_actions_list()[0]}:
            return refuse(self)
        return super().action_view()

    def organization_arg(self, name: str, *where):
        """The organization whose id the query string's ``name`` holds, when this user may see it and
        it meets ``where`` (a list narrowed to one organization); None otherwise, and the list is whole."""
        try:
            ident = int(request.args.get(name, ""))
        except ValueError:
            return None
        stmt = select(Organization).where(Organization.id == ident, *where)
        return db.session.scalars(stmt.where(clause(current_user, Organization))).first()

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
