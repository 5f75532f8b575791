"""Uploads are bounded by their real extent (SPEC §11): a sheet that holds or declares more than
10,000 rows of data — empty formatted rows included — or more than 50 columns, or parts holding
more than openpyxl should read, is refused with a Chinese message before openpyxl reads it; our
own template, however an editor saves it, is not.

The hostile files are bench/import_template.py's, which also times their refusal (CPU seconds).
"""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from tests.samples import bench_module
from workflows import excel
from workflows.excel import RowError, build_candidate_template, parse_candidate_upload

bench = bench_module("import_template")
HOSTILE = bench.hostile_uploads()
NOT_XLSX = "文件不是有效的 Excel(.xlsx) 文件"
TOO_LARGE = "文件内容过大，请使用示例文档填写"


@pytest.fixture
def loads(monkeypatch):
    """Records every workbook openpyxl is asked to load: a refused upload must not get that far."""
    calls = []
    real = openpyxl.load_workbook

    def load_workbook(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(excel.openpyxl, "load_workbook", load_workbook)
    return calls


def parse(data: bytes, **kw):
    return parse_candidate_upload(data, scope_pairs=set(bench.SCOPE), occupations=bench.OCCUPATIONS,
                                  levels=bench.LEVELS, has_valid_certificate=lambda triples: set(), **kw)


def refusal(result) -> str:
    assert result.rows == []
    assert len(result.errors) == 1 and result.errors[0].row == 0 and result.errors[0].column == ""
    return result.errors[0].message


def with_parts(data: bytes, **replaced: bytes) -> bytes:
    """The workbook with some parts replaced (``sheet2="…"`` is xl/worksheets/sheet2.xml)."""
    names = {key: f"xl/worksheets/{key}.xml" for key in replaced}
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            key = next((k for k, name in names.items() if name == item.filename), None)
            dst.writestr(item, replaced[key] if key else src.read(item.filename))
    return out.getvalue()


def filled(template: bytes, rows) -> bytes:
    """``template`` with rows filled in from row 2, through openpyxl (which keeps every formatted cell)."""
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["合格人员"]
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c, value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- hostile files: refused before openpyxl loads them --------------------------------------


@pytest.mark.parametrize(("case", "data", "message"), HOSTILE, ids=[case for case, _, _ in HOSTILE])
def test_hostile_upload_is_refused_before_openpyxl_reads_it(case, data, message, loads):
    """Among them 1,000,000 empty formatted rows in 2.4 MB, which used to cost 38 s of CPU."""
    got = refusal(parse(data))
    assert message in got
    if "without a <dimension>" in case:  # the scan stopped at its budget, and says so
        assert got.startswith("工作表至少有")
    assert loads == [], "openpyxl loaded the workbook"


def test_the_dimension_alone_is_a_claim_to_refuse():
    data = bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)), dimension="A1:F1048576")
    assert refusal(parse(data)) == ("工作表「合格人员」共有1,048,576行（含设置了格式的空白行），超过10000行数据的上限。"
                                    "请删除多余的空行，或使用示例文档重新填写")
    columns = refusal(parse(bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)), dimension="A1:XFD2")))
    assert columns == "工作表「合格人员」有16,384列（含设置了格式的空白单元格），超过50列的上限。请删除多余的列，或使用示例文档重新填写"
    assert "共有1,048,576行" in refusal(parse(bench.raw_xlsx(dimension="A:F")))  # whole columns


@pytest.mark.parametrize("prefix", ["x", "ss"])
def test_prefixed_element_names_are_counted_too(prefix):
    rows = bench.raw_xlsx(bench.empty_formatted_rows(2, 20_000), prefix=prefix)
    assert refusal(parse(rows)) == ("工作表「合格人员」共有20,000行（含设置了格式的空白行），超过10000行数据的上限。"
                                    "请删除多余的空行，或使用示例文档重新填写")
    wide = bench.raw_xlsx(b'<row r="2">' + b"<c/>" * 51 + b"</row>", prefix=prefix)
    assert "有51列" in refusal(parse(wide))


def test_cells_without_a_reference_count_as_openpyxl_counts_them():
    # openpyxl reads every child of a row as the next cell, whatever its name
    assert "有51列" in refusal(parse(bench.raw_xlsx(b'<row r="2">' + b"<x/>" * 51 + b"</row>")))
    after = bench.raw_xlsx(b'<row r="2"><c r="AV2"/><c/><c/><c/><c/></row>')  # AV is 48: then 49…52
    assert "有52列" in refusal(parse(after))
    assert parse(bench.raw_xlsx(b'<row r="2"><c r="AX2"/></row>')).errors[0].message == "文件中没有合格人员数据"


def test_rows_without_a_number_follow_the_one_before():
    rows = bench.inline_row(2, bench.candidate(2)) + b'<row r="10000"/>' + b"<row/>" * 2
    assert "共有10,002行" in refusal(parse(bench.raw_xlsx(rows)))
    rows = bench.inline_row(2, bench.candidate(2)) + b'<row r="1e4"/>' + b"<row/>"  # openpyxl reads 1e4 as 10000
    assert parse(bench.raw_xlsx(rows)).rows[0].row == 2


def test_a_dtd_is_refused():
    """Its entities could expand into rows the scan's byte count never saw (and OPC forbids DTDs)."""
    cells = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' if v else "<c/>" for v in bench.candidate(3))
    prolog = f"<!DOCTYPE worksheet [<!ENTITY row '<row>{cells}</row>'>]>".encode()
    data = bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)) + b"&row;" * 3, prolog=prolog)
    assert refusal(parse(data)) == NOT_XLSX


