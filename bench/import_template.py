"""Time the candidate import on a full template, and its refusal of hostile ones (SPEC §5.1, §11).

The full template is the real one from ``build_candidate_template`` (formatted blank cells,
dropdowns, hidden list sheet), filled with 10,000 clean rows with openpyxl as a user's Excel would
leave it, so the figure includes everything ``parse_candidate_upload`` reads in production.

The hostile uploads are files an attacker can make in a few lines — a million empty formatted
rows, a <dimension> claiming the whole sheet, a cell in the last column, a huge shared-strings
part — written part by part with zipfile (a million rows in a second, where xlsxwriter takes a
minute). Each must be refused with its message in well under 2 s of CPU (``time.process_time``);
the bench exits with an error otherwise. ``tests/unit/test_excel_bounds.py`` uses the same files.

    python bench/import_template.py
"""

from __future__ import annotations

import io
import re
import statistics
import sys
import time
import tracemalloc
import zipfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openpyxl

from workflows.excel import CANDIDATE_COLUMNS, build_candidate_template, parse_candidate_upload
from workflows.validators import make_id_number

ROWS = 10_000
RUNS = 5
REFUSAL_CPU_LIMIT = 2.0  # seconds, the bound
SCOPE = [
    ("砌筑工", "初级工(五级)"), ("砌筑工", "中级工(四级)"), ("钢筋工", "初级工(五级)"),
    ("钢筋工", "高级工(三级)"), ("焊工", "技师(二级)"), ("施工员", None), ("质量员", None),
]
OCCUPATIONS = {"砌筑工": ("001", True), "钢筋工": ("002", True), "焊工": ("005", True),
               "施工员": ("101", False), "质量员": ("102", False)}
LEVELS = {"初级工(五级)": "5", "中级工(四级)": "4", "高级工(三级)": "3", "技师(二级)": "2", "高级技师(一级)": "1"}


def candidate(i: int) -> tuple:
    """The i-th clean row of the bench: distinct people, the scope's pairs in turn."""
    birth = date(1965, 1, 1) + timedelta(days=i // 500)
    gender = "男" if i % 3 else "女"
    occupation, level = SCOPE[i % len(SCOPE)]
    return (f"学员{i:05d}", make_id_number("370102", birth, 2 * (i % 500), gender), f"138{i:08d}",
            "济南建工集团有限公司" if i % 2 else None, occupation, level)


def filled_template(rows: int = ROWS) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(build_candidate_template(SCOPE)))
    ws = wb["合格人员"]
    for i in range(rows):
        for col, value in enumerate(candidate(i), start=1):
            ws.cell(i + 2, col, value)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- hostile uploads, written part by part -------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STYLES = (  # xf 1 is the template's text format (@), as on its ID and phone columns
    f'<styleSheet xmlns="{_MAIN}"><fonts count="1"><font><sz val="11"/><name val="宋体"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def inline_row(number: int, values) -> bytes:
    """A <row> of inline-string cells, as openpyxl writes them."""
    cells = "".join(f'<c r="{"ABCDEF"[i]}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
                    for i, v in enumerate(values) if v is not None)
    return f'<row r="{number}">{cells}</row>'.encode()


def raw_xlsx(rows: bytes = b"", *, dimension: str | None = None, after: bytes = b"", prolog: bytes = b"",
             shared_strings: bytes | None = None, prefix: str = "", sheet: bytes | None = None) -> bytes:
    """A 合格人员 workbook whose sheet is the template's header followed by ``rows`` (raw XML).

    ``after`` goes after <sheetData>, ``prolog`` before the root (a DTD), ``shared_strings`` is
    the body of xl/sharedStrings.xml, ``prefix`` writes the sheet with prefixed names (x:row), and
    ``sheet`` replaces the whole sheet part.
    """
    dim = f'<dimension ref="{dimension}"/>'.encode() if dimension else b""
    body = (dim + b"<sheetData>" + inline_row(1, CANDIDATE_COLUMNS) + rows + b"</sheetData>" + after)
    if prefix:
        body = re.sub(rb"<(/?)(?=[A-Za-z])", rb"<\1" + prefix.encode() + b":", body)
        root = f'<{prefix}:worksheet xmlns:{prefix}="{_MAIN}">'.encode(), f"</{prefix}:worksheet>".encode()
    else:
        root = f'<worksheet xmlns="{_MAIN}">'.encode(), b"</worksheet>"
    if sheet is None:
        sheet = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + prolog + root[0] + body + root[1]
    overrides = [("/xl/workbook.xml", "sheet.main"), ("/xl/worksheets/sheet1.xml", "worksheet"),
                 ("/xl/styles.xml", "styles")]
    relations = [("worksheet", "worksheets/sheet1.xml"), ("styles", "styles.xml")]
    if shared_strings is not None:
        overrides.append(("/xl/sharedStrings.xml", "sharedStrings"))
        relations.append(("sharedStrings", "sharedStrings.xml"))
    kinds = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            + "".join(f'<Override PartName="{name}" ContentType="{kinds}.{kind}+xml"/>' for name, kind in overrides)
            + "</Types>"),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
                            '<sheet name="合格人员" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{n}" Type="{_REL}/{kind}" Target="{target}"/>'
                      for n, (kind, target) in enumerate(relations, start=1))
            + "</Relationships>"),
        "xl/styles.xml": _STYLES,
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = f'<sst xmlns="{_MAIN}">'.encode() + shared_strings + b"</sst>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in parts.items():
            zf.writestr(name, content)
    return out.getvalue()


