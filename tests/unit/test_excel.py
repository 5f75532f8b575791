"""Candidate template, import and export (SPEC §5.1, §11), built and read back for real."""

from __future__ import annotations

import io
import os
import time
import zipfile
from datetime import date, datetime, timedelta

import openpyxl
import pytest
import xlsxwriter

from workflows.excel import (
    CANDIDATE_COLUMNS,
    CandidateRow,
    RowError,
    build_candidate_template,
    display_width,
    parse_candidate_upload,
    write_xlsx,
)
from workflows.validators import make_id_number

SCOPE = [("砌筑工", "初级工(五级)"), ("砌筑工", "中级工(四级)"), ("钢筋工", "初级工(五级)"), ("施工员", None)]
OCCUPATIONS = {"砌筑工": ("001", True), "钢筋工": ("002", True), "焊工": ("005", True),
               "施工员": ("101", False), "质量员": ("102", False)}
LEVELS = {"初级工(五级)": "5", "中级工(四级)": "4", "高级工(三级)": "3", "技师(二级)": "2", "高级技师(一级)": "1"}

ID1 = make_id_number("370102", date(1990, 3, 7), 12, "男")
ID2 = make_id_number("370203", date(1985, 11, 30), 40, "女")
GOOD = ["张三", ID1, "13812345678", "济南建工集团", "砌筑工", "初级工(五级)"]


