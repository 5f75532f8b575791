"""证书库 and 证书查看 through the real sign-in, CSRF on (SPEC §3, §6; 003 §六.2, §七.2, §八.2).

The province cancels, activates and voids certificates from the list and from the details
page; institutions and authorities see certificates read-only; filters never fail.
"""

from __future__ import annotations

import html as htmllib
import io
import json
import re
import time
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from models import Certificate, Level, Occupation, Organization, Person, TransitionLog, User, db
from models.base import local_today, utcnow
from models.certificate import CertificateStatus, PrintStatus
from models.org import OrgKind
from tests.factories import make_org
from tests.integration.test_list_queries import counted
from workflows.engine import setting_state

S = CertificateStatus
LIBRARY = "/admin/certificate_library"
VIEW = "/admin/certificate"
NOT_PROVINCE = ("inst_jinan", "inst_qingdao", "direct_inst", "jinan", "jinan_reviewer", "qingdao")


def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def in_table(html: str, value: str) -> bool:
    """A value shown in a list cell, not merely echoed back in the search box."""
    return f">{value}<" in re.sub(r"\s+", "", html)


def certs(session, issuer_code=None, status=S.valid) -> list[Certificate]:
    stmt = select(Certificate).where(Certificate.status == status).order_by(Certificate.id)
    if issuer_code:
        stmt = stmt.where(Certificate.issuer.has(code=issuer_code))
    return list(session.scalars(stmt))


def status_of(session, cert) -> S:
    session.expire(cert)
    return cert.status


def logs_of(session, cert) -> list[TransitionLog]:
    return list(session.scalars(select(TransitionLog).where(TransitionLog.object_type == "certificate",
                                                            TransitionLog.object_id == cert.id)
                                .order_by(TransitionLog.id)))


def all_states(session) -> list:
    return session.execute(select(Certificate.id, Certificate.status, Certificate.version)
                           .order_by(Certificate.id)).all()


def shown_numbers(html: str, session) -> set[str]:
    every = session.scalars(select(Certificate.number)).all()
    return {n for n in every if in_table(html, n)}


def shown_on_every_page(client, url: str, session) -> set[str]:
    """The numbers a list shows over all its pages (20 rows a page, ``page`` counts from 0)."""
    out: set[str] = set()
    sep = "&" if "?" in url else "?"
    for page in range(100):
        resp = client.get(f"{url}{sep}page={page}")
        assert resp.status_code == 200, url
        found = shown_numbers(resp.get_data(as_text=True), session)
        if not found or found <= out:
            return out
        out |= found
    raise AssertionError(f"{url}: more than 100 pages")


def bulk(client, action, ids, **kw):
    return client.post(f"{LIBRARY}/action/", {"action": action, "rowid": [str(i) for i in ids]}, **kw)


def transition(client, cert, name, reason=None, version=None, **kw):
    form = {"id": cert.id, "transition": name, "version": str(version if version is not None else cert.version)}
    if reason is not None:
        form["reason"] = reason
    return client.post(f"{LIBRARY}/transition/", form, **kw)


# -- 证书库 list: bulk 注销 / 激活 / 作废 ---------------------------------------------------------------
def test_the_library_offers_cancel_activate_and_void(login):
    page = login("province").get(f"{LIBRARY}/").get_data(as_text=True)
    offered = set(re.findall(r'data-model-action="([^"]+)"', page))
    assert offered == {"wf_cancel", "wf_activate", "wf_void", "ecert_zip"}  # 下载电子证书(压缩包): issue 19
    assert "补办作废" not in page and "注销(业务)" not in page


def test_province_cancels_then_activates_from_the_list(login, session):
    first, second = certs(session)[:2]
    client = login("province")
    resp = bulk(client, "wf_cancel", [first.id, second.id], follow_redirects=True)
    assert "注销：成功 2 条，失败 0 条" in flashes(resp)
    assert status_of(session, first) == status_of(session, second) == S.cancelled
    # a row in the wrong state is reported by name, the others go through
    resp = bulk(client, "wf_activate", [first.id, certs(session)[0].id], follow_redirects=True)
    text = flashes(resp)
    assert "激活：成功 1 条，失败 1 条" in text and "当前状态为「有效」，不能执行「激活」" in text
    assert status_of(session, first) == S.valid and status_of(session, second) == S.cancelled
    assert [log.transition for log in logs_of(session, first)] == ["cancel", "activate"]


