"""The 补办 journey of manual 003 §六.3, §七.3, §八.3 in a real browser (SPEC §5.2, §4, §6, §10).

enterprise reports two lost certificates of one holder as manual 001 (证书遗失补证申请) has it:
已申请业务 → 新建申请 → 保存 (refused without 申请说明) → 申请说明 → 保存 → 选择遗失证书 (the
enterprise's employees' certificates as a list to tick, narrowed by the holder's ID number) → tick
the first → 添加遗失证书; 选择遗失证书 again (now only the holder's other certificate) → tick it →
添加遗失证书; is refused 提交申请 without the signed form, uploads it and submits; jinan approves on
the application's page, the province approves from 补办管理's list (bulk 审核通过). In the province's
证书库 the holder's ID number finds both old numbers 已作废 and two new 15-digit numbers 有效, linked
both ways; each certificate's 业务日志 shows the application, filed and reviewed; the public 证书查询
says the new number is 有效 and the old one 已作废 (pointing to the new one).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from flask import Flask
from sqlalchemy import func, select

from models import ApplicationItem, Certificate, Organization, Person, db
from models.certificate import CertificateStatus
from tests.browser.conftest import (
    CELL,
    flash,
    list_row,
    open_menu,
    open_tab,
    playwright_unavailable,
    sign_in,
    sign_out,
    snapshot,
)
from tests.samples import make_png

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

ENTERPRISE = "山东鲁建建设集团有限公司"  # the demo user `enterprise` (seed/demo.py)
EXPLANATION = "持证人在工地搬迁时遗失证书，申请补办"


class Holder(NamedTuple):
    numbers: tuple[str, str]
    name: str
    id_number: str


def free_holder(app: Flask) -> Holder:
    """A holder employed by ENTERPRISE with exactly two certificates, both valid, that no demo
    application (of any kind or state) holds — so the 证书库 shows exactly the old and new rows."""
    with app.app_context():
        employer = select(Organization.id).where(Organization.name == ENTERPRISE)
        two = (select(Certificate.person_id).group_by(Certificate.person_id)
               .having(func.count() == 2, func.min(Certificate.status) == func.max(Certificate.status)))
        in_business = (select(Certificate.person_id)
                       .join(ApplicationItem, ApplicationItem.certificate_id == Certificate.id))
        rows = db.session.execute(
            select(Certificate.number, Person.name, Person.id_number, Person.id)
            .join(Person, Person.id == Certificate.person_id)
            .where(Certificate.status == CertificateStatus.valid, Person.employer_id.in_(employer),
                   Person.id.in_(two), Person.id.notin_(in_business))
            .order_by(Person.id, Certificate.number)).all()
    assert len(rows) >= 2 and rows[0].id == rows[1].id, f"the demo has no holder of two free certificates at {ENTERPRISE}"
    return Holder((rows[0].number, rows[1].number), rows[0].name, rows[0].id_number)


# -- page helpers -------------------------------------------------------------------------------


def search_list(page: Page, term: str) -> None:
    search = page.locator("input[name=search]:not([type=hidden])")
    search.fill(term)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"search={term}"))


def detail_cell(page: Page, label: str):
    """The value cell of one row of Flask-Admin's details table."""
    return page.locator("table.searchable tr", has_text=label).locator("td").nth(1)


def expect_application_state(page: Page, label: str) -> None:
    expect(detail_cell(page, "审核状态")).to_have_text(re.compile(CELL.format(re.escape(label))))


def open_application(page: Page, number: str) -> None:
    """The eye icon (查看) of the application holding certificate ``number``."""
    row = list_row(page, number)
    expect(row).to_have_count(1)
    row.locator("a.row-details").click()
    expect(page).to_have_url(re.compile(r"/details/\?id=\d+"))
    expect(page.locator("#application-certificates tbody")).to_contain_text(number)


# -- the journey --------------------------------------------------------------------------------


