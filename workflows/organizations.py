"""系统管理 of organizations (SPEC §7; 003 §七.4 单位管理, §八.6 主管部门管理 / 省直所管理).

The province creates, edits, takes offline (下线), brings online (上线) and deletes city
authorities, direct institutions and institutions; an authority does the same for its own
institutions. ``MANAGES`` is that rule, in one place, as a table from which both ``manages``
(one row) and ``managed_clause`` (lists) are read: the views, the scope assignment
(``workflows.scope``) and user management (``workflows.users``, whose reach extends it) all ask it.

An offline organization's users cannot sign in (``workflows.auth.login_refusal``) and its
open sessions end at their next request. Nothing is deleted but an organization that holds
nothing: no users, batches, certificates, persons, sub-organizations or anything else that
points at it (``dependents`` looks at every foreign key, so a table added later is covered).

No Flask here: functions add rows to the session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sqlalchemy import false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Organization, db
from models.org import OrgKind, OrgStatus
from models.user import Permission
from workflows import FormErrors, WorkflowError, sessions
from workflows.audit import Kind, log
from workflows.engine import Transition, Workflow, actor
from workflows.reference import load_cities
from workflows.validators import FormFields

P = Permission


# -- who manages whom (SPEC §1, §7) ------------------------------------------------------------------
class Relation(StrEnum):
    """How an organization a manager reaches stands to the manager."""

    ANY = "any"  # every organization of the kind: the province's reach
    CHILD = "child"  # those placed under the manager (parent_id): an authority's institutions


@dataclass(frozen=True)
class Reach:
    """Who reaches whom, as data: manager's kind → {kind reached: relation}. The Python predicate
    (``holds``, one row) and the SQL clause (``clause``, lists and counts) are both read from this
    table, so they cannot drift apart (tests/unit/test_reach.py checks them against each other)."""

    table: Mapping[OrgKind, Mapping[OrgKind, Relation]]

    @property
    def managers(self) -> tuple[OrgKind, ...]:
        return tuple(self.table)

    def kinds(self, manager: OrgKind | None) -> tuple[OrgKind, ...]:
        return tuple(self.table.get(manager, {}))

    def holds(self, own: Organization, org: Organization) -> bool:
        relation = self.table.get(own.kind, {}).get(org.kind)
        return relation == Relation.ANY or (relation == Relation.CHILD and org.parent_id == own.id)

    def clause(self, own: Organization, kinds: Iterable[OrgKind] | None = None):
        """The organizations ``own`` reaches (of ``kinds`` only, when given), as a predicate."""
        wanted = set(kinds) if kinds is not None else None
        by_relation: dict[Relation, list[OrgKind]] = {}
        for kind, relation in self.table.get(own.kind, {}).items():
            if wanted is None or kind in wanted:
                by_relation.setdefault(relation, []).append(kind)
        parts = [_kind_in(by_relation[Relation.ANY])] if Relation.ANY in by_relation else []
        if Relation.CHILD in by_relation:
            parts.append(_kind_in(by_relation[Relation.CHILD]) & (Organization.parent_id == own.id))
        return or_(*parts) if parts else false()

    def extended(self, more: Mapping[OrgKind, Mapping[OrgKind, Relation]]) -> Reach:
        """This reach and ``more`` besides."""
        table = {manager: dict(reached) for manager, reached in self.table.items()}
        for manager, reached in more.items():
            table.setdefault(manager, {}).update(reached)
        return Reach(table)


def _kind_in(kinds: list[OrgKind]):
    return Organization.kind == kinds[0] if len(kinds) == 1 else Organization.kind.in_(kinds)


# What each kind of organization manages (creates, edits, 下线/上线, deletes, assigns a scope to)
MANAGES = Reach({
    OrgKind.province: {OrgKind.authority: Relation.ANY, OrgKind.direct_institution: Relation.ANY,
                       OrgKind.institution: Relation.ANY},
    OrgKind.authority: {OrgKind.institution: Relation.CHILD},
})


def acting_organization(user, permission: Permission) -> Organization | None:
    """``user``'s organization when the user acts for it with ``permission`` (enabled); else None."""
    own = getattr(user, "organization", None)
    if own is None or not getattr(user, "is_enabled", False) or not user.has(permission):
        return None
    return own


