"""Printing (SPEC §6; 003 §六.2 打印, §六.3 业务打印): the print-status table, print formats and
which certificates 业务打印 lists."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import (
    ApplicationStatus,
    AuditLog,
    Certificate,
    CertificateStatus,
    PrintFormat,
    PrintFormatField,
    PrintStatus,
    TransitionLog,
)
from tests.factories import issued_certificates, make_application, user
from workflows import WorkflowError
from workflows.business import BUSINESS
from workflows.certificate import CERTIFICATE, state_label
from workflows.printing import (
    FIELDS,
    PRINT,
    QR_CODE,
    business_print_clause,
    default_layout,
    layout_for,
    may_print,
    parse_layout,
    save_format,
)

P = PrintStatus
MANUAL = ("mark_printed", "mark_unprinted")
BY_CODE = ("print", "needs_reprint")
NOT_PRINTERS = ("province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "enterprise", "school",
                "person", "ministry")


@pytest.fixture
def session(rolled_session):
    return rolled_session


def mine(session, username: str = "inst_jinan") -> Certificate:
    """A valid, unprinted certificate issued by ``username``'s institution."""
    who = user(session, username)
    return session.scalar(select(Certificate).where(
        Certificate.issuer_id == who.organization_id, Certificate.status == CertificateStatus.valid,
        Certificate.print_status == P.unprinted).order_by(Certificate.id))


def logs(session, cert) -> list[str]:
    return list(session.scalars(select(TransitionLog.transition).where(
        TransitionLog.object_type == "certificate", TransitionLog.object_id == cert.id).order_by(TransitionLog.id)))


def form(**over) -> dict:
    """A complete, valid 证书格式设置 form (the default layout)."""
    layout = default_layout()
    data = {"paper_width_mm": "297", "paper_height_mm": "210", "font_size_pt": "12", "qr_size_mm": "25"}
    for key, (x, y) in layout.positions.items():
        data.update({f"on_{key}": "1", f"x_{key}": str(x), f"y_{key}": str(y)})
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


# -- the table -------------------------------------------------------------------------------------
def test_the_table_is_the_whole_print_life():
    assert set(PRINT.transitions) == {*MANUAL, *BY_CODE}
    assert PRINT.states() == {P.unprinted, P.printed}
    assert [t.name for t in PRINT.transitions.values() if t.manual] == list(MANUAL)
    assert PRINT.object_type == CERTIFICATE.object_type  # one 业务日志 per certificate


def test_printing_stamps_time_and_user_and_reprinting_stays_printed(session):
    cert, printer = mine(session), user(session, "inst_jinan")
    PRINT.fire(session, printer, cert, "print")
    assert cert.print_status == P.printed and cert.printed_by_id == printer.id and cert.printed_at is not None
    first = cert.printed_at
    PRINT.fire(session, printer, cert, "print")  # a paper jam: print again
    assert cert.print_status == P.printed and cert.printed_at >= first
    assert logs(session, cert) == ["print", "print"]


def test_marking_by_hand_sets_and_clears_the_stamp(session):
    cert, printer = mine(session), user(session, "inst_jinan")
    PRINT.fire(session, printer, cert, "mark_printed")
    assert cert.print_status == P.printed and cert.printed_by_id == printer.id
    PRINT.fire(session, printer, cert, "mark_unprinted")
    assert cert.print_status == P.unprinted and cert.printed_at is None and cert.printed_by_id is None
    assert logs(session, cert) == ["mark_printed", "mark_unprinted"]
    assert state_label("printed") == "已打印" and state_label("unprinted") == "未打印"


def test_illegal_marks_are_refused_with_the_state_named(session):
    cert, printer = mine(session), user(session, "inst_jinan")
    with pytest.raises(WorkflowError, match="当前状态为「未打印」，不能执行「标记未打印」"):
        PRINT.fire(session, printer, cert, "mark_unprinted")
    PRINT.fire(session, printer, cert, "mark_printed")
    with pytest.raises(WorkflowError, match="当前状态为「已打印」，不能执行「标记已打印」"):
        PRINT.fire(session, printer, cert, "mark_printed")


