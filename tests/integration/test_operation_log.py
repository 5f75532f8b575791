"""操作日志 (SPEC §8; 003 §四): read-only, searchable by user, kind and date, and limited to the
organization's users and its descendants' (the province: all)."""

from __future__ import annotations

import html as htmllib
import io
import re
from datetime import datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from models import AuditLog
from models.org import OrgKind
from tests.factories import make_audit, make_org, make_user, user
from workflows.audit import Kind

URL = "/admin/audit_log/"


def flashes(resp) -> str:
    return htmllib.unescape(" ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True),
                                                re.S)))


def page(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    return htmllib.unescape(resp.get_data(as_text=True))


def row(session, by, summary, kind=Kind.EDIT, at=None, detail=None) -> AuditLog:
    made = make_audit(session, by, summary)
    made.kind = kind
    made.detail = detail
    if at is not None:
        made.created_at = at
    session.flush()
    return made


@pytest.fixture
def world(session):
    """One row per organization of interest: the jinan authority, its institution (two users),
    a second jinan institution, the qingdao authority, the province, an unknown kind."""
    inst_jinan = user(session, "inst_jinan")
    colleague = make_user(session, inst_jinan.organization, "inst_jinan_clerk")
    other_inst = make_org(session, OrgKind.institution, user(session, "jinan").organization, name="济南另一培训机构")
    stranger = make_user(session, other_inst, "other_inst_clerk")
    rows = {
        "jinan": row(session, user(session, "jinan"), "日志-济南主管"),
        "inst_jinan": row(session, inst_jinan, "日志-济南机构"),
        "colleague": row(session, colleague, "日志-机构同事"),
        "other_inst": row(session, stranger, "日志-济南另一机构"),
        "qingdao": row(session, user(session, "qingdao"), "日志-青岛主管", kind=Kind.TRANSITION),
        "province": row(session, user(session, "province"), "日志-省厅", kind="mystery_kind"),
    }
    session.commit()
    return rows


def summaries(text, world) -> set:
    return {key for key, r in world.items() if r.summary in text}


# -- who sees what -------------------------------------------------------------------------------


def test_province_sees_every_row_with_kinds_in_chinese(login, world):
    text = page(login("province").get(URL))
    assert summaries(text, world) == set(world)
    assert "审核流转" in text and "编辑" in text and "登录成功" in text
    assert "mystery_kind" in text  # a kind without a label is shown as it is stored
    for header in ("时间", "用户", "机构", "类型", "内容", "IP"):
        assert f">{header}<" in text or header in text
    # 用户 shows the username and the name
    assert "inst_jinan_clerk（" in text


def test_authority_sees_its_own_and_its_institutions_users_rows(login, world):
    text = page(login("jinan").get(URL))
    assert summaries(text, world) == {"jinan", "inst_jinan", "colleague", "other_inst"}


def test_institution_sees_only_its_own_users_rows(login, world):
    text = page(login("inst_jinan").get(URL))
    assert summaries(text, world) == {"inst_jinan", "colleague"}


def test_newest_first(login, session, world):
    me = user(session, "province")
    row(session, me, "日志-较早", at=datetime(2020, 1, 1, 1, 0, 0))
    row(session, me, "日志-较晚", at=datetime(2020, 1, 2, 1, 0, 0))
    text = page(login("province").get(URL + "?start=2020-01-01&end=2020-01-02"))
    assert text.index("日志-较晚") < text.index("日志-较早")
    assert "2020-01-02 09:00:00" in text  # shown in Beijing time


def test_an_individual_may_not_open_the_log(login, world):
    client = login("person")
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}details/?id={world['province'].id}").status_code == 403
    assert client.post(f"{URL}export.xlsx").status_code == 403
    assert "操作日志" not in page(client.get("/admin/"))


def test_menu_entry_under_system_management(login, world):
    text = page(login("jinan").get("/admin/"))
    assert "系统管理" in text and f'href="{URL}"' in text