def manages(user, org: Organization | None) -> bool:
    """``user`` may edit, take offline, delete ``org`` and assign its scope (with 机构管理)."""
    own = acting_organization(user, P.org_manage)
    return own is not None and org is not None and MANAGES.holds(own, org)


def managed_clause(user, kind: OrgKind):
    """The organizations of ``kind`` that ``user`` manages, as a predicate (lists, counts)."""
    own = acting_organization(user, P.org_manage)
    return MANAGES.clause(own, (kind,)) if own is not None else false()


# -- the province and the ministry ---------------------------------------------------------------------
def province_id(session: Session) -> int | None:
    """The province's organization: where province-level reviews are announced."""
    return _the_one(session, OrgKind.province)


def ministry_id(session: Session) -> int | None:
    """The ministry's 注册中心: where forwarded registrations are announced."""
    return _the_one(session, OrgKind.ministry)


def _the_one(session: Session, kind: OrgKind) -> int | None:
    """The id of the one organization of ``kind`` (an indexed lookup; not remembered across calls: a
    session outlives the rows it read — the demo's reseed recreates the province under a new id)."""
    return session.scalar(select(Organization.id).where(Organization.kind == kind).limit(1))


# Codes the system gives a new organization: SD370100 (authority by city), SZ0001, JG370101 …
CODE_PREFIX = {OrgKind.authority: "SD", OrgKind.direct_institution: "SZ", OrgKind.institution: "JG"}
# The fields of the form: key → (label, max length, required)
FIELDS = {
    "name": ("机构名称", 200, True),
    "contact": ("联系人", 50, True),
    "phone": ("联系电话", 30, True),
    "address": ("通讯地址", 255, False),
    "postcode": ("邮政编码", 6, False),
}
# What points at an organization, as people call it (dependents' message); others are 「业务数据」
DEPENDENT_LABELS = {
    "user_account": "用户", "batch": "批次", "certificate": "证书", "organization": "下级机构",
    "person": "人员", "certificate_application": "证书业务", "registration": "注册申报",
    "account_request": "注册申请", "enterprise_change": "企业信息变更", "print_format": "证书格式",
    "audit_log": "操作日志", "transition_log": "审核日志", "anomaly": "申辩",
}
# Rows that belong to the organization itself and go with it
OWN_TABLES = {"scope_item"}


@cache
def city_names() -> dict[str, str]:
    """Region code → 济南市 … for the province's cities (shared/data); empty if the file is missing."""
    try:
        return {row["region_code"]: row["name"] for row in load_cities()}
    except (OSError, KeyError):
        return {}


def province_city_codes() -> list[str]:
    """The cities an authority may be created for (the province's own row excluded)."""
    return [code for code in city_names() if not code.endswith("0000")]


def parent_choices(session: Session, user, kind: OrgKind) -> list[Organization]:
    """Where a new organization of ``kind`` may be placed by ``user``: the province for authorities
    and direct institutions; for institutions the user's own authority, or (the province) any
    active authority."""
    own = user.organization
    if own is None or not user.has(P.org_manage) or kind not in MANAGES.kinds(own.kind):
        return []
    if kind in (OrgKind.authority, OrgKind.direct_institution) or own.kind == OrgKind.authority:
        return [own]
    return list(session.scalars(select(Organization).where(
        Organization.kind == OrgKind.authority, Organization.status == OrgStatus.active)
        .order_by(Organization.region_code, Organization.id)))


def free_cities(session: Session) -> list[tuple[str, str]]:
    """(region code, 城市) of the cities without an authority yet: one authority per city, since
    enterprises, certificates and numbers are routed by the city."""
    taken = set(session.scalars(select(Organization.region_code).where(Organization.kind == OrgKind.authority)))
    names = city_names()
    return [(code, names[code]) for code in province_city_codes() if code not in taken]


# -- the form ----------------------------------------------------------------------------------------
def read_fields(values, fields=FIELDS) -> tuple[dict, dict]:
    """What was typed into an organization's form: (values, errors by field). Blank is None."""
    form = FormFields(values)
    out = {key: form.postcode(key) if key == "postcode" else form.text(key, label, max_len, required=required)
           for key, (label, max_len, required) in fields.items()}
    return out, form.errors


