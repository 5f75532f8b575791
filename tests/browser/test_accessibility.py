"""Accessible to everyone who must use it (GB/T 37668-2019, WCAG 2.1 AA; README "Accessibility").

axe-core (vendored in tests/browser/vendor/, no network) runs in Chromium over the main pages of
every demo role — 首页, the lists of its menus, a record's details, a form — and over the public
pages, with the WCAG 2.0/2.1 A and AA rules; every page must report no violation at all.

To check a new screen, add its path to its roles in ``ROLE_PAGES`` (or to ``PUBLIC_PAGES``):
a plain path is opened as it is; ``First(list, part)`` opens ``list`` and then the first link on
it whose address contains ``part`` (a record's 详情, 修改 …), so no demo id is written here; a
function ``(page, base)`` brings the page to a state worth checking (a refusal, an open dialog).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import select

from models import Certificate, Person, db
from tests.browser.conftest import flash, sign_in
from tests.conftest import DEMO_PASSWORD

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    from tests.browser.conftest import playwright_unavailable

    playwright_unavailable()

AXE_SOURCE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


class First(NamedTuple):
    """The first link on the page ``list`` whose address contains ``part``."""

    list: str
    part: str


DETAILS, EDIT, NEW = "/details/", "/edit/", "/new/"


def open_first(page: Page, base: str, entry: First) -> None:
    response = page.goto(base + entry.list)
    assert response is not None and response.ok, f"{entry.list}: HTTP {response and response.status}"
    link = page.locator(f"a[href*='{entry.part}']:not(nav *)").first
    expect(link).to_be_attached()  # the list has such a row: else the check would test nothing
    response = page.goto(base + link.get_attribute("href"))
    assert response is not None and response.ok, f"{page.url}: HTTP {response and response.status}"


def cancel_refused(page: Page, base: str) -> None:
    """注销申请 submitted without its 申请说明: the form again, under the refusal (a flash message
    with its close button)."""
    open_first(page, base, First("/admin/business_apply/", "/cancel/"))
    page.locator("#cancel-submit").click()
    flash(page, "", "danger")


def image_enlarged(page: Page, base: str) -> None:
    """企业信息's 证明材料, one of them enlarged (the image dialog open)."""
    page.goto(f"{base}/admin/enterprise_info/")
    page.wait_for_load_state("load")  # Bootstrap's modal script runs at the end of <body>
    page.locator("a.image-enlarge").first.click()
    expect(page.locator("#image-modal")).to_be_visible()
    page.wait_for_timeout(400)  # the fade-in: axe measures contrast on what is painted

def lost_picker(page: Page, base: str) -> None:
    """选择遗失证书 of the enterprise's 补办 draft (证书管理 → 证书遗失重打申请 → 待提交 → 详情)."""
    page.goto(f"{base}/admin/lost_reissue/")
    page.locator("table.model-list tr", has_text="待提交").first.locator("a.row-details").click()
    page.locator("#lost-pick").click()
    expect(page.locator("table input.lost-check, #lost-none").first).to_be_attached()


PUBLIC_PAGES = ["/login", "/forgot", "/register/enterprise", "/register/individual", "/verify"]

# Pages every role has (the top bar's user menu): checked once, for the province.
COMMON = ["/admin/message/", First("/admin/message/", DETAILS), "/admin/my_export/", "/admin/profile/",
          "/admin/profile/phone/", "/password", "/admin/org_profile/", "/admin/org_profile/edit/"]

Entry = str | First | Callable[[Page, str], None]

