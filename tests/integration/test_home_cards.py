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


# -- issue 17 item 4: 首页 per role (003 §三, 002 §3.1.3) ------------------------------------------
BUSINESS_CARDS = {"待审核变更业务": ("change", "review_change"), "待审核补办业务": ("reissue", "review_reissue"),
                  "待审核注销业务": ("cancel", "review_cancel")}


@pytest.mark.parametrize("username", ["jinan", "province"])
def test_reviewers_see_the_certificate_business_waiting_for_them_by_kind(login, session, username):
    """003 §三 可快捷处理待审核的证书业务: one card per kind, its count the rows of the list it opens."""
    from models import CertificateApplication
    from workflows.business import BUSINESS, REVIEWS
    from workflows.visibility import visible

    client = login(username)
    shown, linked = cards(client), links(client)
    reviewer = user(session, username)
    waiting = BUSINESS.awaiting(reviewer, *REVIEWS)
    for label, (kind, endpoint) in BUSINESS_CARDS.items():
        expected = session.scalar(visible(reviewer, select(func.count()).select_from(CertificateApplication).where(
            CertificateApplication.kind == kind, CertificateApplication.status.in_(waiting)), CertificateApplication))
        assert shown[label] == expected
        assert linked[label] == f"/admin/{endpoint}/?tab=pending"
        listed = client.get(linked[label]).get_data(as_text=True)
        assert re.search(rf"列表 \({expected}\)", listed) or (expected == 0 and "列表" in listed)
    assert sum(shown[label] for label in BUSINESS_CARDS) > 0, "the demo has business waiting for reviewers"


def test_an_authority_counts_business_of_its_own_city_only(login, session):
    jinan, qingdao = cards(login("jinan")), cards(login("qingdao"))
    assert (jinan["待审核变更业务"], jinan["待审核补办业务"], jinan["待审核注销业务"]) != (0, 0, 0)
    assert sum(qingdao[label] for label in BUSINESS_CARDS) < sum(jinan[label] for label in BUSINESS_CARDS)


QUICK_RE = re.compile(r'<a class="btn btn-primary mr-2 mb-2" id="([^"]+)" href="([^"]+)">([^<]+)</a>')


def quick_links(client) -> dict[str, str]:
    return {label: href for _id, href, label in QUICK_RE.findall(client.get("/admin/").get_data(as_text=True))}


@pytest.mark.parametrize("username,expected", [
    ("inst_jinan", {"创建批次": "/admin/batch-create/", "打印证书": "/admin/certificate/",
                    "发起证书业务": "/admin/business_apply/", "查看已申请证书业务": "/admin/application/"}),
    ("direct_inst", {"创建批次": "/admin/batch-create/", "打印证书": "/admin/certificate/",
                     "发起证书业务": "/admin/business_apply/", "查看已申请证书业务": "/admin/application/"}),
    ("enterprise", {"学员基本信息（企业）": "/admin/student/", "发起证书业务": "/admin/business_apply/",
                    "证书遗失重打申请": "/admin/lost_reissue/", "查看已申请证书业务": "/admin/application/"}),
    ("person", {"我的基本信息": "/admin/my_info/", "注册申报": "/admin/declaration/"}),
    ("jinan", {}),
    ("province", {}),
])
def test_quick_links_per_role_open(login, username, expected):
    """003 §三 省直所/单位首页: 可快捷创建批次、打印证书、发起证书业务、查看已申请证书业务 — each opens."""
    client = login(username)
    got = quick_links(client)
    assert got == expected
    for href in got.values():
        assert client.get(href, follow_redirects=True).status_code == 200


def test_a_user_without_the_permission_gets_no_quick_link_to_it(login, session):
    from models.user import Permission

    operator = user(session, "inst_jinan")
    operator.set_permissions([p for p in operator.permissions if p != Permission.batch_manage])
    session.commit()
    assert "创建批次" not in quick_links(login("inst_jinan"))


def test_an_individual_sees_their_certificates_and_declarations(login, session):
    """An approved individual's 首页 is no longer empty: their certificates and their 注册申报."""
    from models import Certificate, Person, User

    me = user(session, "person")
    html = login("person").get("/admin/").get_data(as_text=True)
    mine = html.split('id="my-certificates"', 1)[1].split("</table>", 1)[0]
    own = session.scalars(select(Certificate).where(Certificate.person_id == me.person_id)).all()
    assert own
    for cert in own:
        assert cert.number in mine
    others = session.scalars(select(Certificate).where(Certificate.person_id != me.person_id).limit(5)).all()
    for cert in others:
        assert cert.number not in html
    assert 'id="my-declarations"' in html
    shown = cards(login("person"))
    assert shown["我的有效证书"] == sum(1 for c in own if c.status.value == "valid")
    declared = session.scalar(select(func.count()).select_from(Registration).where(
        Registration.person_id == me.person_id))
    assert shown["我的注册申报"] == declared
    # a holder who declared: the row and its page
    holder = session.scalar(select(Registration).join(Person, Person.id == Registration.person_id)
                            .order_by(Registration.id))
    account = session.scalar(select(User).where(User.person_id == holder.person_id))
    assert account is not None, "the demo's declarations are filed by individual accounts (SPEC §12)"
    page = login(account.username).get("/admin/").get_data(as_text=True)
    rows = page.split('id="my-declarations"', 1)[1].split("</table>", 1)[0]
    assert f"/admin/declaration/details/?id={holder.id}" in rows


def test_the_chart_title_says_it_counts_voided_and_cancelled(login):
    from workflows.statistics import ISSUED_CHART_TITLE

    for username in ("province", "jinan", "inst_jinan"):
        assert ISSUED_CHART_TITLE in login(username).get("/admin/").get_data(as_text=True)
