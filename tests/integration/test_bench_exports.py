"""bench/exports.py keeps working (it is run by hand at scale; here on the demo with ``--rows 5``):
each export runs in a child process that signs in and downloads the file, the file holds the rows the
list counts, and an export over EXPORT_MAX_ROWS is refused with the message, not streamed."""

from __future__ import annotations

import importlib.util
import re
import shutil
from datetime import date
from pathlib import Path

import openpyxl
from sqlalchemy import func, select

from models import Certificate, db

BENCH = Path(__file__).resolve().parents[2] / "bench" / "exports.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_exports", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_export_bench_measures_each_export_and_the_refusal(app, capsys, tmp_path):
    # on a copy: the bench's own app and its children never hold a connection to the shared test database file
    copy = tmp_path / "bench.db"
    db.session.remove()
    db.engine.dispose()
    shutil.copyfile(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), copy)
    bench = _bench()

    assert bench.run(f"sqlite:///{copy}", 5, "province") == 0
    out = capsys.readouterr().out
    since = date.fromisoformat(re.search(r"发证日期 不早于 (\d{4}-\d\d-\d\d)", out).group(1))
    expected = db.session.scalar(select(func.count()).select_from(Certificate)
                                 .where(Certificate.issue_date >= since))  # the province sees every certificate
    assert expected >= 5, out  # the demo's certificates share their issue date: the filter keeps them all
    table = out[out.index("\ncase "):].splitlines()[2:5]  # the table under its header line
    rows = {line[:48].strip(): line[48:].split() for line in table}
    assert rows["certificates (province, certificate_library)"][0] == f"{expected:,}", out
    assert rows["certificates (province, certificate_library)"][-1] == "PASS", out
    registered = next(v for k, v in rows.items() if k.startswith("registered ("))  # an enterprise's: not the province's
    assert int(registered[0]) > 0 and registered[-1] == "PASS", out
    assert rows[f"over the limit (EXPORT_MAX_ROWS={expected // 2:,})"][0] == "refused", out
    assert "all met" in out, out

    # the child's file, read here: the header, every row, ID numbers as text
    prepared = bench.make_app(f"sqlite:///{copy}", str(tmp_path))
    case = bench.certificate_case(prepared, bench.sign_in(prepared, "province"), "province", 5)
    result = bench.measure(prepared, case, f"sqlite:///{copy}", str(tmp_path))
    assert result["status"] == 200 and result["peak_kb"] >= result["rss_before_kb"] > 0
    workbook = openpyxl.load_workbook(result["out"], read_only=True)
    cells = list(workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    assert cells[0][:3] == ("证书编号", "姓名", "身份证号") and len(cells) - 1 == expected == result["rows"]
    assert all(isinstance(row[2], str) and len(row[2]) == 18 for row in cells[1:])

    refused = bench.measure(prepared, case, f"sqlite:///{copy}", str(tmp_path), {"EXPORT_MAX_ROWS": 2})
    assert refused["status"] == 302 and "spreadsheetml" not in refused["content_type"]
    assert "导出数据共 2+ 条，超过上限 2 条，请缩小查询范围后再导出" in refused["page"]
    with prepared.app_context():
        db.engine.dispose()