def test_bulk_void_asks_for_a_reason_and_the_server_refuses_an_empty_one(login, session):
    valid = certs(session)[0]
    cancelled = certs(session, "JG370201")[0]
    client = login("province")
    bulk(client, "wf_cancel", [cancelled.id])
    before = all_states(session)
    resp = bulk(client, "wf_void", [valid.id, cancelled.id])
    assert resp.status_code == 302 and f"{LIBRARY}/reason/" in resp.location
    form_page = client.get(resp.location).get_data(as_text=True)
    assert 'id="reason-form"' in form_page and "作废原因" in form_page
    assert f"证书「{valid.number}」" in form_page and f"证书「{cancelled.number}」" in form_page
    for empty in ("", "   "):
        resp = client.post(f"{LIBRARY}/reason/", {"transition": "void", "id": [str(valid.id), str(cancelled.id)],
                                                  "reason": empty}, follow_redirects=True)
        assert "请填写作废原因" in flashes(resp)
    assert all_states(session) == before
    resp = client.post(f"{LIBRARY}/reason/", {"transition": "void", "id": [str(valid.id), str(cancelled.id)],
                                              "reason": "证书信息录入错误"}, follow_redirects=True)
    assert "作废：成功 2 条，失败 0 条" in flashes(resp)
    assert status_of(session, valid) == status_of(session, cancelled) == S.voided
    assert logs_of(session, valid)[-1].reason == "证书信息录入错误"


# -- details page: buttons, 业务日志 --------------------------------------------------------------------
def buttons(html: str) -> set[str]:
    return set(re.findall(r'id="btn-([a-z_]+)"', html))


def test_province_works_a_certificate_from_its_details_page(login, session):
    cert = certs(session)[0]
    client = login("province")
    details = f"{LIBRARY}/details/?id={cert.id}"
    assert buttons(client.get(details).get_data(as_text=True)) == {"cancel", "void"}

    resp = transition(client, cert, "cancel", reason="持证人申请", follow_redirects=True)
    assert "注销：操作成功" in flashes(resp)
    assert status_of(session, cert) == S.cancelled
    assert buttons(client.get(details).get_data(as_text=True)) == {"activate", "void"}

    resp = transition(client, cert, "activate", follow_redirects=True)
    assert "激活：操作成功" in flashes(resp)
    assert status_of(session, cert) == S.valid

    for empty in (None, "", "  "):
        resp = transition(client, cert, "void", reason=empty, follow_redirects=True)
        assert "请填写作废原因" in flashes(resp)
        assert status_of(session, cert) == S.valid
    resp = transition(client, cert, "void", reason="重复发证", follow_redirects=True)
    assert "作废：操作成功" in flashes(resp)
    assert status_of(session, cert) == S.voided

    page = client.get(details).get_data(as_text=True)
    assert buttons(page) == set()  # 已作废 is terminal
    log = re.search(r'<table[^>]*id="business-log".*?</table>', page, re.S).group(0)
    rows = re.findall(r"<tr><td>.*?</tr>", re.sub(r"\s+", " ", log).replace("> <", "><"))
    assert len(rows) == 3
    assert "注销" in rows[0] and "有效 → 已注销" in rows[0] and '<span class="reason-red">持证人申请</span>' in rows[0]
    assert "激活" in rows[1] and "已注销 → 有效" in rows[1]
    assert "作废" in rows[2] and "有效 → 已作废" in rows[2] and '<span class="reason-red">重复发证</span>' in rows[2]
    assert all("省厅管理员" in row for row in rows)
    province = session.scalar(select(User).where(User.username == "province"))
    assert all(province.organization.name in row for row in rows)


def test_stale_details_page_is_refused(login, session):
    cert = certs(session)[0]
    resp = transition(login("province"), cert, "cancel", version=cert.version - 1, follow_redirects=True)
    assert "该记录已被他人处理" in flashes(resp)
    assert status_of(session, cert) == S.valid


def test_code_only_transitions_cannot_be_fired_from_the_browser(login, session):
    cert = certs(session)[0]
    client = login("province")
    before = all_states(session)
    for name in ("void_for_reissue", "cancel_by_application"):
        assert transition(client, cert, name, reason="伪造").status_code == 404
        assert "无权执行该操作" in flashes(bulk(client, f"wf_{name}", [cert.id], follow_redirects=True))
        assert client.get(f"{LIBRARY}/reason/?transition={name}&id={cert.id}").status_code == 404
    assert all_states(session) == before
    assert logs_of(session, cert) == []


