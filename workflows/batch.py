"""The batch workflow (批次, SPEC §5.1; manual 003 §六.1, §七.1, §八.1).

Read the ``BATCH`` table top to bottom: it is the whole process. Everything else in this
module is the guards and effects it names, and the editing rules for drafts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from models import Batch, BatchStatus, Candidate, Certificate, Organization, Person
from models.base import local_today, utcnow
from models.certificate import CertificateStatus
from models.org import OrgKind
from models.user import Permission
from workflows import WorkflowError, ecert
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.numbering import allocate_numbers, segment_key
from workflows.organizations import province_id
from workflows.scope import scope_pairs

S = BatchStatus
EDITABLE_STATES = (S.draft, S.rejected)


# -- relations of the actor to the batch ------------------------------------------------
def _owner(user, batch: Batch) -> bool:
    return batch.institution_id == user.organization_id


def _parent_authority(user, batch: Batch) -> bool:
    return batch.authority_id is not None and batch.authority_id == user.organization_id


def _submit_target(batch: Batch) -> BatchStatus:
    """Direct institutions (省直所) submit straight to the province."""
    return S.province_review if batch.institution.kind == OrgKind.direct_institution else S.authority_review


# -- guards ------------------------------------------------------------------------------
def _has_candidates(ctx: Context):
    return _count(ctx.session, ctx.obj) > 0


def _no_row_errors(ctx: Context):
    problems = batch_problems(ctx.session, ctx.obj)
    if problems:
        more = f"等 {len(problems)} 处问题" if len(problems) > 3 else ""
        return "批次存在错误，不能提交：" + "；".join(problems[:3]) + more
    return True


def _no_failed_candidates(ctx: Context):
    failed = ctx.session.scalars(
        select(Candidate.name).where(Candidate.batch_id == ctx.obj.id, Candidate.failed.is_(True)).limit(4)
    ).all()
    if failed:
        names = "、".join(failed[:3]) + ("等" if len(failed) > 3 else "")
        return f"有考生被标记为审核不通过（{names}），批次不能审核通过"
    return True


def _no_duplicate_certificates(ctx: Context):
    """Between upload and approval a holder may have received the same certificate elsewhere."""
    clashes = _existing_valid(ctx.session, ctx.obj.id)
    if clashes:
        return "以下人员已持有同职业(工种)等级的有效证书，不能发证：" + "、".join(clashes[:5])
    return True


# -- effects -----------------------------------------------------------------------------
def _stamp_submitted(ctx: Context) -> None:
    batch = ctx.obj
    batch.submitted_at = utcnow()
    batch.reject_reason = None
    # a resubmitted batch is reviewed afresh
    ctx.session.execute(update(Candidate).where(Candidate.batch_id == batch.id).values(failed=False, fail_note=None))


def _stamp_reviewed(ctx: Context) -> None:
    ctx.obj.reviewed_at = utcnow()


def _record_rejection(ctx: Context) -> None:
    ctx.obj.reviewed_at = utcnow()
    ctx.obj.reject_reason = ctx.reason


def _remove_batch(ctx: Context) -> None:
    ctx.session.delete(ctx.obj)


def _issue(ctx: Context) -> None:
    issue_certificates(ctx.session, ctx.obj)


# -- notifications -----------------------------------------------------------------------
def _notify_next_reviewer(ctx: Context) -> Iterable[int]:
    batch = ctx.obj
    if batch.status == S.authority_review:
        return [batch.authority_id]
    return [province_id(ctx.session)]


def _notify_institution(ctx: Context) -> Iterable[int]:
    return [ctx.obj.institution_id]


def _notify_after_authority(ctx: Context) -> Iterable[int]:
    return [ctx.obj.institution_id, province_id(ctx.session)]


ISSUERS = (OrgKind.institution, OrgKind.direct_institution)

BATCH = Workflow(
    Batch,
    "status",
    [
        Transition(
            "submit", "提交审核", (S.draft,), _submit_target,
            who=actor(*ISSUERS, relation=_owner), permission=Permission.batch_manage,
            guards=(
                Guard(_has_candidates, "批次中没有合格人员，不能提交审核"),
                Guard(_no_row_errors),
            ),
            effects=(_stamp_submitted,), notify=_notify_next_reviewer,
        ),
        Transition(
            "authority_approve", "审核通过", (S.authority_review,), S.province_review,
            who=actor(OrgKind.authority, relation=_parent_authority), permission=Permission.batch_review,
            guards=(Guard(_no_failed_candidates),),
            effects=(_stamp_reviewed,), notify=_notify_after_authority,
        ),
        Transition(
            "authority_reject", "审核不通过", (S.authority_review,), S.rejected,
            who=actor(OrgKind.authority, relation=_parent_authority), permission=Permission.batch_review,
            needs_reason=True, reason_label="审核不通过原因", danger=True,
            effects=(_record_rejection,), notify=_notify_institution,
        ),
        Transition(
            "province_approve", "审核通过", (S.province_review,), S.approved,
            who=actor(OrgKind.province), permission=Permission.batch_review,
            guards=(Guard(_no_failed_candidates), Guard(_no_duplicate_certificates)),
            effects=(_stamp_reviewed, _issue), notify=_notify_institution,
        ),
        Transition(
            "province_reject", "审核不通过", (S.province_review,), S.rejected,
            who=actor(OrgKind.province), permission=Permission.batch_review,
            needs_reason=True, reason_label="审核不通过原因", danger=True,
            effects=(_record_rejection,), notify=_notify_institution,
        ),
        Transition(
            "reopen", "重新提交", (S.rejected,), S.draft,
            who=actor(*ISSUERS, relation=_owner), permission=Permission.batch_manage,
            confirm="批次将回到待提交列表，可修改后再次提交审核",
        ),
        Transition(
            "delete", "删除批次", (S.draft,), S.deleted,
            who=actor(*ISSUERS, relation=_owner), permission=Permission.batch_manage,
            effects=(_remove_batch,), danger=True, confirm="确定删除所选批次？删除后不可恢复",
        ),
    ],
    object_type="batch",
    title=lambda b: f"批次「{b.name}」",
)


REVIEWS = ("authority_approve", "province_approve")


def awaiting_review(user) -> set:
    """The batch states waiting for this reviewer (from the table, not a second rule)."""
    return BATCH.awaiting(user, *REVIEWS)


# -- batch contents ------------------------------------------------------------------------
def _count(session: Session, batch: Batch) -> int:
    return session.scalar(select(func.count()).select_from(Candidate).where(Candidate.batch_id == batch.id)) or 0


def refresh_count(session: Session, batch: Batch) -> None:
    session.flush()
    batch.candidate_count = _count(session, batch)


def _existing_valid(session: Session, batch_id: int) -> list[str]:
    """Candidates of ``batch_id`` who already hold a valid certificate of the same pair."""
    stmt = (
        select(Candidate.name, Candidate.id_number)
        .join(Person, Person.id_number == Candidate.id_number)
        .join(
            Certificate,
            (Certificate.person_id == Person.id)
            & (Certificate.occupation_id == Candidate.occupation_id)
            & (Certificate.level_id.is_not_distinct_from(Candidate.level_id))
            & (Certificate.status == CertificateStatus.valid),
        )
        .where(Candidate.batch_id == batch_id)
    )
    return [f"{name}({idn})" for name, idn in session.execute(stmt)]


def batch_problems(session: Session, batch: Batch) -> list[str]:
    """What stops a batch from being submitted: pairs out of scope, duplicates, existing holders."""
    problems: list[str] = []
    allowed = scope_pairs(session, batch.institution)
    seen: dict[tuple, int] = {}
    rows = session.execute(
        select(Candidate.row_no, Candidate.name, Candidate.id_number, Candidate.occupation_id, Candidate.level_id)
        .where(Candidate.batch_id == batch.id)
        .order_by(Candidate.row_no, Candidate.id)
    )
    for row_no, name, id_number, occupation_id, level_id in rows:
        if (occupation_id, level_id) not in allowed:
            problems.append(f"第{row_no}行 {name} 的职业(工种)等级不在本机构职业(工种)范围内")
        key = (id_number, occupation_id, level_id)
        if key in seen:
            problems.append(f"第{row_no}行 {name} 与第{seen[key]}行重复")
        else:
            seen[key] = row_no
    problems.extend(f"{c} 已持有同职业(工种)等级的有效证书" for c in _existing_valid(session, batch.id))
    return problems


def ensure_editable(user, batch: Batch) -> None:
    """Drafts and rejected batches can be edited online by their institution (003 §六.1)."""
    if not (user.has(Permission.batch_manage) and batch.institution_id == user.organization_id):
        raise WorkflowError("无权修改该批次")
    if batch.status not in EDITABLE_STATES:
        raise WorkflowError(f"批次状态为「{batch.status.label}」，不能修改")


def can_edit(user, batch: Batch) -> bool:
    """Whether ``ensure_editable`` would let ``user`` change ``batch`` now (what pages offer)."""
    try:
        ensure_editable(user, batch)
    except WorkflowError:
        return False
    return True


def touch(batch: Batch) -> None:
    """Bump the batch's version: a concurrent approval of a batch whose contents just changed
    fails with 「该记录已被他人处理」 instead of issuing stale data."""
    batch.updated_at = utcnow()


def next_batch_code(session: Session, institution: Organization) -> str:
    prefix = f"{institution.code}{local_today():%y%m%d}"
    taken = session.scalar(select(func.count()).select_from(Batch).where(Batch.code.startswith(prefix))) or 0
    return f"{prefix}{taken + 1:03d}"


def create_batch(session: Session, user, name: str, rows, occupations, levels) -> Batch:
    """创建批次 from a clean import (SPEC §5.1): nothing is stored unless every row is clean."""
    if not user.has(Permission.batch_manage) or user.kind not in ISSUERS:
        raise WorkflowError("只有培训机构和省直所可以创建批次")
    name = (name or "").strip()
    if not name:
        raise WorkflowError("请填写批次名称")
    if len(name) > 100:
        raise WorkflowError("批次名称不能超过100个字")
    if not rows:
        raise WorkflowError("批次中没有合格人员")
    institution = user.organization
    batch = Batch(
        code=next_batch_code(session, institution), name=name, institution=institution,
        authority_id=institution.parent_id if institution.kind == OrgKind.institution else None,
        status=BatchStatus.draft, created_by_id=user.id, created_at=utcnow(),
    )
    session.add(batch)
    session.flush()
    session.execute(
        insert(Candidate).execution_options(render_nulls=True),  # one statement, not one per NULL pattern
        [
            dict(
                batch_id=batch.id, row_no=r.row, name=r.name, id_number=r.id_number, gender=r.gender,
                birth_date=r.birth_date, phone=r.phone or None, employer_name=r.employer_name or None,
                occupation_id=occupations[r.occupation_name].id,
                level_id=levels[r.level_name].id if r.level_name else None, failed=False,
            )
            for r in rows
        ],
    )
    batch.candidate_count = len(rows)
    log(session, user, Kind.BATCH_CREATE, f"创建批次「{name}」，{len(rows)} 人", obj=batch)
    session.flush()
    return batch


def mark_candidate(session: Session, user, candidate: Candidate, failed: bool, note: str | None) -> None:
    """A reviewer marks one candidate 审核不通过 (with a note) or clears the mark (003 §七.1)."""
    batch = candidate.batch
    if not may_mark_candidates(user, batch):
        raise WorkflowError("只有当前审核人可以标记考生")
    note = (note or "").strip() or None
    if failed and not note:
        raise WorkflowError("请填写考生审核不通过说明")
    candidate.failed = failed
    candidate.fail_note = note if failed else None
    touch(batch)
    log(session, user, Kind.CANDIDATE_MARK,
        f"{'标记' if failed else '取消标记'}考生 {candidate.name} 审核不通过" + (f"：{note}" if failed else ""), obj=batch)
    session.flush()


# -- issuing -----------------------------------------------------------------------------
def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def issue_certificates(session: Session, batch: Batch) -> list[int]:
    """Province approval (SPEC §5.1, §4): persons, numbered certificates, links — in bulk.

    Runs inside the approval's savepoint, so a full segment or any failure leaves nothing.
    """
    issue_date = local_today()
    institution = batch.institution
    candidates = session.execute(
        select(Candidate.id, Candidate.name, Candidate.id_number, Candidate.gender, Candidate.birth_date,
               Candidate.phone, Candidate.employer_name, Candidate.occupation_id, Candidate.level_id)
        .where(Candidate.batch_id == batch.id)
        .order_by(Candidate.row_no, Candidate.id)
    ).all()
    if not candidates:
        raise WorkflowError("批次中没有合格人员")

    person_ids: dict[str, int] = {}
    all_ids = list({c.id_number for c in candidates})
    for chunk in _chunks(all_ids):
        person_ids.update(session.execute(select(Person.id_number, Person.id).where(Person.id_number.in_(chunk))).all())
    employer_names = {c.employer_name for c in candidates if c.employer_name}
    employers = {}
    for chunk in _chunks(list(employer_names)):
        employers.update(session.execute(
            select(Organization.name, Organization.id).where(
                Organization.name.in_(chunk), Organization.kind.in_((OrgKind.enterprise, OrgKind.school))
            )
        ).all())
    new_people, seen = [], set()
    for c in candidates:
        if c.id_number in person_ids or c.id_number in seen:
            continue
        seen.add(c.id_number)
        new_people.append(dict(
            name=c.name, id_number=c.id_number, gender=c.gender, birth_date=c.birth_date, phone=c.phone,
            employer_id=employers.get(c.employer_name), employer_name=c.employer_name, created_at=utcnow(),
        ))
    if new_people:
        for chunk in _chunks(new_people, 1000):
            returned = session.execute(
                insert(Person).returning(Person.id, Person.id_number).execution_options(render_nulls=True), chunk)
            person_ids.update({idn: pid for pid, idn in returned})

    from models import Level, Occupation  # local: only issuing needs the code tables

    occupations = {o.id: o for o in session.scalars(select(Occupation))}
    levels = {lv.id: lv for lv in session.scalars(select(Level))}
    groups: dict[tuple, list] = defaultdict(list)
    for c in candidates:
        groups[(c.occupation_id, c.level_id)].append(c)
    numbers: dict[int, str] = {}
    for (occupation_id, level_id), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        key = segment_key(institution, occupations[occupation_id], levels.get(level_id), issue_date.year)
        for cand, number in zip(members, allocate_numbers(session, key, len(members)), strict=True):
            numbers[cand.id] = number

    now = utcnow()
    rows = [
        dict(
            number=numbers[c.id], person_id=person_ids[c.id_number], occupation_id=c.occupation_id,
            level_id=c.level_id, issuer_id=institution.id, authority_id=batch.authority_id, batch_id=batch.id,
            issue_date=issue_date, status=CertificateStatus.valid, print_status="unprinted",
            endorsement_count=0, created_at=now, version=1,
        )
        for c in candidates
    ]
    by_number: dict[str, int] = {}
    for chunk in _chunks(rows, 1000):
        returned = session.execute(
            insert(Certificate).returning(Certificate.id, Certificate.number).execution_options(render_nulls=True),
            chunk)
        by_number.update({num: cid for cid, num in returned})
    # link candidates to their certificates: one UPDATE … CASE per 500 rows, not one per row
    links = [(c.id, by_number[numbers[c.id]]) for c in candidates]
    for chunk in _chunks(links):
        session.execute(
            update(Candidate)
            .where(Candidate.id.in_([cid for cid, _ in chunk]))
            .values(certificate_id=case(dict(chunk), value=Candidate.id))
            .execution_options(synchronize_session=False)
        )
    ecert.issue(session, list(by_number.values()), now=now)  # 电子证书 with the paper ones (issue 19)
    session.expire_all()
    return list(by_number.values())


def may_mark_candidates(user, batch: Batch) -> bool:
    """Only the batch's current reviewer marks candidates 审核不通过 (003 §七.1): the one who may
    review it now — what the details page offers and ``mark_candidate`` holds to."""
    return any(t.name in REVIEWS for t in BATCH.available(user, batch))