# -- filters and search ---------------------------------------------------------------------------


def test_filter_by_kind(login, session, world):
    text = page(login("province").get(URL + "?kind=transition"))
    assert summaries(text, world) == {"qingdao"}
    assert '<option value="transition" selected>' in text


def test_filter_by_beijing_date_range(login, session, world):
    me = user(session, "province")
    # Beijing = UTC+8: 2024-03-02 in Beijing is [2024-03-01 16:00, 2024-03-02 16:00) UTC
    row(session, me, "日志-北京3月1日深夜", at=datetime(2024, 3, 1, 15, 59, 59))
    row(session, me, "日志-北京3月2日零点", at=datetime(2024, 3, 1, 16, 0, 0))
    row(session, me, "日志-北京3月2日深夜", at=datetime(2024, 3, 2, 15, 59, 59))
    row(session, me, "日志-北京3月3日零点", at=datetime(2024, 3, 2, 16, 0, 0))
    client = login("province")
    text = page(client.get(URL + "?start=2024-03-02&end=2024-03-02"))
    assert "日志-北京3月2日零点" in text and "日志-北京3月2日深夜" in text
    assert "日志-北京3月1日深夜" not in text and "日志-北京3月3日零点" not in text
    assert not summaries(text, world)
    text = page(client.get(URL + "?start=2024-03-02&end=2024-03-03"))
    assert "日志-北京3月1日深夜" not in text and "日志-北京3月3日零点" in text
    text = page(client.get(URL + "?end=2024-03-01"))
    assert "日志-北京3月1日深夜" in text and "日志-北京3月2日零点" not in text


@pytest.mark.parametrize("query, message", [
    ("start=2024-13-01", "开始日期「2024-13-01」格式不正确"),
    ("end=昨天", "结束日期「昨天」格式不正确"),
    ("start=2024-03-05&end=2024-03-01", "结束日期 2024-03-01 早于开始日期 2024-03-05"),
    ("kind=nonsense", "操作类型「nonsense」不存在"),
])
def test_a_bad_filter_is_dropped_with_a_chinese_message(login, world, query, message):
    resp = login("province").get(f"{URL}?{query}")
    assert message in flashes(resp)
    assert summaries(page(resp), world) == set(world)  # the unfiltered list


def test_filter_by_user(login, session, world):
    client = login("province")
    assert summaries(page(client.get(URL + "?user=inst_jinan_clerk")), world) == {"colleague"}
    name = user(session, "qingdao").name
    assert summaries(page(client.get(URL + "?user=" + name)), world) == {"qingdao"}


def test_search_by_username_or_name(login, session, world):
    client = login("province")
    assert summaries(page(client.get(URL + "?search=inst_jinan")), world) == {"inst_jinan", "colleague"}
    assert summaries(page(client.get(URL + "?search=other_inst_clerk")), world) == {"other_inst"}
    name = user(session, "qingdao").name
    assert summaries(page(client.get(URL + "?search=" + name)), world) == {"qingdao"}
    # the authority searching another city's user finds nothing
    assert summaries(page(login("jinan").get(URL + "?search=qingdao")), world) == set()


# -- details ------------------------------------------------------------------------------------


def test_details_of_a_foreign_row_is_404(login, world):
    client = login("jinan")
    assert client.get(f"{URL}details/?id={world['colleague'].id}").status_code == 200
    assert client.get(f"{URL}details/?id={world['qingdao'].id}").status_code == 404
    assert login("inst_jinan").get(f"{URL}details/?id={world['jinan'].id}").status_code == 404
    assert client.get(f"{URL}details/?id=abc").status_code == 404