def workbook_bytes(rows, header=CANDIDATE_COLUMNS, *, title="合格人员") -> bytes:
    """A filled template as a user would upload it, written with openpyxl."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def big_file(n: int, header=CANDIDATE_COLUMNS) -> bytes:
    """``n`` clean rows, written with xlsxwriter because openpyxl is slow at this size."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    ws = wb.add_worksheet("合格人员")
    ws.write_row(0, 0, header)
    for i in range(n):
        number = make_id_number("370102", date(1960, 1, 1) + timedelta(days=i // 500), 2 * (i % 500), "男")
        ws.write_row(i + 1, 0, [f"学员{i}", number, "13800000000", "", "砌筑工", "初级工(五级)"])
    wb.close()
    return buf.getvalue()


class Held:
    """A ``has_valid_certificate`` stand-in that records how it was called."""

    def __init__(self, held=()):
        self.held = set(held)
        self.calls: list[list] = []

    def __call__(self, triples):
        self.calls.append(list(triples))
        return {t for t in triples if t in self.held}


def parse(data: bytes, held: Held | None = None, **kw):
    return parse_candidate_upload(data, scope_pairs=set(SCOPE), occupations=OCCUPATIONS, levels=LEVELS,
                                  has_valid_certificate=held or Held(), **kw)


# --- template -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> bytes:
    return build_candidate_template(SCOPE)


def test_template_sheets_header_and_text_columns(template):
    wb = openpyxl.load_workbook(io.BytesIO(template))
    assert wb.sheetnames == ["合格人员", "填写说明", "选项"]
    assert wb["选项"].sheet_state == "hidden"
    assert wb.active.title == "合格人员"
    ws = wb["合格人员"]
    assert [c.value for c in ws[1]] == list(CANDIDATE_COLUMNS)
    assert all(c.font.b for c in ws[1])
    # SPEC §5.1: the ID column is text, so Excel keeps all 18 digits; the phone too.
    for ref in ("B2", "B10001", "C2", "C10001"):
        assert ws[ref].number_format == "@", ref
    assert ws.column_dimensions["B"].number_format == "@"
    assert ws["A2"].number_format == "General"


def test_template_dropdowns_reference_the_hidden_list(template):
    wb = openpyxl.load_workbook(io.BytesIO(template))
    validations = {str(dv.sqref): dv for dv in wb["合格人员"].data_validations.dataValidation}
    assert set(validations) == {"E2:E10001", "F2:F10001"}
    assert validations["E2:E10001"].type == "list"
    assert validations["E2:E10001"].formula1 == "'选项'!$A$1:$A$3"
    options = wb["选项"]
    # one row per occupation: its name, its number of levels, its levels in the scope's order
    assert [[c.value for c in row if c.value is not None] for row in options.iter_rows()] == [
        ["砌筑工", 2, "初级工(五级)", "中级工(四级)"], ["钢筋工", 1, "初级工(五级)"], ["施工员", 0]]


def test_template_level_dropdown_depends_on_the_chosen_occupation(template):
    """等级 lists only the levels the row's 职业(工种) has in the scope (a dependent list): OFFSET to the
    occupation's row of 选项, as wide as its count; relative to the row ($E2), so each row its own."""
    wb = openpyxl.load_workbook(io.BytesIO(template))
    levels = {str(dv.sqref): dv for dv in wb["合格人员"].data_validations.dataValidation}["F2:F10001"]
    at = "MATCH($E2,'选项'!$A$1:$A$3,0)"
    assert levels.type == "list"
    assert levels.formula1 == f"OFFSET('选项'!$C$1,{at}-1,0,1,MAX(1,INDEX('选项'!$B$1:$B$3,{at})))"
    assert len(levels.formula1) < 255  # Excel's limit on a validation formula
    assert "请先选择职业(工种)" in levels.error
    # evaluated by hand as Excel would for a row choosing 砌筑工: the row's levels, 初级 first
    options = wb["选项"]
    row = [options.cell(r, 1).value for r in (1, 2, 3)].index("砌筑工") + 1
    count = options.cell(row, 2).value
    assert [options.cell(row, 3 + i).value for i in range(count)] == ["初级工(五级)", "中级工(四级)"]


def test_template_instructions(template):
    ws = openpyxl.load_workbook(io.BytesIO(template))["填写说明"]
    text = "\n".join(str(c.value) for row in ws.iter_rows() for c in row if c.value)
    for column in CANDIDATE_COLUMNS:
        assert column in text
    for needle in ("文本格式", "10000行", "5MB", "职业(工种)范围", "施工员", "（不分等级）"):
        assert needle in text, needle


def test_template_with_a_long_scope_and_no_levels():
    pairs = [(f"工种{i:03d}", f"等级{j}") for i in range(60) for j in range(5)] + [("资料员", None)]
    wb = openpyxl.load_workbook(io.BytesIO(build_candidate_template(pairs)))
    validations = {str(dv.sqref): dv.formula1 for dv in wb["合格人员"].data_validations.dataValidation}
    assert validations["E2:E10001"] == "'选项'!$A$1:$A$61"  # far beyond the 255-character inline limit
    only_posts = openpyxl.load_workbook(io.BytesIO(build_candidate_template([("资料员", None)])))
    assert [str(dv.sqref) for dv in only_posts["合格人员"].data_validations.dataValidation] == ["E2:E10001"]


def test_filled_template_parses_clean(template):
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["合格人员"]
    filled = [
        GOOD,
        ["  李四 ", ID2.lower()[:-1] + ID2[-1].lower(), None, None, "施工员", None],
        ["王五", ID1, "13912345678", "", "砌筑工", "中级工(四级)"],  # same person, other level
    ]
    for r, values in enumerate(filled, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c, value)
    buf = io.BytesIO()
    wb.save(buf)
    held = Held()
    result = parse(buf.getvalue(), held)
    assert result.errors == []
    assert result.ok
    assert result.rows == [
        CandidateRow(2, "张三", ID1, date(1990, 3, 7), "男", "13812345678", "济南建工集团", "砌筑工", "初级工(五级)"),
        CandidateRow(3, "李四", ID2, date(1985, 11, 30), "女", None, None, "施工员", None),
        CandidateRow(4, "王五", ID1, date(1990, 3, 7), "男", "13912345678", None, "砌筑工", "中级工(四级)"),
    ]
    assert held.calls == [[(ID1, "砌筑工", "初级工(五级)"), (ID2, "施工员", None), (ID1, "砌筑工", "中级工(四级)")]]


# --- row errors ---------------------------------------------------------------------------


def with_(**changes):
    row = list(GOOD)
    for key, value in changes.items():
        row[CANDIDATE_COLUMNS.index({"name": "姓名", "id": "身份证号", "phone": "手机号", "employer": "工作单位",
                                     "occ": "职业(工种)", "level": "等级"}[key])] = value
    return row


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        (with_(name=None), "姓名", "必填"),
        (with_(name="   "), "姓名", "必填"),
        (with_(name="张" * 51), "姓名", "姓名不能超过50个字"),
        (with_(id=None), "身份证号", "必填"),
        (with_(id=370102199003070256), "身份证号", "身份证号必须以文本格式填写"),
        (with_(id=3.70102199003070e17), "身份证号", "身份证号必须以文本格式填写"),
        (with_(id="37010219900307025"), "身份证号", "身份证号应为18位"),
        (with_(id="370102199013070255"), "身份证号", "身份证号中的出生日期无效"),
        (with_(id=ID1[:-1] + ("0" if ID1[-1] != "0" else "1")), "身份证号", "身份证号校验位错误"),
        (with_(phone="1381234567"), "手机号", "手机号格式不正确"),
        (with_(employer="单" * 201), "工作单位", "工作单位不能超过200个字"),
        (with_(occ=None), "职业(工种)", "必填"),
        (with_(occ="架子工"), "职业(工种)", "职业(工种)不存在"),
        (with_(level="特级工"), "等级", "等级不存在"),
        (with_(level=None), "等级", "该职业(工种)须填写等级"),
        (with_(occ="施工员", level="初级工(五级)"), "等级", "该职业(工种)不分等级，等级应为空"),
        (with_(occ="焊工"), "职业(工种)", "不在本机构职业(工种)范围内"),
        (with_(level="高级工(三级)"), "职业(工种)", "不在本机构职业(工种)范围内"),
        (with_(occ="质量员", level=None), "职业(工种)", "不在本机构职业(工种)范围内"),
    ],
)
def test_row_errors(row, column, message):
    result = parse(workbook_bytes([row]))
    assert result.errors == [RowError(2, column, message)]
    assert result.rows == []
    assert not result.ok


