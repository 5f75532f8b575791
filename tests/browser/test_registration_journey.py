"""The practice-registration journey of manuals 002 §3.1.4 and 004 §3.2–§3.3 in a real browser
(SPEC §5.5, §11).

person (张建国, no registration yet) declares an initial registration with his employer
`enterprise` (注册申报 → 新增申报). enterprise opens 注册申报管理, ticks him and chooses 上报: the
企业承诺书 counts down 60 seconds with 确认 disabled; a form forced through before that is
refused by the server and nothing moves. Once the server's clock says a minute has passed (the
live server's clock is moved on instead of sleeping), the page unlocks, 「本公司作出上述承诺」 is
ticked and 确认 reports; 上报 again says it was already reported. The province 受理 and
审查通过 from 注册审查; the ministry 受理 and 准予注册. enterprise finds him in 注册人员查询 and
导出: the downloaded .xlsx, read back with openpyxl, holds him with the ID number as text.
"""

from __future__ import annotations

import re
from datetime import timedelta

import openpyxl
from sqlalchemy import select

from models import Registration, User, db
from models.base import utcnow as real_utcnow
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

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

ENTERPRISE = "山东鲁建建设集团有限公司"  # the demo user `enterprise` (seed/demo.py)
HOLDER = "张建国"                        # the demo user `person`, employed by it
SPECIALTY = ("01", "建筑工程")


def choose_action(page: Page, row_text: str, action: str) -> None:
    """Tick one row of the list and run a bulk action from 「批量操作」."""
    row = list_row(page, row_text)
    expect(row).to_have_count(1)
    row.locator("input.action-checkbox").check()
    page.locator(".nav-link.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a.dropdown-item", has_text=re.compile(rf"^\s*{action}\s*$")).click()


def registration_of(app, username: str) -> Registration:
    with app.app_context():
        person_id = db.session.scalar(select(User.person_id).where(User.username == username))
        reg = db.session.scalars(select(Registration).where(Registration.person_id == person_id)).one()
        db.session.expunge(reg)
        db.session.remove()
        return reg