@pytest.mark.parametrize("transition", ("void", "cancel"))
def test_a_certificate_that_is_not_valid_is_never_printed(session, transition):
    cert, printer = mine(session), user(session, "inst_jinan")
    CERTIFICATE.fire(session, user(session, "province"), cert, transition, reason="测试")
    for name in ("print", "mark_printed"):
        with pytest.raises(WorkflowError, match="不能打印"):
            PRINT.fire(session, printer, cert, name)
    assert cert.print_status == P.unprinted


@pytest.mark.parametrize("who", ("inst_qingdao", "direct_inst", *NOT_PRINTERS))
def test_only_the_issuing_institution_prints(session, who):
    cert = mine(session)
    for name in ("print", *MANUAL):
        with pytest.raises(WorkflowError, match="无权执行"):
            PRINT.fire(session, user(session, who), cert, name)
    assert cert.print_status == P.unprinted and logs(session, cert) == []


def test_printing_needs_the_certificate_print_permission(session):
    from models.user import Permission

    printer = user(session, "inst_jinan")
    printer.permission_rows = [r for r in printer.permission_rows if r.code != Permission.certificate_print]
    session.flush()
    assert not may_print(printer)
    with pytest.raises(WorkflowError, match="无权执行"):
        PRINT.fire(session, printer, mine(session), "print")


def test_may_print_only_issuing_institutions(session):
    assert may_print(user(session, "inst_jinan")) and may_print(user(session, "direct_inst"))
    assert not any(may_print(user(session, who)) for who in NOT_PRINTERS)


# -- a name change sends a printed certificate back to 待打印 -------------------------------------------
def _approve(session, app):
    BUSINESS.fire(session, user(session, "jinan"), app, "authority_approve")
    BUSINESS.fire(session, user(session, "province"), app, "province_approve")
    assert app.status == ApplicationStatus.approved


def test_an_approved_name_change_needs_a_reprint(session):
    cert = issued_certificates(session, "inst_jinan")[0]
    PRINT.fire(session, user(session, "inst_jinan"), cert, "print")
    app = make_application(session, "inst_jinan", "change", cert, fields=("name",), values={"new_name": "王新名"})
    _approve(session, app)
    assert cert.print_status == P.unprinted and cert.printed_at is None
    assert logs(session, cert)[-1] == "needs_reprint"
    assert session.scalar(select(Certificate.id).where(Certificate.id == cert.id, business_print_clause()))
    assert cert.business_print_application is app


def test_an_employer_change_neither_unprints_nor_lists(session):
    from tests.factories import org

    cert = issued_certificates(session, "inst_jinan", employer=org(session, "QY370101"))[0]
    PRINT.fire(session, user(session, "inst_jinan"), cert, "print")
    app = make_application(session, "inst_jinan", "change", cert, fields=("employer",),
                           values={"new_employer_id": org(session, "QY370102").id})
    _approve(session, app)
    assert cert.print_status == P.printed
    assert session.scalar(select(Certificate.id).where(Certificate.id == cert.id, business_print_clause())) is None


def listed(session) -> set[int]:
    return set(session.scalars(select(Certificate.id).where(business_print_clause())))


def test_business_print_lists_the_new_certificate_of_a_reissue_not_the_old(session):
    old = issued_certificates(session, "inst_jinan")[0]
    app = make_application(session, "inst_jinan", "reissue", old)
    before = listed(session)
    _approve(session, app)
    new = app.items[0].new_certificate
    assert new.print_status == P.unprinted
    assert listed(session) - before == {new.id} and old.id not in listed(session)
    assert new.business_print_application is app and old.business_print_application is None


def test_business_print_shows_the_latest_name_change_not_a_later_employer_change(session):
    from tests.factories import org

    cert = issued_certificates(session, "inst_jinan", employer=org(session, "QY370101"))[0]
    first = make_application(session, "inst_jinan", "change", cert, fields=("name",), values={"new_name": "王一名"})
    _approve(session, first)
    second = make_application(session, "inst_jinan", "change", cert, fields=("name",), values={"new_name": "王二名"})
    _approve(session, second)
    assert cert.business_print_application is second
    moved = make_application(session, "inst_jinan", "change", cert, fields=("employer",),
                             values={"new_employer_id": org(session, "QY370102").id})
    _approve(session, moved)
    assert cert.business_print_application is second and cert.id in listed(session)


def test_pending_applications_are_not_listed(session):
    cert = issued_certificates(session, "inst_jinan")[0]
    make_application(session, "inst_jinan", "change", cert, fields=("name",), values={"new_name": "待审核名"})
    assert session.scalar(select(Certificate.id).where(Certificate.id == cert.id, business_print_clause())) is None