def test_phone_typed_as_number_is_accepted():
    result = parse(workbook_bytes([with_(phone=13812345678)]))
    assert result.errors == [] and result.rows[0].phone == "13812345678"


def test_all_errors_of_all_rows_are_reported_in_order():
    rows = [
        [None, "12345", "12", None, "架子工", "初级工(五级)"],
        GOOD,
        [None, None, None, None, None, None],  # empty row: skipped, but numbering continues
        ["李四", 370102199003070256, None, None, "施工员", "技师(二级)"],
    ]
    result = parse(workbook_bytes(rows))
    assert result.errors == [
        RowError(2, "姓名", "必填"),
        RowError(2, "身份证号", "身份证号应为18位"),
        RowError(2, "手机号", "手机号格式不正确"),
        RowError(2, "职业(工种)", "职业(工种)不存在"),
        RowError(5, "身份证号", "身份证号必须以文本格式填写"),
        RowError(5, "等级", "该职业(工种)不分等级，等级应为空"),
    ]
    assert [r.row for r in result.rows] == [3]


def test_duplicates_in_file_point_at_the_first_row():
    rows = [GOOD, with_(level="中级工(四级)"), with_(name="张三二", id=f" {ID1} "), with_(phone=None)]
    result = parse(workbook_bytes(rows))
    assert result.errors == [RowError(4, "身份证号", "文件中重复（与第2行相同）"),
                             RowError(5, "身份证号", "文件中重复（与第2行相同）")]
    assert [r.row for r in result.rows] == [2, 3]


def test_holder_with_a_valid_certificate_is_refused_with_one_lookup():
    held = Held({(ID2, "砌筑工", "初级工(五级)")})
    rows = [GOOD, with_(name="李四", id=ID2), with_(id=ID2, level="中级工(四级)", phone="bad")]
    result = parse(workbook_bytes(rows), held)
    assert result.errors == [RowError(3, "身份证号", "该人员已持有同职业(工种)等级的有效证书"),
                             RowError(4, "手机号", "手机号格式不正确")]
    assert len(held.calls) == 1
    assert sorted(held.calls[0]) == sorted([(ID1, "砌筑工", "初级工(五级)"), (ID2, "砌筑工", "初级工(五级)"),
                                           (ID2, "砌筑工", "中级工(四级)")])
    assert [r.row for r in result.rows] == [2]


def test_no_lookup_when_no_row_can_be_checked():
    held = Held()
    parse(workbook_bytes([with_(id="bad")]), held)
    assert held.calls == []


