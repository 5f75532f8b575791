"""系统管理 › 接口密钥 in a browser at 1366×768 (issue 20 item 3).

`inst_jinan`, an institution's administrator, opens 系统管理 › 接口密钥 › 新建, names a key, gives it
证书 and 批次状态, and sees the token once (screenshot ``api-key-created.png``). Another system —
here ``requests``, with no cookie — reads ``/api/v1/certificates`` with it; the list then shows the
key's 最近调用 (screenshot ``api-keys-list.png``). 吊销 (after the confirmation dialog) takes effect at
the very next call: 401 「该接口密钥已吊销」.
"""

from __future__ import annotations

import re

import requests

from tests.browser.conftest import (
    ARTIFACTS,
    flash,
    list_row,
    open_menu,
    playwright_unavailable,
    sign_in,
    snapshot,
)

try:
    from playwright.sync_api import expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

OFFICE = {"width": 1366, "height": 768}
NAME = "人事系统数据同步"
TOKEN = re.compile(r"^csk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$")


def call(base: str, token: str) -> requests.Response:
    return requests.get(f"{base}/api/v1/certificates", params={"limit": 2},
                        headers={"Authorization": f"Bearer {token}"}, timeout=15)


def keep(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_horizontal_scroll(page) -> None:
    """At 1366 px nothing sticks out to the right (the list's ten columns included)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= OFFICE["width"], f"the page is {width}px wide at {OFFICE['width']}px"


def test_an_institution_creates_uses_and_revokes_a_key(live_server, browser_page):
    page, (base, _app) = browser_page, live_server
    page.set_viewport_size(OFFICE)
    sign_in(page, base, "inst_jinan")
    open_menu(page, "系统管理", "接口密钥")
    expect(page).to_have_url(re.compile(r"/admin/api_key/"))
    page.locator(".list-menu-bar a[href*='/admin/api_key/new/']").click()

    # 新建: the organization is the institution's own; only the scopes its users see are offered
    expect(page.locator("#organization-readonly")).to_have_value("济南市建设职业技能培训中心")
    expect(page.locator("#scope-registrations")).to_have_count(0)
    expect(page.locator("#expires_on")).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    expect(page.locator("#rate_limit")).to_have_value("600")
    page.fill("#name", NAME)
    page.get_by_label("证书", exact=True).check()
    page.get_by_label("批次状态", exact=True).check()
    no_horizontal_scroll(page)
    snapshot(page, "api-key-form")
    page.locator("#api-key-save").click()

    # the token, once, with the warning and how to use it
    flash(page, f"已新建接口密钥「{NAME}」")
    expect(page.locator("#one-time-warning")).to_have_text("密钥只显示这一次，请立即复制保存；遗失后只能吊销并新建")
    token = page.locator("#one-time-token").input_value()
    assert TOKEN.match(token), token
    expect(page.locator("#api-key-usage")).to_contain_text("Authorization: Bearer")
    expect(page.locator("#api-key-usage a#api-docs-link")).to_have_attribute("href", "/api/v1/docs")
    no_horizontal_scroll(page)
    keep(page, "api-key-created")

    # another system reads with it
    resp = call(base, token)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["items"]) <= 2

    # the list: the key, its number (never the secret), its last call
    open_menu(page, "系统管理", "接口密钥")
    row = list_row(page, NAME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(token[:len("csk_") + 12] + "_…")
    expect(row).to_contain_text("证书、批次状态")
    expect(row).to_contain_text("有效")
    expect(row).not_to_contain_text("从未调用")
    assert token not in page.content()
    no_horizontal_scroll(page)
    keep(page, "api-keys-list")

    # 吊销, confirmed in the dialog; the details show the call and the new state
    row.locator("a.key-revoke").click()
    expect(page.locator("#key-calls")).to_contain_text("GET /api/v1/certificates")
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.locator("#key-revoke-button").click()
    flash(page, f"已吊销接口密钥「{NAME}」")
    assert dialogs and "吊销" in dialogs[0]
    no_horizontal_scroll(page)
    snapshot(page, "api-key-details")
    expect(page.locator("#key-revoke-button")).to_have_count(0)
    expect(page.locator("table.searchable")).to_contain_text("已吊销")

    # the very next call is refused
    resp = call(base, token)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["detail"] == "该接口密钥已吊销"


def test_the_province_chooses_the_organization_and_sees_which_kinds_each_scope_suits(live_server, browser_page):
    page, (base, _app) = browser_page, live_server
    page.set_viewport_size(OFFICE)
    sign_in(page, base, "province")
    open_menu(page, "系统管理", "接口密钥")
    page.locator(".list-menu-bar a[href*='/admin/api_key/new/']").click()
    select = page.locator("#organization_id")
    expect(select.locator("optgroup")).not_to_have_count(0)
    select.select_option(label="济南市建设职业技能培训中心（JG370101）")
    expect(page.locator("#api-key-scopes .form-check")).to_have_count(4)
    expect(page.locator("#api-key-scopes")).to_contain_text("适用于：")
    page.fill("#name", "越界的数据范围")
    page.get_by_label("注册人员", exact=True).check()  # an institution's users never see registrations
    page.locator("#api-key-save").click()
    expect(page.locator("#api-key-scopes .invalid-feedback")).to_have_text("所选数据范围超出该机构可见的数据")
    expect(select).to_have_value(re.compile(r"^\d+$"))
    no_horizontal_scroll(page)
    snapshot(page, "api-key-form-province")
