"""A batch's contents: import from the template, online editing, attachments (SPEC §5.1).

Only drafts and rejected batches change (``ensure_editable``); every change bumps the batch's
version so a reviewer approving at the same moment fails cleanly instead of issuing
certificates for data it never saw.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Attachment, AttachmentKind, Batch, Candidate, Certificate, Level, Occupation, Person
from models.certificate import CertificateStatus
from workflows import WorkflowError
from workflows.attachments import check_batch_attachment, store
from workflows.audit import Kind, log
from workflows.batch import create_batch, ensure_editable, refresh_count, touch
from workflows.excel import ImportResult, parse_candidate_upload
from workflows.scope import lookup_tables, scope_name_pairs
from workflows.validators import check_phone, parse_id_number


def valid_holdings(session: Session, triples) -> set[tuple[str, str, str | None]]:
    """(ID, occupation name, level name) triples already held as valid certificates — one query
    per 500 IDs, not one per row."""
    ids = sorted({t[0] for t in triples})
    held = set()
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(Person.id_number, Occupation.name, Level.name)
            .select_from(Certificate)
            .join(Person, Person.id == Certificate.person_id)
            .join(Occupation, Occupation.id == Certificate.occupation_id)
            .outerjoin(Level, Level.id == Certificate.level_id)
            .where(Person.id_number.in_(ids[i:i + 500]), Certificate.status == CertificateStatus.valid)
        )
        held.update((a, b, c) for a, b, c in rows)
    return held & set(triples)


def read_upload(session: Session, institution, data: bytes, *, max_rows: int, max_bytes: int) -> ImportResult:
    """Check a filled template against the institution's scope and existing certificates."""
    occupations, levels = lookup_tables(session)
    return parse_candidate_upload(
        data,
        scope_pairs=set(scope_name_pairs(session, institution)),
        occupations={name: (o.code, o.has_levels) for name, o in occupations.items()},
        levels={name: lv.code for name, lv in levels.items()},
        has_valid_certificate=lambda triples: valid_holdings(session, triples),
        max_rows=max_rows,
        max_bytes=max_bytes,
    )


def import_batch(session: Session, user, name: str, data: bytes, *, max_rows: int, max_bytes: int):
    """创建批次: (batch, result). The batch exists only when the whole file is clean."""
    if not (name or "").strip():
        raise WorkflowError("请填写批次名称")
    result = read_upload(session, user.organization, data, max_rows=max_rows, max_bytes=max_bytes)
    if not result.ok:
        return None, result
    occupations, levels = lookup_tables(session)
    return create_batch(session, user, name, result.rows, occupations, levels), result


def rename_batch(session: Session, user, batch: Batch, name: str) -> None:
    ensure_editable(user, batch)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise WorkflowError("批次名称不能为空，且不超过100个字")
    old, batch.name = batch.name, name
    touch(batch)
    log(session, user, Kind.EDIT, f"批次改名：{old} → {name}", obj=batch)


