"""Issue 17 items 12 and 13 in a real browser: 导出 says 「导出成功」 on the page the download left
in place (004 §3.3.2), and the online candidate editor's 等级 follows the chosen 职业(工种) within
the institution's 职业(工种)范围."""

from __future__ import annotations

import io

import openpyxl
from sqlalchemy import select

from models import Batch, BatchStatus, Level, Occupation, ScopeItem, User, db
from tests.browser.conftest import flash, open_menu, playwright_unavailable, sign_in, snapshot

try:
    from playwright.sync_api import expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()


def test_an_inline_export_says_export_succeeded(live_server, browser_page):
    base, _app = live_server
    page = browser_page
    sign_in(page, base, "enterprise")
    open_menu(page, "注册管理", "注册人员查询")
    with page.expect_download() as download:
        page.locator("#export-xlsx").click()
    path = download.value.path()
    alert = flash(page, "导出成功")
    expect(alert).to_contain_text("条")
    snapshot(page, "export-done")
    with open(path, "rb") as fh:  # the download's temp file has no .xlsx suffix
        sheet = openpyxl.load_workbook(io.BytesIO(fh.read())).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    # the message is this page's: reloading does not say it again
    page.reload()
    expect(page.locator("#export-done")).to_have_count(0)


def test_the_level_list_follows_the_chosen_occupation(live_server, browser_page):
    base, app = live_server
    with app.app_context():
        org_id = db.session.scalar(select(User.organization_id).where(User.username == "inst_jinan"))
        batch_id = db.session.scalar(select(Batch.id).where(Batch.institution_id == org_id,
                                                            Batch.status == BatchStatus.draft))
        rows = db.session.execute(select(Occupation.id, Occupation.name, Level.name, Level.code)
                                  .join(ScopeItem, ScopeItem.occupation_id == Occupation.id)
                                  .outerjoin(Level, Level.id == ScopeItem.level_id)
                                  .where(ScopeItem.organization_id == org_id)).all()
    scope: dict[int, list] = {}
    for occupation_id, _name, level, code in rows:
        scope.setdefault(occupation_id, [])
        if level is not None:
            scope[occupation_id].append((code, level))
    page = browser_page
    sign_in(page, base, "inst_jinan")
    page.goto(f"{base}/admin/batch/candidate/edit/?id={batch_id}")
    occupations = page.locator("#c-occupation option:not([value=''])")
    assert sorted(int(v) for v in occupations.evaluate_all("els => els.map(e => e.value)")) == sorted(scope)
    for occupation_id, levels in scope.items():
        page.select_option("#c-occupation", str(occupation_id))
        names = page.locator("#c-level option:not([value=''])").all_inner_texts()
        assert names == [name for _code, name in sorted(levels, reverse=True)]  # 初级 (code 5) first
        if levels:
            expect(page.locator("#c-level")).to_be_enabled()
        else:
            expect(page.locator("#c-level")).to_be_disabled()
