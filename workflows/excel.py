"""The candidate template, its import, and streaming exports (SPEC §5.1, §11).

Imports never raise on a bad file: every problem comes back as a ``RowError`` so the
batch page can list them all below the form, and nothing is stored until the file is
clean (SPEC §5.1). Exports are streamed from a temp file so a large export never holds
the workbook in memory (SPEC §11).
"""

from __future__ import annotations

import functools
import io
import os
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from xml.parsers import expat

import openpyxl
import xlsxwriter
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.cell import coordinate_to_tuple, get_column_letter, range_boundaries

from models.base import PROVINCE_TZ
from workflows.validators import check_phone, normalize_id_number, parse_id_number

# SPEC §5.1: the template's columns, in order. The header row must match exactly.
COL_NAME = "姓名"
COL_ID = "身份证号"
COL_PHONE = "手机号"
COL_EMPLOYER = "工作单位"
COL_OCCUPATION = "职业(工种)"
COL_LEVEL = "等级"
CANDIDATE_COLUMNS = (COL_NAME, COL_ID, COL_PHONE, COL_EMPLOYER, COL_OCCUPATION, COL_LEVEL)
_COLUMN_INDEX = {name: i for i, name in enumerate(CANDIDATE_COLUMNS)}

SHEET_CANDIDATES = "合格人员"
SHEET_INSTRUCTIONS = "填写说明"
SHEET_OPTIONS = "选项"

MAX_ROWS = 10_000  # SPEC §11
MAX_BYTES = 5 * 1024 * 1024  # SPEC §11
MAX_NAME = 50  # Candidate.name
MAX_EMPLOYER = 200  # Candidate.employer_name

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_SIGNATURE = b"PK\x03\x04"
# A real template expands about 10×; a zip bomb expands 1000×. The declared sizes are a first,
# free check (zipfile never reads past them); _scan_parts bounds what is actually read.
_MAX_EXPANSION = 20

MSG_REQUIRED = "必填"
MSG_NOT_XLSX = "文件不是有效的 Excel(.xlsx) 文件"
MSG_HEADER = "表头与示例文档不一致，请使用示例文档填写"
MSG_NO_DATA = "文件中没有合格人员数据"
MSG_TOO_LARGE_INSIDE = "文件内容过大，请使用示例文档填写"
MSG_TOO_MANY_CELLS = f"文件中的单元格和文字过多，请只保留示例文档的{len(CANDIDATE_COLUMNS)}列，删除其他列和工作表后重新上传"


@dataclass(frozen=True)
class RowError:
    """One problem: Excel row number (header = 1, file-level = 0) and Chinese column name."""

    row: int
    column: str
    message: str


@dataclass(frozen=True)
class CandidateRow:
    row: int
    name: str
    id_number: str
    birth_date: date
    gender: str
    phone: str | None
    employer_name: str | None
    occupation_name: str
    level_name: str | None


