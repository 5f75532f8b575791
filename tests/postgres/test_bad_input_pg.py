"""Issue 16 item 9 on PostgreSQL: a NUL byte or an out-of-range id answered as on SQLite (400 / 404
with a Chinese message), where each used to be a 500 (DataError, NumericValueOutOfRange)."""

from __future__ import annotations

from models import db
from tests.conftest import DEMO_PASSWORD, Browser
from tests.integration.test_bad_input import check_bad_input


def test_bad_input_is_refused_where_it_enters_on_postgresql(pg_app):
    def login(username, password=DEMO_PASSWORD):
        return Browser(pg_app.test_client(), pg_app).login(username, password)

    check_bad_input(login, Browser(pg_app.test_client(), pg_app), db.session)
