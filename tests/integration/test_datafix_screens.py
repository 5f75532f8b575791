"""数据维护 screens (SPEC §7, issue 5 item 5): the province's administrator finds a row and corrects
it with a reason; everyone else is refused; forged ids are 404; nothing moves without CSRF."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditLog, Certificate, Person, db
from tests.factories import user


def holder(session) -> Person:
    return user(session, "person").person


def test_find_and_fix_a_person_with_a_reason(login, session):
    person = holder(session)
    client = login("province")
    found = client.get(f"/admin/data_fix/?kind=person&q={person.id_number}").get_data(as_text=True)
    assert f"/admin/data_fix/edit/?person_id={person.id}" in found
    page = client.get(f"/admin/data_fix/edit/?person_id={person.id}").get_data(as_text=True)
    assert person.name in page and "修改原因" in page
    resp = client.post(f"/admin/data_fix/edit/?person_id={person.id}",
                       {"person_id": str(person.id), "name": "张建业", "id_number": person.id_number,
                        "phone": person.phone or "", "employer_name": "", "reason": "姓名录入错误"},
                       token_from=f"/admin/data_fix/edit/?person_id={person.id}", follow_redirects=True)
    assert "已保存：姓名" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert holder(session).name == "张建业"
    row = session.scalars(select(AuditLog).where(AuditLog.kind == "data_fix").order_by(AuditLog.id.desc())).first()
    assert row.detail["name"]["after"] == "张建业" and row.username == "province"


def test_a_fix_without_a_reason_or_of_a_state_changes_nothing(login, session):
    cert = session.scalars(select(Certificate)).first()
    status, issued = cert.status, cert.issue_date
    client = login("province")
    url = f"/admin/data_fix/edit/?certificate_id={cert.id}"
    resp = client.post(url, {"certificate_id": str(cert.id), "issue_date": "2020-01-01", "reason": ""},
                       token_from=url)
    assert resp.status_code == 200 and "请填写修改原因" in resp.get_data(as_text=True)
    resp = client.post(url, {"certificate_id": str(cert.id), "status": "void", "reason": "改成作废"}, token_from=url)
    assert "状态、编号等字段不能通过数据维护修改" in resp.get_data(as_text=True)
    db.session.expire_all()
    cert = session.get(Certificate, cert.id)
    assert (cert.status, cert.issue_date) == (status, issued)


def test_others_are_refused_and_forged_ids_are_404(login, session):
    person = holder(session)
    for who in ("province_reviewer", "jinan", "inst_jinan", "enterprise"):
        assert login(who).get("/admin/data_fix/").status_code == 403, who
    client = login("province")
    for url in ("/admin/data_fix/edit/?person_id=99999999", "/admin/data_fix/edit/?person_id=abc",
                "/admin/data_fix/edit/", "/admin/data_fix/edit/?batch_id=1"):
        assert client.get(url).status_code == 404, url
    assert "不支持维护该类数据" in client.get("/admin/data_fix/?kind=batch&q=1",
                                         follow_redirects=True).get_data(as_text=True)
    resp = client.post(f"/admin/data_fix/edit/?person_id={person.id}",
                       {"person_id": str(person.id), "name": "无令牌", "reason": "x"}, csrf=False)
    assert resp.status_code == 400
    db.session.expire_all()
    assert holder(session).name != "无令牌"


# -- the history on the record itself (issue 17 item 11) ------------------------------------------


def _history(text: str) -> str:
    import re

    found = re.search(r'id="datafix-history".*?</table>', text, re.S)
    assert found, "no 数据维护 history on the page"
    return found.group(0)


def test_a_corrected_certificate_shows_its_corrections_on_its_page(login, session):
    jinan = user(session, "jinan").organization
    cert = session.scalars(select(Certificate).where(Certificate.authority_id == jinan.id)).first()
    before = cert.issue_date.isoformat()
    client = login("province")
    url = f"/admin/data_fix/edit/?certificate_id={cert.id}"
    client.post(url, {"certificate_id": str(cert.id), "issue_date": "2020-02-03",
                      "valid_until": cert.valid_until.isoformat() if cert.valid_until else "",
                      "endorsement_count": str(cert.endorsement_count), "reason": "发证日期录入错误"}, token_from=url)
    me = user(session, "province")
    for page in (client.get(url), client.get(f"/admin/certificate_library/details/?id={cert.id}")):
        table = _history(page.get_data(as_text=True))
        for text in ("字段", "修改前", "修改后", "原因", "操作人", "时间",
                     "发证日期", before, "2020-02-03", "发证日期录入错误", me.name):
            assert text in table, text
    # the city authority that may open the certificate sees its corrections too (the province wrote
    # them: they are the certificate's history, not only the province's 操作日志)
    assert "发证日期录入错误" in _history(login("jinan").get(f"/admin/certificate/details/?id={cert.id}")
                                   .get_data(as_text=True))
    # one who may not open the certificate gets a 404, not its history
    assert login("qingdao").get(f"/admin/certificate/details/?id={cert.id}").status_code == 404


def test_a_corrected_organization_shows_its_corrections_and_others_none(login, session):
    org = user(session, "inst_jinan").organization
    client = login("province")
    url = f"/admin/data_fix/edit/?organization_id={org.id}"
    client.post(url, {"organization_id": str(org.id), "contact": "王联系", "reason": "联系人变更"}, token_from=url)
    text = client.get(f"/admin/institution_manage/details/?id={org.id}").get_data(as_text=True)
    table = _history(text)
    assert "联系人" in table and "王联系" in table and "联系人变更" in table
    # an organization never corrected: the empty history, not another's
    other = user(session, "qingdao").organization
    assert "暂无数据维护记录" in _history(client.get(f"/admin/authority_manage/details/?id={other.id}").get_data(as_text=True))


def test_a_corrected_person_shows_its_corrections_on_their_records_pages(login, session):
    """人员详细信息 (the enterprise's 学员基本信息) and the holder's own 我的基本信息 carry the
    person's 数据维护 history; an enterprise that does not employ them gets a 404, not the history."""
    person = holder(session)
    url = f"/admin/data_fix/edit/?person_id={person.id}"
    resp = login("province").post(url, {"person_id": str(person.id), "name": "张建业", "id_number": person.id_number,
                                        "phone": person.phone or "", "employer_name": "", "reason": "姓名录入错误"},
                                  token_from=url, follow_redirects=True)
    assert "已保存：姓名" in resp.get_data(as_text=True)
    for who, page in (("enterprise", f"/admin/student/details/?id={person.id}"), ("person", "/admin/my_info/")):
        table = _history(login(who).get(page).get_data(as_text=True))
        assert "姓名" in table and "张建业" in table and "姓名录入错误" in table, who
    assert login("enterprise2").get(f"/admin/student/details/?id={person.id}").status_code == 404