def test_what_openpyxl_parses_as_more_than_text_has_a_small_budget():
    # a <mergeCells> inside a row is parsed by openpyxl where it is, each range costing 10 µs
    merged = b"<mergeCells>" + b'<mergeCell ref="G2:H2"/>' * 12_000 + b"</mergeCells>"
    row = bench.inline_row(2, bench.candidate(2)).replace(b"</row>", merged + b"</row>")
    assert refusal(parse(bench.raw_xlsx(row))) == TOO_LARGE
    # so is a run's font in a shared string
    font = b'<rPr><b/><sz val="11"/><rFont val="Calibri"/></rPr>'
    strings = (b"<si><r>" + font + b"<t>x</t></r></si>") * 3_000
    assert refusal(parse(bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)), shared_strings=strings))) == TOO_LARGE


def test_a_sheet_full_of_text_beyond_the_template_says_what_to_remove():
    """10,000 rows of 20 filled columns: more text than our 6 columns can hold; the rows are fine."""
    wide = b"".join(b'<row r="%d">' % n + b'<c t="inlineStr"><is><t>x</t></is></c>' * 20 + b"</row>"
                    for n in range(2, 10_002))
    assert refusal(parse(bench.raw_xlsx(wide))) == (
        "文件中的单元格和文字过多，请只保留示例文档的6列，删除其他列和工作表后重新上传")


def test_many_parts_are_refused():
    src = zipfile.ZipFile(io.BytesIO(bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        for n in range(1_001):
            dst.writestr(f"customXml/item{n}.xml", "<a/>")
    assert refusal(parse(out.getvalue())) == TOO_LARGE


def test_smaller_row_limit_says_so_and_bounds_the_data():
    data = bench.raw_xlsx(b"".join(bench.inline_row(n, bench.candidate(n)) for n in range(2, 103)))
    assert refusal(parse(data, max_rows=100)) == "数据超过100行"


# --- our template, however it was saved: accepted -------------------------------------------


def test_full_template_filled_with_openpyxl_is_accepted():
    """10,000 rows, each kept formatted cell included: the sheet holds exactly 10,001 rows."""
    result = parse(bench.filled_template())
    assert result.errors == [] and len(result.rows) == 10_000


@pytest.mark.parametrize("distinct", [False, True], ids=["bench-rows", "six-distinct-columns"])
def test_full_template_as_excel_saves_it_is_accepted(distinct):
    """The most text a template holds (six columns, every text different): 250,000 of the 300,000."""
    result = parse(bench.excel_saved_template(distinct=distinct))
    assert result.errors == [] and len(result.rows) == 10_000
    assert result.rows[-1].row == 10_001 and result.rows[-1].id_number == bench.candidate(9_999)[1]


@pytest.mark.parametrize("saved", ["openpyxl", "excel"])
def test_downloaded_template_with_a_few_rows_is_accepted(saved):
    rows = [bench.candidate(i) for i in range(3)]
    if saved == "openpyxl":
        data = filled(build_candidate_template(bench.SCOPE), rows)
    else:
        data = bench.excel_saved_template(3)
    result = parse(data)
    assert result.errors == []
    assert [(r.row, r.name) for r in result.rows] == [(2, "学员00000"), (3, "学员00001"), (4, "学员00002")]


def test_a_lower_import_limit_still_accepts_the_downloaded_template():
    """The template always holds 10,001 formatted rows; IMPORT_MAX_ROWS bounds the data, not them."""
    data = filled(build_candidate_template(bench.SCOPE), [bench.candidate(i) for i in range(3)])
    assert len(parse(data, max_rows=100).rows) == 3


def test_a_formatted_row_pushed_past_the_template_is_refused_with_what_to_do():
    """An editor that inserted a row pushes the last formatted row to 10,002: say how to fix it."""
    template = bench.excel_saved_template(3)
    sheet = zipfile.ZipFile(io.BytesIO(template)).read("xl/worksheets/sheet1.xml")
    pushed = sheet.replace(b"</sheetData>", b'<row r="10002"><c r="B10002" s="1"/></row></sheetData>')
    assert refusal(parse(with_parts(template, sheet1=pushed))) == (
        "工作表「合格人员」共有10,002行（含设置了格式的空白行），超过10000行数据的上限。"
        "请删除多余的空行，或使用示例文档重新填写")


def test_only_the_sheet_read_is_held_to_the_row_and_column_limits():
    wb = openpyxl.Workbook()
    wb.active.title = "合格人员"
    wb.active.append(list(excel.CANDIDATE_COLUMNS))
    wb.active.append(list(bench.candidate(0)))
    wb.create_sheet("备注").append(["x"] * 60)
    buf = io.BytesIO()
    wb.save(buf)
    notes = zipfile.ZipFile(buf).read("xl/worksheets/sheet2.xml").replace(b'ref="A1:BH1"', b'ref="A1:BH1048576"')
    result = parse(with_parts(buf.getvalue(), sheet2=notes))
    assert result.errors == [] and len(result.rows) == 1


def test_a_gap_openpyxl_would_fill_never_gets_past_the_limit(monkeypatch):
    """Should the scan and openpyxl ever disagree, reading stops at the limit instead of filling the gap."""
    monkeypatch.setattr(excel, "_extent_message", lambda *a, **k: None if "lower_bound" not in k else "stop")
    data = bench.raw_xlsx(bench.inline_row(2, bench.candidate(2)) + bench.inline_row(2_000_000_000, bench.candidate(3)))
    assert parse(data).errors == [RowError(0, "", "stop")]