ROLE_PAGES: dict[str, list[Entry]] = {
    "province": [
        "/admin/", "/admin/batch_review/", First("/admin/batch_review/", DETAILS),
        "/admin/certificate_library/", First("/admin/certificate_library/", DETAILS), "/admin/segment/",
        "/admin/review_change/", "/admin/business_overview/", First("/admin/business_overview/", DETAILS),
        "/admin/account_review/", First("/admin/account_review/", DETAILS),
        "/admin/enterprise_change_review/", First("/admin/enterprise_change_review/", DETAILS),
        "/admin/registration_review/", First("/admin/registration_review/", DETAILS), "/admin/appeal_review/",
        "/admin/authority_manage/", First("/admin/authority_manage/", NEW),
        "/admin/institution_manage/", First("/admin/institution_manage/", EDIT),
        "/admin/user_manage/", First("/admin/user_manage/", EDIT), "/admin/permission_manage/",
        First("/admin/permission_manage/", DETAILS), "/admin/audit_log/", First("/admin/audit_log/", DETAILS),
        "/admin/data_fix/", "/admin/data_fix/?kind=person&q=济南", "/admin/statistics/", "/admin/own_scope/",
        *COMMON,
    ],
    "province_reviewer": [
        "/admin/", "/admin/batch_review/", "/admin/review_reissue/", First("/admin/review_reissue/", DETAILS),
        "/admin/review_cancel/", First("/admin/review_cancel/", DETAILS), "/admin/appeal_review/",
        First("/admin/appeal_review/", DETAILS), "/admin/statistics/",
    ],
    "jinan": [
        "/admin/", "/admin/batch_review/", First("/admin/batch_review/", DETAILS), "/admin/certificate/",
        First("/admin/certificate/", DETAILS), "/admin/review_change/", First("/admin/review_change/", DETAILS),
        "/admin/account_review/", "/admin/enterprise_change_review/", "/admin/institution_manage/",
        First("/admin/institution_manage/", DETAILS), "/admin/statistics/",
        "/admin/city_enterprise/", First("/admin/city_enterprise/", DETAILS),
    ],
    "inst_jinan": [
        "/admin/", "/admin/batch-create/", "/admin/batch/", First("/admin/batch/", DETAILS),
        "/admin/certificate/", First("/admin/certificate/", DETAILS), "/admin/print_format/",
        "/admin/business_apply/", "/admin/application/", First("/admin/application/", DETAILS),
        "/admin/business_print/", "/admin/user_manage/", First("/admin/user_manage/", NEW),
        First("/admin/business_apply/", "/change/"), cancel_refused,
    ],
    "direct_inst": [
        "/admin/", "/admin/batch/", "/admin/certificate/", First("/admin/certificate/", DETAILS),
        "/admin/business_apply/", "/admin/application/",
    ],
    "enterprise": [
        "/admin/", "/admin/business_apply/", "/admin/application/", First("/admin/application/", DETAILS),
        "/admin/enterprise_info/", "/admin/enterprise_info/edit/", "/admin/staff/", "/admin/staff/new/",
        First("/admin/staff/", EDIT), "/admin/registration_manage/", First("/admin/registration_manage/", DETAILS),
        "/admin/registered/", First("/admin/registered/", DETAILS), "/admin/expiring/", "/admin/appeal/",
        First("/admin/appeal/", DETAILS), First("/admin/business_apply/", "/reissue/"), image_enlarged,
        "/admin/student/", First("/admin/student/", DETAILS), "/admin/lost_reissue/", lost_picker,
    ],
    "school": ["/admin/", "/admin/business_apply/", "/admin/application/", "/admin/user_manage/"],
    "person": ["/admin/", "/admin/my_info/", "/admin/business_apply/", "/admin/application/", "/admin/declaration/",
               "/admin/declaration/declare/"],
    "ministry": ["/admin/", "/admin/registration_review/", First("/admin/registration_review/", DETAILS)],
}


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it stands, one line each
    (rule, impact, the elements, what to fix).

    axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy does
    not govern: Playwright's add_script_tag would insert an inline <script> without the response's
    nonce, which the policy refuses (and ``browser_page`` would fail the test for it). So the
    pages are checked under their real policy, no bypass_csp."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + " — " + (n.failureSummary || "").replace(/\\s+/g, " ")),
            }));
        }""",
        WCAG_AA,
    )
    return [f"{v['id']} ({v['impact']}): {v['help']}\n      " + "\n      ".join(v["nodes"]) for v in found]


def check_pages(page: Page, base: str, pages: list[Entry]) -> list[str]:
    """Opens each page (a First: its list, then the link; a function: its steps) and returns
    what axe found there, by page."""
    problems = []
    for entry in pages:
        if isinstance(entry, First):
            open_first(page, base, entry)
        elif callable(entry):
            entry(page, base)
        else:
            response = page.goto(base + entry)
            assert response is not None and response.ok, f"{entry}: HTTP {response and response.status}"
        where = page.url.removeprefix(base) + (f" ({entry.__name__})" if callable(entry) else "")
        problems += [f"{where}: {line}" for line in axe_violations(page)]
    return problems


def fail_on(problems: list[str], who: str) -> None:
    if problems:
        pytest.fail(f"axe-core (WCAG 2.1 AA) found {len(problems)} violation(s) for {who}:\n  "
                    + "\n  ".join(problems), pytrace=False)


def test_axe_reports_a_violation(live_server, browser_page: Page):
    """A page made inaccessible on purpose is reported: the zero below is axe's, not a silent run."""
    page, (base, _) = browser_page, live_server
    page.goto(f"{base}/login")
    page.evaluate("""() => {
        document.documentElement.removeAttribute("lang");
        document.querySelector("label[for=username]").remove();
    }""")
    found = "\n".join(axe_violations(page))
    assert "html-has-lang" in found and "label" in found and "#username" in found, found


@pytest.mark.parametrize("username", list(ROLE_PAGES))
def test_main_pages_of_a_role_have_no_violation(live_server, browser_page: Page, username):
    """One browser context per role: its 首页, lists, a details page and a form."""
    page, (base, _) = browser_page, live_server
    sign_in(page, base, username)
    fail_on(check_pages(page, base, ROLE_PAGES[username]), username)


def test_public_pages_have_no_violation(live_server, browser_page: Page):
    """登录 (both steps), 忘记密码, the two registrations and 证书查询 with its result."""
    page, (base, app) = browser_page, live_server
    problems = check_pages(page, base, PUBLIC_PAGES)

    page.goto(f"{base}/login")  # the second step: the SMS code
    page.fill("#username", "person")
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#sms-code-hint strong")).to_be_visible()
    problems += [f"{page.url} (短信验证码): {line}" for line in axe_violations(page)]

    with app.app_context():
        number, name = db.session.execute(
            select(Certificate.number, Person.name).join(Certificate.person).order_by(Certificate.id).limit(1)).one()
    page.goto(f"{base}/verify")
    page.fill("#number", number)
    page.fill("#name", name)
    page.locator("#verify-button").click()
    expect(page.locator("h5", has_text="证书查询结果")).to_be_visible()
    problems += [f"/verify (查询结果): {line}" for line in axe_violations(page)]
    fail_on(problems, "the public pages")