def save_candidate(session: Session, user, batch: Batch, candidate: Candidate | None, fields: dict) -> Candidate:
    """Add or edit one candidate online with the same rules as the template import."""
    ensure_editable(user, batch)
    name = (fields.get("name") or "").strip()
    if not name:
        raise WorkflowError("姓名：必填")
    if len(name) > 50:
        raise WorkflowError("姓名：不能超过50个字")
    try:
        info = parse_id_number(fields.get("id_number"))
    except ValueError as exc:
        raise WorkflowError(f"身份证号：{exc}") from None
    phone = (fields.get("phone") or "").strip() or None
    if phone:
        try:
            phone = check_phone(phone)
        except ValueError as exc:
            raise WorkflowError(f"手机号：{exc}") from None
    occupation = session.get(Occupation, _int(fields.get("occupation_id")))
    if occupation is None:
        raise WorkflowError("职业(工种)：必填")
    level = session.get(Level, _int(fields.get("level_id"))) if fields.get("level_id") else None
    if occupation.has_levels and level is None:
        raise WorkflowError("等级：该职业(工种)必须选择等级")
    if not occupation.has_levels and level is not None:
        raise WorkflowError("等级：该职业(工种)没有等级")
    from workflows.scope import scope_pairs

    if (occupation.id, level.id if level else None) not in scope_pairs(session, batch.institution):
        raise WorkflowError("职业(工种)等级不在本机构职业(工种)范围内")
    duplicate = session.scalar(
        select(Candidate.row_no).where(
            Candidate.batch_id == batch.id, Candidate.id_number == info.number,
            Candidate.occupation_id == occupation.id,
            Candidate.level_id.is_(None) if level is None else Candidate.level_id == level.id,
            Candidate.id != (candidate.id if candidate is not None else -1),
        )
    )
    if duplicate is not None:
        raise WorkflowError(f"身份证号：批次中重复（与第{duplicate}行相同）")
    if valid_holdings(session, [(info.number, occupation.name, level.name if level else None)]):
        raise WorkflowError("该人员已持有同职业(工种)等级的有效证书")

    is_new = candidate is None
    if is_new:
        last = session.scalar(select(func.max(Candidate.row_no)).where(Candidate.batch_id == batch.id)) or 1
        candidate = Candidate(batch=batch, row_no=last + 1)
        session.add(candidate)
    before = {} if is_new else {"name": candidate.name, "id_number": candidate.id_number}
    candidate.name = name
    candidate.id_number = info.number
    candidate.birth_date = info.birth_date
    candidate.gender = info.gender
    candidate.phone = phone
    candidate.employer_name = (fields.get("employer_name") or "").strip()[:200] or None
    candidate.occupation_id = occupation.id
    candidate.level_id = level.id if level else None
    candidate.failed = False
    candidate.fail_note = None
    touch(batch)
    refresh_count(session, batch)
    log(session, user, Kind.EDIT, f"{'新增' if is_new else '修改'}考生 {name}（批次「{batch.name}」）", obj=batch,
        detail={"before": before, "after": {"name": name, "id_number": info.number}})
    session.flush()
    return candidate


def remove_candidate(session: Session, user, candidate: Candidate) -> None:
    batch = candidate.batch
    ensure_editable(user, batch)
    session.delete(candidate)
    touch(batch)
    refresh_count(session, batch)
    log(session, user, Kind.EDIT, f"删除考生 {candidate.name}（批次「{batch.name}」）", obj=batch)


def _attachment_counts(session: Session, batch: Batch) -> dict:
    rows = session.execute(
        select(Attachment.kind, func.count()).where(Attachment.owner_type == "batch", Attachment.owner_id == batch.id)
        .group_by(Attachment.kind)
    )
    return {kind: n for kind, n in rows}


def add_attachments(session: Session, user, batch: Batch, files, *, max_documents: int, max_images: int,
                    max_bytes: int) -> list[Attachment]:
    """Attach files to a batch: all of them or none (≤2 documents, ≤20 images, by content)."""
    ensure_editable(user, batch)
    files = [(name, data) for name, data in files if name or data]
    if not files:
        raise WorkflowError("请选择要上传的文件")
    counts = _attachment_counts(session, batch)
    documents, images = counts.get(AttachmentKind.document, 0), counts.get(AttachmentKind.image, 0)
    checks = []
    for filename, data in files:
        check = check_batch_attachment(filename, data, existing_documents=documents, existing_images=images,
                                       max_documents=max_documents, max_images=max_images, max_bytes=max_bytes)
        if check.kind == AttachmentKind.document.value:
            documents += 1
        else:
            images += 1
        checks.append(check)
    added = store(session, files, checks, owner_type="batch", owner_id=batch.id, user_id=user.id)
    touch(batch)
    log(session, user, Kind.UPLOAD, f"批次「{batch.name}」上传资料 {len(added)} 个", obj=batch)
    session.flush()
    return added


def remove_attachment(session: Session, user, batch: Batch, attachment: Attachment) -> None:
    ensure_editable(user, batch)
    if attachment.owner_type != "batch" or attachment.owner_id != batch.id:
        raise WorkflowError("附件不属于该批次")
    session.delete(attachment)
    touch(batch)
    log(session, user, Kind.EDIT, f"批次「{batch.name}」删除资料 {attachment.filename}", obj=batch)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