@dataclass
class ImportResult:
    """``rows`` holds only rows without errors; store them only when ``ok`` (SPEC §5.1)."""

    rows: list[CandidateRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


def _file_error(message: str) -> ImportResult:
    return ImportResult(rows=[], errors=[RowError(0, "", message)])


def _size_label(max_bytes: int) -> str:
    mb, rest = divmod(max_bytes, 1024 * 1024)
    return f"{mb}MB" if not rest else f"{max_bytes // 1024}KB"


# --- template (SPEC §5.1 示例文档下载) ----------------------------------------------------


def _distinct(items: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _instructions(max_rows: int, max_bytes: int) -> list[str]:
    return [
        "合格人员示例文档填写说明",
        "",
        f"1. 请在「{SHEET_CANDIDATES}」工作表中填写，第1行为表头，请勿修改、删除或调整表头顺序。",
        f"2. {COL_NAME}：必填。",
        f"3. {COL_ID}：必填，18位居民身份证号，末位X请大写。该列已设置为文本格式，"
        "请勿改为数字格式（数字格式会丢失末几位，导入时将提示错误）；粘贴时请选择「只粘贴值」。",
        f"4. {COL_PHONE}：选填，11位手机号。",
        f"5. {COL_EMPLOYER}：选填。",
        f"6. {COL_OCCUPATION}：必填，请从下拉列表中选择。",
        f"7. {COL_LEVEL}：先选{COL_OCCUPATION}，再从下拉列表中选择该职业(工种)的等级（由初级到高级技师）；"
        "不分等级的职业(工种)（如施工员等岗位）等级留空。",
        "8. 职业(工种)与等级的组合必须在本机构的职业(工种)范围内（见下方列表）。",
        "9. 同一人员在同一文件中不能重复出现同一职业(工种)和等级；已持有同职业(工种)等级有效证书的人员不能再次上报。",
        f"10. 每个文件最多{max_rows}行数据，文件大小不超过{_size_label(max_bytes)}，"
        "仅支持 .xlsx 格式（请勿另存为 .xls 或 .csv）。",
        "",
        "本机构职业(工种)范围：",
    ]


def build_candidate_template(
    pairs: Sequence[tuple[str, str | None]], *, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES
) -> bytes:
    """The 示例文档 of SPEC §5.1, limited to the institution's scope ``pairs``.

    Dropdown lists live on a hidden sheet and are referenced by range: an inline list is
    capped at 255 characters, which a province-wide scope exceeds.
    """
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    text = wb.add_format({"num_format": "@"})
    last = max_rows + 1  # Excel row of the last data row (1-based)

    ws = wb.add_worksheet(SHEET_CANDIDATES)
    help_ws = wb.add_worksheet(SHEET_INSTRUCTIONS)
    opts = wb.add_worksheet(SHEET_OPTIONS)

    widths = (12, 22, 15, 30, 18, 16)
    for col, (title, width) in enumerate(zip(CANDIDATE_COLUMNS, widths, strict=True)):
        ws.write_string(0, col, title, bold)
        ws.set_column(col, col, width)
    # SPEC §5.1: the ID column as text, so Excel never turns 18 digits into 3.7E+17.
    for col in (_COLUMN_INDEX[COL_ID], _COLUMN_INDEX[COL_PHONE]):
        ws.set_column(col, col, widths[col], text)
        for row in range(1, last):
            ws.write_blank(row, col, None, text)
    ws.freeze_panes(1, 0)

    # 选项: one row per occupation — its name, how many levels it has, then those levels in the
    # order given (初级 … 高级技师). 职业(工种) picks from column A; 等级 from the levels of the
    # occupation chosen in the same row (a dependent list: OFFSET to that occupation's row, as wide
    # as its count), so a level outside the scope cannot be picked.
    occupations = _distinct(o for o, _ in pairs)
    levels_of = {o: _distinct(lv for occ, lv in pairs if occ == o) for o in occupations}
    for row, occupation in enumerate(occupations):
        opts.write_string(row, 0, occupation)
        opts.write_number(row, 1, len(levels_of[occupation]))
        for col, level in enumerate(levels_of[occupation], start=2):
            opts.write_string(row, col, level)
    if occupations:
        n = len(occupations)
        occupation_col = "ABCDEF"[_COLUMN_INDEX[COL_OCCUPATION]]
        names = f"'{SHEET_OPTIONS}'!$A$1:$A${n}"
        ws.data_validation(1, _COLUMN_INDEX[COL_OCCUPATION], last - 1, _COLUMN_INDEX[COL_OCCUPATION], {
            "validate": "list", "source": "=" + names, "ignore_blank": True,
            "error_title": COL_OCCUPATION, "error_message": f"请从下拉列表中选择{COL_OCCUPATION}",
        })
        if any(levels_of.values()):
            at = f"MATCH(${occupation_col}2,{names},0)"
            count = f"INDEX('{SHEET_OPTIONS}'!$B$1:$B${n},{at})"
            ws.data_validation(1, _COLUMN_INDEX[COL_LEVEL], last - 1, _COLUMN_INDEX[COL_LEVEL], {
                "validate": "list", "source": f"=OFFSET('{SHEET_OPTIONS}'!$C$1,{at}-1,0,1,MAX(1,{count}))",
                "ignore_blank": True, "error_title": COL_LEVEL,
                "error_message": f"请先选择{COL_OCCUPATION}，再从下拉列表中选择该职业(工种)的{COL_LEVEL}；"
                                 "不分等级的职业(工种)等级留空",
            })
    opts.hide()

    help_ws.set_column(0, 0, 110)
    help_ws.set_column(1, 1, 20)
    lines = _instructions(max_rows, max_bytes)
    for row, line in enumerate(lines):
        help_ws.write_string(row, 0, line, bold if row == 0 else None)
    help_ws.write_string(len(lines), 0, COL_OCCUPATION, bold)
    help_ws.write_string(len(lines), 1, COL_LEVEL, bold)
    for row, (occupation, level) in enumerate(pairs, start=len(lines) + 1):
        help_ws.write_string(row, 0, occupation)
        help_ws.write_string(row, 1, level or "（不分等级）")

    ws.activate()
    wb.close()
    return buf.getvalue()


# --- import (SPEC §5.1 上传, §11) ----------------------------------------------------------


def _text(value: object) -> str:
    """A cell as text: numbers without a spurious '.0', everything stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    return str(value).strip()


# --- how far an upload reaches (SPEC §11) ----------------------------------------------------
#
# openpyxl reads parts of an upload whole, or walks every row of a sheet, before we get a row:
# the shared strings and styles at load, each sheet up to its <dimension> (all of it when there
# is none), and it fills every missing row and every missing cell up to the last column. So a
# 2.4 MB file of 1,000,000 empty formatted rows used to cost 38 s of CPU, and one row numbered
# 2,000,000,000 far more. Before openpyxl sees a part, one streaming pass with expat (the parser
# openpyxl uses, so it sees the same elements) counts what openpyxl would read, and stops as soon
# as a budget is spent; the sheet to be read must then fit the row and column limits.
#
# Measured on full 10,000-row templates (bench/import_template.py): filled with openpyxl, which
# writes inline strings, 166,600 elements in rows; saved as Excel and WPS save it (shared strings,
# each with its <phoneticPr>), 204,300 in rows and shared strings, 250,000 when all six columns hold
# distinct text; everything else 60–400 elements (styles, workbook, theme, sheet settings);
# 3.5–5.9 MB decompressed, 10.4 MB with 200-character employers. openpyxl spends 1.3–4 µs on an
# element of a row or a shared string, 7–19 µs on anything else (a style, a defined name, a merged
# range, a rich-text font). The worst file inside these budgets costs 1.6 s of CPU to refuse (a
# budget of 400,000 text elements: 2.3 s); the scan adds 0.17 s to a full template's 0.64 s.
MAX_COLUMNS = 50  # the template has 6; room for a few remarks columns, not 16,384
_MAX_PARTS = 1_000  # a template has about 12; each part costs a parser
_MAX_OTHER_ELEMENTS = 10_000
_TEXT_ELEMENTS_PER_ROW = 30  # rows, cells and shared strings: 300,000 for 10,001 rows
_SCANNED_BYTES_PER_ROW = 3_300  # 33 MB
_SCAN_CHUNK = 64 * 1024
_EXCEL_ROWS, _EXCEL_COLUMNS = 1_048_576, 16_384
_NOWHERE = 1 << 62  # a depth no element reaches
# What may sit inside a cell or a shared string and be read by openpyxl as text: values, inline
# strings, runs, phonetic runs. Anything else there (a run's font; a <mergeCells>, which openpyxl
# parses wherever it is) is counted, with all below it, as other.
_TEXT_ELEMENTS = frozenset({"v", "f", "is", "t", "r", "rPh", "phoneticPr"})
_DIGITS = "0123456789"


@dataclass
class _SheetExtent:
    """What a part holds, numbered as openpyxl numbers rows and columns."""

    rows: int = 0  # <row> elements
    last_row: int = 0
    data_rows: int = 0  # rows with a value or a text inside
    last_column: int = 0
    declared_rows: int = 0  # its <dimension>
    declared_columns: int = 0


class _NotXlsx(Exception):
    pass


class _OverBudget(Exception):
    pass


@functools.cache
def _column_numbers() -> dict[str, int]:
    return {get_column_letter(n): n for n in range(1, 18_279)}


def _column_number(ref: str | None, previous: int) -> int:
    """A cell's column as openpyxl reads it: from its reference, else the next one."""
    if not ref:
        return previous + 1
    column = _column_numbers().get(ref.rstrip(_DIGITS))
    if column is None:
        try:
            column = coordinate_to_tuple(ref)[1]
        except Exception:  # openpyxl fails on it too, when it gets there
            column = previous + 1
    return column


def _row_number(ref: str | None, previous: int) -> int:
    """A row's number as openpyxl reads it (``WorkSheetParser.parse_row``)."""
    if ref is None:
        return previous + 1
    try:
        return int(ref)
    except ValueError:
        try:
            value = float(ref)
        except ValueError:
            return previous + 1
        return int(value) if value.is_integer() else previous + 1


def _refuse_dtd(*_) -> None:
    # A DTD's entities could expand into rows the byte count never saw; OPC forbids DTDs.
    raise _NotXlsx


def _scan_part(fh, budget: list[int], extent: _SheetExtent) -> None:
    """Count one part's elements into ``budget`` [other, text, bytes] and ``extent``.

    Raises _OverBudget the moment a budget is spent. Depths mark where a row, its current cell,
    a shared string and a subtree of "other" elements inside them start (no stack per element:
    this runs for every element of a 10,000-row sheet).
    """
    depth = 0
    row_depth = cell_depth = text_depth = other_depth = _NOWHERE
    outer: list[tuple] = []  # the enclosing row's state while a <row> nested in it is open
    ref, column, has_value = None, 0, False
    counter = 0
    declared = False
    others, texts = budget[0], budget[1]
    text_elements = _TEXT_ELEMENTS

    def start(name, attrs):
        nonlocal depth, row_depth, cell_depth, text_depth, other_depth, ref, column, has_value, declared
        nonlocal others, texts
        depth += 1
        if ":" in name:
            name = name[name.index(":") + 1:]
        if depth < other_depth:
            if depth > cell_depth:  # a cell's value and text
                if name in text_elements:
                    if name == "v" or name == "t":
                        has_value = True
                    texts -= 1
                    if texts < 0:
                        raise _OverBudget
                    return
            elif depth == row_depth + 1:  # openpyxl reads every child of a row as a cell
                column = _column_number(attrs.get("r"), column)
                if column > extent.last_column:
                    extent.last_column = column
                if name == "c":
                    cell_depth = depth
                    texts -= 1
                    if texts < 0:
                        raise _OverBudget
                    return
            elif depth > text_depth and name in text_elements:  # a shared string's text and runs
                texts -= 1
                if texts < 0:
                    raise _OverBudget
                return
        if name == "row":  # openpyxl reads a <row> wherever it is
            outer.append((row_depth, cell_depth, other_depth, ref, column, has_value))
            row_depth, cell_depth, other_depth = depth, _NOWHERE, _NOWHERE
            ref, column, has_value = attrs.get("r"), 0, False
            texts -= 1
            if texts < 0:
                raise _OverBudget
            return
        if other_depth == _NOWHERE and (row_depth != _NOWHERE or text_depth != _NOWHERE):
            other_depth = depth
        elif name == "si" and text_depth == _NOWHERE and row_depth == _NOWHERE:
            text_depth = depth
            texts -= 1
            if texts < 0:
                raise _OverBudget
            return
        others -= 1
        if others < 0:
            raise _OverBudget
        if name == "dimension" and not declared:
            declared = True
            try:
                _, _, max_col, max_row = range_boundaries(attrs.get("ref"))
            except Exception:  # openpyxl fails on it too
                return
            extent.declared_rows = max_row or _EXCEL_ROWS  # "A:F" claims whole columns
            extent.declared_columns = max_col or _EXCEL_COLUMNS

    def end(name):
        nonlocal depth, row_depth, cell_depth, text_depth, other_depth, ref, column, has_value, counter
        if depth == other_depth:
            other_depth = _NOWHERE
        elif depth == cell_depth:
            cell_depth = _NOWHERE
        elif depth == row_depth:
            # openpyxl numbers a row when it ends, from its r or the row before
            counter = number = _row_number(ref, counter)
            extent.rows += 1
            extent.last_row = max(extent.last_row, number)
            extent.data_rows += has_value
            inner_value = has_value
            row_depth, cell_depth, other_depth, ref, column, has_value = outer.pop()
            has_value = has_value or inner_value
        elif depth == text_depth:
            text_depth = _NOWHERE
        depth -= 1

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        while chunk := fh.read(_SCAN_CHUNK):
            budget[2] -= len(chunk)
            if budget[2] < 0:
                raise _OverBudget
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError:
        # Not XML (a picture) or broken: what came before is counted, and openpyxl stops
        # at the same byte if it ever reads the part.
        pass
    finally:
        budget[0], budget[1] = others, texts


def _rows_allowed(max_rows: int) -> int:
    """Rows a sheet may hold, empty formatted ones included: the header and max_rows rows, and never
    fewer than our own template holds (MAX_ROWS formatted rows, whatever IMPORT_MAX_ROWS says)."""
    return max(max_rows, MAX_ROWS) + 1


def _scan_parts(zf: zipfile.ZipFile, max_rows: int) -> dict[str, _SheetExtent] | str:
    """Every part's extent, or a message when the upload holds more than openpyxl should read."""
    infos = [info for info in zf.infolist() if not info.is_dir()]
    if len(infos) > _MAX_PARTS:
        return MSG_TOO_LARGE_INSIDE
    rows = _rows_allowed(max_rows)
    budget = [_MAX_OTHER_ELEMENTS, _TEXT_ELEMENTS_PER_ROW * rows, _SCANNED_BYTES_PER_ROW * rows]
    extents: dict[str, _SheetExtent] = {}
    for info in infos:
        # A name may repeat in a zip; openpyxl reads the last, and both are counted here.
        extents[info.filename] = extent = _SheetExtent()
        try:
            with zf.open(info) as fh:  # never reads past the declared size
                _scan_part(fh, budget, extent)
        except _OverBudget:
            # Which sheet this part is, is not known yet; the rows seen so far are a lower bound.
            return (_extent_message(extent, max_rows, lower_bound=True)
                    or (MSG_TOO_MANY_CELLS if budget[1] < 0 else MSG_TOO_LARGE_INSIDE))
        except _NotXlsx:
            return MSG_NOT_XLSX
        except Exception:  # bad CRC, encrypted entry, unknown compression
            return MSG_NOT_XLSX
    return extents


def _sheet_to_read(data: bytes) -> tuple[str, str] | None:
    """(title, part) of the sheet ``_open_sheet`` will read, found as openpyxl finds it.

    Only the small parts are parsed (content types, workbook, its relationships), after the scan
    has bounded them, so a sheet over a limit is refused before openpyxl loads the rest.
    """
    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True, keep_links=False)
        with reader.archive, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader.read_manifest()
            reader.read_workbook()
            sheets = [(sheet.name, rel.target, "chartsheet" in rel.Type)
                      for sheet, rel in reader.parser.find_sheets() if rel.target in reader.valid_files]
    except Exception:  # load_workbook will say what is wrong
        return None
    for title, part, chart in sheets:
        if title == SHEET_CANDIDATES and not chart:
            return title, part
    if sheets and not sheets[0][2]:
        return sheets[0][0], sheets[0][1]
    return None


def _extent_message(extent: _SheetExtent | None, max_rows: int, title: str | None = None, *,
                    lower_bound: bool = False) -> str | None:
    """A sheet over the row or column limit, counting empty formatted rows and cells, or None."""
    if extent is None:
        return None
    if extent.data_rows > max_rows + 1:  # the header and max_rows rows of data
        return f"数据超过{max_rows}行"
    where = f"工作表「{title}」" if title else "工作表"
    rows = max(extent.rows, extent.last_row)
    allowed = _rows_allowed(max_rows)
    if max(rows, extent.declared_rows) > allowed:
        if lower_bound and rows > extent.declared_rows:
            count = f"至少有{rows:,}行"
        else:
            count = f"共有{max(rows, extent.declared_rows):,}行"
        return (f"{where}{count}（含设置了格式的空白行），超过{allowed - 1}行数据的上限。"
                "请删除多余的空行，或使用示例文档重新填写")
    columns = max(extent.last_column, extent.declared_columns)
    if columns > MAX_COLUMNS:
        return (f"{where}有{columns:,}列（含设置了格式的空白单元格），超过{MAX_COLUMNS}列的上限。"
                "请删除多余的列，或使用示例文档重新填写")
    return None


def _open_sheet(data: bytes, max_bytes: int, max_rows: int):
    """(workbook, worksheet) or a file-level message; never raises."""
    if len(data) > max_bytes:
        return None, f"文件超过{_size_label(max_bytes)}"
    # Old .xls (OLE2), csv renamed to .xlsx, pictures: refuse before openpyxl sees them.
    if not data.startswith(_ZIP_SIGNATURE):
        return None, MSG_NOT_XLSX
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if sum(info.file_size for info in zf.infolist()) > _MAX_EXPANSION * max_bytes:
                return None, MSG_TOO_LARGE_INSIDE
            extents = _scan_parts(zf, max_rows)
    except (zipfile.BadZipFile, ValueError, OSError):
        return None, MSG_NOT_XLSX
    if isinstance(extents, str):
        return None, extents
    chosen = _sheet_to_read(data)
    if chosen is not None and (message := _extent_message(extents.get(chosen[1]), max_rows, chosen[0])):
        return None, message
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Data Validation extension is not supported", …
            # keep_links=False: external links carry cached copies of other workbooks' sheets.
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # any reader failure means "not an xlsx" to the user
        return None, MSG_NOT_XLSX
    names = wb.sheetnames
    if not names:
        wb.close()
        return None, MSG_NOT_XLSX
    ws = wb[SHEET_CANDIDATES] if SHEET_CANDIDATES in names else wb[names[0]]
    # The part openpyxl actually opened decides, should _sheet_to_read have guessed otherwise.
    # No part (a chart sheet, or an openpyxl that stopped saying) means no bound: refuse.
    part = getattr(ws, "_worksheet_path", None)
    message = MSG_NOT_XLSX if part not in extents else _extent_message(extents[part], max_rows, ws.title)
    if message:
        wb.close()
        return None, message
    # Some writers leave a wrong <dimension>: read what is actually there (the scan counted it).
    ws.reset_dimensions()
    return wb, ws


def _read_rows(ws, max_rows: int) -> tuple[list[tuple[int, tuple]], str | None]:
    """Non-empty data rows with their Excel row numbers, or a file-level message."""
    rows_iter = ws.iter_rows(min_row=1, values_only=True)
    header = next(rows_iter, ())
    titles = [_text(v) for v in header]
    while titles and not titles[-1]:
        titles.pop()
    if tuple(titles) != CANDIDATE_COLUMNS:
        return [], MSG_HEADER
    width = len(CANDIDATE_COLUMNS)
    found: list[tuple[int, tuple]] = []
    for excel_row, values in enumerate(rows_iter, start=2):
        if excel_row > _rows_allowed(max_rows):  # never after _scan_parts; openpyxl fills gaps unbounded
            return [], _extent_message(_SheetExtent(rows=excel_row), max_rows, ws.title, lower_bound=True)
        values = tuple(values[:width])
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if len(found) >= max_rows:  # stop reading: SPEC §11 bounds the work, not only the result
            return [], f"数据超过{max_rows}行"
        found.append((excel_row, values + (None,) * (width - len(values))))
    if not found:
        return [], MSG_NO_DATA
    return found, None


def parse_candidate_upload(
    data: bytes,
    *,
    scope_pairs: set[tuple[str, str | None]],
    occupations: dict[str, tuple[str, bool]],
    levels: dict[str, str],
    has_valid_certificate: Callable[[list[tuple[str, str, str | None]]], set[tuple[str, str, str | None]]],
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_BYTES,
) -> ImportResult:
    """Read and check a filled candidate template (SPEC §5.1, §11).

    ``occupations`` maps name → (code, has_levels); ``levels`` maps name → code.
    ``has_valid_certificate`` receives every (ID, occupation, level) triple at once and
    returns those already held as valid certificates, so the caller runs one query, not
    10,000. Every row error is reported; ``rows`` holds only the clean rows.
    """
    wb, ws_or_msg = _open_sheet(data, max_bytes, max_rows)
    if wb is None:
        return _file_error(ws_or_msg)
    try:
        raw_rows, message = _read_rows(ws_or_msg, max_rows)
    except Exception:  # a corrupt sheet inside a valid zip
        raw_rows, message = [], MSG_NOT_XLSX
    finally:
        wb.close()
    if message:
        return _file_error(message)

    lookups = _Lookups(scope_pairs, occupations, levels)
    errors: list[RowError] = []
    checked: list[tuple[int, CandidateRow | None, tuple[str, str, str | None] | None]] = []
    first_seen: dict[tuple[str, str, str | None], int] = {}
    for excel_row, values in raw_rows:
        candidate, triple, row_errors = _check_row(excel_row, values, lookups)
        if triple is not None:
            if triple in first_seen:
                row_errors.append(RowError(excel_row, COL_ID, f"文件中重复（与第{first_seen[triple]}行相同）"))
                candidate = None
            else:
                first_seen[triple] = excel_row
        errors.extend(row_errors)
        checked.append((excel_row, candidate, triple))

    held: set[tuple[str, str, str | None]] = set()
    if first_seen:
        held = set(has_valid_certificate(list(first_seen)))
    rows: list[CandidateRow] = []
    for excel_row, candidate, triple in checked:
        if triple is not None and triple in held:
            errors.append(RowError(excel_row, COL_ID, "该人员已持有同职业(工种)等级的有效证书"))
        elif candidate is not None:
            rows.append(candidate)

    errors.sort(key=lambda e: (e.row, _COLUMN_INDEX.get(e.column, -1)))
    return ImportResult(rows=rows, errors=errors)


@dataclass(frozen=True)
class _Lookups:
    scope_pairs: set[tuple[str, str | None]]
    occupations: dict[str, tuple[str, bool]]
    levels: dict[str, str]


def _check_row(
    excel_row: int, values: tuple, lk: _Lookups
) -> tuple[CandidateRow | None, tuple[str, str, str | None] | None, list[RowError]]:
    """Check one row's cells: (candidate if clean, (ID, occupation, level) if those three
    are valid, errors). The triple feeds the duplicate and held-certificate checks even
    when another cell (say the phone) is wrong, so the user learns everything at once."""
    errors: list[RowError] = []

    def fail(column: str, message: str) -> None:
        errors.append(RowError(excel_row, column, message))

    raw_name, raw_id, raw_phone, raw_employer, raw_occ, raw_level = values
    name = _text(raw_name)
    if not name:
        fail(COL_NAME, MSG_REQUIRED)
    elif len(name) > MAX_NAME:
        fail(COL_NAME, f"姓名不能超过{MAX_NAME}个字")

    info = None
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        # Excel keeps 15 significant digits: the last ones of the ID are already lost.
        fail(COL_ID, "身份证号必须以文本格式填写")
    elif not normalize_id_number(raw_id):
        fail(COL_ID, MSG_REQUIRED)
    else:
        try:
            info = parse_id_number(raw_id)
        except ValueError as exc:
            fail(COL_ID, str(exc))

    phone = _text(raw_phone) or None
    if phone is not None:
        try:
            phone = check_phone(phone)
        except ValueError as exc:
            fail(COL_PHONE, str(exc))

    employer = _text(raw_employer) or None
    if employer and len(employer) > MAX_EMPLOYER:
        fail(COL_EMPLOYER, f"工作单位不能超过{MAX_EMPLOYER}个字")

    occ = _text(raw_occ)
    level = _text(raw_level) or None
    pair_ok = False
    if not occ:
        fail(COL_OCCUPATION, MSG_REQUIRED)
    elif occ not in lk.occupations:
        fail(COL_OCCUPATION, "职业(工种)不存在")
    if level is not None and level not in lk.levels:
        fail(COL_LEVEL, "等级不存在")
    elif occ in lk.occupations:
        has_levels = lk.occupations[occ][1]
        if has_levels and level is None:
            fail(COL_LEVEL, "该职业(工种)须填写等级")
        elif not has_levels and level is not None:
            fail(COL_LEVEL, "该职业(工种)不分等级，等级应为空")
        elif (occ, level) not in lk.scope_pairs:
            fail(COL_OCCUPATION, "不在本机构职业(工种)范围内")
        else:
            pair_ok = True

    triple = (info.number, occ, level) if info is not None and pair_ok else None
    candidate = None
    if not errors:
        candidate = CandidateRow(excel_row, name, info.number, info.birth_date, info.gender,
                                 phone, employer, occ, level)
    return candidate, triple, errors


# --- exports (SPEC §11) ----------------------------------------------------------


# column widths of an export, in Excel's character units: wide enough for what the column holds
# (an ID number's 18 digits, a company's name), never a sheet of cut-off cells; CJK characters
# count double. Capped, so one long text does not push the others off the screen.
WIDTH_PADDING = 2
WIDTH_MAX = 60
DATE_WIDTH = 10  # 2024-03-01
DATETIME_WIDTH = 19  # 2024-03-01 09:30:00


def display_width(text: str) -> int:
    """How many character cells ``text`` takes in a spreadsheet: wide (CJK) characters two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _cell_width(value) -> int:
    if isinstance(value, datetime):
        return DATETIME_WIDTH
    if isinstance(value, date):
        return DATE_WIDTH
    return display_width(str(value))


def local_time(value: datetime) -> datetime:
    """A stored timestamp (naive UTC, as every table keeps it) in Beijing time, as the pages show it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PROVINCE_TZ).replace(tzinfo=None)