def test_reissue_journey(live_server, browser_page: Page, tmp_path):
    base, app = live_server
    page = browser_page
    old = free_holder(app)
    first, second = old.numbers

    # --- 001 证书遗失补证申请: enterprise 新建申请 → 申请说明 → 保存 -------------------------------
    sign_in(page, base, "enterprise")
    open_menu(page, "证书业务处理", "已申请业务")
    expect(page).to_have_url(f"{base}/admin/application/")
    page.locator("#new-reissue").click()
    expect(page).to_have_url(f"{base}/admin/business_apply/reissue/")
    expect(page.locator("h5", has_text="补办申请")).to_be_visible()

    page.locator("#reissue-save").click()  # 申请说明 is mandatory for 补办
    flash(page, "请填写申请说明", "danger")
    page.fill("#explanation", EXPLANATION)
    page.locator("#reissue-save").click()
    flash(page, "申请已保存，请选择遗失证书、上传申请表后提交申请")
    expect(page).to_have_url(re.compile(r"/admin/application/details/\?id=\d+$"))
    expect_application_state(page, "待提交")
    expect(detail_cell(page, "申请说明")).to_contain_text(EXPLANATION)
    expect(page.locator("#application-certificates tbody tr")).to_have_count(0)

    # --- 选择遗失证书: the enterprise's employees' certificates as a list to tick ---------------------
    draft_url = page.url
    page.locator("#btn-submit").click()  # nothing chosen yet: refused, and still on the draft
    flash(page, "请先选择遗失证书", "danger")
    expect(page).to_have_url(re.compile(r"/admin/application/details/\?id=\d+"))
    page.locator("#lost-pick", has_text="选择遗失证书").click()
    expect(page.locator("h5", has_text="选择遗失证书")).to_be_visible()
    candidates = page.locator("#lost-candidates tbody tr")
    expect(candidates.filter(has_text=first)).to_have_count(1)
    expect(candidates.filter(has_text=second)).to_have_count(1)
    assert candidates.count() > 2  # every employee's, before the holder is known
    page.fill("#lost-q", old.id_number)
    page.locator("#lost-search").click()
    expect(candidates).to_have_count(2)  # the holder's two
    snapshot(page, "business-01-pick")
    candidates.filter(has_text=first).locator("input.lost-check").check()
    page.locator("#lost-add", has_text="添加遗失证书").click()
    flash(page, f"已添加遗失证书 {first}")
    lost = page.locator("#application-certificates tbody tr")
    expect(lost).to_have_count(1)

    # a second certificate of the same holder: 选择遗失证书 again, only the holder's other one is left
    page.locator("#lost-pick").click()
    expect(page.locator("#lost-chosen")).to_have_text(first)
    expect(candidates).to_have_count(1)
    candidates.filter(has_text=second).locator("input.lost-check").check()
    page.locator("#lost-add").click()
    flash(page, f"已添加遗失证书 {second}")
    expect(lost).to_have_count(2)
    for row, number in zip((lost.nth(0), lost.nth(1)), old.numbers, strict=True):
        expect(row.locator("td").nth(0)).to_have_text(number)
        expect(row.locator("td").nth(3)).to_have_text("有效")
    snapshot(page, "business-02-draft")

    page.locator("#btn-submit").click()  # without the signed form: refused, still on the draft
    flash(page, "请上传单位出具的纸质申请表（至少1张图片）", "danger")
    expect(page).to_have_url(re.compile(r"/admin/application/details/\?id=\d+"))
    expect_application_state(page, "待提交")
    assert page.url.startswith(draft_url)

    form = tmp_path / "补办申请表.png"
    form.write_bytes(make_png(160, 100))
    assert form.stat().st_size <= 200 * 1024
    page.set_input_files("#files", str(form))
    page.locator("#images-submit").click()
    flash(page, "图片已上传")
    image = page.locator("#application-images img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", form.name)
    page.wait_for_function(
        "() => { const i = document.querySelector('#application-images img');"
        " return i && i.complete && i.naturalWidth > 0; }")
    snapshot(page, "business-02-images")

    page.locator("#btn-submit").click()
    flash(page, "提交申请：操作成功")
    expect(page).to_have_url(re.compile(r"/admin/application/"))  # back on 已申请业务
    open_tab(page, "审核中")
    open_application(page, first)
    expect_application_state(page, "待审核(主管部门)")
    expect(page.locator("#review-log")).to_contain_text("提交申请")
    expect(page.locator("#btn-submit")).to_have_count(0)
    expect(page.locator("#images-form")).to_have_count(0)
    sign_out(page)

    # --- 003 §七.3: jinan (the enterprise's city) approves on the application's page -------------
    sign_in(page, base, "jinan")
    open_menu(page, "证书业务处理", "补办管理")
    expect(page).to_have_url(re.compile(r"/admin/review_reissue/"))
    open_tab(page, "待审核")
    open_application(page, first)
    expect_application_state(page, "待审核(主管部门)")
    expect(detail_cell(page, "申请单位")).to_contain_text(ENTERPRISE)
    expect(page.locator("#application-images img")).to_have_count(1)
    page.locator("#btn-authority_approve").click()
    flash(page, "审核通过：操作成功")
    expect(list_row(page, first)).to_have_count(0)  # back on 待审核, no longer waiting
    open_tab(page, "已审核")
    expect(list_row(page, first)).to_contain_text("待审核(省厅)")
    sign_out(page)

    # --- 003 §八.3: the province approves from 补办管理's list (bulk 审核通过) --------------------
    sign_in(page, base, "province")
    open_menu(page, "证书业务处理", "补办管理")
    open_tab(page, "待审核")
    pending = list_row(page, first)
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("待审核(省厅)")
    pending.locator("input.action-checkbox").check()
    page.locator(".nav-link.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a.dropdown-item", has_text="审核通过").click()
    flash(page, "审核通过：成功 1 条，失败 0 条")
    expect(list_row(page, first)).to_have_count(0)  # no longer waiting
    open_tab(page, "已审核")
    expect(list_row(page, first)).to_contain_text("审核通过")
    open_application(page, first)
    expect_application_state(page, "审核通过")
    lost = page.locator("#application-certificates tbody tr")
    expect(lost).to_have_count(2)
    new_numbers = []
    for i, number in enumerate(old.numbers):
        expect(lost.nth(i).locator("td").nth(0)).to_have_text(number)
        expect(lost.nth(i).locator("td").nth(3)).to_have_text("已作废")
        new_numbers.append(lost.nth(i).locator("td").nth(4).inner_text().strip())
    for new_number in new_numbers:
        assert re.fullmatch(r"\d{15}", new_number) and new_number not in old.numbers, new_numbers
    assert len(set(new_numbers)) == 2, new_numbers
    application = re.search(r"id=(\d+)", page.url).group(1)
    snapshot(page, "business-03-approved")

    # --- 003 §八.2 证书库: the holder's ID number finds the old numbers 已作废 and the new 有效 ---
    open_menu(page, "证书管理", "证书库")
    expect(page).to_have_url(f"{base}/admin/certificate_library/")
    search_list(page, old.id_number)
    rows = page.locator("table.model-list tbody tr")
    expect(rows).to_have_count(4)
    for number, status in [(n, "已作废") for n in old.numbers] + [(n, "有效") for n in new_numbers]:
        row = list_row(page, number)
        expect(row).to_have_count(1)
        expect(row.locator("td.col-number")).to_have_text(re.compile(CELL.format(number)))
        expect(row.locator("td.col-status")).to_have_text(re.compile(CELL.format(status)))
        expect(row.locator("td.col-holder")).to_contain_text(old.name)
    snapshot(page, "business-04-library")

    # each certificate's 业务日志: the 补办 filed, reviewed by 济南 and the province (issue 17)
    for number, new_number in zip(old.numbers, new_numbers, strict=True):
        list_row(page, number).locator("a.row-details").click()
        expect(detail_cell(page, "证书状态")).to_have_text(re.compile(CELL.format("已作废")))
        log = page.locator("#business-log tbody tr")
        expect(log.filter(has_text=f"补办申请#{application}：提交申请")).to_contain_text(ENTERPRISE)
        approvals = log.filter(has_text=f"补办申请#{application}：审核通过")
        expect(approvals).to_have_count(2)
        expect(approvals.nth(0)).to_contain_text("济南市住房和城乡建设局")
        expect(approvals.nth(1)).to_contain_text("山东省住房和城乡建设厅")
        expect(page.locator("#business-log")).to_contain_text(f"补办，新证书编号 {new_number}")
        expect(page.locator("#business-log")).not_to_contain_text("暂无业务记录")
        page.go_back()
    snapshot(page, "business-05-log")

    first_new = new_numbers[0]
    list_row(page, first).locator("a.row-details").click()
    detail_cell(page, "补办后证书").locator("a.certificate-link", has_text=first_new).click()
    expect(detail_cell(page, "证书编号")).to_have_text(re.compile(CELL.format(first_new)))
    expect(detail_cell(page, "证书状态")).to_have_text(re.compile(CELL.format("有效")))
    expect(detail_cell(page, "补办前证书").locator("a.certificate-link")).to_have_text(first)
    expect(page.locator("#business-log")).to_contain_text(f"补办申请#{application}：审核通过")  # it issued this one
    sign_out(page)

    # --- SPEC §10 证书查询 (public, no sign-in): the new number 有效, the old one 已作废 -------------
    for number, status in ((first_new, "有效"), (first, "已作废")):
        page.goto(f"{base}/verify")
        page.fill("#number", number)
        page.fill("#name", old.name)
        page.locator("#verify-button").click()
        expect(page.locator("h5", has_text="证书查询结果")).to_be_visible()
        expect(page.locator("#verify-number")).to_have_text(number)
        expect(page.locator("#verify-status")).to_have_text(status)
        expect(page.locator("#verify-id-number")).not_to_contain_text(old.id_number)  # masked
    expect(page.locator("#verify-replacement")).to_contain_text(first_new)
    snapshot(page, "business-06-verify-old")