@pytest.mark.parametrize("detail", [
    {"name": {"before": "张三", "after": "李四"}, "phone": {"before": None, "after": "13800000000"}},
    {"before": {"name": "张三", "phone": None}, "after": {"name": "李四", "phone": "13800000000"}},
])
def test_details_show_an_edit_as_before_and_after_in_chinese(login, session, detail):
    made = row(session, user(session, "jinan"), "修改人员信息", detail=detail)
    made.object_type, made.object_id = "person", user(session, "person").person_id
    session.commit()
    text = page(login("jinan").get(f"{URL}details/?id={made.id}"))
    table = re.search(r'id="audit-detail-changes".*?</table>', text, re.S).group(0)
    assert "字段" in table and "修改前" in table and "修改后" in table
    assert re.search(r"<td>姓名</td><td>张三</td><td>李四</td>", table)
    assert re.search(r"<td>手机号</td><td>（空）</td><td>13800000000</td>", table)
    assert "修改人员信息" in text and "<td>name</td>" not in text


def test_details_show_other_detail_in_chinese_never_json(login, session):
    made = row(session, user(session, "jinan"), "数据维护", kind=Kind.DATA_FIX,
               detail={"reason": "录入错误", "issue_date": {"before": "2024-01-01", "after": "2024-01-02"},
                       "count": 3, "ids": [1, 2]})
    session.commit()
    text = page(login("jinan").get(f"{URL}details/?id={made.id}"))
    assert "audit-detail-json" not in text and '"count"' not in text and "{" not in re.sub(
        r"<script.*?</script>|<style.*?</style>", "", text, flags=re.S).split('id="audit-detail-changes"')[1]
    assert re.search(r"<td>发证日期</td><td>2024-01-01</td><td>2024-01-02</td>", text)
    assert re.search(r"<th>原因</th><td>录入错误</td>", text) and re.search(r"<th>数量</th><td>3</td>", text)
    assert re.search(r"<th>记录号</th><td>1、2</td>", text)


def test_details_name_the_object_not_its_table_and_id(login, session):
    person = user(session, "person").person
    made = row(session, user(session, "province"), "数据维护：人员")
    made.object_type, made.object_id = "person", person.id
    gone = row(session, user(session, "province"), "删除机构")
    gone.object_type, gone.object_id = "organization", 99999999
    export = row(session, user(session, "province"), "导出注册人员", kind=Kind.EXPORT)
    export.object_type = "registered"
    session.commit()
    client = login("province")
    text = page(client.get(f"{URL}details/?id={made.id}"))
    assert f"人员：{person.name}" in text and "person #" not in text
    assert "机构（记录 99999999，已删除或无权查看）" in page(client.get(f"{URL}details/?id={gone.id}"))
    assert "列表：注册人员查询" in page(client.get(f"{URL}details/?id={export.id}"))


