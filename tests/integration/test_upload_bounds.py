"""新建批次 with an upload beyond its real extent (SPEC §11; the issue's bad-input list): the page
answers 200 with the Chinese message, and no batch, no candidate is stored. The files are
bench/import_template.py's; tests/unit/test_excel_bounds.py covers the rest of the cases.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from models import Batch, Candidate
from tests.samples import bench_module

bench = bench_module("import_template")
CASES = {case: (data, message) for case, data, message in bench.hostile_uploads()
         if case in ("1,000,000 empty formatted rows", "<dimension> A1:F1048576, 3 real rows", "a cell in column XFD")}


def _counts(session) -> tuple[int, int]:
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Batch, Candidate))


@pytest.mark.parametrize("case", list(CASES))
def test_an_upload_beyond_its_extent_is_refused_on_the_page_and_stores_nothing(login, session, case):
    data, message = CASES[case]
    before = _counts(session)
    resp = login("inst_jinan").post("/admin/batch-create/", {"name": "越界批次", "file": (io.BytesIO(data), "合格人员.xlsx")},
                                    content_type="multipart/form-data")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert message in html and "批次未保存" in html
    assert _counts(session) == before