def test_declare_report_accept_approve_and_export(live_server, browser_page, monkeypatch, tmp_path):
    page, (base, app) = browser_page, live_server
    with app.app_context():
        person_id = db.session.scalar(select(User.person_id).where(User.username == "person"))
        assert db.session.scalar(select(Registration.id).where(Registration.person_id == person_id)) is None
        id_number = db.session.scalar(select(User).where(User.username == "person")).person.id_number
        db.session.remove()

    # --- 002 §3.1.4 / 004 §3.2: the individual declares with his employer ---------------------
    sign_in(page, base, "person")
    open_menu(page, "注册申报", "注册申报")
    page.locator("#new-declaration").click()
    page.select_option("#kind", "initial")
    page.select_option("#specialty", SPECIALTY[0])
    expect(page.locator("#enterprise")).to_have_value(ENTERPRISE)  # his employer, prefilled
    page.fill("#explanation", "本人取得一级建造师资格，申请初始注册")
    page.locator("#declare-submit").click()
    flash(page, "注册申报已提交，待聘用企业上报")
    assert registration_of(app, "person").status.value == "unreported"
    snapshot(page, "registration-01-declared")
    sign_out(page)

    # --- 004 §3.2.2 上报: the 企业承诺书, 60 seconds, enforced by the server ------------------
    sign_in(page, base, "enterprise")
    open_menu(page, "注册管理", "注册申报管理")
    open_tab(page, "未上报")
    expect(list_row(page, HOLDER)).to_contain_text("未上报")
    choose_action(page, HOLDER, "上报")
    expect(page.locator("#commitment-text")).to_contain_text("本企业郑重承诺")
    countdown = page.locator("#commitment-countdown")
    assert int(countdown.get_attribute("data-remaining")) > 50
    confirm = page.locator("#commitment-confirm")
    expect(confirm).to_be_disabled()
    expect(page.locator("#commitment-tick")).to_be_disabled()  # 「本公司作出上述承诺」 not before the minute
    snapshot(page, "registration-02-commitment")
    # a client that forces the form through before the minute is up: refused, nothing moves
    page.evaluate("const t = document.getElementById('commitment-tick'); t.disabled = false; t.checked = true;"
                  "document.getElementById('commitment-form').submit()")
    flash(page, "请仔细阅读企业承诺书，60秒后方可确认上报", "danger")
    expect(page.locator("#commitment-confirm")).to_be_disabled()  # the same page, still counting
    expect(page.locator("#commitment-tick")).to_be_disabled()
    assert registration_of(app, "person").status.value == "unreported"

    # a minute passes on the server's clock (moved on rather than slept through)
    def later():
        return real_utcnow() + timedelta(seconds=61)

    monkeypatch.setattr("workflows.registration.utcnow", later)
    monkeypatch.setattr("admin_views.registrations.utcnow", later)
    # 确认 without the tick: the server says what is missing and the page comes back unlocked
    page.evaluate("document.getElementById('commitment-tick').checked = false;"
                  "document.getElementById('commitment-form').submit()")
    flash(page, "请勾选「本公司作出上述承诺」", "danger")
    expect(page.locator("#commitment-countdown")).to_have_attribute("data-remaining", "0")
    expect(page.locator("#commitment-confirm")).to_be_enabled()
    expect(page.locator("#commitment-tick")).to_be_enabled()
    page.locator("#commitment-tick").check()
    page.locator("#commitment-confirm").click()
    flash(page, "上报：成功 1 条，失败 0 条")
    assert registration_of(app, "person").status.value == "province_unaccepted"
    open_tab(page, "已上报")
    expect(list_row(page, HOLDER)).to_contain_text("省级未受理")
    # 已经上报过的再次点击上报，会出现提示
    choose_action(page, HOLDER, "上报")
    flash(page, "该申报已上报，请勿重复上报", "danger")
    snapshot(page, "registration-03-reported")
    sign_out(page)

    # --- 省级审查: 受理, then 审查通过 (to the ministry) ------------------------------------
    sign_in(page, base, "province")
    open_menu(page, "注册审查", "注册审查")
    open_tab(page, "待受理")
    choose_action(page, HOLDER, "受理")
    flash(page, "受理：成功 1 条，失败 0 条")
    open_tab(page, "待审查")
    choose_action(page, HOLDER, "审查通过")
    flash(page, "审查通过：成功 1 条，失败 0 条")
    assert registration_of(app, "person").status.value == "ministry_unaccepted"
    sign_out(page)

    # --- 部级: 受理, then 准予注册 -------------------------------------------------------------
    sign_in(page, base, "ministry")
    open_menu(page, "注册审查", "注册审查")
    open_tab(page, "待受理")
    choose_action(page, HOLDER, "受理")
    flash(page, "受理：成功 1 条，失败 0 条")
    open_tab(page, "待审查")
    choose_action(page, HOLDER, "准予注册")
    flash(page, "准予注册：成功 1 条，失败 0 条")
    reg = registration_of(app, "person")
    assert reg.status.value == "approved" and reg.registration_number and reg.valid_until
    snapshot(page, "registration-04-approved")
    sign_out(page)

    # --- 004 §3.3 注册人员查询 → 导出 ----------------------------------------------------------
    sign_in(page, base, "enterprise")
    open_menu(page, "注册管理", "注册人员查询")
    row = list_row(page, HOLDER)
    expect(row).to_contain_text(reg.registration_number)
    with page.expect_download() as info:
        page.locator("#export-xlsx").click()
    download = info.value
    assert re.fullmatch(r"注册人员-\d{8}\.xlsx", download.suggested_filename), download.suggested_filename
    path = tmp_path / "registered.xlsx"
    download.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows())
    headers = [c.value for c in rows[0]]
    mine = [r for r in rows[1:] if any(c.value == HOLDER for c in r)]
    assert len(mine) == 1, [[c.value for c in r] for r in rows]
    id_cell = mine[0][headers.index("身份证号")]
    assert id_cell.value == id_number and id_cell.data_type == "s"  # text, never a number
    number_cell = mine[0][headers.index("注册编号")]
    assert number_cell.value == reg.registration_number and number_cell.data_type == "s"
