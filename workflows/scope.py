"""职业(工种)范围 (SPEC §2): which (occupation, level) pairs an organization may use."""

from __future__ import annotations

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from models import Level, Occupation, Organization, ScopeItem
from models.org import OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.audit import Kind, log
from workflows.organizations import manages


def scope_pairs(session: Session, org: Organization) -> set[tuple[int, int | None]]:
    """(occupation_id, level_id) pairs in ``org``'s scope; level_id None for posts without levels."""
    rows = session.execute(
        select(ScopeItem.occupation_id, ScopeItem.level_id).where(ScopeItem.organization_id == org.id)
    )
    return {(o, lv) for o, lv in rows}


def scope_name_pairs(session: Session, org: Organization) -> list[tuple[str, str | None]]:
    """The same pairs by name, occupations in code order and each one's levels from 初级 to 高级技师
    (level codes 5 … 1): what the template's dropdowns offer, in that order."""
    rows = session.execute(
        select(Occupation.name, Level.name)
        .select_from(ScopeItem)
        .join(Occupation, Occupation.id == ScopeItem.occupation_id)
        .outerjoin(Level, Level.id == ScopeItem.level_id)
        .where(ScopeItem.organization_id == org.id)
        .order_by(Occupation.code, Level.code.desc())
    )
    return [(o, lv) for o, lv in rows]


def scope_choices(session: Session, org: Organization) -> list[tuple[Occupation, list[Level]]]:
    """The online candidate editor's choices: each occupation in ``org``'s scope (code order) with
    its levels in the scope, from 初级 to 高级技师 (level codes 5 … 1); a post without levels has none."""
    rows = session.execute(
        select(Occupation, Level)
        .select_from(ScopeItem)
        .join(Occupation, Occupation.id == ScopeItem.occupation_id)
        .outerjoin(Level, Level.id == ScopeItem.level_id)
        .where(ScopeItem.organization_id == org.id)
        .order_by(Occupation.code, Level.code.desc())
    )
    choices: dict[int, tuple[Occupation, list[Level]]] = {}
    for occupation, level in rows:
        entry = choices.setdefault(occupation.id, (occupation, []))
        if level is not None:
            entry[1].append(level)
    return list(choices.values())


def lookup_tables(session: Session):
    """Name → (id, code, has_levels) for occupations and name → (id, code) for levels."""
    occupations = {o.name: o for o in session.scalars(select(Occupation))}
    levels = {lv.name: lv for lv in session.scalars(select(Level))}
    return occupations, levels


# -- assigning and narrowing (SPEC §2; 003 §五, §七.4, §八.6) -------------------------------------------
# Kinds that hold a scope: the province (everything), authorities (what their institutions may get)
# and the organizations that issue certificates.
SCOPED_KINDS = (OrgKind.province, OrgKind.authority, OrgKind.institution, OrgKind.direct_institution)

Pair = tuple[int, "int | None"]


def every_pair(session: Session) -> list[tuple[Occupation, Level | None]]:
    """Every (occupation, level) pair there is, in code order: occupations with levels × the five
    levels, posts without levels once. The province's scope is all of them."""
    levels = list(session.scalars(select(Level).order_by(Level.code)))
    out = []
    for occupation in session.scalars(select(Occupation).order_by(Occupation.code)):
        if occupation.has_levels:
            out.extend((occupation, level) for level in levels)
        else:
            out.append((occupation, None))
    return out


def pair_names(session: Session, pairs) -> list[str]:
    """「焊工 高级技师(一级)」, 「施工员」: the pairs as people read them, in code order."""
    names = {(o.id, lv.id if lv is not None else None): (o.code, lv.code if lv is not None else "0",
                                                         o.name + (f" {lv.name}" if lv is not None else ""))
             for o, lv in every_pair(session)}
    known = sorted(names[p] for p in pairs if p in names)
    return [name for _code, _level, name in known] + [f"#{p[0]}/{p[1]}" for p in pairs if p not in names]


def assignable_pairs(session: Session, org: Organization) -> set[Pair]:
    """What ``org``'s scope may hold: its parent's scope (every pair for the province)."""
    if org.parent is None or org.kind == OrgKind.province:
        return {(o.id, lv.id if lv is not None else None) for o, lv in every_pair(session)}
    return scope_pairs(session, org.parent)


def may_set_scope(user, org: Organization | None) -> bool:
    """Its own organization narrows its scope; a manager assigns its children's (003 §七.4, §八.6)."""
    if org is None or org.kind not in SCOPED_KINDS or not user.has(Permission.scope_manage):
        return False
    return org.id == user.organization_id or manages(user, org)


