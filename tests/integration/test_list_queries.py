"""No list page runs a query per row (issue 7 item 8): the number of SQL statements a list page
executes is the same whether it shows one row or twenty.

Every Flask-Admin list view is opened by every account that may open it, once with a page size
of 1 and once with 20, counting the statements sent to the database. A formatter or a column
that loads a related row lazily makes the second count larger. The test also checks it had
teeth: every list was seen with at least two rows by some account (otherwise one row against
twenty proves nothing) — each tab of a list counts as a list.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date

from flask_admin.contrib.sqla import ModelView
from sqlalchemy import event, select

from models import Certificate, db
from models.certificate import CertificateStatus
from models.org import OrgKind
from tests.factories import issued_certificates, make_application, make_user, user
from workflows.business import BUSINESS
from workflows.organizations import create_organization
from workflows.printing import PRINT

ACCOUNTS = ("province", "province_reviewer", "jinan", "inst_jinan", "direct_inst", "enterprise", "school",
            "person_zhao", "ministry")  # person_zhao has two declarations
TOTAL_RE = re.compile(r"列表\s*\((\d+)\)")


@contextmanager
def counted(engine):
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def list_views(app):
    """Model views whose index is a list (我的基本信息's index is the individual's one record)."""
    return [v for v in app.extensions["admin"][0]._views
            if isinstance(v, ModelView) and not getattr(v, "own_record", False)]


def pages(views):
    """(view, url) of every list and every one of its tabs (待审核 / 已审核 … show other rows)."""
    for view in views:
        yield view, f"/admin/{view.endpoint}/"
        for key, _label, _predicate in getattr(view, "tabs", [])[1:]:
            yield view, f"/admin/{view.endpoint}/?tab={key}"


def test_list_pages_run_as_many_queries_for_twenty_rows_as_for_one(app, login, session):
    check_list_queries(app, login, session)


def check_list_queries(app, login, session):
    """The check itself; tests/postgres runs it on PostgreSQL too."""
    app.config["FILTER_OPTIONS_SECONDS"] = 0  # each visit reads its filters' options: equal counts
    # the demo has one 省直所: a second one, so 省直所管理 shows more than one row
    create_organization(session, user(session, "province"), OrgKind.direct_institution,
                        {"name": "山东省建设培训第二中心", "contact": "李", "phone": "0531-2"})
    # 业务打印's rows differ by kind (a reissue's row shows its old certificate): the demo has one
    # approved reissue, which alone on the one-row page hides a per-row load — a second one
    lost = issued_certificates(session, "inst_jinan")[0]
    reissue = make_application(session, "inst_jinan", "reissue", lost)
    for who, name in (("jinan", "authority_approve"), ("province", "province_approve")):
        BUSINESS.fire(session, user(session, who), reissue, name)
    # 打印状态 names who printed: two certificates printed by two accounts of the institution
    first = user(session, "inst_jinan")
    for who in (first, make_user(session, first.organization)):
        newest = session.scalars(select(Certificate).where(Certificate.issuer_id == first.organization_id,
                                                           Certificate.printed_by_id.is_(None),
                                                           Certificate.status == CertificateStatus.valid)
                                 .order_by(Certificate.id.desc())).first()
        PRINT.fire(session, who, newest, "print")
    # 我的导出: the demo has no export jobs; two of the province's (a queued and a finished one)
    from models import JobKind
    from workflows.jobs import enqueue

    for title in ("证书库", "操作日志"):
        enqueue(session, user(session, "province"), kind=JobKind.export, title=title, endpoint="certificate_library",
                arguments="", total=6_000, limit=3)
    # 接口密钥: the demo has none; two (one of them called, so 最近调用 has a value to show)
    from werkzeug.datastructures import MultiDict

    from workflows import apikeys

    for owner in ("inst_jinan", "inst_qingdao"):
        key, _ = apikeys.create_key(session, user(session, "province"), user(session, owner).organization,
                                    MultiDict([("name", f"{owner} 对接"), ("scopes", "certificates"),
                                               ("expires_on", "2099-01-01")]), today=date(2098, 6, 1))
    apikeys.record_call(session, key, "GET", "/api/v1/certificates", 3, 200)
    session.commit()
    views = list_views(app)
    rows_seen: dict[str, int] = {}
    problems = []
    for who in ACCOUNTS:
        browser = login(who)
        for view, url in pages(views):
            counts = []
            original = view.page_size
            try:
                for size in (1, 20):
                    view.page_size = size
                    with counted(db.engine) as statements:
                        resp = browser.get(url)
                    counts.append((resp.status_code, len(statements)))
            finally:
                view.page_size = original
            status = counts[0][0]
            if status != 200:
                assert status in (302, 403), (who, url, status)
                continue
            total = TOTAL_RE.search(resp.get_data(as_text=True))
            rows_seen[view.endpoint] = max(rows_seen.get(view.endpoint, 0), int(total.group(1)) if total else 0)
            if counts[0][1] != counts[1][1]:
                problems.append(f"{who} {url}: {counts[0][1]} statements for 1 row, {counts[1][1]} for 20")
    assert not problems, "\n".join(problems)
    short = sorted(endpoint for endpoint in (v.endpoint for v in views) if rows_seen.get(endpoint, 0) < 2)
    assert short == [], f"lists no account saw with two rows or more (the check proves nothing there): {short}"


def test_a_list_counts_only_up_to_its_bound(app, login, session):
    """Above LIST_COUNT_LIMIT a list says 「N+」 and the count query stops reading at N + 1 rows:
    a large table is never counted in full on every page (issue 7 item 3)."""
    from sqlalchemy import func, select

    from models import Certificate

    total = session.scalar(select(func.count()).select_from(Certificate))
    assert total > 21  # more than a page and more than the bound
    browser = login("province")
    app.config["LIST_COUNT_LIMIT"] = 21
    with counted(db.engine) as statements:
        page = browser.get("/admin/certificate_library/").get_data(as_text=True)
    assert TOTAL_RE.search(page) is None and "列表 (21+)" in page
    counts = [s for s in statements if "count(" in s.lower() and "certificate" in s.lower()]
    assert counts and all("LIMIT" in s.upper() for s in counts), counts
    assert "?page=1" in page  # the pager still offers the next pages
    second = browser.get("/admin/certificate_library/?page=1").get_data(as_text=True)
    assert "列表 (21+)" in second and 'class="action-checkbox"' in second
    app.config["LIST_COUNT_LIMIT"] = total + 10
    assert f"列表 ({total})" in browser.get("/admin/certificate_library/").get_data(as_text=True)


def test_an_export_over_its_bound_is_refused_with_a_message(app, login):
    app.config["EXPORT_MAX_ROWS"] = 2
    browser = login("province")
    resp = browser.post("/admin/certificate_library/export.xlsx", follow_redirects=True)
    assert "超过上限 2 条" in resp.get_data(as_text=True)


def test_bad_page_numbers_sorts_and_searches_get_a_page_not_an_error(login):
    check_bad_list_arguments(login)


def check_bad_list_arguments(login):
    """issue 7's bad input: a page of 1,000,000,000, a negative page, a sort by a column that does
    not exist, a 10,000-character search, a search of only spaces or only %."""
    browser = login("province")
    resp = browser.get("/admin/certificate_library/?page=1000000000")
    assert resp.status_code == 200 and "页码超出范围" in resp.get_data(as_text=True)
    for query in ("page=-5", "sort=999", "sort=abc", "search=" + "9" * 10_000, "search=%20%20%20", "search=%25%25",
                  "page=abc", "desc=x"):
        resp = browser.get(f"/admin/certificate_library/?{query}")
        assert resp.status_code == 200, query
    assert "action-checkbox" in browser.get("/admin/certificate_library/?page=-5").get_data(as_text=True)


CHECKBOX_ID = re.compile(r'name="rowid" class="action-checkbox" value="(\d+)"')
DETAILS_ID = re.compile(r'/details/\?id=(\d+)')


def row_ids(page: str) -> list[str]:
    """The rows of a list page in order: its action checkboxes, or else its 查看 links."""
    return CHECKBOX_ID.findall(page) or list(dict.fromkeys(DETAILS_ID.findall(page)))


def test_a_deep_page_holds_the_rows_the_single_query_page_would(app, login):
    check_deep_pages(app, login)


def check_deep_pages(app, login):
    """A page past the first is read in two steps (the page's ids, then those rows with their
    related columns: admin_views.listing.ListingMixin._page_rows). Pages 1 and 2 of five rows must
    be exactly rows 1–10 of the first page of ten — same rows, same order — for every list the
    province opens, in its default order and sorted by each sortable column both ways."""
    browser = login("province")
    checked = 0
    for view in list_views(app):
        if browser.get(f"/admin/{view.endpoint}/").status_code != 200:
            continue
        sorts = [""] + [f"sort={i}{desc}" for i, (name, _) in enumerate(view._list_columns)
                        if name in dict(view._sortable_columns) for desc in ("", "&desc=1")]
        original = view.page_size
        try:
            for sort in sorts:
                view.page_size = 10
                whole = row_ids(browser.get(f"/admin/{view.endpoint}/?{sort}").get_data(as_text=True))
                if len(whole) < 6:
                    continue
                view.page_size = 5
                halves = [row_ids(browser.get(f"/admin/{view.endpoint}/?{sort}&page={p}").get_data(as_text=True))
                          for p in (0, 1)]
                assert halves[0] + halves[1] == whole, (view.endpoint, sort)
                checked += 1
        finally:
            view.page_size = original
    assert checked >= 20  # the demo gives enough lists with more than five rows
    # and the OFFSET is taken over the bare table: no statement that skips rows joins another table
    with counted(db.engine) as statements:
        assert browser.get("/admin/certificate_library/?page=1").status_code == 200
    skipping = [s for s in statements if "OFFSET" in s.upper()]
    assert skipping and all("JOIN" not in s.upper() for s in skipping), skipping


def test_a_search_is_counted_and_paged_from_one_read_of_its_matches(app, login, session):
    """A searched list reads its matches' ids once, up to the count's bound, for both the count and
    the page (admin_views.listing.ListingMixin._searched_page): no count(*) statement; the pages
    together are the matches in the list's order; past the bound it still pages (「3+」)."""
    from sqlalchemy import func

    newest = session.scalars(select(Certificate).order_by(Certificate.id.desc())).first()
    prefix = newest.number[:6]
    matches = [str(i) for i in session.scalars(select(Certificate.id).where(Certificate.number.startswith(prefix))
                                               .order_by(Certificate.id.desc()))]
    assert len(matches) >= 7
    assert session.scalar(select(func.count()).select_from(Certificate)) > len(matches)  # the search narrows
    browser = login("province")
    view = next(v for v in list_views(app) if v.endpoint == "certificate_library")
    original = view.page_size
    try:
        view.page_size = 2
        with counted(db.engine) as statements:
            first = browser.get(f"/admin/certificate_library/?search={prefix}").get_data(as_text=True)
        assert f"列表 ({len(matches)})" in first
        assert not [s for s in statements if "count(" in s.lower() and "certificate" in s.lower()], statements
        pages = [row_ids(browser.get(f"/admin/certificate_library/?search={prefix}&page={p}").get_data(as_text=True))
                 for p in range((len(matches) + 1) // 2)]
        assert sum(pages, []) == matches
        app.config["SEARCH_COUNT_LIMIT"] = 3  # pages 0–1 from the ids read, 2 onwards past the bound
        bounded = [browser.get(f"/admin/certificate_library/?search={prefix}&page={p}").get_data(as_text=True)
                   for p in range((len(matches) + 1) // 2)]
        assert all("列表 (3+)" in page for page in bounded)
        assert sum((row_ids(page) for page in bounded), []) == matches
        nothing = browser.get("/admin/certificate_library/?search=查无此人").get_data(as_text=True)
        assert "列表 (0)" in nothing or not row_ids(nothing)
    finally:
        view.page_size = original


def test_page_size_is_the_setting(app, login):
    """PAGE_SIZE is what a list page shows (read at the request, so a deployment's value holds)."""
    app.config["PAGE_SIZE"] = 5
    library = next(view for view in list_views(app) if view.endpoint == "certificate_library")
    del library.page_size  # a size another test gave the view itself (the app is shared): the setting again
    browser = login("province")
    first = browser.get("/admin/certificate_library/").get_data(as_text=True)
    second = browser.get("/admin/certificate_library/?page=1").get_data(as_text=True)
    ids = [set(re.findall(r'name="rowid"[^>]*value="(\d+)"', page)) for page in (first, second)]
    assert first.count("row-details") == 5 and second.count("row-details") == 5
    assert len(ids[0]) == len(ids[1]) == 5 and ids[0].isdisjoint(ids[1])
