"""An office screen, 1366×768 (issue 17 item 2): for every demo role, the navigation bar is one line,
and every screen its menus open — lists and forms — fits the window: no horizontal scrolling of
the page, none inside a table's scroll box. A screenshot of each screen is kept in
test-artifacts/office_<role>_<endpoint>.png."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, playwright_unavailable, sign_in

try:
    from playwright.sync_api import expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

OFFICE = {"width": 1366, "height": 768}
ROLES = ("province", "province_reviewer", "jinan", "inst_jinan", "direct_inst", "enterprise", "school", "person",
         "ministry")

# every link of the navigation bar that opens a screen (menus, their entries, the user menu)
MENU_LINKS = """() => [...document.querySelectorAll('nav.navbar a[href^="/admin"]')]
    .map(a => a.getAttribute('href')).filter(h => h && !h.startsWith('#'))"""

# what scrolls sideways: the page, and every box around a table (Bootstrap's .table-responsive …)
OVERFLOW = """() => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) out.push(`page ${root.scrollWidth} > ${root.clientWidth}`);
  for (const table of document.querySelectorAll('table')) {
    // a box that clips or scrolls its content (.table-responsive): a wider table is cut off inside it
    for (let box = table.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== 'visible' && box.scrollWidth > box.clientWidth) {
        out.push(`${table.id || table.className} in ${box.className || box.tagName}: ${box.scrollWidth} > ${box.clientWidth}`);
        break;
      }
    }
    if (table.getBoundingClientRect().right > root.clientWidth + 1) out.push(`${table.id || table.className} cut off`);
  }
  return out;
}"""

# the bar is one line: every top-level entry centred on the same line, the bar one line high
NAV_LINES = """() => {
  const nav = document.querySelector('nav.navbar');
  const centres = [...nav.querySelectorAll('.navbar-brand, .navbar-nav > li > a')]
    .filter(e => e.offsetParent !== null).map(e => { const r = e.getBoundingClientRect(); return (r.top + r.bottom) / 2; });
  return {height: nav.getBoundingClientRect().height, spread: Math.max(...centres) - Math.min(...centres),
          entries: centres.length};
}"""


def endpoint_of(href: str) -> str:
    path = href.split("?")[0].strip("/").split("/")
    return "_".join(part for part in path[1:] if part) or "home"


@pytest.mark.parametrize("role", ROLES)
def test_every_screen_of_the_role_fits_an_office_screen(live_server, browser_page, role):
    base, _app = live_server
    page = browser_page
    page.set_viewport_size(OFFICE)
    sign_in(page, base, role)
    page.wait_for_load_state("load")  # 首页's URL commits before its document has loaded
    expect(page.locator("nav.navbar")).to_be_visible()
    nav = page.evaluate(NAV_LINES)
    assert nav["entries"] >= 3 and nav["spread"] < 8, f"{role}: the navigation wraps: {nav}"
    assert nav["height"] <= 64, f"{role}: the navigation is {nav['height']} px high"
    screens = list(dict.fromkeys(page.evaluate(MENU_LINKS)))
    assert len(screens) >= 3, screens
    ARTIFACTS.mkdir(exist_ok=True)
    problems = []
    for href in screens:
        page.goto(base + href)
        expect(page.locator("nav.navbar")).to_be_visible()
        overflow = page.evaluate(OVERFLOW)
        if overflow:
            problems.append(f"{href}: {overflow}")
        if page.evaluate(NAV_LINES)["spread"] >= 8:
            problems.append(f"{href}: the navigation wraps")
        name = re.sub(r"[^\w.-]+", "_", endpoint_of(href))
        page.screenshot(path=str(ARTIFACTS / f"office_{role}_{name}.png"))
    assert not problems, "\n".join(problems)
