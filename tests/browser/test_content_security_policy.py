"""The Content-Security-Policy leaves every screen working (README "Security headers").

The policy refuses inline event handlers, javascript: links and scripts or styles without the
response's nonce. ``browser_page`` fails any browser test whose pages reported a violation or an
uncaught JavaScript error; here, several roles open every entry of their menus (and the first
record of each list), and the pieces of JavaScript a journey may not reach are used once:
Flask-Admin's filters with their date picker and select2, its bulk-action menu, the 「列表」 tab
and pager links to javascript:void(0), a data-confirm form, the 证明材料 image modal, the SMS
button of the registration page and the charts drawn as inline SVG.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import open_menu, open_tab, playwright_unavailable, sign_in

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()


def menu_pages(page: Page) -> list[str]:
    """Every admin address the top bar links to (menus, 我的消息, the user menu), in order — read
    once the page signed in to has loaded (its URL is there before its document: a race)."""
    page.wait_for_load_state()
    page.locator("nav a[href^='/admin']").first.wait_for(state="attached")
    hrefs = page.eval_on_selector_all("nav a[href^='/admin']", "links => links.map(a => a.getAttribute('href'))")
    return list(dict.fromkeys(hrefs))


def first_record(page: Page) -> str | None:
    link = page.locator("table.model-list a[href*='/details/']").first
    return link.get_attribute("href") if link.count() else None


def test_the_detector_catches_a_violation(live_server, browser_page: Page, page_problems):
    """If nothing reported violations, every other test here would pass for the wrong reason."""
    page, (base, _) = browser_page, live_server
    page.goto(f"{base}/login")
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";  // no nonce: refused
        document.body.appendChild(script);
    }""")
    for _ in range(40):  # the report is an event, then a call back to Python
        if any("script-src" in p for p in page_problems):
            break
        page.wait_for_timeout(50)
    assert page.evaluate("window.injected === undefined")
    assert any("script-src" in p for p in page_problems), page_problems
    page_problems.clear()


@pytest.mark.parametrize("username", ["province", "jinan", "inst_jinan", "enterprise", "person"])
def test_every_menu_page_of_a_role_runs_without_a_violation(live_server, browser_page: Page, page_problems,
                                                           username):
    page, (base, _) = browser_page, live_server
    sign_in(page, base, username)
    pages = menu_pages(page)
    assert len(pages) >= 3, pages
    for href in pages:
        response = page.goto(base + href)
        assert response.ok, f"{href}: {response.status}"
        assert "'unsafe-inline'" not in re.search(r"script-src[^;]*", response.headers["content-security-policy"])[0]
        record = first_record(page)
        if record:
            assert page.goto(base + record).ok, record
        assert not page_problems, f"{href}: {page_problems}"


