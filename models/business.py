"""Certificate business applications (证书业务, SPEC §5.2): 变更, 补办, 注销."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class ApplicationKind(StrEnum):
    change = "change"
    reissue = "reissue"
    cancel = "cancel"

    @property
    def label(self) -> str:
        return {"change": "变更", "reissue": "补办", "cancel": "注销"}[self.value]


class ApplicationStatus(StrEnum):
    draft = "draft"
    pending_authority = "pending_authority"
    pending_province = "pending_province"
    approved = "approved"
    rejected = "rejected"

    @property
    def label(self) -> str:
        return APPLICATION_STATUS_LABELS[self]


APPLICATION_STATUS_LABELS = {
    ApplicationStatus.draft: "待提交",
    ApplicationStatus.pending_authority: "待审核(主管部门)",
    ApplicationStatus.pending_province: "待审核(省厅)",
    ApplicationStatus.approved: "审核通过",
    ApplicationStatus.rejected: "审核不通过",
}
OPEN_STATES = (ApplicationStatus.draft, ApplicationStatus.pending_authority, ApplicationStatus.pending_province)


class ChangeField(StrEnum):
    name = "name"
    id_number = "id_number"
    employer = "employer"

    @property
    def label(self) -> str:
        return {"name": "姓名变更", "id_number": "身份证号变更", "employer": "工作单位变更"}[self.value]


class CertificateApplication(db.Model):
    __tablename__ = "certificate_application"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ApplicationKind] = mapped_column(enum_column_type(ApplicationKind), index=True)
    status: Mapped[ApplicationStatus] = mapped_column(
        enum_column_type(ApplicationStatus), default=ApplicationStatus.draft, index=True
    )
    # who applied: an issuing institution, an enterprise or school, or an individual (no org)
    applicant_org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    applicant_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    # the holder; None only in a 补办 draft saved before its first lost certificate is chosen (001)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    # the city authority that reviews first; None goes straight to the province (省直所)
    reviewing_authority_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    explanation: Mapped[str | None] = mapped_column(Text)  # 申请说明

    change_fields: Mapped[str | None] = mapped_column(String(40))  # comma-separated ChangeField values
    old_name: Mapped[str | None] = mapped_column(String(50))
    old_id_number: Mapped[str | None] = mapped_column(String(18))
    old_employer_name: Mapped[str | None] = mapped_column(String(200))
    new_name: Mapped[str | None] = mapped_column(String(50))
    new_id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    new_employer_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    new_employer_name: Mapped[str | None] = mapped_column(String(200))
    # 000 §二(二).3: an employer change within 3 months of the last one needs 已核验社保缴纳条件
    recent_employer_change: Mapped[bool] = mapped_column(default=False)
    social_security_checked: Mapped[bool] = mapped_column(default=False)

    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1)

    applicant_org = relationship("Organization", foreign_keys=[applicant_org_id])
    applicant_user = relationship("User", foreign_keys=[applicant_user_id])
    person = relationship("Person")
    reviewing_authority = relationship("Organization", foreign_keys=[reviewing_authority_id])
    new_employer = relationship("Organization", foreign_keys=[new_employer_id])
    items: Mapped[list[ApplicationItem]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="ApplicationItem.id"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.kind.label}申请#{self.id}"

    @property
    def fields(self) -> list[ChangeField]:
        return [ChangeField(f) for f in (self.change_fields or "").split(",") if f]

    @property
    def certificates(self):
        return [item.certificate for item in self.items]


class ApplicationItem(db.Model):
    """One certificate in an application (a 补办 may hold several lost certificates)."""

    __tablename__ = "application_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("certificate_application.id", ondelete="CASCADE"),
                                                index=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), index=True)
    new_certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), index=True)

    application: Mapped[CertificateApplication] = relationship(back_populates="items")
    certificate = relationship("Certificate", foreign_keys=[certificate_id])
    new_certificate = relationship("Certificate", foreign_keys=[new_certificate_id])


Index("ix_certificate_application_authority_status", CertificateApplication.reviewing_authority_id,
      CertificateApplication.status)
