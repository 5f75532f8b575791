"""用户管理 and 用户权限管理 (SPEC §1, §7; 003 §六.4, §七.4, §八.6; 002 §3.1.5 人员管理).

Who manages whose users, in one place (``manages_users_of``, and ``reach_clause`` for lists):
- every organization's users with 用户管理 manage the users of their own organization;
- with 机构管理, also those of the organizations they manage (``workflows.organizations.manages``):
  the province its authorities', direct institutions' and institutions' (查看管理主管部门用户信息),
  an authority its institutions'. The province also reaches enterprises and schools, whose
  administrator's forgotten password 「可联系省级主管部门进行重置」 (002 §3.1.5): ``USER_REACH``,
  the organizations' table extended.

A new user gets a one-time temporary password, shown once, and must change it at the first
sign-in (an enterprise's 人员管理 may type the password instead, as 002 has it). Permissions
start from the role's preset and are then granted or withdrawn one by one — never beyond what
the organization's kind allows (``KIND_PERMISSIONS``). Nobody disables, resets or changes the
permissions of themselves here (修改密码 is for that), so an organization cannot lock itself out
by accident. Every change is in the operation log.

No Flask here: functions add rows to the session and never commit.
"""

from __future__ import annotations

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from models import Organization, User
from models.org import OrgKind
from models.user import KIND_PERMISSIONS, PERMISSION_LABELS, Permission, Role, role_preset
from workflows import FormErrors, WorkflowError, insert_or_refuse, sessions
from workflows.audit import Kind, log
from workflows.auth import binding_phone
from workflows.organizations import MANAGES, Relation, acting_organization
from workflows.privacy import mask_phone
from workflows.validators import USERNAME_TAKEN, FormFields, phone_race, phone_taken

P = Permission
PHONE_MISSING = "请填写手机号（登录时接收短信验证码）"
# Beyond the organizations they manage, the province's administrators reach the users of enterprises
# and schools (002 §3.1.5: their forgotten passwords are reset by the province)
USER_REACH = MANAGES.extended({OrgKind.province: {OrgKind.enterprise: Relation.ANY, OrgKind.school: Relation.ANY}})
NOT_FOUND = "用户不存在"


# -- reach -------------------------------------------------------------------------------------------
def manages_users_of(user, org: Organization | None) -> bool:
    """``user`` may create, edit, disable and reset the users of ``org``."""
    own = getattr(user, "organization", None)
    if own is None or org is None:
        return False
    if org.id == own.id:
        return acting_organization(user, P.user_manage) is not None
    own = acting_organization(user, P.org_manage)
    return own is not None and USER_REACH.holds(own, org)


def reach_clause(user):
    """The organizations whose users ``user`` manages, as a predicate on Organization: the same
    rule as ``manages_users_of``, the own organization by id and the others from ``USER_REACH``."""
    parts = []
    own = acting_organization(user, P.user_manage)
    if own is not None:
        parts.append(Organization.id == own.id)
    own = acting_organization(user, P.org_manage)
    if own is not None:
        parts.append(USER_REACH.clause(own))
    return or_(*parts) if parts else false()


def users_clause(user):
    """The users ``user`` manages (own account included, shown but not editable here)."""
    return User.organization_id.in_(select(Organization.id).where(reach_clause(user)))


def role_choices(kind: OrgKind) -> list[Role]:
    """The roles a user of a ``kind`` organization may have: those whose preset is not empty."""
    return [role for role in (Role.admin, Role.reviewer, Role.operator) if role_preset(kind, role)]


def allowed_permissions(org: Organization) -> list[Permission]:
    """What a user of ``org`` may hold, in the order of the permission list."""
    allowed = KIND_PERMISSIONS.get(org.kind, frozenset())
    return [p for p in Permission if p in allowed]


# -- checks -----------------------------------------------------------------------------------------
def _check_target(manager, target: User | None, *, self_message: str | None = None) -> User:
    if target is None or target.organization is None or not manages_users_of(manager, target.organization):
        raise WorkflowError(NOT_FOUND)
    if self_message and target.id == manager.id:
        raise WorkflowError(self_message)
    return target