def empty_formatted_rows(first: int, last: int) -> bytes:
    """Rows an editor leaves after formatting them: no cell, a style, customFormat."""
    return b"".join(b'<row r="%d" s="1" customFormat="1"/>' % n for n in range(first, last + 1))


def excel_saved_template(rows: int = ROWS, *, distinct: bool = False) -> bytes:
    """The template filled with ``rows`` rows as Excel (or WPS) saves it: every text in the shared
    strings with its <phoneticPr> (Chinese Excel adds one to each), rows with spans and x14ac
    attributes, the formatted blank ID and phone cells kept down to row 10,001, the dropdowns.
    ``distinct``: all six columns filled, every employer a different one (the most text a
    template holds)."""
    strings: dict[str, int] = {}

    def cell(ref: str, value, style: int = 0) -> str:
        s = f' s="{style}"' if style else ""
        if value is None:
            return f'<c r="{ref}"{s}/>' if style else ""
        index = strings.setdefault(value, len(strings))
        return f'<c r="{ref}"{s} t="s"><v>{index}</v></c>'

    lines = ['<row r="1" spans="1:6" x14ac:dyDescent="0.15">'
             + "".join(cell(f"{c}1", title) for c, title in zip("ABCDEF", CANDIDATE_COLUMNS, strict=True)) + "</row>"]
    for number in range(2, ROWS + 2):
        values = candidate(number - 2) if number - 2 < rows else (None,) * 6
        if distinct and values[0]:
            values = (*values[:3], f"济南第{number}建筑工程有限公司", "砌筑工", "初级工(五级)")
        cells = "".join(cell(f"{c}{number}", value, 1 if c in "BC" else 0)
                        for c, value in zip("ABCDEF", values, strict=True))
        lines.append(f'<row r="{number}" spans="1:6" x14ac:dyDescent="0.15">{cells}</row>')
    validations = "".join(
        f'<dataValidation type="list" allowBlank="1" showErrorMessage="1" sqref="{c}2:{c}{ROWS + 1}">'
        f"<formula1>选项!${c}$1:${c}$7</formula1></dataValidation>" for c in "EF")
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x14ac" '
        'xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac">'
        f'<dimension ref="A1:F{ROWS + 1}"/><sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="13.5" x14ac:dyDescent="0.15"/><cols>'
        '<col min="2" max="3" width="22" style="1" customWidth="1"/></cols>'
        f'<sheetData>{"".join(lines)}</sheetData><dataValidations count="2">{validations}</dataValidations>'
        '<phoneticPr fontId="1" type="noConversion"/>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="portrait"/></worksheet>').encode()
    shared = "".join(f'<si><t>{text}</t><phoneticPr fontId="1" type="noConversion"/></si>' for text in strings)
    return raw_xlsx(sheet=sheet, shared_strings=shared.encode())


MESSAGE_ROWS = "（含设置了格式的空白行），超过10000行数据的上限。请删除多余的空行，或使用示例文档重新填写"
MESSAGE_COLUMNS = "列（含设置了格式的空白单元格），超过50列的上限。请删除多余的列，或使用示例文档重新填写"


