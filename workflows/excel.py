"""The candidate template, its import, and streaming exports (SPEC §5.1, §11).

Imports never raise on a bad file: every problem comes back as a ``RowError`` so the
batch page can list them all below the form, and nothing is stored until the file is
clean (SPEC §5.1). Exports are streamed from a temp file so a large export never holds
the workbook in memory (SPEC §11).
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import openpyxl
import xlsxwriter

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
_CHUNK = 64 * 1024
# A real template expands about 10×; a zip bomb expands 1000×. openpyxl loads the shared
# strings whole, so the declared sizes are checked first (zipfile never reads past them).
_MAX_EXPANSION = 20

MSG_REQUIRED = "必填"
MSG_NOT_XLSX = "文件不是有效的 Excel(.xlsx) 文件"
MSG_HEADER = "表头与示例文档不一致，请使用示例文档填写"
MSG_NO_DATA = "文件中没有合格人员数据"
MSG_TOO_LARGE_INSIDE = "文件内容过大，请使用示例文档填写"


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
        f"7. {COL_LEVEL}：请从下拉列表中选择；不分等级的职业(工种)（如施工员等岗位）等级留空。",
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

    occupations = _distinct(o for o, _ in pairs)
    levels = _distinct(lv for _, lv in pairs)
    for col, (title, values) in enumerate(((COL_OCCUPATION, occupations), (COL_LEVEL, levels))):
        for row, value in enumerate(values):
            opts.write_string(row, col, value)
        if not values:
            continue
        letter = "AB"[col]
        target = _COLUMN_INDEX[title]
        ws.data_validation(1, target, last - 1, target, {
            "validate": "list",
            "source": f"='{SHEET_OPTIONS}'!${letter}$1:${letter}${len(values)}",
            "ignore_blank": True,
            "error_title": title,
            "error_message": f"请从下拉列表中选择{title}",
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


def _open_sheet(data: bytes, max_bytes: int):
    """(workbook, worksheet) or a file-level message; never raises."""
    if len(data) > max_bytes:
        return None, f"文件超过{_size_label(max_bytes)}"
    # Old .xls (OLE2), csv renamed to .xlsx, pictures: refuse before openpyxl sees them.
    if not data.startswith(_ZIP_SIGNATURE):
        return None, MSG_NOT_XLSX
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            expanded = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None, MSG_NOT_XLSX
    if expanded > _MAX_EXPANSION * max_bytes:
        return None, MSG_TOO_LARGE_INSIDE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Data Validation extension is not supported", …
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # any reader failure means "not an xlsx" to the user
        return None, MSG_NOT_XLSX
    names = wb.sheetnames
    if not names:
        wb.close()
        return None, MSG_NOT_XLSX
    ws = wb[SHEET_CANDIDATES] if SHEET_CANDIDATES in names else wb[names[0]]
    # Some writers leave a wrong <dimension>: read what is actually there.
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
    wb, ws_or_msg = _open_sheet(data, max_bytes)
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


# --- streaming export (SPEC §11) ----------------------------------------------------------


def stream_xlsx(
    headers: Sequence[str],
    rows: Iterable[Sequence],
    *,
    sheet_name: str = "Sheet1",
    text_columns: Iterable[int] = (),
) -> Iterator[bytes]:
    """Write an export to a temp file in constant memory, then yield it in 64 KB chunks.

    SPEC §11: formulas and URLs are never interpreted (a name like ``=HYPERLINK(…)`` stays
    text — CSV/formula injection) and ID numbers stay text. The temp file is removed even
    when the client disconnects mid-download (the generator's ``finally``). ``rows`` is
    consumed on the first ``next()``, so a view streaming a query wraps this in
    ``stream_with_context``.
    """
    text_cols = set(text_columns)
    fd, path = tempfile.mkstemp(prefix="export-", suffix=".xlsx")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(path, {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "tmpdir": os.path.dirname(path),
        })
        ws = wb.add_worksheet(sheet_name)
        bold = wb.add_format({"bold": True})
        text = wb.add_format({"num_format": "@"})
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        datetime_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for col, title in enumerate(headers):
            ws.write_string(0, col, str(title), bold)
            ws.set_column(col, col, 20 if col in text_cols else 14, text if col in text_cols else None)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if value is None or value == "":
                    continue
                if c in text_cols:
                    ws.write_string(r, c, str(value), text)
                elif isinstance(value, datetime):
                    ws.write_datetime(r, c, value, datetime_fmt)
                elif isinstance(value, date):
                    ws.write_datetime(r, c, value, date_fmt)
                elif isinstance(value, bool):
                    ws.write_boolean(r, c, value)
                elif isinstance(value, int | float):
                    ws.write_number(r, c, value)
                else:
                    ws.write_string(r, c, str(value))
        wb.close()
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