def test_details_show_holder_print_status_endorsements_and_links(login, session):
    old, new = certs(session, "JG370101")[:2]
    printer = session.scalar(select(User).where(User.username == "inst_jinan"))
    new.replaces_id = old.id
    with setting_state():
        new.print_status, new.printed_at, new.printed_by_id = PrintStatus.printed, utcnow(), printer.id
    new.endorsement_count = 2
    session.commit()
    client = login("inst_jinan")
    page = client.get(f"{VIEW}/details/?id={new.id}").get_data(as_text=True)
    text = re.sub(r"\s+", "", page)
    person = new.person
    assert f"<td>{person.name}</td>" in text and f"<td>{person.id_number}</td>" in text
    assert f"<td>{person.employer_display}</td>" in text
    assert "已打印（" in page and printer.name in page
    assert "<td><b>签注次数</b></td><td>2</td>" in text
    assert f'href="{VIEW}/details/?id={old.id}"' in page and old.number in page
    assert buttons(page) == {"print", "mark_unprinted"}  # the issuer prints; 注销/作废 are the province's
    back = client.get(f"{VIEW}/details/?id={old.id}").get_data(as_text=True)
    assert f'href="{VIEW}/details/?id={new.id}"' in back
    authority = login("jinan").get(f"{VIEW}/details/?id={new.id}").get_data(as_text=True)
    assert buttons(authority) == set()  # the authority only reads: no transition, only 下载电子证书 (issue 19)
    assert re.findall(r'<a class="btn[^"]*" id="([^"]+)"', authority) == ["ecert-download"]


def test_a_link_never_names_a_certificate_outside_visibility(login, session):
    mine = certs(session, "JG370101")[0]
    foreign = certs(session, "JG370201")[0]
    foreign.replaces_id = mine.id  # contrived: a reissue recorded against another issuer's certificate
    session.commit()
    page = login("inst_jinan").get(f"{VIEW}/details/?id={mine.id}").get_data(as_text=True)
    assert foreign.number not in page
    assert f"id={foreign.id}" not in page


def test_employer_is_the_person_s_current_one(login, session):
    cert = certs(session, "JG370101")[0]
    employer = session.get(Organization, cert.person.employer_id) if cert.person.employer_id else None
    if employer is None:
        employer = session.scalar(select(Organization).where(Organization.code == "QY370101"))
        cert.person.employer_id = employer.id
    employer.name = "山东鲁建建设集团(更名后)有限公司"
    session.commit()
    page = login("jinan").get(f"{VIEW}/details/?id={cert.id}").get_data(as_text=True)
    assert "山东鲁建建设集团(更名后)有限公司" in page


def test_institution_sees_the_business_log_of_its_certificate(login, session):
    cert = certs(session, "JG370101")[0]
    transition(login("province"), cert, "cancel", reason="单位申请注销")
    page = login("inst_jinan").get(f"{VIEW}/details/?id={cert.id}").get_data(as_text=True)
    assert "有效 → 已注销" in page and '<span class="reason-red">单位申请注销</span>' in page


# -- institutions and authorities: no status change (institutions only print) ----------------------------
@pytest.mark.parametrize("who", NOT_PROVINCE)
def test_institutions_and_authorities_cannot_change_a_certificate(login, session, who):
    client = login(who)
    listing = client.get(f"{VIEW}/").get_data(as_text=True)
    offered = set(re.findall(r'data-model-action="([a-z_]+)"', listing))
    if who in ("jinan", "jinan_reviewer", "qingdao"):
        assert offered == {"ecert_zip"}  # authorities only read: 下载电子证书(压缩包) (issue 19)
    else:
        assert offered == {"print", "wf_mark_printed", "wf_mark_unprinted", "ecert_zip"}
    user = session.scalar(select(User).where(User.username == who))
    mine = session.scalar(select(Certificate).where(
        (Certificate.issuer_id == user.organization_id) | (Certificate.authority_id == user.organization_id))
        .order_by(Certificate.id))
    assert mine is not None
    assert buttons(client.get(f"{VIEW}/details/?id={mine.id}").get_data(as_text=True)) <= {
        "print", "mark_printed", "mark_unprinted"}
    before = all_states(session)
    logs = session.scalar(select(func.count()).select_from(TransitionLog))
    for action in ("wf_cancel", "wf_void", "wf_activate", "delete"):
        resp = client.post(f"{VIEW}/action/", {"action": action, "rowid": [str(mine.id)]}, follow_redirects=True)
        assert "无权执行该操作" in flashes(resp)
        resp = client.post(f"{LIBRARY}/action/", {"action": action, "rowid": [str(mine.id)]})
        assert resp.status_code == 403
    assert client.post(f"{LIBRARY}/transition/", {"id": mine.id, "transition": "cancel"}).status_code == 403
    assert client.post(f"{LIBRARY}/reason/", {"id": mine.id, "transition": "void",
                                              "reason": "越权"}).status_code == 403
    assert client.post(f"{VIEW}/transition/", {"id": mine.id, "transition": "cancel"}).status_code in (404, 405)
    assert all_states(session) == before
    assert session.scalar(select(func.count()).select_from(TransitionLog)) == logs


