"""The batch journey of manual 003 §六.1, §七.1, §八.1 in a real browser (SPEC §5.1, §4, §9).

inst_jinan creates a batch from the downloaded template (a wrong ID check digit is reported
below the form, then fixed), attaches a photo, confirms and submits; jinan refuses an empty
审核不通过, then rejects with a reason; inst_jinan sees the reason, 重新提交 and submits again;
jinan and the province approve; inst_jinan finds both new certificates by ID number.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import date

import openpyxl

from models.base import local_today
from tests.browser.conftest import (
    flash,
    list_row,
    open_menu,
    open_tab,
    playwright_unavailable,
    sign_in,
    sign_out,
    snapshot,
)
from workflows.privacy import mask_id_number
from workflows.validators import make_id_number

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

HEADER = ("姓名", "身份证号", "手机号", "工作单位", "职业(工种)", "等级")
OCCUPATION, LEVEL = "砌筑工", "初级工(五级)"  # inside inst_jinan's scope (seed/demo.py)
REJECT_REASON = "照片不清晰"


def make_png(width: int = 48, height: int = 32) -> bytes:
    """A real PNG (IHDR, IDAT, IEND with CRCs): a blue rectangle."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + b"\x20\x60\xc0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def wrong_check_digit(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


# -- page helpers -------------------------------------------------------------------------------


def batch_row(page: Page, name: str):
    return list_row(page, name)


def open_batch(page: Page, name: str) -> None:
    """The eye icon (查看) in the batch's row of the list."""
    row = batch_row(page, name)
    expect(row).to_have_count(1)
    row.locator("a.row-details").click()
    expect(page).to_have_url(re.compile(r"/details/\?id=\d+"))
    expect(page.locator("table.searchable")).to_contain_text(name)


def expect_state(page: Page, label: str) -> None:
    expect(page.locator("table.searchable tr", has_text="审核状态").locator("td").nth(1)).to_have_text(label)


def review_and_fire(page: Page, base: str, username: str, name: str, button: str) -> None:
    """A reviewer: 批次管理 → 审核批次 → 待审核, open the batch, press ``button``."""
    sign_in(page, base, username)
    open_menu(page, "批次管理", "审核批次")
    open_tab(page, "待审核")
    open_batch(page, name)
    page.locator(button).click()
    flash(page, "审核通过：操作成功")
    sign_out(page)


def fill_candidates(path, rows) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb["合格人员"]
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(row=r, column=c).value = value
    wb.save(path)


# -- the journey --------------------------------------------------------------------------------


def test_batch_journey(live_server, browser_page: Page, tmp_path):
    base, _app = live_server
    page = browser_page
    year = local_today().year
    batch_name = f"{year}年第九期砌筑工培训（浏览器测试）"
    good_id = make_id_number("370103", date(1988, 3, 15), 121, "男")
    fixed_id = make_id_number("370103", date(1991, 11, 2), 242, "女")
    people = [("马骁", good_id), ("高远", fixed_id)]

    # --- 003 §二: inst_jinan signs in with the SMS code ---------------------------------------
    sign_in(page, base, "inst_jinan")

    # --- 003 §六.1 创建批次: download the template --------------------------------------------
    open_menu(page, "批次管理", "创建批次")
    expect(page).to_have_url(f"{base}/admin/batch-create/")
    with page.expect_download() as info:
        page.locator("#template-download").click()
    download = info.value
    assert download.suggested_filename == "合格人员示例文档.xlsx"
    workbook = tmp_path / "合格人员.xlsx"
    download.save_as(workbook)

    wb = openpyxl.load_workbook(workbook)
    assert "填写说明" in wb.sheetnames
    ws = wb["合格人员"]
    assert tuple(cell.value for cell in ws[1]) == HEADER
    assert ws["B2"].number_format == "@", "the ID column must be formatted as text (SPEC §5.1)"
    assert ws["B100"].number_format == "@"
    wb.close()

    # two candidates; the second one's ID has a wrong check digit
    rows = [(name, idn, f"1390531{i:04d}", "济南市历下区建筑工程有限公司", OCCUPATION, LEVEL)
            for i, (name, idn) in enumerate(people, start=1)]
    rows[1] = (rows[1][0], wrong_check_digit(fixed_id), *rows[1][2:])
    fill_candidates(workbook, rows)

    page.fill("#name", batch_name)
    page.set_input_files("#file", str(workbook))
    page.locator("#upload-submit").click()
    flash(page, "文件中有 1 处错误", "danger")
    errors = page.locator("#row-errors tbody tr")
    expect(errors).to_have_count(1)
    cells = errors.first.locator("td")
    expect(cells.nth(0)).to_have_text("3")
    expect(cells.nth(1)).to_have_text("身份证号")
    expect(cells.nth(2)).to_contain_text("校验位")
    expect(page.locator("#name")).to_have_value(batch_name)  # the name survives the failed upload
    snapshot(page, "journey-01-row-errors")

    # fix the ID and upload again → 上传批次资料
    rows[1] = (rows[1][0], fixed_id, *rows[1][2:])
    fill_candidates(workbook, rows)
    page.set_input_files("#file", str(workbook))
    page.locator("#upload-submit").click()
    expect(page).to_have_url(re.compile(r"/admin/batch-create/attachments/\d+$"))
    expect(page.locator(".breadcrumb-item.active")).to_have_text("2. 上传批次资料")
    flash(page, "已导入 2 名合格人员")

    photo = tmp_path / "培训现场照片.png"
    photo.write_bytes(make_png())
    page.set_input_files("#attach-files", str(photo))
    page.locator("#attach-submit").click()
    flash(page, "资料已上传")
    image = page.locator("#attachments .attachment[data-kind=image] img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", photo.name)
    page.wait_for_function(
        "() => { const i = document.querySelector('#attachments img'); return i && i.complete && i.naturalWidth > 0; }")

    snapshot(page, "journey-02-attachments")
    page.locator("#confirm-upload").click()
    expect(page).to_have_url(re.compile(r"/admin/batch/\?tab=draft$"))
    flash(page, f"批次「{batch_name}」已进入我的批次-待提交")
    expect(page.locator("#status-tabs a.active")).to_have_text("待提交")
    expect(batch_row(page, batch_name)).to_contain_text("待提交")

    # 我的批次 → the batch → 提交审核
    open_batch(page, batch_name)
    expect(page.locator("#candidates tbody tr")).to_have_count(2)
    expect(page.locator("#attachments img")).to_have_count(1)
    page.locator("#btn-submit").click()
    flash(page, "提交审核：操作成功")
    sign_out(page)

    # --- 003 §七.1: jinan refuses an empty reason, then rejects with one -----------------------
    sign_in(page, base, "jinan")
    open_menu(page, "批次管理", "审核批次")
    expect(page).to_have_url(re.compile(r"/admin/batch_review/"))
    open_tab(page, "待审核")
    expect(page).to_have_url(re.compile(r"/admin/batch_review/\?tab=pending$"))
    open_batch(page, batch_name)
    expect_state(page, "审核中(主管部门)")
    expect(page.locator("#reason-authority_reject")).to_have_value("")
    page.locator("#btn-authority_reject").click()
    flash(page, "请填写审核不通过原因", "danger")
    expect_state(page, "审核中(主管部门)")
    snapshot(page, "journey-03-reject-refused")

    page.fill("#reason-authority_reject", REJECT_REASON)
    page.locator("#btn-authority_reject").click()
    flash(page, "审核不通过：操作成功")
    open_tab(page, "已审核")
    reviewed = batch_row(page, batch_name)
    expect(reviewed).to_contain_text("审核不通过")
    expect(reviewed.locator(".reason-red")).to_have_text(REJECT_REASON)
    sign_out(page)

    # --- 003 §六.1 审核不通过: inst_jinan sees the reason, 重新提交, submits again --------------
    sign_in(page, base, "inst_jinan")
    open_menu(page, "批次管理", "我的批次")
    open_tab(page, "审核不通过")
    reason = batch_row(page, batch_name).locator(".reason-red")
    expect(reason).to_have_text(REJECT_REASON)
    expect(reason).to_have_css("color", "rgb(204, 0, 0)")
    snapshot(page, "journey-04-rejected-tab")
    open_batch(page, batch_name)
    expect_state(page, "审核不通过")
    expect(page.locator("#review-log")).to_contain_text(REJECT_REASON)
    snapshot(page, "journey-05-rejected-detail")

    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator("#btn-reopen").click()
    flash(page, "重新提交：操作成功")
    assert dialogs and "待提交" in dialogs[0]
    page.remove_listener("dialog", accept)
    open_tab(page, "待提交")
    open_batch(page, batch_name)
    expect_state(page, "待提交")
    page.locator("#btn-submit").click()
    flash(page, "提交审核：操作成功")
    sign_out(page)

    # --- 003 §七.1 / §八.1: jinan, then the province approve ----------------------------------
    review_and_fire(page, base, "jinan", batch_name, "#btn-authority_approve")
    review_and_fire(page, base, "province", batch_name, "#btn-province_approve")

    # --- 003 §六.2 证书管理: both candidates hold a certificate numbered YY 3701 001 5 … (SPEC §4)
    sign_in(page, base, "inst_jinan")
    open_menu(page, "证书管理", "证书查看")
    expect(page).to_have_url(f"{base}/admin/certificate/")
    number = re.compile(rf"^\s*{year % 100:02d}37010015\d{{5}}\s*$")  # cells keep template whitespace
    for name, idn in people:
        search = page.locator("input[name=search]:not([type=hidden])")
        search.fill(idn)
        search.press("Enter")
        expect(page).to_have_url(re.compile(rf"search={idn}"))
        row = page.locator("table.model-list tbody tr", has_text=mask_id_number(idn))  # found by the full number
        expect(row).to_have_count(1)
        expect(row.locator("td.col-holder")).to_contain_text(name)
        expect(row.locator("td.col-holder")).not_to_contain_text(idn)  # the list masks it (issue 17)
        expect(row.locator("td.col-occupation")).to_have_text(OCCUPATION)
        expect(row.locator("td.col-number")).to_have_text(number)
    snapshot(page, "journey-06-certificate")
    sign_out(page)