def test_every_row_written_in_a_request_has_the_client_ip(login, session):
    """A log() call that names no IP (a workflow's edit) still records the request's address;
    a row written outside a request (the job worker, the CLI) shows 「—（系统）」."""
    client = login("province")
    url = f"/admin/data_fix/edit/?person_id={user(session, 'person').person_id}"
    person = user(session, "person").person
    client.post(url, {"person_id": str(person.id), "name": "张建业", "id_number": person.id_number,
                      "phone": person.phone or "", "employer_name": "", "reason": "姓名录入错误"}, token_from=url)
    fixed = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.DATA_FIX).order_by(AuditLog.id.desc())).first()
    assert fixed is not None and fixed.ip == "127.0.0.1"
    system = row(session, user(session, "province"), "日志-后台任务", kind=Kind.EXPORT)
    session.commit()
    assert system.ip is None
    text = page(client.get(URL + "?search=日志-后台任务"))
    assert "—<small" in text and "（系统）" in text
    sheet = load_workbook(io.BytesIO(client.post(URL + "export.xlsx?search=日志-后台任务").data)).active
    assert [r[6] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["—（系统）"]


def test_search_finds_a_name_in_the_summary(login, session, world):
    me = user(session, "jinan")
    row(session, me, "数据维护：人员「欧阳测试 370102199001010012」修改姓名")
    session.commit()
    client = login("jinan")
    text = page(client.get(URL + "?search=欧阳测试"))
    assert "欧阳测试 370102199001010012" in text and not summaries(text, world)
    assert "欧阳测试" in page(client.get(URL + "?search=370102199001010012"))
    # still through visibility: another city's authority does not find it
    assert "370102199001010012" not in page(login("qingdao").get(URL + "?search=欧阳测试"))
    # a wildcard is a character, not a pattern
    assert not summaries(page(client.get(URL + "?search=日志%25机构")), world)


def test_summary_search_reads_a_bounded_run_of_rows(login, session, monkeypatch):
    import admin_views.logs as logs

    me = user(session, "province")
    old = row(session, me, "日志-欧阳旧名", at=datetime(2099, 1, 1, 1, 0, 0))  # the first row of its day
    for i in range(3):
        row(session, me, f"日志-较新{i}")
    session.commit()
    monkeypatch.setattr(logs, "SUMMARY_SEARCH_ROWS", 2)
    client = login("province")
    assert old.summary not in page(client.get(URL + "?search=欧阳旧名"))  # beyond the newest two rows
    # from a 开始日期 on, as many rows: the old row is found again
    assert old.summary in page(client.get(URL + "?search=欧阳旧名&start=2099-01-01"))


# -- export and read-only -----------------------------------------------------------------------


def test_export_holds_only_visible_rows(login, session, world):
    before = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == Kind.EXPORT))
    resp = login("jinan").post(URL + "export.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(resp.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("时间", "用户名", "姓名", "机构", "类型", "内容", "IP")
    content = {r[5] for r in rows[1:]}
    assert {world[k].summary for k in ("jinan", "inst_jinan", "colleague", "other_inst")} <= content
    assert world["qingdao"].summary not in content and world["province"].summary not in content
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.kind == Kind.EXPORT)) == before + 1


def test_export_keeps_the_filters(login, world):
    resp = login("province").post(URL + "export.xlsx?kind=transition")
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))[1:]
    assert {r[4] for r in rows} == {"审核流转"}
    assert {r[5] for r in rows} & {w.summary for w in world.values()} == {world["qingdao"].summary}


def test_the_log_cannot_be_changed(login, session, world):
    client = login("province")
    target = world["jinan"]
    count = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.summary.like("日志-%")))
    for url, data in ((f"{URL}new/", {"summary": "伪造", "kind": "edit"}),
                      (f"{URL}edit/?id={target.id}", {"summary": "篡改"}),
                      (f"{URL}delete/", {"id": str(target.id)}),
                      (f"{URL}ajax/update/", {"list_form_pk": str(target.id), "summary": "篡改"})):
        assert client.post(url, data).status_code in (403, 404, 405), url
    assert client.get(f"{URL}new/").status_code in (403, 404, 405)
    session.expire_all()
    assert session.get(AuditLog, target.id).summary == "日志-济南主管"
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.summary.like("日志-%"))) == count
    text = page(client.get(URL))
    assert f"{URL}edit/" not in text and f"{URL}delete/" not in text and f"{URL}new/" not in text


def test_a_real_failed_sign_in_appears_for_the_province(browser, login, session):
    resp = browser.post("/login", {"username": "jinan", "password": "Wrong@2026"}, token_from="/login")
    assert resp.status_code == 200
    failed = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGIN_FAIL)
                             .order_by(AuditLog.id.desc())).first()
    assert failed is not None and failed.username == "jinan"
    client = login("province")
    text = page(client.get(URL + "?kind=login_fail"))
    assert "登录失败" in text and failed.summary in text and "jinan" in text
    assert failed.summary in page(client.get(URL + "?search=jinan&kind=login_fail"))


def test_search_finds_a_sign_in_under_an_unknown_username(browser, login, session):
    browser.post("/login", {"username": "ghost_user", "password": "Wrong@2026"}, token_from="/login")
    text = page(login("province").get(URL + "?search=ghost_user"))
    table = text.split("model-list")[1]
    assert "登录失败：用户名不存在" in table and "ghost_user" in table