def apply_fields(session: Session, user, org: Organization, new: dict, fields, what: str, *,
                 ip: str | None = None) -> list[str]:
    """Set what changed, log it with before/after (「{what}：联系人、联系电话」); the labels changed."""
    changed = {key: (getattr(org, key), value) for key, value in new.items() if (getattr(org, key) or None) != value}
    for key, (_before, after) in changed.items():
        setattr(org, key, after)
    labels = [fields[key][0] for key in changed]
    if changed:
        log(session, user, Kind.EDIT, f"{what}：" + "、".join(labels), obj=org, ip=ip,
            detail={key: {"before": before, "after": after} for key, (before, after) in changed.items()})
        session.flush()
    return labels


def _name_taken(session: Session, kind: OrgKind, name: str, besides: Organization | None = None) -> bool:
    stmt = select(Organization.id).where(Organization.kind == kind, Organization.name == name)
    if besides is not None:
        stmt = stmt.where(Organization.id != besides.id)
    return session.scalar(stmt.limit(1)) is not None


def _next_code(session: Session, kind: OrgKind, parent: Organization, region_code: str) -> str:
    prefix = CODE_PREFIX[kind]
    if kind == OrgKind.authority:
        return f"{prefix}{region_code}"
    stem = prefix + (region_code[:4] if kind == OrgKind.institution else "")
    width = 2 if kind == OrgKind.institution else 4
    used = set(session.scalars(select(Organization.code).where(Organization.code.startswith(stem, autoescape=True))))
    n = len(used) + 1
    while f"{stem}{n:0{width}d}" in used:
        n += 1
    return f"{stem}{n:0{width}d}"


def _insert_with_code(session: Session, kind: OrgKind, parent: Organization, region_code: str,
                      fields: dict) -> Organization:
    """Insert with the next free code. Two creations at the same moment may pick the same code:
    the unique constraint decides; the loser takes the next code (an institution, a 省直所) or,
    for a city's authority — one per city —, is told the city has one now."""
    taken = WorkflowError(f"{city_names().get(region_code, region_code)}已有主管部门，请刷新后查看")
    for _attempt in range(3):
        org = Organization(kind=kind, parent_id=parent.id, region_code=region_code, status=OrgStatus.active,
                           code=_next_code(session, kind, parent, region_code), **fields)
        try:
            with session.begin_nested():
                session.add(org)
                session.flush()
            return org
        except IntegrityError:
            if kind == OrgKind.authority:
                raise taken from None
    raise WorkflowError("机构编号已被占用，请稍后重试")


def create_organization(session: Session, user, kind: OrgKind, values, *, ip: str | None = None) -> Organization:
    """新建主管部门 / 新建省直所 / 新建单位: the code is given by the system; the scope is empty
    until the parent assigns one (``workflows.scope.set_scope``)."""
    if kind not in MANAGES.kinds(user.kind) or not user.has(P.org_manage):
        raise WorkflowError(f"无权新建{kind.label}")
    fields, errors = read_fields(values)
    parents = {str(p.id): p for p in parent_choices(session, user, kind)}
    parent = next(iter(parents.values()), None) if len(parents) == 1 else parents.get(str(values.get("parent_id")))
    if parent is None:
        errors["parent_id"] = "请选择所属主管部门"
    region_code = None
    if kind == OrgKind.authority:
        region_code = (values.get("region_code") or "").strip()
        free = dict(free_cities(session))
        if region_code not in free:
            holder = session.scalar(select(Organization).where(
                Organization.kind == OrgKind.authority, Organization.region_code == region_code))
            errors["region_code"] = (f"{city_names().get(region_code, region_code)}已有主管部门：{holder.name}"
                                     if holder is not None else "请选择所属地市")
    elif parent is not None:
        region_code = parent.region_code
    if fields["name"] and "name" not in errors and _name_taken(session, kind, fields["name"]):
        errors["name"] = f"已存在同名的{kind.label}"
    if errors:
        raise FormErrors(errors)
    org = _insert_with_code(session, kind, parent, region_code, fields)
    org.refresh_path()
    log(session, user, Kind.EDIT, f"新建{kind.label} {org.name}（{org.code}）", obj=org, ip=ip,
        detail={key: {"before": None, "after": value} for key, value in fields.items() if value})
    session.flush()
    return org


