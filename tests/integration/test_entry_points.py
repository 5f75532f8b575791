"""The manuals' entry points (issue 17 item 3): 培训报名 → 学员基本信息（企业） → 人员详细信息 →
变更申请 / 补办 (000 §二(二), 001); 我的基本信息 (000, 001); a city authority's 企业列表, which
follows a 所属地市变更; 证书管理 → 证书遗失重打申请 with its 审批状态 (000 §三).

Forged ids — another enterprise's employee, another city's enterprise, another person — are a
404 like a missing row, and nothing is written."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import (
    ApplicationKind,
    Certificate,
    CertificateApplication,
    EnterpriseChange,
    Organization,
    Person,
    Registration,
    RegistrationStatus,
)
from models.certificate import CertificateStatus
from models.org import OrgKind
from tests.factories import make_application, user
from workflows.engine import setting_state
from workflows.enterprise import ENTERPRISE_CHANGE, REGISTRATIONS_IN_PROGRESS, start_change

STUDENTS, MY_INFO, CITY, LOST = "/admin/student/", "/admin/my_info/", "/admin/city_enterprise/", "/admin/lost_reissue/"


def text(resp) -> str:
    return resp.get_data(as_text=True)


def employees(session, username) -> list[Person]:
    return session.scalars(select(Person).where(Person.employer_id == user(session, username).organization_id)
                           .order_by(Person.id)).all()


def with_valid_certificate(session, username) -> Person:
    """The newest such employee: on the list's first page (newest first)."""
    return next(p for p in reversed(employees(session, username))
                if any(c.status == CertificateStatus.valid for c in p.certificates))


def table(html: str, table_id: str) -> str:
    return html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]


def counts(session) -> tuple:
    return tuple(session.scalar(select(func.count()).select_from(m))
                 for m in (CertificateApplication, Person, Certificate, Organization))


# -- 学员基本信息（企业） ----------------------------------------------------------------------
def test_the_enterprise_lists_its_employees_with_their_certificates(login, session):
    html = text(login("enterprise").get(STUDENTS))
    mine, others = employees(session, "enterprise"), employees(session, "enterprise2")
    assert mine and others
    person = with_valid_certificate(session, "enterprise")
    assert f'{STUDENTS}details/?id={person.id}' in html  # 姓名 opens 人员详细信息
    assert person.certificates[0].number in html
    for other in others:
        assert other.id_number not in html
    # the search finds an employee by ID number, and never another enterprise's
    assert person.name in text(login("enterprise").get(f"{STUDENTS}?search={person.id_number}"))
    assert others[0].name not in text(login("enterprise").get(f"{STUDENTS}?search={others[0].id_number}"))


def test_person_details_offer_the_change_and_reissue_forms(login, session):
    """000 §二(二): 点击人员"姓名"，进入人员详细信息，点击"变更申请" — the 申请业务 form opens."""
    client = login("enterprise")
    person = with_valid_certificate(session, "enterprise")
    html = text(client.get(f"{STUDENTS}details/?id={person.id}"))
    assert "人员详细信息" in html and person.id_number in html
    certificates = table(html, "person-certificates")
    valid = [c for c in person.certificates if c.status == CertificateStatus.valid]
    for cert in valid:
        assert f"/admin/business_apply/change/?certificate_id={cert.id}" in certificates
        assert f"/admin/business_apply/reissue/?certificate_id={cert.id}" in certificates
    for cert in person.certificates:
        if cert.status != CertificateStatus.valid:  # no application on a cancelled or voided one
            assert f"certificate_id={cert.id}" not in certificates
    resp = client.get(f"/admin/business_apply/change/?certificate_id={valid[0].id}")
    assert resp.status_code == 200 and valid[0].number in text(resp)


