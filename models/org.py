"""Organizations (the tree of SPEC §1), occupations, levels and scopes (SPEC §2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class OrgKind(StrEnum):
    ministry = "ministry"
    province = "province"
    authority = "authority"
    institution = "institution"
    direct_institution = "direct_institution"
    enterprise = "enterprise"
    school = "school"

    @property
    def label(self) -> str:
        return ORG_KIND_LABELS[self]


ORG_KIND_LABELS = {
    OrgKind.ministry: "部级注册中心",
    OrgKind.province: "省厅",
    OrgKind.authority: "主管部门",
    OrgKind.institution: "培训机构",
    OrgKind.direct_institution: "省直所",
    OrgKind.enterprise: "企业",
    OrgKind.school: "学校(虚拟企业)",
}

# Kinds that issue certificates (create batches, print, apply for certificate business).
ISSUING_KINDS = frozenset({OrgKind.institution, OrgKind.direct_institution})


class OrgStatus(StrEnum):
    pending = "pending"
    active = "active"
    rejected = "rejected"
    offline = "offline"

    @property
    def label(self) -> str:
        return {"pending": "待审核", "active": "启用", "rejected": "审核不通过", "offline": "下线"}[self.value]


class Organization(db.Model):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[OrgKind] = mapped_column(enum_column_type(OrgKind), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    # Materialised path of ids, "/1/3/17/": descendants are a prefix match, never a tree walk.
    path: Mapped[str] = mapped_column(String(255), default="/", index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    status: Mapped[OrgStatus] = mapped_column(enum_column_type(OrgStatus), default=OrgStatus.active, index=True)
    contact: Mapped[str | None] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str | None] = mapped_column(String(255))
    postcode: Mapped[str | None] = mapped_column(String(6))
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    qualification_no: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    parent: Mapped[Organization | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organization]] = relationship(back_populates="parent")
    scope_items: Mapped[list[ScopeItem]] = relationship(
        back_populates="organization", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return self.name

    @property
    def is_issuer(self) -> bool:
        return self.kind in ISSUING_KINDS

    @property
    def authority(self) -> Organization | None:
        """The city authority above an institution (None for direct institutions)."""
        if self.kind == OrgKind.authority:
            return self
        if self.kind == OrgKind.institution:
            return self.parent
        return None

    def refresh_path(self) -> None:
        self.path = (self.parent.path if self.parent else "/") + f"{self.id}/"

    def is_ancestor_of(self, other: Organization) -> bool:
        return other.path.startswith(self.path) and other.id != self.id


class Occupation(db.Model):
    """职业(工种). Site professional posts (施工员 …) have no levels."""

    __tablename__ = "occupation"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    has_levels: Mapped[bool] = mapped_column(default=True)

    def __str__(self) -> str:
        return self.name


class Level(db.Model):
    """等级: 初级工(五级) … 高级技师(一级); code 1–5. Occupations without levels use code 0."""

    __tablename__ = "level"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(1), unique=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)

    def __str__(self) -> str:
        return self.name


NO_LEVEL_CODE = "0"


class ScopeItem(db.Model):
    """One (occupation, level) pair in an organization's 职业(工种)范围 (SPEC §2).

    ``level_id`` is NULL for an occupation without levels.
    """

    __tablename__ = "scope_item"
    __table_args__ = (UniqueConstraint("organization_id", "occupation_id", "level_id", name="uq_scope_item_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupation.id"), index=True)
    level_id: Mapped[int | None] = mapped_column(ForeignKey("level.id"), index=True)

    organization: Mapped[Organization] = relationship(back_populates="scope_items")
    occupation: Mapped[Occupation] = relationship()
    level: Mapped[Level | None] = relationship()

    @property
    def pair(self) -> tuple[int, int | None]:
        return (self.occupation_id, self.level_id)


Index("ix_organization_kind_region", Organization.kind, Organization.region_code)
