"""Issue 7 on PostgreSQL: list pages run as many statements for twenty rows as for one (item 8), and
bad page numbers, sorts and searches get a page (its bad input)."""

from __future__ import annotations

from models import db
from tests.conftest import DEMO_PASSWORD, Browser
from tests.integration.test_list_queries import check_bad_list_arguments, check_deep_pages, check_list_queries


def _login(app):
    def login(username, password=DEMO_PASSWORD):
        return Browser(app.test_client(), app).login(username, password)

    return login


def test_list_pages_run_as_many_queries_for_twenty_rows_as_for_one_on_postgresql(pg_app):
    check_list_queries(pg_app, _login(pg_app), db.session)


def test_bad_list_arguments_get_a_page_on_postgresql(pg_app):
    """PostgreSQL refuses a negative OFFSET outright: the page number is clamped before it."""
    check_bad_list_arguments(_login(pg_app))


def test_a_deep_page_holds_the_rows_the_single_query_page_would_on_postgresql(pg_app):
    check_deep_pages(pg_app, _login(pg_app))
