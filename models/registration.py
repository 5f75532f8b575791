"""Enterprises, individuals and practice registration (SPEC §5.3, §5.4, §5.5).

- ``AccountRequest``: a self-registered enterprise or individual account waiting for the city
  authority (企业注册 / 个人注册, 000 §一, 001, 002 §3.1.1).
- ``EnterpriseChange``: 企业名称变更 / 所属地市变更 (000 §二(一), 002 §3.1.5, 004 §3.7).
- ``Registration``: a practice registration declaration (注册申报, 002 §3.1.4, 004 §3.2); an
  approved one is a registered person with a number and an expiry date.
- ``Anomaly``: 申辩管理 — an anomaly flagged against an enterprise, its answer, the decision.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow

# 一级建造师 专业 (002): code → name, the reference table a declaration's specialty is one of
SPECIALTIES = {
    "01": "建筑工程", "02": "公路工程", "03": "铁路工程", "04": "民航机场工程", "05": "港口与航道工程",
    "06": "水利水电工程", "07": "矿业工程", "08": "市政公用工程", "09": "通信与广电工程", "10": "机电工程",
}


# -- accounts ----------------------------------------------------------------------------------
class AccountKind(StrEnum):
    enterprise = "enterprise"
    individual = "individual"

    @property
    def label(self) -> str:
        return {"enterprise": "企业注册", "individual": "个人注册"}[self.value]


class AccountStatus(StrEnum):
    pending = "pending"
    active = "active"
    rejected = "rejected"

    @property
    def label(self) -> str:
        return {"pending": "待审核", "active": "审核通过", "rejected": "审核不通过"}[self.value]


class AccountRequest(db.Model):
    """One self-registration; the city authority of ``region_code`` reviews it."""

    __tablename__ = "account_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(enum_column_type(AccountKind), index=True)
    status: Mapped[AccountStatus] = mapped_column(enum_column_type(AccountStatus), default=AccountStatus.pending,
                                                  index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)

    organization = relationship("Organization", foreign_keys=[organization_id])
    user = relationship("User", foreign_keys=[user_id])
    person = relationship("Person")
    authority = relationship("Organization", foreign_keys=[authority_id])

    __mapper_args__ = {"version_id_col": version}

    @property
    def applicant_name(self) -> str:
        if self.organization is not None:
            return self.organization.name
        return self.person.name if self.person is not None else self.user.name

    def __str__(self) -> str:
        return f"{self.kind.label} {self.applicant_name}"


# -- enterprise information change ---------------------------------------------------------------
class EnterpriseChangeKind(StrEnum):
    name = "name"
    city = "city"

    @property
    def label(self) -> str:
        return {"name": "企业名称变更", "city": "所属地市变更"}[self.value]


class EnterpriseChangeStatus(StrEnum):
    pending_authority = "pending_authority"
    pending_province = "pending_province"
    pending_out = "pending_out"
    pending_in = "pending_in"
    approved = "approved"
    rejected = "rejected"

    @property
    def label(self) -> str:
        return {
            "pending_authority": "待审核(主管部门)",
            "pending_province": "待审核(省厅)",
            "pending_out": "待审核(调出市主管部门)",
            "pending_in": "待审核(调入市主管部门)",
            "approved": "审核通过",
            "rejected": "审核不通过",
        }[self.value]


class EnterpriseChange(db.Model):
    __tablename__ = "enterprise_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    kind: Mapped[EnterpriseChangeKind] = mapped_column(enum_column_type(EnterpriseChangeKind))
    status: Mapped[EnterpriseChangeStatus] = mapped_column(enum_column_type(EnterpriseChangeStatus), index=True)
    old_name: Mapped[str] = mapped_column(String(200))
    new_name: Mapped[str | None] = mapped_column(String(200))
    # 所属地市变更: 调出市 and 调入市 authorities; a name change is reviewed by the current city first
    from_authority_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    to_authority_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    old_region_code: Mapped[str] = mapped_column(String(6))
    new_region_code: Mapped[str | None] = mapped_column(String(6))
    explanation: Mapped[str | None] = mapped_column(Text)
    applicant_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)

    enterprise = relationship("Organization", foreign_keys=[enterprise_id])
    from_authority = relationship("Organization", foreign_keys=[from_authority_id])
    to_authority = relationship("Organization", foreign_keys=[to_authority_id])
    applicant_user = relationship("User")

    __mapper_args__ = {"version_id_col": version}

    @property
    def content(self) -> str:
        if self.kind == EnterpriseChangeKind.name:
            return f"{self.old_name} → {self.new_name}"
        old = self.from_authority.name if self.from_authority else self.old_region_code
        new = self.to_authority.name if self.to_authority else self.new_region_code
        return f"{old} → {new}"

    def __str__(self) -> str:
        return f"{self.kind.label}（{self.old_name}）"


# 信息审查中不允许再次提交 (SPEC §5.4): one open change per enterprise, also under concurrency
_OPEN_CHANGE = EnterpriseChange.status.in_(("pending_authority", "pending_province", "pending_out", "pending_in"))
Index("uq_enterprise_change_open", EnterpriseChange.enterprise_id, unique=True,
      postgresql_where=_OPEN_CHANGE, sqlite_where=_OPEN_CHANGE)


# -- practice registration --------------------------------------------------------------------------
class RegistrationKind(StrEnum):
    initial = "initial"
    renewal = "renewal"
    change = "change"
    additional = "additional"

    @property
    def label(self) -> str:
        return {"initial": "初始注册", "renewal": "延续注册", "change": "变更注册", "additional": "增项注册"}[self.value]


class RegistrationStatus(StrEnum):
    unreported = "unreported"
    province_unaccepted = "province_unaccepted"
    province_accepted = "province_accepted"
    ministry_unaccepted = "ministry_unaccepted"
    ministry_accepted = "ministry_accepted"
    approved = "approved"
    rejected = "rejected"
    returned = "returned"
    withdrawn = "withdrawn"

    @property
    def label(self) -> str:
        return REGISTRATION_STATUS_LABELS[self]


REGISTRATION_STATUS_LABELS = {
    RegistrationStatus.unreported: "未上报",
    RegistrationStatus.province_unaccepted: "省级未受理",
    RegistrationStatus.province_accepted: "省级已受理",
    RegistrationStatus.ministry_unaccepted: "部级未受理",
    RegistrationStatus.ministry_accepted: "部级已受理",
    RegistrationStatus.approved: "已注册",
    RegistrationStatus.rejected: "不予注册",
    RegistrationStatus.returned: "已退回",
    RegistrationStatus.withdrawn: "已撤回",
}


class Registration(db.Model):
    """注册申报. ``ministry_at`` is set when the province forwards it: from then on the ministry
    sees it (SPEC §1). An approved, not superseded row is a registered person (注册人员)."""

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RegistrationKind] = mapped_column(enum_column_type(RegistrationKind), index=True)
    status: Mapped[RegistrationStatus] = mapped_column(
        enum_column_type(RegistrationStatus), default=RegistrationStatus.unreported, index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    declared_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    specialty: Mapped[str] = mapped_column(String(2))  # a SPECIALTIES code
    explanation: Mapped[str | None] = mapped_column(Text)
    # 预注册: reported while the enterprise had no qualification number; 补正资质 completes it
    pre_registration: Mapped[bool] = mapped_column(default=False)
    qualification_no: Mapped[str | None] = mapped_column(String(50))
    withdraw_requested_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)  # 退回 / 不予注册 reason
    registration_number: Mapped[str | None] = mapped_column(String(30), unique=True)
    valid_until: Mapped[date | None] = mapped_column(index=True)
    # the earlier registration this one renews, changes or extends; set when approved
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reported_at: Mapped[datetime | None] = mapped_column()
    ministry_at: Mapped[datetime | None] = mapped_column(index=True)
    decided_at: Mapped[datetime | None] = mapped_column()
    # when the registration or its person last changed (models.changes): the API's incremental sync
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    person = relationship("Person")
    enterprise = relationship("Organization")
    declared_by = relationship("User")

    __mapper_args__ = {"version_id_col": version}

    @property
    def specialty_label(self) -> str:
        return SPECIALTIES.get(self.specialty, self.specialty)

    def __str__(self) -> str:
        name = self.person.name if self.person is not None else f"#{self.person_id}"
        return f"{name} {self.kind.label}（{self.specialty_label}）"


Index("ix_registration_enterprise_status", Registration.enterprise_id, Registration.status)
Index("ix_registration_changed", Registration.updated_at, Registration.id)  # the API's sync pages
# one declaration in progress per person and specialty, enforced by the database so two
# simultaneous 申报 cannot both pass the check in workflows.registration.declare
_OPEN_DECLARATION = Registration.status.in_(
    ("unreported", "province_unaccepted", "province_accepted", "ministry_unaccepted", "ministry_accepted"))
Index("uq_registration_open_per_specialty", Registration.person_id, Registration.specialty, unique=True,
      postgresql_where=_OPEN_DECLARATION, sqlite_where=_OPEN_DECLARATION)


# -- 申辩管理 ----------------------------------------------------------------------------------------
class AnomalyKind(StrEnum):
    two_enterprises = "two_enterprises"
    over_age = "over_age"
    deceased = "deceased"
    other = "other"

    @property
    def label(self) -> str:
        return {"two_enterprises": "一人注册于两家企业", "over_age": "超龄人员仍在注册",
                "deceased": "身份证持有人已死亡", "other": "其他异常"}[self.value]


class AnomalyStatus(StrEnum):
    open = "open"
    appealed = "appealed"
    accepted = "accepted"
    rejected = "rejected"

    @property
    def label(self) -> str:
        return {"open": "待申辩", "appealed": "已申辩", "accepted": "申辩通过", "rejected": "申辩不通过"}[self.value]


class Anomaly(db.Model):
    __tablename__ = "anomaly"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registration.id"), index=True)
    kind: Mapped[AnomalyKind] = mapped_column(enum_column_type(AnomalyKind))
    status: Mapped[AnomalyStatus] = mapped_column(enum_column_type(AnomalyStatus), default=AnomalyStatus.open,
                                                  index=True)
    description: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)  # the enterprise's 申辩说明
    decision: Mapped[str | None] = mapped_column(Text)  # the province's opinion (mandatory on rejection)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)

    enterprise = relationship("Organization")
    person = relationship("Person")
    registration = relationship("Registration")

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        who = f"{self.person.name}：" if self.person is not None else ""
        return f"{who}{self.kind.label}"
