"""Certificate printing (SPEC §6, 003 §六.2 打印, §六.3 业务打印).

Three things live here, in one place:

- ``PRINT``: the print status of a certificate as a transition table. 打印 is fired by the
  print page for every certificate it prints; 标记已打印 / 标记未打印 are the hand setting
  the manual asks for (可手动设置证书打印状态); 待重新打印 is fired by an approved name
  change, whose paper still shows the old name. Each firing is in the certificate's 业务日志.
- The print format of an institution (证书格式设置): which fields, where on the pre-printed
  paper (millimetres from the top-left corner), the font size. ``save_format`` refuses a bad
  format whole, naming every wrong field.
- ``business_print_clause``: 业务打印 — the certificates of approved name changes and the
  new certificates of approved reissues (003 §六.3 列表展示姓名变更业务、补办业务审核通过的证书),
  as marked by the province's approval in ``workflows.business``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from models import (
    Certificate,
    PrintFormat,
    PrintFormatField,
    PrintStatus,
)
from models.base import utcnow
from models.certificate import CertificateStatus
from models.org import ISSUING_KINDS, OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor

P = PrintStatus


def _issued_by_user(user, certificate) -> bool:
    return certificate.issuer_id == user.organization_id


ISSUER = actor(*ISSUING_KINDS, relation=_issued_by_user)


# -- the print status table ----------------------------------------------------------------
def _is_valid(ctx: Context):
    if ctx.obj.status != CertificateStatus.valid:
        return f"证书「{ctx.obj.number}」状态为「{ctx.obj.status.label}」，不能打印"
    return True


def _stamp(ctx: Context) -> None:
    ctx.obj.printed_at = utcnow()
    ctx.obj.printed_by_id = ctx.user.id


def _clear(ctx: Context) -> None:
    ctx.obj.printed_at = None
    ctx.obj.printed_by_id = None


PRINT = Workflow(
    Certificate,
    "print_status",
    [
        # fired by the print page (POST) for each certificate it prints; a reprint stays 已打印
        Transition(
            "print", "打印", (P.unprinted, P.printed), P.printed,
            who=ISSUER, permission=Permission.certificate_print,
            # offered (打印证书 on a row, the print page) only on a valid certificate
            guards=(Guard(_is_valid, offer=True),), effects=(_stamp,), manual=False,
        ),
        Transition(
            "mark_printed", "标记已打印", (P.unprinted,), P.printed,
            who=ISSUER, permission=Permission.certificate_print,
            guards=(Guard(_is_valid),), effects=(_stamp,),
        ),
        Transition(
            "mark_unprinted", "标记未打印", (P.printed,), P.unprinted,
            who=ISSUER, permission=Permission.certificate_print, effects=(_clear,),
            confirm="确定将所选证书标记为未打印？",
        ),
        # fired by the province's approval of a name change (workflows.business)
        Transition(
            "needs_reprint", "姓名变更待重新打印", (P.printed,), P.unprinted,
            who=actor(OrgKind.province), permission=Permission.business_review,
            effects=(_clear,), bulk=False, manual=False,
        ),
    ],
    object_type="certificate",
    title=lambda c: f"证书「{c.number}」",
)


# 标记已打印 / 标记未打印: the print status set by hand (批量操作, the details page), not by printing
MARKS = ("mark_printed", "mark_unprinted")


def may_print(user) -> bool:
    """The user may print certificates at all (an issuing institution with 证书打印)."""
    return any(t.name == "print" for t in PRINT.offered(user))


def print_certificates(session: Session, user, rows: Mapping, ids) -> list:
    """Fire 打印 on every id (rows: the visible certificates by id); returns the BulkResult."""
    return PRINT.fire_many(session, user, rows, ids, "print")


# -- print formats ---------------------------------------------------------------------------
def _day(value: date | None) -> str:
    return f"{value.year}年{value.month:02d}月{value.day:02d}日" if value else ""


@dataclass(frozen=True)
class PrintField:
    key: str
    label: str
    value: Callable[[Certificate], str]
    x: int  # default position, mm from the paper's left edge
    y: int  # … and from its top edge


QR_CODE = "qr_code"
FIELDS: dict[str, PrintField] = {f.key: f for f in (
    PrintField("name", "姓名", lambda c: c.person.name, 45, 52),
    PrintField("gender", "性别", lambda c: c.person.gender, 45, 64),
    PrintField("birth_date", "出生日期", lambda c: _day(c.person.birth_date), 45, 76),
    PrintField("id_number", "身份证号", lambda c: c.person.id_number, 45, 88),
    PrintField("employer", "工作单位", lambda c: c.person.employer_display, 45, 100),
    PrintField("occupation", "职业(工种)", lambda c: c.occupation.name, 185, 52),
    PrintField("level", "等级", lambda c: c.level.name if c.level else "", 185, 64),
    PrintField("number", "证书编号", lambda c: c.number, 185, 76),
    PrintField("issuer", "发证机构", lambda c: c.issuer.name, 185, 88),
    PrintField("issue_date", "发证日期", lambda c: _day(c.issue_date), 185, 100),
    PrintField("valid_until", "有效期至", lambda c: _day(c.valid_until) if c.valid_until else "长期", 185, 112),
    PrintField(QR_CODE, "二维码(证书查询)", lambda c: "", 240, 150),
)}
DEFAULT_OFF = {"valid_until"}


@dataclass(frozen=True)
class Limits:
    paper: tuple[int, int] = (50, 500)
    font: tuple[int, int] = (6, 36)
    qr: tuple[int, int] = (10, 60)


LIMITS = Limits()


@dataclass
class Layout:
    """A format as the print page and the form use it (saved or the default)."""

    paper_width_mm: int = 297
    paper_height_mm: int = 210
    font_size_pt: int = 12
    qr_size_mm: int = 25
    positions: dict[str, tuple[int, int]] | None = None  # enabled fields only
    saved: bool = False

    def items(self):
        """(PrintField, x, y) of every enabled field, in catalogue order."""
        return [(FIELDS[k], *self.positions[k]) for k in FIELDS if k in (self.positions or {})]


def default_layout() -> Layout:
    return Layout(positions={k: (f.x, f.y) for k, f in FIELDS.items() if k not in DEFAULT_OFF})


def layout_for(session: Session, organization_id: int | None) -> Layout:
    fmt = session.scalars(select(PrintFormat).where(PrintFormat.organization_id == organization_id)).first()
    if fmt is None:
        return default_layout()
    return Layout(fmt.paper_width_mm, fmt.paper_height_mm, fmt.font_size_pt, fmt.qr_size_mm,
                  {f.field: (f.x_mm, f.y_mm) for f in fmt.fields if f.field in FIELDS}, saved=True)


def _int(raw, label: str, low: int, high: int, errors: list[str]) -> int | None:
    text = str(raw if raw is not None else "").strip()
    try:
        value = int(text)
    except ValueError:
        errors.append(f"{label}应为整数（{low}–{high}），当前为「{text[:20]}」" if text else f"请填写{label}")
        return None
    if not low <= value <= high:
        errors.append(f"{label}应在 {low}–{high} 之间，当前为 {value}")
        return None
    return value


def parse_layout(form: Mapping) -> Layout:
    """The form's values as a Layout, or WorkflowError listing every wrong value.

    ``form`` keys: paper_width_mm, paper_height_mm, font_size_pt, qr_size_mm, and per field
    ``on_<key>`` (any value: printed), ``x_<key>``, ``y_<key>``.
    """
    errors: list[str] = []
    width = _int(form.get("paper_width_mm"), "纸张宽度(毫米)", *LIMITS.paper, errors)
    height = _int(form.get("paper_height_mm"), "纸张高度(毫米)", *LIMITS.paper, errors)
    font = _int(form.get("font_size_pt"), "字号(磅)", *LIMITS.font, errors)
    qr = _int(form.get("qr_size_mm"), "二维码边长(毫米)", *LIMITS.qr, errors)
    positions: dict[str, tuple[int, int]] = {}
    for key, field in FIELDS.items():
        if not form.get(f"on_{key}"):
            continue
        size = (qr or 0) if key == QR_CODE else 0
        x = _int(form.get(f"x_{key}"), f"「{field.label}」横向位置(毫米)", 0, max((width or 500) - size, 0), errors)
        y = _int(form.get(f"y_{key}"), f"「{field.label}」纵向位置(毫米)", 0, max((height or 500) - size, 0), errors)
        if x is not None and y is not None:
            positions[key] = (x, y)
    if not any(form.get(f"on_{key}") for key in FIELDS):
        errors.append("请至少选择一个打印项")
    if errors:
        raise WorkflowError("证书格式未保存：" + "；".join(errors))
    return Layout(width, height, font, qr, positions)


def save_format(session: Session, user, form: Mapping) -> Layout:
    """证书格式设置: replace the user's organization's format with the form's, or refuse it whole."""
    if user.kind not in ISSUING_KINDS or not user.has(Permission.certificate_print):
        raise WorkflowError("无权设置证书格式")
    layout = parse_layout(form)
    fmt = session.scalars(select(PrintFormat).where(PrintFormat.organization_id == user.organization_id)).first()
    if fmt is None:
        fmt = PrintFormat(organization_id=user.organization_id)
        session.add(fmt)
    before = layout_for(session, user.organization_id) if fmt.id else None
    fmt.paper_width_mm, fmt.paper_height_mm = layout.paper_width_mm, layout.paper_height_mm
    fmt.font_size_pt, fmt.qr_size_mm = layout.font_size_pt, layout.qr_size_mm
    fmt.updated_at, fmt.updated_by_id = utcnow(), user.id
    # in place: a replaced collection would insert the new rows before deleting the old ones
    existing = {f.field: f for f in fmt.fields}
    for key, row in existing.items():
        if key not in layout.positions:
            fmt.fields.remove(row)
    for key, (x, y) in layout.positions.items():
        row = existing.get(key)
        if row is None:
            fmt.fields.append(PrintFormatField(field=key, x_mm=x, y_mm=y))
        else:
            row.x_mm, row.y_mm = x, y
    session.flush()
    log(session, user, Kind.EDIT, "修改证书格式", obj=fmt,
        detail={"before": _describe(before), "after": _describe(layout)})
    return layout


def _describe(layout: Layout | None) -> dict | None:
    if layout is None:
        return None
    return {"paper": [layout.paper_width_mm, layout.paper_height_mm], "font": layout.font_size_pt,
            "qr": layout.qr_size_mm, "fields": {k: list(v) for k, v in (layout.positions or {}).items()}}


# -- 业务打印 ----------------------------------------------------------------------------------
def business_print_clause():
    """Valid certificates of approved name changes, and certificates issued by approved reissues:
    the province's approval marks them (``Certificate.business_print_application``)."""
    return and_(Certificate.status == CertificateStatus.valid, Certificate.business_print_application_id.is_not(None))


def may_print_certificate(user, certificate: Certificate) -> bool:
    """打印证书 is offered on ``certificate``: 打印 would let ``user`` print it now (a valid one of
    the user's issuer; a cancelled or voided one never)."""
    return PRINT.allows(user, certificate, "print")
