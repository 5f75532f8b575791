"""Issue 7 item 8 on PostgreSQL: list pages run as many statements for twenty rows as for one."""

from __future__ import annotations

from models import db
from tests.conftest import DEMO_PASSWORD, Browser
from tests.integration.test_list_queries import check_list_queries


def test_list_pages_run_as_many_queries_for_twenty_rows_as_for_one_on_postgresql(pg_app):
    def login(username, password=DEMO_PASSWORD):
        return Browser(pg_app.test_client(), pg_app).login(username, password)

    check_list_queries(pg_app, login, db.session)