# -- filters ----------------------------------------------------------------------------------------------
def org_id(session, code):
    return session.scalar(select(Organization.id).where(Organization.code == code))


def numbers_where(session, *where):
    return set(session.scalars(select(Certificate.number).where(*where)))


def test_every_filter_of_the_library(login, session):
    client = login("province")
    qingdao = org_id(session, "JG370201")
    masonry = session.scalar(select(Occupation.id).where(Occupation.name == "木工"))
    intermediate = session.scalar(select(Level.id).where(Level.name == "中级工(四级)"))
    cancelled = certs(session, "JG370101")[0]
    transition(client, cancelled, "cancel")
    today = local_today()
    everything = numbers_where(session)
    # every page of the list is read: what is not shown was filtered out
    assert shown_on_every_page(client, f"{LIBRARY}/", session) == everything

    def shown(query):
        return shown_on_every_page(client, f"{LIBRARY}/?{query}", session)

    cases = {
        f"flt0_issuer={qingdao}": numbers_where(session, Certificate.issuer_id == qingdao),
        "flt0_issuer_name=青岛": numbers_where(session, Certificate.issuer_id == qingdao),
        "flt0_issuer_name=山东省建设": numbers_where(session, Certificate.issuer.has(code="SZ370001")),
        f"flt0_occupation={masonry}": numbers_where(session, Certificate.occupation_id == masonry),
        f"flt0_level={intermediate}": numbers_where(session, Certificate.level_id == intermediate),
        # the demo's approved 注销 / 补办 applications already cancelled and voided some
        "flt0_status=cancelled": numbers_where(session, Certificate.status == S.cancelled),
        "flt0_status=valid": numbers_where(session, Certificate.status == S.valid),
        "flt0_status=voided": numbers_where(session, Certificate.status == S.voided),
        f"flt0_issued_between={today} to {today}": everything,
        "flt0_issued_between=2001-01-01 to 2001-12-31": set(),
        f"flt0_issued_from={today + timedelta(days=1)}": set(),
        f"flt0_issued_from={today}": everything,
        f"flt0_issued_to={today - timedelta(days=1)}": set(),
        f"flt0_issued_to={today}": everything,
        f"flt0_issuer={qingdao}&flt1_status=valid": numbers_where(session, Certificate.issuer_id == qingdao),
        f"flt0_issuer={qingdao}&flt1_status=cancelled": numbers_where(
            session, Certificate.issuer_id == qingdao, Certificate.status == S.cancelled),
    }
    assert cancelled.number in cases["flt0_status=cancelled"]
    assert cancelled.number not in cases["flt0_status=valid"]
    for query, expected in cases.items():
        assert shown(query) == expected, query
    assert all(cases[f"flt0_{k}"] for k in ("issuer_name=青岛", f"occupation={masonry}", f"level={intermediate}"))


@pytest.mark.parametrize("query", [
    "flt0_issuer=abc", "flt0_issuer=-1", "flt0_issuer=99999999999999999999999", "flt0_occupation=1%3B1",
    "flt0_level=x", "flt0_status=lost", "flt0_issued_from=abcd", "flt0_issued_to=2026-13-45",
    "flt0_issued_between=2026-01-01", "flt0_issued_between=2026-12-31 to 2026-01-01", "flt0_issuer_name=%25",
    "flt0_issued_from=0000-01-01", "flt0_nonexistent=1",
])
def test_a_filter_value_of_the_wrong_type_gets_a_message_never_a_500(login, session, query):
    client = login("province")
    resp = client.get(f"{LIBRARY}/?{query}")
    assert resp.status_code == 200
    assert client.post(f"{LIBRARY}/export.xlsx?{query}").status_code == 200
    if "nonexistent" not in query:
        assert "无效，已忽略" in flashes(resp)


def test_a_filter_on_an_id_that_does_not_exist_gives_an_empty_list(login, session):
    resp = login("province").get(f"{LIBRARY}/?flt0_occupation=99999999")
    assert resp.status_code == 200 and shown_numbers(resp.get_data(as_text=True), session) == set()


def filter_options(html: str) -> dict:
    data = re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', html, re.S).group(1)
    groups = json.loads(htmllib.unescape(data))
    return {item["arg"]: item["options"] for items in groups.values() for item in items}


