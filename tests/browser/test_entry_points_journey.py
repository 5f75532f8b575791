"""The manuals' entry points in a real browser (issue 17 items 3 and 4).

- 000 §二(二)(1), 001: the enterprise clicks 培训报名 → 学员基本信息（企业）, finds the holder, clicks
  the holder's 姓名, reaches 人员详细信息, clicks 变更申请, fills in the change (one item only) and
  submits; back on 人员详细信息 the application shows with its 审批状态.
- 000 §二(二)(2), 001: the individual clicks 我的基本信息, clicks 变更申请, fills in and submits.
- 003 §三, 002 §3.1.3: 首页 of each role at 1366×768 — the province and the city authority see the
  work waiting for them and open it from its count; the institution its quick links; the
  enterprise its entry points; the individual their certificates. Screenshots of each 首页 are
  kept in test-artifacts/.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from flask import Flask
from sqlalchemy import select

from models import ApplicationItem, Certificate, Organization, Person, User, db
from models.certificate import CertificateStatus
from tests.browser.conftest import (
    ARTIFACTS,
    flash,
    open_menu,
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
OFFICE_SCREEN = {"width": 1366, "height": 768}


class Holder(NamedTuple):
    name: str
    id_number: str
    number: str


def free_holder(app: Flask, *, employer: str | None = None, username: str | None = None) -> Holder:
    """A holder (the enterprise's employee, or the individual ``username``) with a valid
    certificate no demo application holds: a 变更 of it can be filed."""
    with app.app_context():
        busy = select(ApplicationItem.certificate_id)
        stmt = (select(Person.name, Person.id_number, Certificate.number)
                .join(Certificate, Certificate.person_id == Person.id)
                .where(Certificate.status == CertificateStatus.valid, Certificate.id.notin_(busy)))
        if employer is not None:
            stmt = stmt.where(Person.employer_id.in_(select(Organization.id).where(Organization.name == employer)))
        if username is not None:
            stmt = stmt.where(Person.id.in_(select(User.person_id).where(User.username == username)))
        row = db.session.execute(stmt.order_by(Person.id.desc(), Certificate.number)).first()
        assert row is not None, "the demo has such a holder (SPEC §12)"
        return Holder(*row)


def file_the_change(page: Page, tmp_path, holder: Holder, new_name: str) -> None:
    """On 人员详细信息: 变更申请 of the certificate → 姓名变更 → 下一步 → 新姓名, 申请说明, the signed
    form → 完成 (000 §二(二): 每次变更的项目只能…选择一个)."""
    row = page.locator("#person-certificates tbody tr", has_text=holder.number)
    row.get_by_role("link", name="变更申请").click()
    expect(page.locator("#certificate-card")).to_contain_text(holder.number)
    page.get_by_label("姓名变更").check()
    page.locator("#change-next").click()
    page.fill("#new_name", new_name)
    page.fill("#explanation", "持证人已更名，附户籍证明及变更申请表")
    form = tmp_path / "变更申请表.png"
    form.write_bytes(make_png(160, 100))
    page.set_input_files("#files", str(form))
    page.locator("#change-submit").click()
    flash(page, "变更申请已提交")


def test_enterprise_changes_an_employees_name_from_the_student_list(live_server, browser_page: Page, tmp_path):
    base, app = live_server
    page = browser_page
    holder = free_holder(app, employer=ENTERPRISE)
    sign_in(page, base, "enterprise")
    open_menu(page, "培训报名", "学员基本信息（企业）")
    page.fill("input[name=search]", holder.id_number)
    page.keyboard.press("Enter")
    page.locator("table.model-list a.person-name", has_text=holder.name).click()
    expect(page.locator("#person-title")).to_have_text("人员详细信息")
    expect(page.locator("#person-record")).to_contain_text(holder.id_number)
    snapshot(page, "entry_student_details")
    file_the_change(page, tmp_path, holder, "王更名")

    # 当原用户中显示审批通过后，即变更完成 (001): the holder's page shows the application and its status
    open_menu(page, "培训报名", "学员基本信息（企业）")
    page.fill("input[name=search]", holder.id_number)
    page.keyboard.press("Enter")
    page.locator("table.model-list a.person-name", has_text=holder.name).click()
    applications = page.locator("#person-applications tbody tr", has_text=holder.number)
    expect(applications).to_have_count(1)
    expect(applications).to_contain_text("变更")
    expect(applications).to_contain_text("待审核(主管部门)")


def test_individual_files_a_change_from_my_basic_information(live_server, browser_page: Page, tmp_path):
    base, app = live_server
    page = browser_page
    holder = free_holder(app, username="person")
    sign_in(page, base, "person")
    page.locator("nav a.nav-link", has_text=re.compile(r"^\s*我的基本信息\s*$")).click()
    expect(page.locator("#person-title")).to_have_text("人员详细信息")
    expect(page.locator("#person-record")).to_contain_text(holder.id_number)
    file_the_change(page, tmp_path, holder, "张更名")
    page.locator("nav a.nav-link", has_text=re.compile(r"^\s*我的基本信息\s*$")).click()
    applications = page.locator("#person-applications tbody tr", has_text=holder.number)
    expect(applications).to_contain_text("待审核(主管部门)")
    # the open application is the certificate's one: a second 变更申请 of it is refused, naming it
    page.locator("#person-certificates tbody tr", has_text=holder.number).get_by_role("link", name="变更申请").click()
    page.get_by_label("姓名变更").check()
    page.locator("#change-next").click()
    page.fill("#new_name", "张再改")
    page.locator("#change-submit").click()
    expect(page.locator(".alert-danger, .alert-error")).to_be_visible()


# -- 首页 per role at 1366×768 ---------------------------------------------------------------------
def home_at_office_size(page: Page, base: str, username: str) -> None:
    page.set_viewport_size(OFFICE_SCREEN)
    sign_in(page, base, username)
    expect(page.locator("#home-cards")).to_be_attached()
    overflow = page.evaluate("document.querySelector('#home-cards').scrollWidth - "
                             "document.querySelector('#home-cards').clientWidth")
    assert overflow <= 0, f"{username}'s 首页 cards are wider than the screen by {overflow}px"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"home_{username}_1366x768.png"))


def card(page: Page, label: str):
    return page.locator(f'#home-cards .home-card[data-label="{label}"]')


def test_home_per_role_at_office_screen_size(live_server, browser_page: Page):
    """003 §三 省厅/主管部门首页: 可快捷处理待审核的批次和待审核的证书业务, the 6-month chart and
    the valid total; 省直所/单位首页: 快捷创建批次、打印证书、发起证书业务、查看已申请证书业务."""
    base, _app = live_server
    page = browser_page

    home_at_office_size(page, base, "province")
    for label in ("待审核批次", "待审核变更业务", "待审核补办业务", "待审核注销业务", "有效证书总数"):
        expect(card(page, label)).to_be_visible()
    expect(page.locator("#home-chart")).to_contain_text("近6个月发证数量（含已注销、已作废）")
    sign_out(page)

    home_at_office_size(page, base, "jinan")
    count = card(page, "待审核变更业务").locator(".h3").inner_text().strip()
    assert int(count) > 0, "the demo has a 变更 waiting for 济南"
    card(page, "待审核变更业务").click()
    expect(page).to_have_url(re.compile(r"/admin/review_change/\?tab=pending$"))
    expect(page.locator("#status-tabs a.nav-link.active")).to_have_text("待审核")
    expect(page.locator("table.model-list tbody tr")).to_have_count(int(count))
    sign_out(page)

    home_at_office_size(page, base, "inst_jinan")
    for label in ("创建批次", "打印证书", "发起证书业务", "查看已申请证书业务"):
        expect(page.locator("#quick-links").get_by_role("link", name=label, exact=True)).to_be_visible()
    page.locator("#quick-links").get_by_role("link", name="发起证书业务", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/business_apply/$"))
    page.go_back()
    sign_out(page)

    home_at_office_size(page, base, "enterprise")
    expect(page.locator("#waiting-to-report")).to_be_visible()
    page.locator("#quick-links").get_by_role("link", name="证书遗失重打申请", exact=True).click()
    expect(page.locator("table.model-list thead")).to_contain_text("审批状态")
    sign_out(page)

    home_at_office_size(page, base, "person")
    expect(page.locator("#my-certificates tbody tr")).not_to_have_count(0)
    expect(page.locator("#my-declarations")).to_be_visible()
    expect(card(page, "我的有效证书")).to_be_visible()
