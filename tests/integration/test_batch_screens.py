"""批次管理 screens through the real sign-in, CSRF on (SPEC §5.1; 003 §六.1, §七.1, §八.1)."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from models import Attachment, Batch, BatchStatus, Candidate, Certificate, TransitionLog, User
from tests.samples import make_docx, make_pdf, make_png
from workflows.validators import make_id_number

HEADER = ["姓名", "身份证号", "手机号", "工作单位", "职业(工种)", "等级"]
_seq = iter(range(100, 999, 2))


def new_id(birth=date(1992, 3, 4)) -> str:
    return make_id_number("370102", birth, next(_seq), "男")


def xlsx(rows, header=HEADER) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client, data, name="测试批次", filename="合格人员.xlsx"):
    return client.post("/admin/batch-create/", {"name": name, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def in_table(html: str, value: str) -> bool:
    """A value shown in a list cell, not merely echoed back in the search box."""
    return f">{value}<" in re.sub(r"\s+", "", html)


def batch_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Batch))


def draft_of(session, username):
    user = session.scalar(select(User).where(User.username == username))
    return session.scalar(select(Batch).where(Batch.institution_id == user.organization_id,
                                              Batch.status == BatchStatus.draft).order_by(Batch.id))


def batch_in(session, username, status):
    user = session.scalar(select(User).where(User.username == username))
    return session.scalar(select(Batch).where(Batch.institution_id == user.organization_id,
                                              Batch.status == status).order_by(Batch.id))


# -- 示例文档下载 -------------------------------------------------------------------------------
def test_template_offers_only_the_institution_scope_and_text_ids(login):
    resp = login("inst_jinan").get("/admin/batch-create/template.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(resp.data))
    sheet = wb.worksheets[0]
    assert [c.value for c in sheet[1]] == HEADER
    assert sheet["B2"].number_format == "@"
    options = [c.value for row in wb["选项"].iter_rows() for c in row if c.value]
    assert "砌筑工" in options and "焊工" in options
    assert "木工" not in options  # not in inst_jinan's scope, only in the direct institution's
    assert "填写说明" in wb.sheetnames


def test_template_rows_end_where_an_upload_is_refused(app, login):
    """Its dropdowns and text column reach IMPORT_MAX_ROWS rows: the rows an upload may hold."""
    app.config["IMPORT_MAX_ROWS"] = 300
    wb = load_workbook(io.BytesIO(login("inst_jinan").get("/admin/batch-create/template.xlsx").data))
    ranges = [str(dv.sqref) for dv in wb.worksheets[0].data_validations.dataValidation]
    assert ranges and all(r.endswith("301") for r in ranges), ranges


def test_template_is_for_institutions_only(login):
    assert login("jinan").get("/admin/batch-create/template.xlsx").status_code == 403
    assert login("enterprise").get("/admin/batch-create/").status_code == 403


# -- upload --------------------------------------------------------------------------------------
def test_clean_upload_creates_a_draft_and_goes_to_attachments(login, session):
    client = login("inst_jinan")
    resp = upload(client, xlsx([("张三", new_id(), "13800001111", "鲁建", "砌筑工", "初级工(五级)"),
                                ("李四", new_id(), None, None, "施工员", None)]))
    assert resp.status_code == 302 and "/admin/batch-create/attachments/" in resp.location
    batch = session.scalar(select(Batch).order_by(Batch.id.desc()))
    assert batch.status == BatchStatus.draft and batch.candidate_count == 2 and batch.name == "测试批次"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("张三", "370102199001010000", None, None, "砌筑工", "初级工(五级)")], ("2", "身份证号", "校验位")),
        ([("张三", 370102199001010000, None, None, "砌筑工", "初级工(五级)")], ("2", "身份证号", "文本格式")),
        ([("", "ID", None, None, "砌筑工", "初级工(五级)")], ("2", "姓名", "必填")),
        ([("张三", "ID", None, None, "木工", "初级工(五级)")], ("2", "职业(工种)", "职业(工种)范围")),
        ([("张三", "ID", None, None, "砌筑工", "初级工(五级)"), ("张三", "SAME", None, None, "砌筑工", "初级工(五级)")],
         ("3", "身份证号", "重复")),
    ],
    ids=["check-digit", "id-as-number", "missing-name", "out-of-scope", "duplicate"],
)
def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_stored(login, session, rows, expected):
    identity = new_id()
    rows = [tuple(identity if v in ("ID", "SAME") else v for v in row) for row in rows]
    before = batch_count(session)
    resp = upload(login("inst_jinan"), xlsx(rows))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    found = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    assert any(r == expected[0] and c == expected[1] and expected[2] in m for r, c, m in found), found
    assert "批次未保存" in html
    assert batch_count(session) == before


def test_existing_holder_of_the_same_certificate_is_a_row_error(login, session):
    cert = session.scalar(select(Certificate).order_by(Certificate.id))
    row = (cert.person.name, cert.person.id_number, None, None, cert.occupation.name,
           cert.level.name if cert.level else None)
    resp = upload(login("inst_jinan"), xlsx([row]))
    assert "已持有同职业(工种)等级的有效证书" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"name,id\n", "a.xlsx", "不是有效的 Excel"),
        (make_pdf(), "a.xlsx", "不是有效的 Excel"),
        (b"PK\x03\x04broken", "a.xlsx", "不是有效的 Excel"),
        (b"0" * (5 * 1024 * 1024 + 1), "a.xlsx", "5MB"),
        ("header", "a.xlsx", "表头"),
    ],
    ids=["csv", "pdf", "corrupt-zip", "over-5mb", "wrong-header"],
)
def test_bad_files_get_a_clear_message(login, session, data, filename, message):
    if data == "header":
        data = xlsx([("张三", new_id())], header=["名字", "证件"])
    before = batch_count(session)
    resp = upload(login("inst_jinan"), data, filename=filename)
    assert resp.status_code == 200
    assert message in resp.get_data(as_text=True)
    assert batch_count(session) == before


def test_over_10000_rows_is_refused(login, session):
    identity = new_id()
    rows = [("张三", identity, None, None, "砌筑工", "初级工(五级)")] * 10_001
    resp = upload(login("inst_jinan"), xlsx(rows))
    assert "10000" in resp.get_data(as_text=True) or "10,000" in resp.get_data(as_text=True)


def test_missing_name_or_file(login, session):
    client = login("inst_jinan")
    before = batch_count(session)
    assert "请填写批次名称" in flashes(upload(client, xlsx([("张三", new_id(), None, None, "砌筑工", "初级工(五级)")]),
                                             name=" "))
    resp = client.post("/admin/batch-create/", {"name": "x"}, content_type="multipart/form-data")
    assert "请选择" in flashes(resp)
    assert batch_count(session) == before


# -- attachments -----------------------------------------------------------------------------------
def attach(client, batch_id, *files):
    return client.post("/admin/batch/attach/", {"id": str(batch_id), "files": [(io.BytesIO(d), n) for n, d in files]},
                       content_type="multipart/form-data", follow_redirects=True)


def attachments_of(session, batch):
    return session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.owner_type == "batch", Attachment.owner_id == batch.id))


def test_attachments_are_checked_by_content_and_counted(login, session):
    client = login("inst_jinan")
    batch = draft_of(session, "inst_jinan")
    assert "资料已上传" in flashes(attach(client, batch.id, ("照片.png", make_png()), ("名单.pdf", make_pdf())))
    assert attachments_of(session, batch) == 2
    assert "内容与扩展名不符" in flashes(attach(client, batch.id, ("伪装.png", make_pdf())))
    assert "不是有效的" in flashes(attach(client, batch.id, ("x.png", b"not an image")))
    # the third document is refused and, with it, the image in the same upload: all or nothing
    resp = attach(client, batch.id, ("a.png", make_png()), ("b.docx", make_docx()), ("c.pdf", make_pdf()))
    assert "最多上传2个文档" in flashes(resp)
    assert attachments_of(session, batch) == 2


def test_twenty_one_images_are_refused(login, session):
    client = login("inst_jinan")
    batch = draft_of(session, "inst_jinan")
    resp = attach(client, batch.id, *[(f"{i}.png", make_png()) for i in range(21)])
    assert "最多上传20张图片" in flashes(resp)
    assert attachments_of(session, batch) == 0


def test_attachments_of_a_batch_under_review_cannot_change(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    resp = attach(login("inst_jinan"), batch.id, ("a.png", make_png()))
    assert "不能修改" in flashes(resp)
    assert attachments_of(session, batch) == 0


def test_reviewer_downloads_and_previews_attachments(login, session):
    batch = draft_of(session, "inst_jinan")
    attach(login("inst_jinan"), batch.id, ("照片.png", make_png()))
    attachment = session.scalar(select(Attachment).where(Attachment.owner_type == "batch",
                                                         Attachment.owner_id == batch.id))
    resp = login("jinan").get(f"/admin/batch_review/file/{attachment.id}?inline=1")
    assert resp.status_code == 200 and resp.mimetype == "image/png" and resp.data == make_png()
    assert resp.headers["Content-Disposition"].startswith("inline")
    assert login("qingdao").get(f"/admin/batch_review/file/{attachment.id}").status_code == 404


# -- 我的批次 tabs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("tab", "status"), [("draft", "待提交"), ("reviewing", "审核中"), ("approved", "审核通过"),
                                             ("rejected", "审核不通过")])
def test_my_batches_tabs(login, session, tab, status):
    html = login("inst_jinan").get(f"/admin/batch/?tab={tab}").get_data(as_text=True)
    user = session.scalar(select(User).where(User.username == "inst_jinan"))
    for batch in session.scalars(select(Batch).where(Batch.institution_id == user.organization_id)):
        shown = in_table(html, batch.code)
        in_tab = batch.status.label.startswith(status)
        assert shown == in_tab, (batch.code, batch.status)


def test_rejection_reason_is_shown_in_red(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.rejected)
    html = login("inst_jinan").get("/admin/batch/?tab=rejected").get_data(as_text=True)
    assert f'<span class="reason-red">{batch.reject_reason}</span>' in html


# -- review ------------------------------------------------------------------------------------------
def test_reject_without_reason_is_refused_by_the_server(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    client = login("jinan")
    resp = client.post("/admin/batch_review/transition/", {"id": batch.id, "transition": "authority_reject",
                                                            "reason": "   "}, follow_redirects=True)
    assert "请填写审核不通过原因" in flashes(resp)
    resp = client.post("/admin/batch_review/reason/", {"id": batch.id, "transition": "authority_reject", "reason": ""},
                       follow_redirects=True)
    assert "请填写审核不通过原因" in flashes(resp)
    session.refresh(batch)
    assert batch.status == BatchStatus.authority_review


def test_bulk_reject_asks_for_a_reason_then_reports_per_row(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    client = login("jinan")
    resp = client.post("/admin/batch_review/action/", {"action": "wf_authority_reject", "rowid": [str(batch.id)]})
    assert resp.status_code == 302 and "/reason/" in resp.location
    assert 'id="reason-form"' in client.get(resp.location).get_data(as_text=True)
    resp = client.post("/admin/batch_review/reason/", {"id": [str(batch.id), "999999"], "transition": "authority_reject",
                                                        "reason": "照片不清晰"}, follow_redirects=True)
    assert "成功 1 条，失败 1 条" in flashes(resp)
    session.refresh(batch)
    assert batch.status == BatchStatus.rejected and batch.reject_reason == "照片不清晰"


def test_a_failed_candidate_blocks_approval(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    candidate = batch.candidates[0]
    client = login("jinan")
    resp = client.post("/admin/batch_review/candidate/mark/", {"candidate_id": candidate.id, "failed": "1", "note": ""},
                       follow_redirects=True)
    assert "请填写考生审核不通过说明" in flashes(resp)
    client.post("/admin/batch_review/candidate/mark/", {"candidate_id": candidate.id, "failed": "1", "note": "照片与本人不符"})
    resp = client.post("/admin/batch_review/transition/", {"id": batch.id, "transition": "authority_approve"},
                       follow_redirects=True)
    assert "有考生被标记为审核不通过" in flashes(resp)
    session.refresh(batch)
    assert batch.status == BatchStatus.authority_review
    # the institution cannot mark candidates
    resp = login("inst_jinan").post("/admin/batch/candidate/mark/", {"candidate_id": candidate.id, "failed": "0"},
                                    follow_redirects=True)
    assert "只有当前审核人可以标记考生" in flashes(resp)


def test_province_approval_issues_numbered_certificates(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.province_review)
    resp = login("province").post("/admin/batch_review/action/",
                                  {"action": "wf_province_approve", "rowid": [str(batch.id)]}, follow_redirects=True)
    assert "成功 1 条" in flashes(resp)
    numbers = session.scalars(select(Certificate.number).where(Certificate.batch_id == batch.id)).all()
    assert len(numbers) == batch.candidate_count
    assert all(len(n) == 15 and n[2:6] == "3701" for n in numbers)
    html = login("inst_jinan").get(f"/admin/certificate/?search={numbers[0]}").get_data(as_text=True)
    assert in_table(html, numbers[0])


def test_wrong_state_and_wrong_organization_are_refused(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.approved)
    logs = session.scalar(select(func.count()).select_from(TransitionLog))
    resp = login("province").post("/admin/batch_review/transition/", {"id": batch.id, "transition": "province_reject",
                                                                       "reason": "x"}, follow_redirects=True)
    assert "不能执行" in flashes(resp)
    qingdao_batch = batch_in(session, "inst_qingdao", BatchStatus.authority_review)
    resp = login("jinan").post("/admin/batch_review/transition/", {"id": qingdao_batch.id,
                                                                    "transition": "authority_approve"})
    assert resp.status_code == 404
    assert session.scalar(select(func.count()).select_from(TransitionLog)) == logs


def test_stale_page_gets_already_handled_message(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    resp = login("jinan").post("/admin/batch_review/transition/", {
        "id": batch.id, "transition": "authority_approve", "version": str(batch.version - 1)}, follow_redirects=True)
    assert "该记录已被他人处理" in flashes(resp)


# -- online editing ------------------------------------------------------------------------------
def test_edit_candidate_online_with_the_import_rules(login, session):
    batch = draft_of(session, "inst_jinan")
    candidate = batch.candidates[0]
    client = login("inst_jinan")
    url = "/admin/batch/candidate/edit/"
    form = {"id": batch.id, "candidate_id": candidate.id, "name": "新名字", "id_number": "370102199001010000",
            "occupation_id": candidate.occupation_id, "level_id": candidate.level_id or ""}
    assert "校验位" in flashes(client.post(url, form, follow_redirects=True))
    form["id_number"] = new_id()
    assert "考生信息已保存" in flashes(client.post(url, form, follow_redirects=True))
    session.refresh(candidate)
    assert candidate.name == "新名字"
    count = batch.candidate_count
    add = dict(form, candidate_id="", name="新考生", id_number=new_id())
    assert "考生信息已保存" in flashes(client.post(url, add, follow_redirects=True))
    session.refresh(batch)
    assert batch.candidate_count == count + 1


def test_the_online_editor_offers_only_the_institutions_scope(login, session):
    """在线编辑 (issue 17 item 12): 职业(工种) only the scope's; 等级 the chosen one's scope levels from
    初级 to 高级技师 (data-scope for candidate-form.js); a forged pair outside it is refused, nothing saved."""
    import html as htmllib
    import json

    from models import Level, Occupation, ScopeItem

    batch = draft_of(session, "inst_jinan")
    org = batch.institution
    client = login("inst_jinan")
    page = client.get(f"/admin/batch/candidate/edit/?id={batch.id}").get_data(as_text=True)
    form = re.search(r'<select[^>]*id="c-occupation".*?</select>', page, re.S).group(0)
    offered = set(re.findall(r'<option value="\d+"\s*>([^<]+)</option>', form))
    in_scope = set(session.scalars(select(Occupation.name).join(ScopeItem, ScopeItem.occupation_id == Occupation.id)
                                   .where(ScopeItem.organization_id == org.id)))
    assert offered == in_scope and "木工" not in offered  # 木工: the direct institution's only
    scope = json.loads(htmllib.unescape(re.search(r'data-scope="([^"]*)"', form).group(1)))
    codes = {lv.id: lv.code for lv in session.scalars(select(Level))}
    for occupation_id, levels in scope.items():
        pairs = {(int(occupation_id), lv_id) for lv_id, _ in levels}
        held = set(session.execute(select(ScopeItem.occupation_id, ScopeItem.level_id).where(
            ScopeItem.organization_id == org.id, ScopeItem.occupation_id == int(occupation_id))))
        assert pairs == {p for p in held if p[1] is not None}
        assert [codes[lv_id] for lv_id, _ in levels] == sorted((codes[i] for i, _ in levels), reverse=True)  # 初级 first
    assert "candidate-form.js" in page
    # with an occupation chosen (a candidate being edited), its own levels only, 初级 first
    candidate = batch.candidates[0]
    page = client.get(f"/admin/batch/candidate/edit/?id={batch.id}&candidate_id={candidate.id}").get_data(as_text=True)
    level_select = re.search(r'<select[^>]*id="c-level".*?</select>', page, re.S).group(0)
    shown = [int(v) for v in re.findall(r'<option value="(\d+)"', level_select)]
    assert shown == [lv_id for lv_id, _ in scope[str(candidate.occupation_id)]]
    # the server's own check: a pair outside the scope is refused whatever the form offered
    wood = session.scalar(select(Occupation).where(Occupation.name == "木工"))
    count = batch.candidate_count
    resp = client.post("/admin/batch/candidate/edit/", {
        "id": batch.id, "name": "范围外", "id_number": new_id(), "occupation_id": wood.id,
        "level_id": min(codes, key=lambda i: codes[i])}, follow_redirects=True)
    assert "职业(工种)等级不在本机构职业(工种)范围内" in flashes(resp)
    session.refresh(batch)
    assert batch.candidate_count == count


def test_the_template_lists_each_occupations_levels_in_order(login, session):
    """示例文档 (issue 17 item 12): 等级 depends on the chosen 职业(工种), levels from 初级 to 高级技师."""
    wb = load_workbook(io.BytesIO(login("inst_jinan").get("/admin/batch-create/template.xlsx").data))
    order = ["初级工(五级)", "中级工(四级)", "高级工(三级)", "技师(二级)", "高级技师(一级)"]
    rows = [[c.value for c in row if c.value is not None] for row in wb["选项"].iter_rows()]
    assert rows
    for name, count, *levels in rows:
        assert len(levels) == count and levels == sorted(levels, key=order.index), name
    validations = {str(dv.sqref)[:2]: dv.formula1 for dv in wb.worksheets[0].data_validations.dataValidation}
    assert validations["F2"].startswith("OFFSET('选项'!$C$1,MATCH($E2,")


def test_candidates_of_a_batch_under_review_cannot_be_edited(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    candidate = batch.candidates[0]
    client = login("inst_jinan")
    resp = client.post("/admin/batch/candidate/delete/", {"candidate_id": candidate.id}, follow_redirects=True)
    assert "不能修改" in flashes(resp)
    assert session.get(Candidate, candidate.id) is not None


def test_delete_batch_only_for_drafts(login, session):
    draft_id = draft_of(session, "inst_jinan").id
    client = login("inst_jinan")
    resp = client.post("/admin/batch/action/", {"action": "wf_delete", "rowid": [str(draft_id)]}, follow_redirects=True)
    assert "成功 1 条" in flashes(resp)
    assert session.scalar(select(Batch.id).where(Batch.id == draft_id)) is None
    assert session.scalar(select(TransitionLog.to_state).where(TransitionLog.object_id == draft_id,
                                                               TransitionLog.transition == "delete")) == "deleted"
    approved = batch_in(session, "inst_jinan", BatchStatus.approved)
    resp = client.post("/admin/batch/action/", {"action": "wf_delete", "rowid": [str(approved.id)]},
                       follow_redirects=True)
    assert "失败 1 条" in flashes(resp)


# -- certificates and segments ---------------------------------------------------------------------
def test_certificate_search_by_number_id_and_name(login, session):
    cert = session.scalar(select(Certificate).where(Certificate.issuer.has(code="JG370101")).order_by(Certificate.id))
    client = login("inst_jinan")
    for term in (cert.number, cert.person.id_number, cert.person.name):
        assert in_table(client.get(f"/admin/certificate/?search={term}").get_data(as_text=True), cert.number)
    other = session.scalar(select(Certificate).where(Certificate.issuer.has(code="JG370201")))
    assert not in_table(client.get(f"/admin/certificate/?search={other.number}").get_data(as_text=True), other.number)
    assert client.get(f"/admin/certificate/details/?id={other.id}").status_code == 404
    assert in_table(login("province").get(
        f"/admin/certificate_library/?search={other.number}").get_data(as_text=True), other.number)


@pytest.mark.parametrize("term", ["%", "   ", "x" * 10_000, "' OR 1=1 --"])
def test_odd_searches_never_fail(login, term):
    resp = login("province").get("/admin/certificate_library/", query_string={"search": term})
    assert resp.status_code == 200


def test_segment_list_is_the_province_s_and_shows_used_segments(login, session):
    html = login("province").get("/admin/segment/").get_data(as_text=True)
    assert "砌筑工" in html and "0001-9999" in html
    assert login("jinan").get("/admin/segment/").status_code == 403
    assert login("inst_jinan").get("/admin/segment/").status_code == 403


def test_certificate_export_streams_only_visible_rows_with_text_ids(login, session):
    resp = login("inst_jinan").post("/admin/certificate/export.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(resp.data)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("证书编号", "姓名", "身份证号")
    user = session.scalar(select(User).where(User.username == "inst_jinan"))
    expected = set(session.scalars(select(Certificate.number).where(Certificate.issuer_id == user.organization_id)))
    assert {r[0] for r in rows[1:]} == expected
    assert all(isinstance(r[2], str) and len(r[2]) == 18 for r in rows[1:])
    assert sheet.cell(2, 3).data_type == "s"


def test_export_follows_the_search_and_over_limit_gets_a_message(login, app):
    client = login("province")
    cert_html = client.post("/admin/certificate_library/export.xlsx?search=李明")
    rows = list(load_workbook(io.BytesIO(cert_html.data)).worksheets[0].iter_rows(values_only=True))
    assert len(rows) >= 2 and all(r[1].startswith("李明") for r in rows[1:])
    app.config["EXPORT_MAX_ROWS"] = 1
    resp = client.post("/admin/certificate_library/export.xlsx", follow_redirects=True)
    assert "超过上限 1 条" in flashes(resp)


def test_a_bulk_action_the_user_may_not_run_says_so(login, session):
    batch = batch_in(session, "inst_jinan", BatchStatus.authority_review)
    resp = login("inst_jinan").post("/admin/batch/action/", {"action": "wf_authority_approve",
                                                             "rowid": [str(batch.id)]}, follow_redirects=True)
    assert "无权执行该操作" in flashes(resp)
    session.refresh(batch)
    assert batch.status == BatchStatus.authority_review