def _role(form: FormFields, org: Organization, default: Role | None = None) -> Role | None:
    raw = form.values.get("role") or (default.value if default is not None else "")
    choices = role_choices(org.kind)
    try:
        role = Role(raw)
    except ValueError:
        role = None
    if role is None:
        form.errors["role"] = "请选择角色"
    elif role not in choices:
        form.errors["role"] = f"{org.kind.label}不能设置「{role.label}」角色"
        return None
    return role


# -- operations -------------------------------------------------------------------------------------
def create_user(session: Session, manager, org: Organization | None, values, *, password_typed: bool = False,
                role: Role | None = None, ip: str | None = None) -> tuple[User, str | None]:
    """新增用户 in ``org``. Returns (user, the one-time password or None when it was typed).

    ``role`` fixes the role (an enterprise's 二级用户 are 经办人); else the form's ``role``."""
    from workflows.auth import hash_password, temporary_password

    if org is None or not manages_users_of(manager, org):
        raise WorkflowError("无权在该机构新增用户")
    form = FormFields(values)
    name = form.text("name", "姓名", 50)
    username = form.username(session)
    phone = form.phone(session, missing=PHONE_MISSING)
    role = role or _role(form, org)
    password = form.password() if password_typed else None
    form.raise_if_any()
    one_time = None if password_typed else temporary_password()
    user = User(username=username, password_hash=hash_password(password or one_time), name=name, phone=phone,
                organization=org, role=role, must_change_password=not password_typed)
    user.set_permissions(role_preset(org.kind, role))
    with insert_or_refuse(session, FormErrors({"username": USERNAME_TAKEN})), binding_phone(session, phone_race()):
        session.add(user)
        session.flush()
    log(session, manager, Kind.EDIT, f"新增用户 {username}（{name}，{org.name}，{role.label}）", obj=user, ip=ip,
        detail={"name": {"before": None, "after": name}, "role": {"before": None, "after": role.label},
                "permissions": {"before": None, "after": _labels(user.permissions)}})
    return user, one_time


def update_user(session: Session, manager, target: User, values, *, with_role: bool = True,
                ip: str | None = None) -> list[str]:
    """修改: 姓名, 手机号 and (``with_role``) 角色 — a new role starts from its preset permissions."""
    _check_target(manager, target, self_message="请在「个人资料」「更换绑定手机」中修改自己的信息")
    if not target.is_enabled and with_role:
        raise WorkflowError("该用户已停用，请先启用")
    form = FormFields(values)
    name = form.text("name", "姓名", 50)
    phone = form.phone(session, missing=PHONE_MISSING, besides=target)
    role = _role(form, target.organization, default=target.role) if with_role else target.role
    if with_role and target.id == manager.id and role != target.role:
        form.errors["role"] = "不能修改自己的角色"
    form.raise_if_any()
    changed = {}
    for key, label, value in (("name", "姓名", name), ("phone", "手机号", phone), ("role", "角色", role)):
        before = getattr(target, key)
        if before != value:
            changed[label] = {"before": getattr(before, "label", before), "after": getattr(value, "label", value)}
            setattr(target, key, value)
    if "角色" in changed:
        before = target.permissions
        target.set_permissions(role_preset(target.organization.kind, role))
        changed["权限"] = {"before": _labels(before), "after": _labels(target.permissions)}
    if changed:
        log(session, manager, Kind.EDIT, f"修改用户 {target.username}：" + "、".join(changed), obj=target, ip=ip,
            detail=changed)
    with binding_phone(session, phone_race()):
        session.flush()
    return list(changed)