def write_xlsx(
    path: str,
    headers: Sequence[str],
    rows: Iterable[Sequence],
    *,
    sheet_name: str = "Sheet1",
    text_columns: Iterable[int] = (),
    progress: Callable[[int], None] | None = None,
    every: int = 1000,
) -> int:
    """Write an export to ``path`` in constant memory; returns the number of data rows.

    SPEC §11: formulas and URLs are never interpreted (a name like ``=HYPERLINK(…)`` stays
    text — CSV/formula injection) and ID numbers stay text. The whole file is written before a
    byte is sent (issue 16): the rows are read inside the request or job that owns the database
    session, and the response then streams a finished file with no transaction open.
    ``progress(rows_written)`` is called every ``every`` rows (an export job's progress bar).

    As an official opens it (issue 17): timestamps in Beijing time, as the pages show them (the
    tables store naive UTC); the header row frozen with a filter on every column; each column as
    wide as its header and the widest value written (xlsxwriter writes the column widths and the
    filter when the file is closed, so constant memory mode can measure while it streams).
    """
    text_cols = set(text_columns)
    wb = xlsxwriter.Workbook(path, {
        "constant_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "tmpdir": os.path.dirname(path) or None,
    })
    ws = wb.add_worksheet(sheet_name)
    bold = wb.add_format({"bold": True})
    text = wb.add_format({"num_format": "@"})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    datetime_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    widths = [display_width(str(title)) for title in headers]
    for col, title in enumerate(headers):
        ws.write_string(0, col, str(title), bold)
    ws.freeze_panes(1, 0)
    written = 0
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            if c in text_cols:
                value = str(value)
                ws.write_string(r, c, value, text)
            elif isinstance(value, datetime):
                value = local_time(value)
                ws.write_datetime(r, c, value, datetime_fmt)
            elif isinstance(value, date):
                ws.write_datetime(r, c, value, date_fmt)
            elif isinstance(value, bool):
                ws.write_boolean(r, c, value)
            elif isinstance(value, int | float):
                ws.write_number(r, c, value)
            else:
                ws.write_string(r, c, str(value))
            # measured only when it could be wider than the widest so far (at most two cells a
            # character): after the first rows most cells cost one comparison
            if c < len(widths) and (not isinstance(value, str) or 2 * len(value) > widths[c]):
                width = _cell_width(value)
                if width > widths[c]:
                    widths[c] = width
        written = r
        if progress is not None and r % every == 0:
            progress(r)
    for col, width in enumerate(widths):
        ws.set_column(col, col, min(width + WIDTH_PADDING, WIDTH_MAX), text if col in text_cols else None)
    if headers:
        ws.autofilter(0, 0, written, len(headers) - 1)
    wb.close()
    return written