def test_flask_admins_scripts_run_under_the_policy(live_server, browser_page: Page, page_problems):
    page, (base, _) = browser_page, live_server
    sign_in(page, base, "inst_jinan")

    # 首页's chart: inline SVG, sized by app.css (no style attribute)
    chart = page.locator("#issued-chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 100

    open_menu(page, "证书管理", "证书查看")
    # 「列表」 links to javascript:void(0): a click does nothing and reports nothing — even one made
    # while the page is still loading (admin.js listens from <head>)
    page.goto(f"{base}/admin/certificate/", wait_until="commit")
    page.locator(".nav-tabs a.nav-link.active", has_text="列表").click()
    page.wait_for_load_state("load")
    page.locator(".nav-tabs a.nav-link.active", has_text="列表").click()
    # 添加筛选器 → 发证日期 介于: bs4_filters.js builds the row, select2 the operation, a date range picker
    page.locator("a.dropdown-toggle", has_text="添加筛选器").click()
    page.locator(".field-filters a.filter", has_text="发证日期").first.click()
    row = page.locator("table.filters tr").last
    expect(row).to_be_visible()
    row.locator(".select2-container").first.click()
    page.locator(".select2-drop-active .select2-result-label", has_text="介于").click()
    row.locator("input.filter-val").click()
    expect(page.locator(".daterangepicker").last).to_be_visible()
    page.keyboard.press("Escape")

    # 批量操作 with nothing ticked: actions.js says so (an alert), nothing is posted
    messages: list[str] = []

    def dismiss(dialog):
        messages.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto(f"{base}/admin/certificate/")
    page.locator("a.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a[data-model-action]").first.click()
    page.wait_for_timeout(300)
    assert messages and "请至少选择" in messages[0], messages
    # ticked: 标记未打印 asks first (dismissed: nothing posted), 打印证书 opens the print page
    page.locator("table.model-list input.action-checkbox").first.check()
    url = page.url
    page.locator("a.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a[data-model-action='wf_mark_unprinted']").click()
    page.wait_for_timeout(300)
    assert messages[1:] == ["确定将所选证书标记为未打印？"] and page.url == url, messages
    page.locator("a.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a[data-model-action='print']").click()
    expect(page).to_have_url(re.compile(r"/admin/certificate/print/"))
    # the sheet's millimetre positions are style attributes, which this page's policy allows
    sheet = page.locator(".sheet").first
    expect(sheet).to_be_visible()
    assert sheet.bounding_box()["width"] > 500 and page.locator(".sheet svg").count() >= 1
    page.remove_listener("dialog", dismiss)
    assert not page_problems, page_problems


def test_a_data_confirm_form_asks_first(live_server, browser_page: Page, page_problems):
    """删除 of an organization asks (admin.js); dismissed, the organization stays."""
    page, (base, _) = browser_page, live_server
    sign_in(page, base, "jinan")
    open_menu(page, "系统管理", "单位管理")
    page.locator("table.model-list a[href*='/details/']").first.click()
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    url = page.url
    page.locator("#org-delete-button").click()
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith("确定删除"), asked
    assert page.url == url
    accepted: list[str] = []
    page.once("dialog", lambda dialog: (accepted.append(dialog.message), dialog.accept()))
    page.locator("#org-delete-button").click()
    expect(page.locator(".alert")).to_be_visible()  # the server's answer (refused: the unit holds data)
    assert accepted
    assert not page_problems, page_problems


def test_the_enterprises_scripts(live_server, browser_page: Page, page_problems):
    """The 证明材料 image modal (image-modal.js) and the 企业承诺书 countdown (commitment.js)."""
    page, (base, _) = browser_page, live_server
    sign_in(page, base, "enterprise")
    open_menu(page, "注册管理", "注册申报管理")
    open_tab(page, "未上报")
    page.locator("table.model-list input.action-checkbox").first.check()
    page.clock.install()  # the page's own clock, moved on below; time flows as usual until then
    page.locator("a.dropdown-toggle", has_text="批量操作").click()
    page.locator(".dropdown-menu.show a[data-model-action]", has_text=re.compile(r"^\s*上报\s*$")).click()
    seconds = page.locator("#commitment-seconds")
    start = int(seconds.inner_text())
    expect(seconds).not_to_have_text(str(start), timeout=3_000)  # counting down in the page
    expect(page.locator("#commitment-confirm")).to_be_disabled()
    tick = page.locator("#commitment-tick")
    expect(tick).to_be_disabled()  # 「本公司作出上述承诺」 cannot be ticked before the minute is over
    page.clock.run_for(61_000)  # the minute passes in the page: the script unlocks the tick and 确认
    expect(page.locator("#commitment-countdown")).to_have_attribute("data-remaining", "0")
    expect(tick).to_be_enabled()
    expect(page.locator("#commitment-confirm")).to_be_enabled()

    page.goto(f"{base}/admin/enterprise_info/")
    thumbnail = page.locator(".image-enlarge").first  # the demo enterprise's 营业执照
    expect(thumbnail.locator("img")).to_be_visible()
    thumbnail.click()
    expect(page.locator("#image-modal")).to_be_visible()
    expect(page.locator("#image-modal-img")).to_have_attribute("src", re.compile(r"inline=1"))
    page.wait_for_function("document.getElementById('image-modal-img').naturalWidth > 0")  # img-src 'self'
    assert not page_problems, page_problems


def test_the_public_pages_scripts_run(live_server, browser_page: Page, page_problems):
    page, (base, _) = browser_page, live_server
    page.goto(f"{base}/register/individual")
    page.fill("#phone", "13900001234")
    page.locator("#send-sms").click()
    expect(page.locator("#sms-status")).not_to_be_empty()
    page.goto(f"{base}/verify")
    page.fill("#number", "000")
    page.fill("#name", "张三")
    page.get_by_role("button", name=re.compile("查询")).click()
    expect(page.locator("#verify-error, .alert")).to_be_visible()  # the POST passed CSRF and form-action
    assert not page_problems, page_problems


def test_statistics_chart_renders(live_server, browser_page: Page, page_problems):
    page, (base, _) = browser_page, live_server
    sign_in(page, base, "province")
    open_menu(page, "统计分析", "统计分析")
    chart = page.locator("#city-chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 100
    assert not page_problems, page_problems