def test_filter_options_are_kept_a_minute_and_follow_visibility(login, session, monkeypatch):
    province = filter_options(login("province").get(f"{LIBRARY}/").get_data(as_text=True))
    names = {label for _, label in province["issuer"]}
    assert {"济南市建设职业技能培训中心", "青岛市建筑业职业培训学校", "山东省建设职业技能鉴定指导中心"} <= names
    assert "砌筑工" in {label for _, label in province["occupation"]}
    assert {label for _, label in province["status"]} == {"有效", "已注销", "已作废"}
    jinan = filter_options(login("jinan").get(f"{VIEW}/").get_data(as_text=True))
    jinan_names = {label for _, label in jinan["issuer"]}
    assert "济南市建设职业技能培训中心" in jinan_names and "青岛市建筑业职业培训学校" not in jinan_names
    # a new institution shows up without restarting the app, once FILTER_OPTIONS_SECONDS (60) passed
    make_org(session, OrgKind.institution, session.get(Organization, org_id(session, "SD370100")),
             name="济南新开培训学校")
    session.commit()
    kept = filter_options(login("province").get(f"{LIBRARY}/").get_data(as_text=True))
    assert "济南新开培训学校" not in {label for _, label in kept["issuer"]}
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    again = filter_options(login("province").get(f"{LIBRARY}/").get_data(as_text=True))
    assert "济南新开培训学校" in {label for _, label in again["issuer"]}
    # kept per organization: 济南's own list never showed the province's options
    assert "青岛市建筑业职业培训学校" not in {label for _, label in filter_options(
        login("jinan").get(f"{VIEW}/").get_data(as_text=True))["issuer"]}


def test_authority_filters_stay_inside_its_visibility(login, session):
    client = login("jinan")
    qingdao = org_id(session, "JG370201")
    resp = client.get(f"{VIEW}/?flt0_issuer={qingdao}")
    assert resp.status_code == 200 and shown_numbers(resp.get_data(as_text=True), session) == set()
    resp = client.get(f"{VIEW}/?flt0_issuer_name=青岛")
    assert shown_numbers(resp.get_data(as_text=True), session) == set()
    jinan = org_id(session, "SD370100")
    mine = numbers_where(session, Certificate.issuer.has(Organization.parent_id == jinan),
                         Certificate.issuer.has(Organization.kind == OrgKind.institution),
                         Certificate.status == S.valid)
    assert mine and shown_on_every_page(client, f"{VIEW}/?flt0_status=valid", session) == mine


def test_export_follows_the_filters(login, session):
    qingdao = org_id(session, "JG370201")
    resp = login("province").post(f"{LIBRARY}/export.xlsx?flt0_issuer={qingdao}")
    rows = list(load_workbook(io.BytesIO(resp.data)).worksheets[0].iter_rows(values_only=True))
    assert {r[0] for r in rows[1:]} == numbers_where(session, Certificate.issuer_id == qingdao)


def test_search_still_finds_by_number_id_and_name(login, session):
    cert = certs(session, "JG370201")[0]
    person = session.get(Person, cert.person_id)
    client = login("province")
    for term in (cert.number, person.id_number, person.name):
        assert in_table(client.get(f"{LIBRARY}/", query_string={"search": term}).get_data(as_text=True),
                        cert.number)


@pytest.mark.parametrize("query", ["", "sort=6&desc=1", "search=张", "flt0_status=valid&sort=0"])
def test_export_rows_say_what_the_certificates_say(login, session, query):
    """The export reads plain rows of its ten columns (CertificateColumns.export_query), not the
    list's objects: each cell must still be what the certificate, its holder (the current employer,
    or the employer text), occupation, level and issuer say — for a search and a sort too."""
    freelancer = certs(session)[0].person  # an employer known only as text
    freelancer.employer_id, freelancer.employer_name = None, "个体经营（无单位）"
    session.commit()
    client = login("province")
    with counted(db.engine) as statements:
        data = client.post(f"{LIBRARY}/export.xlsx?{query}").data
    # plain rows: no statement loads whole certificates (their other columns) to export ten
    assert statements and not [s for s in statements if "certificate.replaces_id" in s]
    rows = list(load_workbook(io.BytesIO(data)).worksheets[0].iter_rows(values_only=True))[1:]
    assert rows
    by_number = {c.number: c for c in session.scalars(select(Certificate))}
    for row in rows:
        c = by_number[row[0]]
        assert row[1:7] == (c.person.name, c.person.id_number, c.person.employer_display or None, c.occupation.name,
                            c.level.name if c.level else None, c.issuer.name), row
        assert row[7].date() == c.issue_date and row[8:] == (c.status.label, c.print_status.label), row
    if not query:
        assert "个体经营（无单位）" in {r[3] for r in rows}