def hostile_uploads() -> list[tuple[str, bytes, str]]:
    """(case, file, the message it must be refused with)."""
    data_rows = b"".join(inline_row(n, candidate(n)) for n in range(2, 20_002))
    return [
        ("1,000,000 empty formatted rows", raw_xlsx(empty_formatted_rows(2, 1_000_000), dimension="A1:F1000000"),
         "工作表共有1,000,000行" + MESSAGE_ROWS),
        ("the same without a <dimension>", raw_xlsx(empty_formatted_rows(2, 1_000_000)),
         MESSAGE_ROWS),
        ("<dimension> A1:F1048576, 3 real rows",
         raw_xlsx(inline_row(2, candidate(2)) + inline_row(3, candidate(3)), dimension="A1:F1048576"),
         "工作表「合格人员」共有1,048,576行" + MESSAGE_ROWS),
        ("a row numbered 1,048,576", raw_xlsx(inline_row(2, candidate(2)) + inline_row(1_048_576, candidate(3))),
         "工作表「合格人员」共有1,048,576行" + MESSAGE_ROWS),
        ("a row numbered 2,000,000,000", raw_xlsx(inline_row(2, candidate(2)) + inline_row(2_000_000_000, candidate(3))),
         "工作表「合格人员」共有2,000,000,000行" + MESSAGE_ROWS),
        ("a cell in column XFD", raw_xlsx(inline_row(2, candidate(2))[:-6] + b'<c r="XFD2" s="1"/></row>'),
         "工作表「合格人员」有16,384" + MESSAGE_COLUMNS),
        ("10,000 rows reaching column XFD", raw_xlsx(b"".join(
            inline_row(n, candidate(n))[:-6] + b'<c r="XFD%d" s="1"/></row>' % n for n in range(2, 10_002))),
         "工作表「合格人员」有16,384" + MESSAGE_COLUMNS),
        ("20,000 rows of data", raw_xlsx(data_rows), "数据超过10000行"),
        ("1,000,000 shared strings", raw_xlsx(inline_row(2, candidate(2)), shared_strings=b"<si><t>x</t></si>" * 1_000_000),
         "文件中的单元格和文字过多，请只保留示例文档的6列，删除其他列和工作表后重新上传"),
        ("100,000 merged ranges", raw_xlsx(inline_row(2, candidate(2)), after=b"<mergeCells>" + b"".join(
            b'<mergeCell ref="G%d:H%d"/>' % (n, n) for n in range(1, 100_001)) + b"</mergeCells>"),
         "文件内容过大，请使用示例文档填写"),
    ]


# --- the bench ------------------------------------------------------------------------------


def parse(data: bytes, has_valid_certificate=lambda triples: set()):
    return parse_candidate_upload(data, scope_pairs=set(SCOPE), occupations=OCCUPATIONS, levels=LEVELS,
                                  has_valid_certificate=has_valid_certificate)


def time_full_template() -> None:
    started = time.perf_counter()
    data = filled_template()
    print(f"built a {ROWS}-row filled template: {len(data) / 1024:.0f} KB in {time.perf_counter() - started:.1f} s")
    lookups = []

    def has_valid_certificate(triples):
        lookups.append(len(triples))
        return set()

    timings, cpu = [], []
    for _ in range(RUNS):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = parse(data, has_valid_certificate)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        if result.errors or len(result.rows) != ROWS:
            raise SystemExit(f"unexpected result: {len(result.rows)} rows, errors {result.errors[:5]}")
    median = statistics.median(timings)
    print(f"parse_candidate_upload: median of {RUNS} runs {median:.3f} s ({statistics.median(cpu):.3f} s of CPU), "
          f"{ROWS / median:,.0f} rows/s (runs: {', '.join(f'{t:.3f}' for t in timings)}; "
          f"lookups per run: {lookups[0]} triples in 1 call)")


def time_refusals() -> list[str]:
    """Each hostile upload's refusal in CPU seconds and peak memory; the problems found, if any."""
    problems = []
    print(f"\nhostile uploads, refused in CPU seconds (time.process_time; must stay under {REFUSAL_CPU_LIMIT:.0f} s)"
          " and peak Python memory (tracemalloc, a second run):")
    for case, data, expected in hostile_uploads():
        started = time.process_time()
        result = parse(data)
        cpu = time.process_time() - started
        tracemalloc.start()
        parse(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        message = result.errors[0].message if result.errors else "(accepted)"
        print(f"  {case:37} {len(data) / 1024:6,.0f} KB  {cpu:5.2f} s  {peak / 2**20:4.1f} MB  {message}")
        if result.rows or expected not in message:
            problems.append(f"{case}: expected {expected!r}, got {message!r} and {len(result.rows)} rows")
        if cpu >= REFUSAL_CPU_LIMIT:
            problems.append(f"{case}: {cpu:.2f} s of CPU")
    return problems


def main() -> None:
    time_full_template()
    problems = time_refusals()
    if problems:
        raise SystemExit("\n".join(problems))


if __name__ == "__main__":
    main()
