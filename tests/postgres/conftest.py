"""tests/postgres: locking and concurrency on a real PostgreSQL (the server and its template
database are the session's, from tests/pgserver.py via tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The worker functions that child processes run live in pg_helpers; spawned children inherit
# sys.path from the parent, so make sure this folder is on it whatever pytest's import mode.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from pg_helpers import app_config


@pytest.fixture
def pg_app(pg_template, fresh_db, tmp_path):
    """An app on its own copy of the demo database, inside an app context."""
    from app import create_app
    from models import db

    app = create_app(app_config(fresh_db(pg_template), tmp_path))
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def pytest_collection_modifyitems(config, items):
    """Every test in this folder needs the server: mark it ``postgres``."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.postgres)