def test_person_details_list_the_holders_applications_with_their_status(login, session):
    person = with_valid_certificate(session, "enterprise")
    cert = next(c for c in person.certificates if c.status == CertificateStatus.valid)
    app = make_application(session, "enterprise", "cancel", cert)
    session.commit()
    rows = table(text(login("enterprise").get(f"{STUDENTS}details/?id={person.id}")), "person-applications")
    assert "注销" in rows and app.status.label in rows and f"/admin/application/details/?id={app.id}" in rows


@pytest.mark.parametrize("forged", ["other", "missing", "garbage"])
def test_another_enterprises_employee_is_a_404(login, session, forged):
    ident = {"other": employees(session, "enterprise2")[0].id, "missing": 99999999, "garbage": "1 OR 1=1"}[forged]
    before = counts(session)
    assert login("enterprise").get(f"{STUDENTS}details/?id={ident}").status_code == 404
    assert counts(session) == before


@pytest.mark.parametrize("username,status", [("person", 403), ("jinan", 403), ("inst_jinan", 403),
                                             ("province", 403), ("school", 200), ("enterprise2", 200)])
def test_who_opens_the_student_list(login, username, status):
    assert login(username).get(STUDENTS).status_code == status


def test_a_school_is_offered_only_the_change(login, session):
    """000 §二(二).4: the school moves its student's certificate to an enterprise, nothing else."""
    person = with_valid_certificate(session, "school")
    html = table(text(login("school").get(f"{STUDENTS}details/?id={person.id}")), "person-certificates")
    assert "变更申请" in html and "补办" not in html


# -- 我的基本信息 ---------------------------------------------------------------------------------
def test_the_individual_opens_their_own_record(login, session):
    me = user(session, "person")
    client = login("person")
    resp = client.get(MY_INFO)
    assert resp.status_code == 200
    html = text(resp)
    assert "人员详细信息" in html and "person-certificates" in text(client.get(f"{MY_INFO}details/?id={me.person_id}"))
    person = session.get(Person, me.person_id)
    assert person.id_number in html
    certificates = table(html, "person-certificates")
    for cert in person.certificates:
        assert cert.number in certificates
        if cert.status == CertificateStatus.valid:
            assert f"/admin/business_apply/change/?certificate_id={cert.id}" in certificates
    assert "我的基本信息" in text(client.get("/admin/"))  # the menu entry


@pytest.mark.parametrize("forged", ["other", "missing", "garbage"])
def test_another_person_is_a_404_for_the_individual(login, session, forged):
    me = user(session, "person")
    other = session.scalar(select(Person.id).where(Person.id != me.person_id).order_by(Person.id))
    ident = {"other": other, "missing": 99999999, "garbage": "abc"}[forged]
    before = counts(session)
    assert login("person").get(f"{MY_INFO}details/?id={ident}").status_code == 404
    assert counts(session) == before


@pytest.mark.parametrize("username", ["enterprise", "jinan", "province", "inst_jinan"])
def test_my_info_is_for_individuals_only(login, username):
    assert login(username).get(MY_INFO).status_code == 403


# -- 企业列表 ---------------------------------------------------------------------------------
def city_enterprises(session, region: str) -> list[Organization]:
    return session.scalars(select(Organization).where(
        Organization.kind.in_((OrgKind.enterprise, OrgKind.school)), Organization.region_code == region)).all()


def test_an_authority_lists_the_enterprises_of_its_city(login, session):
    html = text(login("jinan").get(CITY))
    jinan, qingdao = city_enterprises(session, "370100"), city_enterprises(session, "370200")
    assert jinan and qingdao
    for org in jinan[:20]:
        assert f"{CITY}details/?id={org.id}" in html
    for org in qingdao:
        assert f"{CITY}details/?id={org.id}" not in html
    assert user(session, "inst_jinan").organization.name not in html  # its institutions are not enterprises


