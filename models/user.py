"""Users, their roles and per-user permissions, and SMS codes (SPEC §1, §9)."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow
from models.org import Organization, OrgKind
from models.registration import AccountStatus


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    operator = "operator"
    individual = "individual"

    @property
    def label(self) -> str:
        return {"admin": "机构管理员", "reviewer": "审核员", "operator": "经办人", "individual": "个人"}[self.value]


class Permission(StrEnum):
    """Permission codes. Each role presets a set; an admin grants or withdraws single ones."""

    batch_manage = "batch_manage"          # 创建批次、编辑、提交、删除
    batch_review = "batch_review"          # 审核批次
    certificate_view = "certificate_view"  # 证书管理/证书库
    certificate_print = "certificate_print"
    business_apply = "business_apply"      # 证书业务申请
    business_review = "business_review"    # 证书业务审核
    segment_manage = "segment_manage"      # 证书号段维护
    statistics = "statistics"              # 统计分析
    org_manage = "org_manage"              # 机构管理
    user_manage = "user_manage"            # 用户管理、用户权限管理
    scope_manage = "scope_manage"          # 职业(工种)范围
    data_fix = "data_fix"                  # 数据维护
    audit_view = "audit_view"              # 操作日志
    enterprise_manage = "enterprise_manage"
    registration_manage = "registration_manage"
    registration_review = "registration_review"

    @property
    def label(self) -> str:
        return PERMISSION_LABELS[self]


PERMISSION_LABELS = {
    Permission.batch_manage: "批次管理",
    Permission.batch_review: "批次审核",
    Permission.certificate_view: "证书查看",
    Permission.certificate_print: "证书打印",
    Permission.business_apply: "证书业务申请",
    Permission.business_review: "证书业务审核",
    Permission.segment_manage: "证书号段维护",
    Permission.statistics: "统计分析",
    Permission.org_manage: "机构管理",
    Permission.user_manage: "用户管理",
    Permission.scope_manage: "职业(工种)范围",
    Permission.data_fix: "数据维护",
    Permission.audit_view: "操作日志",
    Permission.enterprise_manage: "企业信息管理",
    Permission.registration_manage: "注册申报管理",
    Permission.registration_review: "注册审查",
}

P = Permission
# What each organization kind may ever hold (SPEC §1: never beyond what the kind allows).
KIND_PERMISSIONS: dict[OrgKind, frozenset[Permission]] = {
    OrgKind.province: frozenset({
        P.batch_review, P.certificate_view, P.business_review, P.segment_manage, P.statistics,
        P.org_manage, P.user_manage, P.scope_manage, P.data_fix, P.audit_view, P.registration_review,
    }),
    OrgKind.ministry: frozenset({P.registration_review, P.user_manage, P.audit_view}),
    OrgKind.authority: frozenset({
        P.batch_review, P.certificate_view, P.business_review, P.statistics, P.org_manage,
        P.user_manage, P.scope_manage, P.audit_view, P.enterprise_manage,
    }),
    OrgKind.institution: frozenset({
        P.batch_manage, P.certificate_view, P.certificate_print, P.business_apply, P.user_manage,
        P.scope_manage, P.audit_view,
    }),
    OrgKind.direct_institution: frozenset({
        P.batch_manage, P.certificate_view, P.certificate_print, P.business_apply, P.user_manage,
        P.scope_manage, P.audit_view,
    }),
    OrgKind.enterprise: frozenset({
        P.certificate_view, P.business_apply, P.user_manage, P.enterprise_manage, P.registration_manage,
        P.audit_view,
    }),
    OrgKind.school: frozenset({P.certificate_view, P.business_apply, P.user_manage, P.audit_view}),
}

_REVIEW = {P.batch_review, P.business_review, P.registration_review, P.certificate_view, P.statistics}
_OPERATE = {P.batch_manage, P.certificate_view, P.certificate_print, P.business_apply, P.registration_manage,
            P.enterprise_manage}


def role_preset(kind: OrgKind, role: Role) -> frozenset[Permission]:
    """The permissions a new user of ``role`` in an organization of ``kind`` starts with."""
    allowed = KIND_PERMISSIONS.get(kind, frozenset())
    if role == Role.admin:
        return allowed
    if role == Role.reviewer:
        return allowed & frozenset(_REVIEW)
    if role == Role.operator:
        return allowed & frozenset(_OPERATE)
    return frozenset()


# Issue 17: a phone number binds one active account — enabled, and not a registration the authority
# rejected (pending ones count: they become active without a new binding). Both databases hold it
# as a partial unique index, so two concurrent binds cannot both win.
ACTIVE_PHONE_INDEX = "uq_user_account_active_phone"
ACTIVE_PHONE_WHERE = "is_enabled AND account_status <> 'rejected'"


class User(UserMixin, db.Model):
    __tablename__ = "user_account"
    __table_args__ = (
        Index(ACTIVE_PHONE_INDEX, "phone", unique=True, sqlite_where=text(ACTIVE_PHONE_WHERE),
              postgresql_where=text(ACTIVE_PHONE_WHERE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(11), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    # one individual account per person (个人注册: 已经注册过的禁止重复注册)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), unique=True)
    role: Mapped[Role] = mapped_column(enum_column_type(Role), default=Role.operator)
    is_enabled: Mapped[bool] = mapped_column(default=True)
    # a self-registered individual waits for the city authority (SPEC §5.3); staff users are active
    account_status: Mapped[AccountStatus] = mapped_column(
        enum_column_type(AccountStatus), default=AccountStatus.active, server_default="active")
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    must_change_password: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    organization: Mapped[Organization | None] = relationship()
    person = relationship("Person", foreign_keys=[person_id])
    permission_rows: Mapped[list[UserPermission]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.name}({self.username})"

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset(row.code for row in self.permission_rows)

    def has(self, permission: Permission) -> bool:
        return any(row.code == permission for row in self.permission_rows)

    @property
    def kind(self) -> OrgKind | None:
        return self.organization.kind if self.organization else None

    @classmethod
    def holds_phone(cls):
        """The accounts whose phone no other account may bind (ACTIVE_PHONE_WHERE, as a predicate)."""
        return and_(cls.is_enabled.is_(True), cls.account_status != AccountStatus.rejected)

    def set_permissions(self, codes) -> None:
        wanted = {Permission(c) for c in codes}
        for row in list(self.permission_rows):
            if row.code not in wanted:
                self.permission_rows.remove(row)
        have = {row.code for row in self.permission_rows}
        for code in sorted(wanted - have):
            self.permission_rows.append(UserPermission(code=code))


class UserPermission(db.Model):
    __tablename__ = "user_permission"
    __table_args__ = (UniqueConstraint("user_id", "code", name="uq_user_permission_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code: Mapped[Permission] = mapped_column(enum_column_type(Permission))

    user: Mapped[User] = relationship(back_populates="permission_rows")


class SmsCode(db.Model):
    """A 6-digit code sent to the bound phone (SPEC §9). Only its hash is stored.

    找回密码 keys its codes by ``subject``, the username as typed, for real and unknown accounts alike
    (an unknown one's code is stored and never sent): the throttle, the attempts and the expiry then
    answer the same whether or not the account exists (issue 16)."""

    __tablename__ = "sms_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str | None] = mapped_column(String(11), index=True)
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    used: Mapped[bool] = mapped_column(default=False)


class UserSession(db.Model):
    """One signed-in browser (issue 16; 等保 三级: a session ends on the server, not only in the cookie).

    The signed session cookie carries a random id whose hash is kept here; every request must find
    its row open. 退出 closes that row, 修改密码 every other row of the user, 重置密码 / 停用 /
    取消绑定手机号 / 下线 every row of the users concerned: a cookie copied before any of them is
    refused at its next request, wherever it is replayed from."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))