def test_formulas_are_read_as_their_values_never_evaluated():
    """A string that looks like a formula is a name; a real formula contributes its cached value."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet("合格人员")
    ws.write_row(0, 0, CANDIDATE_COLUMNS)
    ws.write_row(1, 0, ["=1+1", *GOOD[1:]])
    ws.write_row(2, 0, GOOD[:4])
    ws.write_formula(2, 4, '="砌"&"筑工"', None, "砌筑工")
    ws.write_string(2, 5, "中级工(四级)")
    wb.close()
    result = parse(buf.getvalue())
    assert result.errors == []
    assert [(r.name, r.occupation_name) for r in result.rows] == [("=1+1", "砌筑工"), ("张三", "砌筑工")]


def test_other_sheet_name_falls_back_to_the_first_sheet():
    assert parse(workbook_bytes([GOOD], title="Sheet1")).rows[0].id_number == ID1


# --- file-level errors --------------------------------------------------------------------


_SHEET_NS = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def _xlsx_with_sheet(sheet_xml: bytes) -> bytes:
    """A real workbook whose sheet XML is replaced: broken inside a valid zip."""
    src = zipfile.ZipFile(io.BytesIO(workbook_bytes([GOOD])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, sheet_xml if item.filename.endswith("sheet1.xml") else data)
    return out.getvalue()


def _docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


NOT_XLSX = "文件不是有效的 Excel(.xlsx) 文件"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", NOT_XLSX),
        (b"hello", NOT_XLSX),
        ("姓名,身份证号,手机号\n张三,370102199003070256,\n".encode(), NOT_XLSX),  # a csv renamed .xlsx
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000, NOT_XLSX),  # old .xls
        (b"PK\x03\x04" + b"\0" * 100, NOT_XLSX),  # corrupt zip
        (workbook_bytes([GOOD])[:3000], NOT_XLSX),  # truncated upload
        (_docx(), NOT_XLSX),
        (_xlsx_with_sheet(b"<worksheet><sheetData><row r='1'><c"), NOT_XLSX),  # fails on open
        # opens (the dimension parses) and fails while the rows are read
        (_xlsx_with_sheet(_SHEET_NS + b'<dimension ref="A1:F2"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is>'),
         NOT_XLSX),
        (b"PK\x03\x04" + b"\0" * (5 * 1024 * 1024), "文件超过5MB"),
        (workbook_bytes([]), "文件中没有合格人员数据"),
        (workbook_bytes([[None] * 6, ["  ", "", None, None, None, None]]), "文件中没有合格人员数据"),
        (workbook_bytes([GOOD], header=CANDIDATE_COLUMNS[:5]), "表头与示例文档不一致，请使用示例文档填写"),
        (workbook_bytes([GOOD], header=[*CANDIDATE_COLUMNS, "备注"]), "表头与示例文档不一致，请使用示例文档填写"),
        (workbook_bytes([GOOD], header=["身份证号", "姓名", *CANDIDATE_COLUMNS[2:]]),
         "表头与示例文档不一致，请使用示例文档填写"),
        (workbook_bytes([], header=[]), "表头与示例文档不一致，请使用示例文档填写"),
    ],
)
def test_file_level_errors(data, message):
    result = parse(data)
    assert result.errors == [RowError(0, "", message)]
    assert result.rows == []


def test_header_with_spaces_and_trailing_empty_cells_is_accepted():
    header = [f" {h} " for h in CANDIDATE_COLUMNS] + [None, ""]
    assert parse(workbook_bytes([GOOD], header=header)).rows[0].row == 2


def test_smaller_limits_are_respected():
    data = workbook_bytes([GOOD, with_(id=ID2)])
    assert parse(data, max_rows=1).errors == [RowError(0, "", "数据超过1行")]
    assert parse(data, max_bytes=1024).errors == [RowError(0, "", "文件超过1KB")]


def test_zip_bomb_is_refused_before_openpyxl_expands_it():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/sharedStrings.xml", b"0" * (3 * 1024 * 1024))
    data = out.getvalue()
    assert len(data) < 64 * 1024
    assert parse(data, max_bytes=128 * 1024).errors == [RowError(0, "", "文件内容过大，请使用示例文档填写")]


def test_more_than_10000_rows_is_refused():
    result = parse(big_file(10_001))
    assert result.errors == [RowError(0, "", "数据超过10000行")]
    assert result.rows == []


def test_10000_rows_parse_quickly():
    data = big_file(10_000)
    held = Held()
    started = time.perf_counter()
    result = parse(data, held)
    elapsed = time.perf_counter() - started
    assert result.errors == [] and len(result.rows) == 10_000
    assert len(held.calls) == 1 and len(held.calls[0]) == 10_000
    assert elapsed < 5, elapsed


# --- streaming export (SPEC §11) ----------------------------------------------------------


def test_write_xlsx_keeps_text_as_text(tmp_path):
    rows = [
        ["张三", "370102199003070256", "=1+1", date(2026, 1, 2), 3, None],
        ["李四", "00123", "http://example.com", datetime(2026, 1, 2, 3, 4, 5), 2.5, True],
    ]
    path = tmp_path / "out.xlsx"
    written = write_xlsx(str(path), ["姓名", "身份证号", "备注", "发证日期", "次数", "空"], rows,
                         sheet_name="证书", text_columns={1})
    assert written == 2
    assert os.listdir(tmp_path) == ["out.xlsx"]  # xlsxwriter's own temp files are gone
    ws = openpyxl.load_workbook(path)["证书"]
    assert [c.value for c in ws[1]] == ["姓名", "身份证号", "备注", "发证日期", "次数", "空"]
    assert ws["B2"].value == "370102199003070256" and ws["B2"].data_type == "s"
    assert ws["B2"].number_format == "@"
    assert ws["B3"].value == "00123"
    assert ws["C2"].value == "=1+1" and ws["C2"].data_type == "s"  # not a formula
    assert ws["C3"].value == "http://example.com" and ws["C3"].hyperlink is None
    # a date stays the date; a stored timestamp (naive UTC) is written in Beijing time, as pages show it
    assert ws["D2"].value == datetime(2026, 1, 2) and ws["D3"].value == datetime(2026, 1, 2, 11, 4, 5)
    assert ws["E2"].value == 3 and ws["E3"].value == 2.5 and ws["F3"].value is True
    assert ws["F2"].value is None


def test_write_xlsx_as_an_official_opens_it(tmp_path):
    """Header frozen with a filter over every column; each column as wide as its widest content
    (CJK characters count double): 身份证号, 注册编号, 聘用企业 are never cut off (issue 17 item 13)."""
    company = "山东省济南市历下区某某建筑工程集团有限责任公司第一分公司"
    rows = [
        ["张三", "370102199003070256", "鲁1372024000123", company, datetime(2026, 1, 1, 20, 30), date(2029, 1, 1)],
        ["欧阳娜娜", "37010219900307025X", "鲁1372024000124", "某公司", datetime(2026, 1, 2, 0, 0), None],
    ]
    headers = ["姓名", "身份证号", "注册编号", "聘用企业", "注册时间", "有效期至"]
    path = tmp_path / "wide.xlsx"
    write_xlsx(str(path), headers, rows, sheet_name="注册人员", text_columns={0, 1, 2, 3})
    ws = openpyxl.load_workbook(path)["注册人员"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:F3"
    width = {col: ws.column_dimensions[col].width for col in "ABCDEF"}
    assert width["A"] >= 8 + 2  # 欧阳娜娜: four wide characters
    assert width["B"] >= 18 + 2  # 18 digits
    assert width["C"] >= display_width("鲁1372024000123") + 2
    assert width["D"] >= display_width(company) + 2 or width["D"] >= 60
    assert width["E"] >= 19 + 2 and width["F"] >= 10 + 2
    assert width["A"] < width["B"] < width["D"]  # as wide as the content, not one width for all
    assert ws["E2"].value == datetime(2026, 1, 2, 4, 30)  # Beijing time: the next morning
    assert ws["E2"].number_format == "yyyy-mm-dd hh:mm:ss"
    # an empty export: the header still frozen and filtered
    write_xlsx(str(tmp_path / "empty.xlsx"), headers, [], text_columns={1})
    ws = openpyxl.load_workbook(tmp_path / "empty.xlsx").active
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:F1"
    assert ws.column_dimensions["B"].width >= display_width("身份证号") + 2


def test_display_width_counts_wide_characters_double():
    assert display_width("abc") == 3 and display_width("身份证号") == 8 and display_width("鲁A１") == 5


def test_write_xlsx_reports_progress_every_thousand_rows(tmp_path):
    rows = ([f"行{i}", make_id_number("370102", date(1990, 1, 1), i % 500, "女")] for i in range(2_500))
    seen = []
    written = write_xlsx(str(tmp_path / "p.xlsx"), ["姓名", "身份证号"], rows, text_columns={1}, progress=seen.append)
    assert written == 2_500 and seen == [1_000, 2_000]
    ws = openpyxl.load_workbook(tmp_path / "p.xlsx", read_only=True).active
    assert sum(1 for _ in ws.iter_rows()) == 2_501
