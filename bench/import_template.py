"""Time the candidate import on a full template: 10,000 clean rows (SPEC §5.1, §11).

The template is the real one from ``build_candidate_template`` (formatted blank cells,
dropdowns, hidden list sheet), filled with openpyxl as a user's Excel would leave it,
so the figure includes everything ``parse_candidate_upload`` reads in production.

    python bench/import_template.py
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openpyxl

from workflows.excel import build_candidate_template, parse_candidate_upload
from workflows.validators import make_id_number

ROWS = 10_000
RUNS = 3
SCOPE = [
    ("砌筑工", "初级工(五级)"), ("砌筑工", "中级工(四级)"), ("钢筋工", "初级工(五级)"),
    ("钢筋工", "高级工(三级)"), ("焊工", "技师(二级)"), ("施工员", None), ("质量员", None),
]
OCCUPATIONS = {"砌筑工": ("001", True), "钢筋工": ("002", True), "焊工": ("005", True),
               "施工员": ("101", False), "质量员": ("102", False)}
LEVELS = {"初级工(五级)": "5", "中级工(四级)": "4", "高级工(三级)": "3", "技师(二级)": "2", "高级技师(一级)": "1"}


def filled_template(rows: int = ROWS) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(build_candidate_template(SCOPE)))
    ws = wb["合格人员"]
    first_birthday = date(1965, 1, 1)
    for i in range(rows):
        birth = first_birthday + timedelta(days=i // 500)
        gender = "男" if i % 3 else "女"
        occupation, level = SCOPE[i % len(SCOPE)]
        values = (f"学员{i:05d}", make_id_number("370102", birth, 2 * (i % 500), gender), f"138{i:08d}",
                  "济南建工集团有限公司" if i % 2 else None, occupation, level)
        for col, value in enumerate(values, start=1):
            ws.cell(i + 2, col, value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def main() -> None:
    started = time.perf_counter()
    data = filled_template()
    print(f"built a {ROWS}-row filled template: {len(data) / 1024:.0f} KB in {time.perf_counter() - started:.1f} s")
    lookups = []

    def has_valid_certificate(triples):
        lookups.append(len(triples))
        return set()

    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = parse_candidate_upload(data, scope_pairs=set(SCOPE), occupations=OCCUPATIONS, levels=LEVELS,
                                        has_valid_certificate=has_valid_certificate)
        timings.append(time.perf_counter() - started)
        if result.errors or len(result.rows) != ROWS:
            raise SystemExit(f"unexpected result: {len(result.rows)} rows, errors {result.errors[:5]}")
    median = statistics.median(timings)
    print(f"parse_candidate_upload: median of {RUNS} runs {median:.3f} s, {ROWS / median:,.0f} rows/s "
          f"(runs: {', '.join(f'{t:.3f}' for t in timings)}; lookups per run: {lookups[0]} triples in 1 call)")


if __name__ == "__main__":
    main()
