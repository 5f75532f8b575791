"""首页 cards (SPEC §8; 002 §3.1.3 企业首页: 待上报人员 and figures): what waits for each user,
counted through visibility, linking to the filtered list — and never a 500 while a list is missing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AccountRequest, AccountStatus, Anomaly, AnomalyStatus, Registration, RegistrationStatus
from models.base import utcnow
from models.org import OrgKind
from tests.factories import make_org, make_user, user
from workflows.registration import REGISTRATION, Commitment

DEMO_USERS = ("province", "province_reviewer", "jinan", "qingdao", "inst_jinan", "inst_qingdao", "direct_inst",
              "enterprise", "enterprise2", "school", "person", "ministry")
CARD_RE = re.compile(r'class="card[^"]*home-card"\s+data-label="([^"]+)">\s*<div class="card-body">\s*'
                     r'<div class="text-muted">[^<]*</div>\s*<div class="h3 mb-0">(\d+)</div>')
LINK_RE = re.compile(r'<a href="([^"]+)" class="card[^"]*home-card" data-label="([^"]+)"')


def cards(client) -> dict[str, int]:
    html = client.get("/admin/").get_data(as_text=True)
    return {label: int(value) for label, value in CARD_RE.findall(html)}


def links(client) -> dict[str, str]:
    html = client.get("/admin/").get_data(as_text=True)
    return {label: href.replace("&amp;", "&") for href, label in LINK_RE.findall(html)}


def unreported_of(session, username) -> list[Registration]:
    return session.scalars(select(Registration).where(
        Registration.enterprise_id == user(session, username).organization_id,
        Registration.status == RegistrationStatus.unreported).order_by(Registration.id)).all()


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_demo_account_gets_its_home_page(login, username):
    resp = login(username).get("/admin/")
    assert resp.status_code == 200
    assert 'id="home-cards"' in resp.get_data(as_text=True)


def test_enterprise_sees_its_unreported_rows_and_the_number_follows_a_report(login, session):
    rows = unreported_of(session, "enterprise")
    assert rows, "the demo gives `enterprise` 未上报 rows (SPEC §12)"
    client = login("enterprise")
    shown = cards(client)
    assert shown["待上报人员"] == len(rows)
    assert links(client)["待上报人员"] == "/admin/registration_manage/?tab=unreported"
    # another enterprise's rows are not counted
    assert cards(login("enterprise2"))["待上报人员"] == len(unreported_of(session, "enterprise2")) != len(rows)

    REGISTRATION.fire(session, user(session, "enterprise"), rows[0], "report",
                      commitment=Commitment(shown_at=utcnow() - timedelta(seconds=61), ticked=True))
    assert cards(client)["待上报人员"] == len(rows) - 1


def test_enterprise_home_lists_the_people_waiting_to_be_reported(login, session):
    """002 §3.1.3: 首页 holds the 待上报人员 list (own rows only), each linking to its page."""
    rows = unreported_of(session, "enterprise")
    html = login("enterprise").get("/admin/").get_data(as_text=True)
    table = html.split('id="waiting-to-report"', 1)[1].split("</table>", 1)[0]
    for reg in rows:
        assert reg.person.name in table and f"/admin/registration_manage/details/?id={reg.id}" in table
    for other in unreported_of(session, "enterprise2"):
        assert other.person.name not in table
    assert 'id="waiting-to-report"' not in login("province").get("/admin/").get_data(as_text=True)


def test_enterprise_sees_what_to_answer_and_its_figures(login, session):
    ent = user(session, "enterprise").organization_id
    open_count = session.scalar(select(func.count()).select_from(Anomaly).where(
        Anomaly.enterprise_id == ent, Anomaly.status == AnomalyStatus.open))
    registered = session.scalar(select(func.count()).select_from(Registration).where(
        Registration.enterprise_id == ent, Registration.status == RegistrationStatus.approved,
        Registration.superseded_by_id.is_(None)))
    client = login("enterprise")
    shown = cards(client)
    assert shown["待申辩"] == open_count >= 1
    assert shown["已注册人员"] == registered and 1 <= shown["人员到期预警"] < registered
    assert links(client)["待申辩"] == "/admin/appeal/?tab=open"
    assert "待处理申辩" not in shown and "待审核注册账号" not in shown


def test_province_and_ministry_see_the_registrations_waiting_for_them(login, session):
    def count(*states):
        return session.scalar(select(func.count()).select_from(Registration).where(Registration.status.in_(states)))

    S = RegistrationStatus
    province = cards(login("province_reviewer"))
    assert province["待受理注册"] == count(S.province_unaccepted) >= 1
    assert province["待审查注册"] == count(S.province_accepted) >= 1
    assert province["待处理申辩"] == session.scalar(select(func.count()).select_from(Anomaly).where(
        Anomaly.status == AnomalyStatus.appealed)) >= 1
    assert "待上报人员" not in province
    ministry = cards(login("ministry"))
    assert ministry["待受理注册"] == count(S.ministry_unaccepted) >= 1
    assert ministry["待审查注册"] == count(S.ministry_accepted) >= 1
    assert "待处理申辩" not in ministry


def test_authority_counts_only_its_own_citys_pending_accounts(login, session):
    def pending(username):
        return session.scalar(select(func.count()).select_from(AccountRequest).where(
            AccountRequest.authority_id == user(session, username).organization_id,
            AccountRequest.status == AccountStatus.pending))

    jinan_before = pending("jinan")
    assert jinan_before >= 1
    assert cards(login("jinan"))["待审核注册账号"] == jinan_before
    qingdao_before = cards(login("qingdao"))["待审核注册账号"]
    assert qingdao_before == pending("qingdao")

    # a new enterprise account filed in 青岛 waits for 青岛 only
    qingdao = user(session, "qingdao").organization
    applicant_org = make_org(session, OrgKind.enterprise, qingdao, status="pending")
    applicant = make_user(session, applicant_org)
    session.add(AccountRequest(kind="enterprise", organization=applicant_org, user=applicant, authority=qingdao))
    session.flush()
    assert cards(login("qingdao"))["待审核注册账号"] == qingdao_before + 1
    assert cards(login("jinan"))["待审核注册账号"] == jinan_before


def test_enterprise_change_waiting_for_the_province(login, session):
    from models import EnterpriseChange, EnterpriseChangeStatus

    waiting = session.scalar(select(func.count()).select_from(EnterpriseChange).where(
        EnterpriseChange.status == EnterpriseChangeStatus.pending_province))
    assert waiting >= 1
    assert cards(login("province"))["待审核企业信息变更"] == waiting
    assert cards(login("jinan"))["待审核企业信息变更"] == 0  # 瑞丰's change has left 济南


def test_a_card_whose_list_is_missing_has_no_link(app):
    from admin_views.menu import _link

    with app.test_request_context("/admin/"):
        assert _link("no_such_view.index_view") is None
        assert _link("appeal.index_view", tab="open") == "/admin/appeal/?tab=open"
