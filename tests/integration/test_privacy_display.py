"""Privacy by display (issue 17; 个人信息保护法: the minimum necessary): every list page of every demo
account shows ID numbers and phone numbers masked (3701**********0037, 138****0003); a details page
shows them in full to whoever may open the row; a search by the full number still finds it exactly;
exports keep full numbers (tests/integration/test_bench_exports.py, test_export_jobs.py)."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from sqlalchemy import select

from models import AccountRequest, Candidate, Certificate, CertificateApplication, Person, User
from tests.factories import user
from workflows.privacy import mask_id_number, mask_phone

ACCOUNTS = ("province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
            "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry")
# pages about the signed-in account itself (个人资料, 机构资料): a details page of one's own record
OWN_RECORD = {"profile", "org_profile"}


def text(resp) -> str:
    return resp.get_data(as_text=True)


def full_numbers(session) -> set[str]:
    """Every ID number and mobile number the demo holds, in full."""
    found: set[str] = set()
    for column in (Person.id_number, Person.phone, Candidate.id_number, Candidate.phone, User.phone,
                   CertificateApplication.old_id_number, CertificateApplication.new_id_number):
        found.update(v for v in session.scalars(select(column).distinct()) if v and re.fullmatch(r"\d{10,}X?", v))
    return found


def list_pages(app) -> list[str]:
    """The index of every registered view: model lists and the plain pages' lists (人员管理 …)."""
    admin = app.extensions["admin"][0]
    urls = []
    with app.test_request_context():
        for view in admin._views:
            endpoint = getattr(view, "endpoint", None)
            names = {name for _, name, _ in view._urls} & {"index", "index_view"}
            own = endpoint in OWN_RECORD or getattr(view, "own_record", False)  # 我的基本信息: a details page
            if endpoint and not own and names:
                urls.append(url_for(f"{endpoint}.{names.pop()}"))
    return urls


def leaks(html: str, numbers: set[str]) -> list[str]:
    return sorted(n for n in numbers if n in html)


def table(html: str) -> str:
    """What the list's rows read, without the search box, sort links and return URLs that repeat the
    term that was typed."""
    found = re.search(r'<table[^>]*model-list.*?</table>', html, re.S)
    assert found, html[:300]
    return re.sub(r"<[^>]+>", " ", found.group(0))


@pytest.mark.parametrize("who", ACCOUNTS)
def test_no_list_shows_a_full_id_number_or_phone(app, login, session, who):
    numbers = full_numbers(session)
    assert len(numbers) > 50  # the demo's persons, candidates and accounts
    client = login(who)
    seen = 0
    for url in list_pages(app):
        resp = client.get(url)
        if resp.status_code != 200:
            continue
        html = text(resp)
        pages = {url: html}
        for tab in sorted(set(re.findall(r'data-tab="([^"]+)"', html))):  # 待审核 / 已审核 …
            tabbed = client.get(f"{url}?tab={tab}")
            if tabbed.status_code == 200:
                pages[f"{url}?tab={tab}"] = text(tabbed)
        for where, page in pages.items():
            assert not leaks(page, numbers), (who, where, leaks(page, numbers))
            seen += 1
    assert seen >= 3, who


def test_the_masks(session):
    assert mask_id_number("370102199001010037") == "3701**********0037"
    assert mask_id_number("37010219900101003X") == "3701**********003X"
    assert mask_phone("13800000003") == "138****0003"
    assert (mask_id_number(None), mask_phone(""), mask_id_number("1234")) == ("", "", "****")


def test_the_certificate_library_masks_finds_by_the_full_number_and_the_details_show_it(login, session):
    client = login("province")
    certificate = session.scalars(select(Certificate).order_by(Certificate.id)).first()
    number = certificate.person.id_number
    listing = table(text(client.get(f"/admin/certificate_library/?search={number}")))
    assert certificate.number in listing and mask_id_number(number) in listing and number not in listing
    details = text(client.get(f"/admin/certificate_library/details/?id={certificate.id}"))
    assert number in details


def test_the_account_review_masks_the_individual_and_its_phone_and_the_details_show_them(login, session):
    request = session.scalars(select(AccountRequest).where(AccountRequest.person_id.is_not(None))).first()
    person, phone = request.person, request.user.phone
    client = login("jinan")
    listing = table(text(client.get(f"/admin/account_review/?search={person.id_number}&tab=all")))
    assert person.name in listing and mask_id_number(person.id_number) in listing and mask_phone(phone) in listing
    assert person.id_number not in listing and phone not in listing
    assert person.name in table(text(client.get(f"/admin/account_review/?search={phone}&tab=all")))  # full phone
    details = text(client.get(f"/admin/account_review/details/?id={request.id}"))
    assert person.id_number in details and phone in details


def test_user_management_masks_the_phone_in_the_list_and_shows_it_on_the_details(login, session):
    target = user(session, "jinan_reviewer")
    client = login("jinan")
    listing = text(client.get("/admin/user_manage/"))
    assert mask_phone(target.phone) in listing and target.phone not in listing
    assert target.phone in text(client.get(f"/admin/user_manage/details/?id={target.id}"))


def test_data_maintenance_finds_a_person_by_the_full_number_and_lists_it_masked(login, session):
    person = session.scalars(select(Person).order_by(Person.id)).first()
    client = login("province")
    results = text(client.get(f"/admin/data_fix/?kind=person&q={person.id_number}"))
    found = re.search(r'<table[^>]*id="datafix-results".*?</table>', results, re.S).group(0)
    assert f"{person.name} {mask_id_number(person.id_number)}" in found and person.id_number not in found
