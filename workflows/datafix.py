"""数据维护 (SPEC §7; issue 5): the province's system administrator corrects fields of persons,
certificates, organizations and candidates.

Only the fields named in ``FIXABLE`` can be corrected; a state (status, print status, a batch's
review state), a number handed out from a segment or a key can never be set by hand — those move
only through their workflow. Every save needs a fix reason and writes one 操作日志 row of kind
``data_fix`` with each changed field's value before and after. A correction is all or nothing:
one bad field refuses the whole save.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditLog, Candidate, Certificate, Organization, OrgKind, Person
from models.user import Permission
from workflows import WorkflowError, ecert
from workflows.audit import Kind, log
from workflows.validators import check_phone, check_postcode, parse_id_number
from workflows.visibility import history_clause

REASON_MAX = 500


@dataclass(frozen=True)
class Field:
    label: str
    parse: Callable[[str], object]  # the typed text → the value, or ValueError with a Chinese message
    required: bool = True


def _text(max_len: int, label: str):
    def parse(raw: str):
        value = (raw or "").strip()
        if len(value) > max_len:
            raise ValueError(f"{label}不能超过{max_len}个字符")
        return value or None

    return parse


def _phone(raw: str):
    return check_phone(raw) if (raw or "").strip() else None


def _day(label: str):
    def parse(raw: str):
        text = (raw or "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{label}格式应为 YYYY-MM-DD") from None

    return parse


def _count(raw: str):
    text = (raw or "").strip()
    if not text.isdigit() or int(text) > 10:
        raise ValueError("签注次数应为0–10的整数")
    return int(text)


def _id_number(raw: str):
    return parse_id_number(raw).number


# what may be corrected, per kind of row; anything else (states, numbers, keys) is refused
FIXABLE: dict[str, tuple[type, str, dict[str, Field]]] = {
    "person": (Person, "人员", {
        "name": Field("姓名", _text(50, "姓名")),
        "id_number": Field("身份证号", _id_number),
        "phone": Field("手机号", _phone, required=False),
        "employer_name": Field("工作单位(未注册企业)", _text(200, "工作单位"), required=False),
    }),
    "certificate": (Certificate, "证书", {
        "issue_date": Field("发证日期", _day("发证日期")),
        "valid_until": Field("有效期至", _day("有效期至"), required=False),
        "endorsement_count": Field("签注次数", _count),
    }),
    "organization": (Organization, "机构", {
        "name": Field("名称", _text(200, "名称")),
        "contact": Field("联系人", _text(50, "联系人"), required=False),
        "phone": Field("联系电话", _text(30, "联系电话"), required=False),
        "address": Field("地址", _text(255, "地址"), required=False),
        "postcode": Field("邮政编码", check_postcode, required=False),
        "qualification_no": Field("资质证书编号", _text(50, "资质证书编号"), required=False),
    }),
    "candidate": (Candidate, "考生", {
        "name": Field("姓名", _text(50, "姓名")),
        "id_number": Field("身份证号", _id_number),
        "phone": Field("手机号", _phone, required=False),
        "employer_name": Field("工作单位", _text(200, "工作单位"), required=False),
    }),
}
# columns that hold a state or an identity: named so the refusal can say why
STATE_COLUMNS = {"status", "print_status", "account_status", "failed", "number", "credit_code", "code", "kind",
                 "version", "id", "path", "parent_id", "region_code"}


def may_fix(user) -> bool:
    return user is not None and user.kind == OrgKind.province and user.has(Permission.data_fix)


def kind_of(name: str):
    try:
        return FIXABLE[name]
    except KeyError:
        raise WorkflowError("不支持维护该类数据") from None


def display(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def fix(session: Session, user, kind: str, obj, values: dict, reason: str | None) -> list[str]:
    """Correct ``obj`` (a row of ``kind``) with ``values`` {field: typed text}; returns the labels
    of what changed. Raises ``WorkflowError`` — nothing changed — on any refusal."""
    if not may_fix(user):
        raise WorkflowError("无权进行数据维护")
    model, _, fields = kind_of(kind)
    if not isinstance(obj, model):
        raise WorkflowError("记录不存在或无权访问")
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError("请填写修改原因")
    if len(reason) > REASON_MAX:
        raise WorkflowError(f"修改原因不能超过{REASON_MAX}个字符")
    states = sorted(set(values) & STATE_COLUMNS)
    if states:
        raise WorkflowError("状态、编号等字段不能通过数据维护修改，请走相应的业务流程")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise WorkflowError("不能修改的字段：" + "、".join(unknown))
    parsed, errors = {}, []
    for name, raw in values.items():
        field = fields[name]
        try:
            value = field.parse(raw)
        except ValueError as exc:
            errors.append(f"{field.label}：{exc}")
            continue
        if value is None and field.required:
            errors.append(f"{field.label}：不能为空")
            continue
        parsed[name] = value
    errors.extend(_conflicts(session, kind, obj, parsed))
    if errors:
        raise WorkflowError("；".join(errors))
    changes = {name: (getattr(obj, name), value) for name, value in parsed.items() if getattr(obj, name) != value}
    if not changes:
        raise WorkflowError("没有修改任何字段")
    for name, (_, value) in changes.items():
        setattr(obj, name, value)
    if kind in ("person", "candidate") and "id_number" in changes:
        info = parse_id_number(obj.id_number)
        obj.birth_date, obj.gender = info.birth_date, info.gender  # they derive from the number
    if (kind == "person" and changes.keys() & {"name", "id_number"}) or (
            kind == "certificate" and changes.keys() & {"issue_date", "valid_until"}):
        session.flush()
        # what the electronic certificate says changed: it is issued anew (issue 19)
        if kind == "person":
            ecert.reissue_for_person(session, obj.id)
        else:
            ecert.reissue(session, [obj.id])
    labels = [fields[name].label for name in changes]
    log(session, user, Kind.DATA_FIX, f"数据维护：{FIXABLE[kind][1]}「{obj}」修改{'、'.join(labels)}（原因：{reason}）",
        obj=obj, detail={"reason": reason, **{name: {"before": display(before), "after": display(after)}
                                              for name, (before, after) in changes.items()}})
    session.flush()
    return labels


def _conflicts(session: Session, kind: str, obj, parsed: dict) -> list[str]:
    if kind == "person" and parsed.get("id_number") and session.scalar(select(Person.id).where(
            Person.id_number == parsed["id_number"], Person.id != obj.id)):
        return ["身份证号：该身份证号已属于其他人员"]
    if kind == "certificate" and parsed.get("issue_date") and parsed.get("valid_until", obj.valid_until) and \
            parsed.get("valid_until", obj.valid_until) < parsed["issue_date"]:
        return ["有效期至：不能早于发证日期"]
    return []


# -- the history on the record itself ------------------------------------------------------------
@dataclass(frozen=True)
class Correction:
    """One corrected field: 字段, 修改前, 修改后, 原因, 操作人, 时间 (UTC, shown in Beijing time)."""

    field: str
    before: str | None
    after: str | None
    reason: str
    actor: str
    at: datetime


def corrections(session: Session, user, obj) -> list[Correction]:
    """数据维护's corrections of ``obj`` (a person, certificate, organization or candidate), newest
    first, each changed field on its own line — for whoever may see ``obj``."""
    kind = next((k for k, (model, _, _) in FIXABLE.items() if isinstance(obj, model)), None)
    if kind is None or obj.id is None:
        return []
    model, _, fields = FIXABLE[kind]
    stmt = (select(AuditLog).where(AuditLog.kind == Kind.DATA_FIX, history_clause(user, model, obj.id))
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()))
    found = []
    for row in session.scalars(stmt):
        detail = row.detail if isinstance(row.detail, dict) else {}
        actor = row.user.name if row.user is not None else (row.username or "")
        for name, change in detail.items():
            if name == "reason" or not isinstance(change, dict):
                continue
            label = fields[name].label if name in fields else name
            found.append(Correction(label, change.get("before"), change.get("after"), str(detail.get("reason") or ""),
                                    actor, row.created_at))
    return found