def set_enabled(session: Session, manager, target: User, enabled: bool, *, ip: str | None = None) -> None:
    """停用 / 启用. A disabled user cannot sign in; open sessions end at the next request."""
    _check_target(manager, target, self_message="不能停用自己的账号")
    if target.is_enabled == enabled:
        raise WorkflowError("该用户已启用" if enabled else "该用户已停用")
    freed = enabled and phone_taken(session, target.phone, besides=target)
    if freed:  # issue 17: its phone was bound to another account meanwhile; it comes back without one
        log(session, manager, Kind.EDIT, f"启用用户 {target.username}：手机号 {mask_phone(target.phone)} 已绑定其他账号，"
            "取消绑定", obj=target, ip=ip, detail={"手机号": {"before": mask_phone(target.phone), "after": None}})
        target.phone = None
    target.is_enabled = enabled
    if not enabled:
        sessions.end_all(session, sessions.Reason.DISABLED, user_ids=[target.id])
    log(session, manager, Kind.EDIT, f"{'启用' if enabled else '停用'}用户 {target.username}（{target.name}）",
        obj=target, ip=ip, detail={"状态": {"before": "停用" if enabled else "启用",
                                            "after": "启用" if enabled else "停用"}})
    with binding_phone(session):
        session.flush()


def reset_password(session: Session, manager, target: User, *, ip: str | None = None) -> str:
    """重置密码: a one-time password, shown once; changed at the next sign-in."""
    from workflows.auth import set_temporary_password

    _check_target(manager, target, self_message="不能重置自己的密码，请使用「修改密码」")
    if not target.is_enabled:
        raise WorkflowError("该用户已停用，请先启用")
    return set_temporary_password(session, manager, target, ip=ip)


def unbind_phone(session: Session, manager, target: User, *, ip: str | None = None) -> None:
    """取消绑定手机号: for a lost phone. The user cannot sign in (no SMS code) until a new number is
    bound by 修改 — a password alone never opens an account."""
    _check_target(manager, target, self_message="不能取消绑定自己的手机号，请使用「更换绑定手机」")
    if not target.phone:
        raise WorkflowError("该用户未绑定手机号")
    before = target.phone
    target.phone = None
    sessions.end_all(session, sessions.Reason.PHONE_UNBOUND, user_ids=[target.id])
    log(session, manager, Kind.EDIT, f"取消绑定用户 {target.username} 的手机号 {mask_phone(before)}", obj=target,
        ip=ip, detail={"手机号": {"before": mask_phone(before), "after": None}})
    session.flush()


def set_permissions(session: Session, manager, target: User, codes, *, ip: str | None = None) -> dict:
    """用户权限管理: grant and withdraw single permissions, never beyond the organization's kind.
    Returns {"granted": [...], "withdrawn": [...]} (labels)."""
    _check_target(manager, target, self_message="不能修改自己的权限")
    if not target.is_enabled:
        raise WorkflowError("该用户已停用，请先启用")
    wanted, unknown = set(), []
    for raw in codes:
        try:
            wanted.add(Permission(raw))
        except ValueError:
            unknown.append(str(raw)[:30])
    if unknown:
        raise WorkflowError("权限不存在：" + "、".join(unknown))
    org = target.organization
    beyond = wanted - KIND_PERMISSIONS.get(org.kind, frozenset())
    if beyond:
        raise WorkflowError(f"以下权限不是{org.kind.label}可以拥有的：" + "、".join(_labels(beyond)))
    before = target.permissions
    granted, withdrawn = wanted - before, before - wanted
    target.set_permissions(wanted)
    result = {"granted": _labels(granted), "withdrawn": _labels(withdrawn)}
    if granted or withdrawn:
        summary = f"设置用户 {target.username} 的权限"
        if granted:
            summary += "，授予 " + "、".join(result["granted"])
        if withdrawn:
            summary += "，撤销 " + "、".join(result["withdrawn"])
        log(session, manager, Kind.EDIT, summary, obj=target, ip=ip,
            detail={"权限": {"before": _labels(before), "after": _labels(target.permissions)}})
    session.flush()
    return result


def _labels(codes) -> list[str]:
    return [PERMISSION_LABELS[p] for p in Permission if p in set(codes)]