def update_organization(session: Session, user, org: Organization, values, *, ip: str | None = None) -> list[str]:
    """修改: name, contact, phone, address, postcode. Returns the labels of what changed."""
    if not manages(user, org):
        raise WorkflowError("无权修改该机构")
    fields, errors = read_fields(values)
    if fields["name"] and "name" not in errors and _name_taken(session, org.kind, fields["name"], besides=org):
        errors["name"] = f"已存在同名的{org.kind.label}"
    if errors:
        raise FormErrors(errors)
    return apply_fields(session, user, org, fields, FIELDS, f"修改{org.kind.label} {org.name}", ip=ip)


def dependents(session: Session, org: Organization) -> list[tuple[str, int]]:
    """(what, how many) of the rows that point at ``org`` — everything a delete would orphan."""
    counts: dict[str, int] = {}
    for table in db.metadata.sorted_tables:
        if table.name in OWN_TABLES:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name != Organization.__tablename__:
                continue
            n = session.scalar(select(func.count()).select_from(table).where(fk.parent == org.id)) or 0
            if n:
                label = DEPENDENT_LABELS.get(table.name, "业务数据")
                counts[label] = counts.get(label, 0) + n
    order = {label: i for i, label in enumerate(DEPENDENT_LABELS.values())}
    return sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))


def delete_organization(session: Session, user, org: Organization, *, ip: str | None = None) -> None:
    """删除: only an organization that holds nothing; otherwise the message says what it holds
    and that 下线 is the way to stop it."""
    if not manages(user, org):
        raise WorkflowError("无权删除该机构")
    held = dependents(session, org)
    if held:
        what = "、".join(f"{label}{n}条" for label, n in held)
        raise WorkflowError(f"{org.name}下仍有{what}，不能删除；如需停用请下线")
    snapshot = {key: {"before": getattr(org, key), "after": None} for key in ("code", "name", "region_code")}
    log(session, user, Kind.EDIT, f"删除{org.kind.label} {org.name}（{org.code}）", obj=org, ip=ip, detail=snapshot)
    session.delete(org)  # its ScopeItems go with it (cascade)
    session.flush()


# -- 下线 / 上线 -----------------------------------------------------------------------------------------
_MANAGER = actor(*MANAGES.managers, relation=manages)


def _end_sessions(ctx) -> None:
    """下线: the organization's users are signed out on the server, not only refused at sign-in."""
    sessions.end_all(ctx.session, sessions.Reason.ORG_OFFLINE, organization_id=ctx.obj.id)


def _registered_under(user, org: Organization) -> bool:
    """The city authority a self-registered enterprise registered under (its parent)."""
    return org.parent_id == user.organization_id


def _itself(user, org: Organization) -> bool:
    return user.organization_id == org.id


# 企业注册 (SPEC §5.3): the enterprise's own state follows its account request's review
# (workflows.accounts.ACCOUNT fires these from its effect) and its registering again
_REVIEWER = actor(OrgKind.authority, relation=_registered_under)

ORGANIZATION = Workflow(
    Organization,
    "status",
    [
        Transition("offline", "下线", (OrgStatus.active,), OrgStatus.offline, who=_MANAGER, permission=P.org_manage,
                   danger=True, confirm="下线后该机构的用户将不能登录，确定下线？", effects=(_end_sessions,)),
        Transition("online", "上线", (OrgStatus.offline,), OrgStatus.active, who=_MANAGER, permission=P.org_manage),
        Transition("register_approve", "注册审核通过", (OrgStatus.pending,), OrgStatus.active, who=_REVIEWER,
                   permission=P.enterprise_manage, bulk=False, manual=False),
        Transition("register_reject", "注册审核不通过", (OrgStatus.pending,), OrgStatus.rejected, who=_REVIEWER,
                   permission=P.enterprise_manage, bulk=False, manual=False),
        Transition("register_again", "重新注册", (OrgStatus.rejected,), OrgStatus.pending,
                   who=actor(OrgKind.enterprise, relation=_itself), bulk=False, manual=False),
    ],
    object_type="organization",
    title=lambda org: org.name,
)