def parse_pairs(raw_values) -> set[Pair]:
    """Form values ``"12:3"`` (occupation id : level id, empty for none) → pairs; junk raises."""
    pairs = set()
    for raw in raw_values:
        occupation, _, level = str(raw).partition(":")
        try:
            pairs.add((int(occupation), int(level) if level else None))
        except ValueError:
            raise WorkflowError("职业(工种)或等级不存在") from None
    return pairs


def _lock_lineage(session: Session, org: Organization) -> None:
    """Lock ``org`` and its ancestors, top down (SELECT … FOR UPDATE on PostgreSQL; SQLite's
    transactions are already serialised). A parent narrowing its scope and a child being given a
    pair of it then happen one after the other: the second reads what the first committed, so a
    child never keeps a pair its parent has just lost."""
    ids = [int(i) for i in org.path.strip("/").split("/") if i] or [org.id]
    session.execute(select(Organization.id).where(Organization.id.in_(ids)).order_by(Organization.path)
                    .with_for_update())


def set_scope(session: Session, user, org: Organization, pairs: set[Pair], *, ip: str | None = None) -> dict:
    """Set ``org``'s scope to ``pairs`` (SPEC §2).

    Always a subset of the parent's scope — refused otherwise, naming the pairs; its own
    organization may only narrow it (the parent adds); the province's cannot be reduced.
    A pair removed here leaves every descendant's scope at once, so batches and templates
    follow. Returns {"added": [...], "removed": [...], "descendants": {org name: [...]}}.
    """
    if not may_set_scope(user, org):
        raise WorkflowError("无权配置该机构的职业(工种)范围")
    _lock_lineage(session, org)
    every = {(o.id, lv.id if lv is not None else None) for o, lv in every_pair(session)}
    unknown = pairs - every
    if unknown:
        raise WorkflowError("职业(工种)或等级不存在")
    current = scope_pairs(session, org)
    added, removed = pairs - current, current - pairs
    if org.kind == OrgKind.province and removed:
        raise WorkflowError("省厅的职业(工种)范围包含全部职业(工种)、等级，不可删除："
                            + "、".join(pair_names(session, removed)))
    if org.id == user.organization_id and added:
        raise WorkflowError("本机构只能缩小自己的职业(工种)范围，以下须由上级机构配置："
                            + "、".join(pair_names(session, added)))
    outside = pairs - assignable_pairs(session, org)
    if outside:
        parent = org.parent.name if org.parent is not None else "上级机构"
        raise WorkflowError(f"以下职业(工种)等级不在{parent}的职业(工种)范围内，不能配置："
                            + "、".join(pair_names(session, outside)))
    for occupation_id, level_id in sorted(added, key=lambda p: (p[0], p[1] or 0)):
        session.add(ScopeItem(organization_id=org.id, occupation_id=occupation_id, level_id=level_id))
    cascaded: dict[str, list[str]] = {}
    if removed:
        targets = select(Organization.id).where(Organization.path.startswith(org.path, autoescape=True))
        matches = or_(*(and_(ScopeItem.occupation_id == o,
                             ScopeItem.level_id.is_(None) if lv is None else ScopeItem.level_id == lv)
                        for o, lv in removed))
        rows = session.execute(select(ScopeItem.id, ScopeItem.organization_id, ScopeItem.occupation_id,
                                      ScopeItem.level_id, Organization.name)
                               .join(Organization, Organization.id == ScopeItem.organization_id)
                               .where(ScopeItem.organization_id.in_(targets), matches)).all()
        for _id, org_id, occupation_id, level_id, name in rows:
            if org_id != org.id:
                cascaded.setdefault(name, []).append((occupation_id, level_id))
        session.execute(delete(ScopeItem).where(ScopeItem.id.in_([r[0] for r in rows]))
                        .execution_options(synchronize_session=False))
        session.expire(org, ["scope_items"])
    result = {"added": pair_names(session, added), "removed": pair_names(session, removed),
              "descendants": {name: pair_names(session, set(p)) for name, p in sorted(cascaded.items())}}
    if added or removed:
        summary = f"配置职业(工种)范围：{org.name}"
        if result["added"]:
            summary += "，新增 " + "、".join(result["added"])
        if result["removed"]:
            summary += "，删除 " + "、".join(result["removed"])
        if cascaded:
            summary += "；下级机构同时删除：" + "、".join(cascaded)
        log(session, user, Kind.EDIT, summary, obj=org, ip=ip, detail=result)
    session.flush()
    return result