# -- print formats ---------------------------------------------------------------------------------------
def test_the_default_layout_prints_the_fields_a_certificate_shows():
    layout = default_layout()
    keys = [f.key for f, _, _ in layout.items()]
    assert keys[0] == "name" and QR_CODE in keys and "number" in keys and "valid_until" not in keys
    assert not layout.saved


def test_a_good_form_parses_to_its_layout():
    layout = parse_layout(form(font_size_pt="14", on_gender=None, on_valid_until="1", x_valid_until="10",
                               y_valid_until="20"))
    assert layout.font_size_pt == 14
    assert "gender" not in layout.positions and layout.positions["valid_until"] == (10, 20)


@pytest.mark.parametrize("over, message", [
    ({"paper_width_mm": "abc"}, "纸张宽度(毫米)应为整数"),
    ({"paper_height_mm": ""}, "请填写纸张高度(毫米)"),
    ({"paper_width_mm": "5000"}, "纸张宽度(毫米)应在 50–500 之间"),
    ({"font_size_pt": "2"}, "字号(磅)应在 6–36 之间"),
    ({"qr_size_mm": "100"}, "二维码边长(毫米)应在 10–60 之间"),
    ({"x_name": "400"}, "「姓名」横向位置(毫米)应在 0–297 之间"),
    ({"y_number": "-3"}, "「证书编号」纵向位置(毫米)应在 0–210 之间"),
    ({"x_qr_code": "280"}, "「二维码(证书查询)」横向位置(毫米)应在 0–272 之间"),  # 297 - 25: the code stays on paper
    ({"x_issuer": "1.5"}, "「发证机构」横向位置(毫米)应为整数"),
])
def test_a_bad_form_is_refused_with_the_field_named(over, message):
    with pytest.raises(WorkflowError) as refused:
        parse_layout(form(**over))
    assert refused.value.message.startswith("证书格式未保存：") and message in refused.value.message


def test_every_error_is_named_at_once_and_no_field_is_refused():
    with pytest.raises(WorkflowError) as refused:
        parse_layout(form(font_size_pt="x", x_name="999", **{f"on_{k}": None for k in FIELDS}))
    assert "字号(磅)" in refused.value.message and "请至少选择一个打印项" in refused.value.message


def test_saving_replaces_the_format_and_logs_before_and_after(session):
    inst = user(session, "inst_jinan")
    assert not layout_for(session, inst.organization_id).saved
    save_format(session, inst, form(paper_width_mm="280", font_size_pt="10"))
    save_format(session, inst, form(paper_width_mm="270", on_gender=None))
    fmt = session.scalar(select(PrintFormat).where(PrintFormat.organization_id == inst.organization_id))
    assert fmt.paper_width_mm == 270 and fmt.font_size_pt == 12 and fmt.updated_by_id == inst.id
    assert "gender" not in {f.field for f in fmt.fields}
    assert session.scalar(select(func.count()).select_from(PrintFormatField).where(
        PrintFormatField.format_id == fmt.id)) == len(default_layout().positions) - 1
    saved = layout_for(session, inst.organization_id)
    assert saved.saved and saved.paper_width_mm == 270
    entry = session.scalars(select(AuditLog).where(AuditLog.object_type == "print_format")
                            .order_by(AuditLog.id.desc())).first()
    assert entry.summary == "修改证书格式"
    assert entry.detail["before"]["paper"] == [280, 210] and entry.detail["after"]["paper"] == [270, 210]
    # another institution's format is its own
    assert not layout_for(session, user(session, "inst_qingdao").organization_id).saved


def test_a_refused_save_leaves_the_saved_format(session):
    inst = user(session, "inst_jinan")
    save_format(session, inst, form(paper_width_mm="280"))
    with pytest.raises(WorkflowError):
        save_format(session, inst, form(paper_width_mm="280", x_name="9999"))
    assert layout_for(session, inst.organization_id).positions["name"] == default_layout().positions["name"]


@pytest.mark.parametrize("who", NOT_PRINTERS)
def test_only_institutions_set_a_format(session, who):
    with pytest.raises(WorkflowError, match="无权设置证书格式"):
        save_format(session, user(session, who), form())