@pytest.mark.parametrize("forged", ["other_city", "own_institution", "own_authority", "missing"])
def test_another_citys_enterprise_is_a_404(login, session, forged):
    ident = {"other_city": user(session, "enterprise2").organization_id,
             "own_institution": user(session, "inst_jinan").organization_id,
             "own_authority": user(session, "jinan").organization_id, "missing": 99999999}[forged]
    before = counts(session)
    assert login("jinan").get(f"{CITY}details/?id={ident}").status_code == 404
    assert counts(session) == before


@pytest.mark.parametrize("username,status", [("enterprise", 403), ("inst_jinan", 403), ("person", 403),
                                             ("province", 200), ("qingdao", 200)])
def test_who_opens_the_enterprise_list(login, username, status):
    assert login(username).get(CITY).status_code == status


def test_after_a_city_change_the_receiving_city_lists_the_enterprise(login, session):
    """000 §二(一).4: 所属地市变更 济南 → 青岛; once 调入市 approves, 青岛 sees it and 济南 no longer."""
    org = user(session, "enterprise").organization
    for row in session.scalars(select(Registration).where(Registration.enterprise_id == org.id,
                                                          Registration.status.in_(REGISTRATIONS_IN_PROGRESS))):
        with setting_state():
            row.status = RegistrationStatus.withdrawn
    change = start_change(session, user(session, "enterprise"), org, {"new_region_code": "370200"})
    session.commit()
    qingdao = login("qingdao")
    assert qingdao.get(f"{CITY}details/?id={org.id}").status_code == 404
    ENTERPRISE_CHANGE.fire(session, user(session, "jinan"), change, "out_approve")
    ENTERPRISE_CHANGE.fire(session, user(session, "qingdao"), change, "in_approve")
    session.commit()
    assert session.get(EnterpriseChange, change.id).status.value == "approved"
    assert f"{CITY}details/?id={org.id}" in text(qingdao.get(CITY))
    resp = qingdao.get(f"{CITY}details/?id={org.id}")
    assert resp.status_code == 200 and org.name in text(resp) and "青岛" in text(resp)
    assert login("jinan").get(f"{CITY}details/?id={org.id}").status_code == 404


# -- 证书遗失重打申请 -----------------------------------------------------------------------------
def test_lost_reissue_lists_the_enterprises_reissues_with_their_status(login, session):
    ent = user(session, "enterprise").organization_id
    apps = session.scalars(select(CertificateApplication).where(CertificateApplication.applicant_org_id == ent)).all()
    reissues = [a for a in apps if a.kind == ApplicationKind.reissue]
    others = [a for a in apps if a.kind != ApplicationKind.reissue]
    assert reissues and others, "the demo gives `enterprise` 补办 and other applications"
    html = text(login("enterprise").get(LOST))
    assert "审批状态" in html and 'id="new-reissue"' in html
    for app in reissues:
        assert f"{LOST}details/?id={app.id}" in html
    assert re.search(r"待审核|审核通过|审核不通过|待提交", html)
    for app in others:
        assert f"{LOST}details/?id={app.id}" not in html
    # a change application is not a row of this list; another enterprise's 补办 neither
    assert login("enterprise").get(f"{LOST}details/?id={others[0].id}").status_code == 404
    foreign = session.scalar(select(CertificateApplication.id).where(
        CertificateApplication.applicant_org_id == user(session, "enterprise2").organization_id))
    if foreign is not None:
        assert login("enterprise").get(f"{LOST}details/?id={foreign}").status_code == 404


@pytest.mark.parametrize("username,status", [("enterprise", 200), ("school", 403), ("inst_jinan", 403),
                                             ("jinan", 403), ("person", 403)])
def test_who_opens_lost_reissue(login, username, status):
    assert login(username).get(LOST).status_code == status


def test_the_new_screens_write_nothing_on_get(login, session):
    """Reading the entry points changes no row."""
    before = counts(session)
    for username, url in (("enterprise", STUDENTS), ("person", MY_INFO), ("jinan", CITY), ("enterprise", LOST)):
        assert login(username).get(url, follow_redirects=True).status_code == 200
    assert counts(session) == before
