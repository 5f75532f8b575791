"""bench/lists.py keeps working (it is run by hand at scale; here on the demo, one request per case):
it signs in as each role, walks a list's cases, replays the row query and explains every statement."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from models import db

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lists.py"


def test_the_list_bench_runs_its_cases_and_explains_them(app, capsys, tmp_path):
    # on a copy: the bench's own app must never hold a connection to the shared test database file
    copy = tmp_path / "bench.db"
    db.session.remove()
    db.engine.dispose()
    shutil.copyfile(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), copy)
    spec = importlib.util.spec_from_file_location("bench_lists", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.run(f"sqlite:///{copy}", ["province", "jinan"], 1, True, "certificate_library")
    out = capsys.readouterr().out
    cases = [line for line in out.splitlines() if line.startswith("province    certificate_library")]
    assert {"first page", "page 1,000", "search certificate", "search id_number", "search name",
            "sort by date"} <= {line[39:61].strip() for line in cases}, out
    assert "jinan       certificate_library" not in out  # 证书库 is the province's
    # every statement explained; the demo's tables are too small for the planner's choices to
    # mean anything, so the scans themselves are judged at scale (README, At scale)
    assert "SEARCH" in out and "sequential scans of certificate or person:" in out, out
