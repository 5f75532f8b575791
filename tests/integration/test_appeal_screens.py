"""申辩管理 screens through the real sign-in, CSRF on (SPEC §5.5; 004 §3.5).

The enterprise answers under 注册管理 › 申辩管理 (`appeal`), the province decides and runs 异常筛查
under 注册审查 › 申辩管理 (`appeal_review`); a row or file of another enterprise is a 404.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import Anomaly, AnomalyStatus, Attachment, AuditLog, Person, TransitionLog
from models.base import utcnow
from models.user import Role
from tests.factories import make_user, user
from tests.samples import make_pdf, make_png, make_xlsx
from workflows.registration import REGISTRATION, Commitment, declare
from workflows.validators import make_id_number

A = AnomalyStatus
ANSWER = "该人员为返聘技术顾问，已签订劳务协议，正在办理注销注册。"
REASON = "超龄人员不得继续注册执业，请办理注销注册"


# -- helpers ---------------------------------------------------------------------------------------
def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def demo_anomaly(session, enterprise: str, status: AnomalyStatus) -> Anomaly:
    return session.scalar(select(Anomaly).where(
        Anomaly.enterprise_id == user(session, enterprise).organization_id, Anomaly.status == status)
        .order_by(Anomaly.id))


def answer(client, anomaly, text=ANSWER, files=(), **extra):
    data = {"id": str(anomaly.id), "answer": text, "files": [(io.BytesIO(d), n) for n, d in files], **extra}
    return client.post("/admin/appeal/answer/", data, content_type="multipart/form-data")


def stored_files(session, anomaly) -> list[Attachment]:
    return session.scalars(select(Attachment).where(Attachment.owner_type == "anomaly",
                                                    Attachment.owner_id == anomaly.id).order_by(Attachment.id)).all()


def over_age_holder_registered_at(session, enterprise: str) -> Person:
    """A holder of 72, registered at ``enterprise`` through the whole REGISTRATION table."""
    ent = user(session, enterprise)
    birth = date(1954, 2, 2)
    person = Person(name="筛查测试", id_number=make_id_number("370181", birth, 777, "男"), birth_date=birth,
                    gender="男", employer_id=ent.organization_id, created_at=utcnow())
    session.add(person)
    session.flush()
    individual = make_user(session, None, role=Role.individual, person=person)
    reg = declare(session, individual, {"kind": "initial", "specialty": "05", "enterprise": ent.organization.name})
    REGISTRATION.fire(session, ent, reg, "report",
                      commitment=Commitment(shown_at=utcnow() - timedelta(seconds=61), ticked=True))
    for step, who in (("province_accept", "province"), ("province_forward", "province"),
                      ("ministry_accept", "ministry"), ("ministry_approve", "ministry")):
        REGISTRATION.fire(session, user(session, who), reg, step)
    return person


# -- the enterprise answers --------------------------------------------------------------------------
def test_enterprise_answers_an_anomaly_with_an_image_and_a_pdf(login, session):
    anomaly = demo_anomaly(session, "enterprise", A.open)
    client = login("enterprise")
    html = client.get("/admin/appeal/").get_data(as_text=True)  # 待申辩 is the first tab
    assert 'data-tab="open"' in html and anomaly.person.name in html and anomaly.kind.label in html
    html = client.get(f"/admin/appeal/details/?id={anomaly.id}").get_data(as_text=True)
    assert 'id="appeal-form"' in html and anomaly.description in html and anomaly.person.id_number in html
    assert 'name="csrf_token"' in html and 'enctype="multipart/form-data"' in html

    png, pdf = make_png(12, 8), make_pdf()
    resp = answer(client, anomaly, files=[("返聘协议.png", png), ("情况说明.pdf", pdf)], version=str(anomaly.version))
    assert resp.status_code == 302
    html = client.get(resp.location).get_data(as_text=True)
    assert "申辩已提交，等待省厅处理" in html
    session.refresh(anomaly)
    assert anomaly.status == A.appealed and anomaly.answer == ANSWER
    image, document = stored_files(session, anomaly)
    assert (image.kind.value, document.kind.value) == ("image", "document")
    # the page now shows the answer and the files instead of the form
    assert 'id="appeal-form"' not in html and ANSWER in html and "已申辩，等待省厅处理" in html
    assert f"/admin/appeal/file/{image.id}?inline=1" in html and f"/admin/appeal/file/{document.id}" in html
    resp = client.get(f"/admin/appeal/file/{document.id}")
    assert resp.status_code == 200 and resp.data == pdf and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/admin/appeal/file/{image.id}?inline=1").data == png
    # the transition is logged by the engine
    assert session.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.object_type == "anomaly", TransitionLog.object_id == anomaly.id,
        TransitionLog.transition == "appeal")) == 1

    # another enterprise: the row, its form and its files do not exist
    other = login("enterprise2")
    assert other.get(f"/admin/appeal/details/?id={anomaly.id}").status_code == 404
    assert other.get(f"/admin/appeal/file/{image.id}?inline=1").status_code == 404
    assert other.get(f"/admin/appeal/file/{document.id}").status_code == 404
    assert anomaly.person.name not in other.get("/admin/appeal/?tab=all").get_data(as_text=True)
    # the province sees the files through its own list
    assert login("province").get(f"/admin/appeal_review/file/{document.id}").data == pdf


@pytest.mark.parametrize(
    ("text", "files", "message"),
    [
        ("", [("说明.png", make_png(4, 4))], "请填写申辩说明"),
        (ANSWER, [("统计表.xlsx", make_xlsx())], "仅支持 jpg、png、pdf、doc、docx"),
        (ANSWER, [("说明.png", make_pdf())], "内容与扩展名不符"),
        (ANSWER, [(f"{i}.png", make_png(2, 2)) for i in range(6)], "申辩材料最多上传5个文件"),
    ],
)
def test_a_refused_answer_flashes_in_chinese_and_stores_nothing(login, session, text, files, message):
    anomaly = demo_anomaly(session, "enterprise", A.open)
    client = login("enterprise")
    resp = answer(client, anomaly, text, files, version=str(anomaly.version))
    assert resp.status_code == 302
    assert message in flashes(client.get(resp.location))
    session.refresh(anomaly)
    assert anomaly.status == A.open and anomaly.answer is None and stored_files(session, anomaly) == []


def test_another_enterprise_cannot_answer(login, session):
    anomaly = demo_anomaly(session, "enterprise", A.open)
    assert answer(login("enterprise2"), anomaly, files=[("a.png", make_png(2, 2))]).status_code == 404
    session.refresh(anomaly)
    assert anomaly.status == A.open and stored_files(session, anomaly) == []


def test_a_stale_page_cannot_answer_twice(login, session):
    anomaly = demo_anomaly(session, "enterprise", A.open)
    client = login("enterprise")
    version = str(anomaly.version)
    assert answer(client, anomaly, version=version).status_code == 302
    resp = answer(client, anomaly, "再次申辩", version=version)
    assert "该记录已被他人处理" in flashes(client.get(resp.location))
    session.refresh(anomaly)
    assert anomaly.answer == ANSWER


# -- the province decides ----------------------------------------------------------------------------
def test_province_rejects_only_with_a_reason_and_the_enterprise_sees_it(login, session):
    anomaly = demo_anomaly(session, "enterprise", A.appealed)
    province = login("province_reviewer")
    html = province.get("/admin/appeal_review/").get_data(as_text=True)  # 待处理
    assert anomaly.person.name in html and "wf_accept" in html and "wf_reject" in html

    # the bulk action opens the reason form; an empty reason is refused by the server
    resp = province.post("/admin/appeal_review/action/", {"action": "wf_reject", "rowid": [str(anomaly.id)]})
    assert resp.status_code == 302 and "/admin/appeal_review/reason/" in resp.location
    resp = province.post("/admin/appeal_review/reason/", {"transition": "reject", "id": [str(anomaly.id)],
                                                          "reason": "  "})
    assert "请填写不通过理由" in flashes(resp)
    # the detail page's button: the engine refuses an empty reason too
    resp = province.post("/admin/appeal_review/transition/", {"id": str(anomaly.id), "transition": "reject",
                                                              "reason": ""}, follow_redirects=True)
    assert "请填写不通过理由" in flashes(resp)
    session.refresh(anomaly)
    assert anomaly.status == A.appealed

    resp = province.post("/admin/appeal_review/reason/", {"transition": "reject", "id": [str(anomaly.id)],
                                                          "reason": REASON}, follow_redirects=True)
    assert "申辩不通过：成功 1 条，失败 0 条" in flashes(resp)
    session.refresh(anomaly)
    assert anomaly.status == A.rejected and anomaly.decision == REASON

    html = login("enterprise").get(f"/admin/appeal/details/?id={anomaly.id}").get_data(as_text=True)
    assert "申辩不通过" in html and REASON in html and "reason-red" in html
    assert 'id="appeal-form"' not in html and 'id="btn-reject"' not in html


def test_province_accepts_in_bulk(login, session):
    rows = [demo_anomaly(session, name, A.appealed) for name in ("enterprise", "enterprise2")]
    resp = login("province").post("/admin/appeal_review/action/", {
        "action": "wf_accept", "rowid": [str(a.id) for a in rows]}, follow_redirects=True)
    assert "申辩通过：成功 2 条，失败 0 条" in flashes(resp)
    for row in rows:
        session.refresh(row)
        assert row.status == A.accepted
    html = login("enterprise").get(f"/admin/appeal/details/?id={rows[0].id}").get_data(as_text=True)
    assert "申辩通过" in html


def test_the_enterprise_cannot_decide(login, session):
    anomaly = demo_anomaly(session, "enterprise", A.appealed)
    client = login("enterprise")
    html = client.get(f"/admin/appeal/details/?id={anomaly.id}").get_data(as_text=True)
    assert 'id="btn-accept"' not in html
    resp = client.post("/admin/appeal/action/", {"action": "wf_accept", "rowid": [str(anomaly.id)]},
                       follow_redirects=True)
    assert "无权执行该操作" in flashes(resp)
    resp = client.post("/admin/appeal/transition/", {"id": str(anomaly.id), "transition": "accept"},
                       follow_redirects=True)
    assert "无权执行「申辩通过」" in flashes(resp)
    # 申辩 itself is no generic button: it carries text and files
    assert client.post("/admin/appeal/transition/", {"id": str(anomaly.id), "transition": "appeal",
                                                      "data_answer": ANSWER}).status_code == 404
    session.refresh(anomaly)
    assert anomaly.status == A.appealed


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("enterprise", "/admin/appeal_review/", 403), ("province", "/admin/appeal/", 403),
        ("jinan", "/admin/appeal/", 403), ("jinan", "/admin/appeal_review/", 403),
        ("person", "/admin/appeal/", 403), ("ministry", "/admin/appeal_review/", 403),
        ("enterprise", "/admin/appeal/", 200), ("province_reviewer", "/admin/appeal_review/", 200),
    ],
)
def test_who_opens_which_list(login, username, url, status):
    assert login(username).get(url).status_code == status


# -- 异常筛查 ------------------------------------------------------------------------------------------
def test_the_scan_button_adds_rows(login, session):
    person = over_age_holder_registered_at(session, "enterprise2")
    before = session.scalar(select(func.count()).select_from(Anomaly))
    province = login("province")
    html = province.get("/admin/appeal_review/").get_data(as_text=True)
    assert 'id="scan-button"' in html and "异常筛查" in html

    resp = province.post("/admin/appeal_review/scan/", {}, follow_redirects=True)
    assert re.search(r"异常筛查完成：新增 \d+ 条异常信息", flashes(resp)), flashes(resp)
    flagged = session.scalars(select(Anomaly).where(Anomaly.person_id == person.id)).all()
    assert [(a.kind.value, a.status) for a in flagged] == [("over_age", A.open)]
    assert session.scalar(select(func.count()).select_from(Anomaly)) > before
    assert "异常筛查：新增" in session.scalar(select(AuditLog.summary).where(
        AuditLog.user_id == user(session, "province").id).order_by(AuditLog.id.desc()))
    assert person.name in province.get("/admin/appeal_review/?tab=all").get_data(as_text=True)
    # enterprise2 finds it in 待申辩
    assert person.name in login("enterprise2").get("/admin/appeal/").get_data(as_text=True)

    # a second scan finds nothing new
    resp = province.post("/admin/appeal_review/scan/", {}, follow_redirects=True)
    assert "未发现新的异常信息" in flashes(resp)


def test_the_scan_needs_the_csrf_token_and_the_province(login, session):
    person = over_age_holder_registered_at(session, "enterprise")
    province = login("province")
    assert province.post("/admin/appeal_review/scan/", {}, csrf=False).status_code == 400
    assert session.scalars(select(Anomaly).where(Anomaly.person_id == person.id)).all() == []
    enterprise = login("enterprise")
    assert enterprise.post("/admin/appeal_review/scan/", {}).status_code == 403
    assert enterprise.post("/admin/appeal/scan/", {}).status_code == 404
    assert session.scalars(select(Anomaly).where(Anomaly.person_id == person.id)).all() == []
