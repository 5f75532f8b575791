"""Certificates and number segments (SPEC §3, §4)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import StrEnum, db, enum_column_type, utcnow


class CertificateStatus(StrEnum):
    valid = "valid"
    cancelled = "cancelled"
    voided = "voided"

    @property
    def label(self) -> str:
        return {"valid": "有效", "cancelled": "已注销", "voided": "已作废"}[self.value]


class PrintStatus(StrEnum):
    unprinted = "unprinted"
    printed = "printed"

    @property
    def label(self) -> str:
        return {"unprinted": "未打印", "printed": "已打印"}[self.value]


class Certificate(db.Model):
    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(15), unique=True)  # never reused (SPEC §4)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    occupation_id: Mapped[int] = mapped_column(ForeignKey("occupation.id"), index=True)
    level_id: Mapped[int | None] = mapped_column(ForeignKey("level.id"), index=True)
    # indexed below together with id (and status): visibility and the newest-first order in one index
    issuer_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    # Denormalised from the issuer: SPEC §1 visibility for authorities is one indexed equality.
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id"), index=True)
    issue_date: Mapped[date] = mapped_column(index=True)
    valid_until: Mapped[date | None] = mapped_column()
    status: Mapped[CertificateStatus] = mapped_column(
        enum_column_type(CertificateStatus), default=CertificateStatus.valid, index=True
    )
    print_status: Mapped[PrintStatus] = mapped_column(enum_column_type(PrintStatus), default=PrintStatus.unprinted)
    printed_at: Mapped[datetime | None] = mapped_column()
    printed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    endorsement_count: Mapped[int] = mapped_column(default=0)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), index=True)
    # 业务打印 (003 §六.3): the latest approved name change or reissue that issued this paper anew;
    # set by the province's approval (workflows.business), never cleared.
    business_print_application_id: Mapped[int | None] = mapped_column(ForeignKey("certificate_application.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # when the certificate or its holder last changed (models.changes): the API's incremental sync
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    person = relationship("Person", backref="certificates")
    occupation = relationship("Occupation")
    level = relationship("Level")
    issuer = relationship("Organization", foreign_keys=[issuer_id])
    authority = relationship("Organization", foreign_keys=[authority_id])
    batch = relationship("Batch")
    replaces: Mapped[Certificate | None] = relationship(
        remote_side=[id], foreign_keys=[replaces_id], back_populates="replaced_by"
    )
    replaced_by: Mapped[list[Certificate]] = relationship(back_populates="replaces", foreign_keys=[replaces_id])
    business_print_application = relationship("CertificateApplication", foreign_keys=[business_print_application_id])

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return self.number


class NumberSegment(db.Model):
    """证书号段 (SPEC §4): serials 0001–9999 for (year, region, occupation, level, index).

    ``position`` is the last serial handed out (0 = none yet).
    """

    __tablename__ = "number_segment"
    __table_args__ = (
        UniqueConstraint("year", "region_code", "occupation_code", "level_code", "seg_index", name="uq_number_segment_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(index=True)
    region_code: Mapped[str] = mapped_column(String(4))
    occupation_code: Mapped[str] = mapped_column(String(3))
    level_code: Mapped[str] = mapped_column(String(1))
    seg_index: Mapped[int] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column()

    SERIAL_MAX = 9999
    INDEX_MAX = 9

    @property
    def prefix(self) -> str:
        return f"{self.year % 100:02d}{self.region_code}{self.occupation_code}{self.level_code}{self.seg_index}"

    @property
    def range_label(self) -> str:
        return "0001-9999"

    @property
    def label(self) -> str:
        return f"{self.year}年 {self.region_code} 工种{self.occupation_code} 等级{self.level_code} 号段{self.seg_index}"


# An institution's or a city's certificates, newest first, with or without a status (the lists'
# default order and tabs): the index hands over the first 20 rows in order. With (issuer_id) alone
# PostgreSQL walks the primary key backwards hoping to meet the issuer's rows soon — for a small
# institution that is the whole table (issue 7: 77 ms for a first page of 25 certificates).
Index("ix_certificate_issuer_recent", Certificate.issuer_id, Certificate.id)
# the API's sync pages (issue 20): keyset on (updated_at, id), for the province and for an institution
Index("ix_certificate_changed", Certificate.updated_at, Certificate.id)
Index("ix_certificate_issuer_changed", Certificate.issuer_id, Certificate.updated_at, Certificate.id)
Index("ix_certificate_issuer_status", Certificate.issuer_id, Certificate.status, Certificate.id)
Index("ix_certificate_authority_recent", Certificate.authority_id, Certificate.id)
Index("ix_certificate_authority_status", Certificate.authority_id, Certificate.status, Certificate.id)
# A search by person (name, ID number, phone) finds the persons, then their certificates a city or an
# institution may see, and their ids for the page's order — from this index alone, without reading
# the certificates (issue 7: a surname search of 济南 read ~10,000 certificate rows to keep ~1,000).
Index("ix_certificate_person_visibility", Certificate.person_id, Certificate.authority_id, Certificate.issuer_id,
      Certificate.id)
# 业务打印: an institution's few certificates with an approved name change or reissue, newest first,
# without reading the applications (issue 7: the UNION over every approved application cost 25 ms).
Index("ix_certificate_business_print", Certificate.issuer_id, Certificate.id,
      postgresql_where=Certificate.business_print_application_id.is_not(None),
      sqlite_where=Certificate.business_print_application_id.is_not(None))


class PrintFormat(db.Model):
    """证书格式 (SPEC §6, 003 §六.2): how one institution's certificates sit on its pre-printed paper.

    The paper size and font size are the format's; each printed field is a ``PrintFormatField``
    row with its position in millimetres from the paper's top-left corner. No row, no field.
    """

    __tablename__ = "print_format"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), unique=True)
    paper_width_mm: Mapped[int] = mapped_column()
    paper_height_mm: Mapped[int] = mapped_column()
    font_size_pt: Mapped[int] = mapped_column()
    qr_size_mm: Mapped[int] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    version: Mapped[int] = mapped_column(default=1)

    organization = relationship("Organization")
    fields: Mapped[list[PrintFormatField]] = relationship(
        back_populates="format", cascade="all, delete-orphan", order_by="PrintFormatField.id"
    )

    __mapper_args__ = {"version_id_col": version}


class PrintFormatField(db.Model):
    __tablename__ = "print_format_field"
    __table_args__ = (UniqueConstraint("format_id", "field", name="uq_print_format_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    format_id: Mapped[int] = mapped_column(ForeignKey("print_format.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(30))  # a key of workflows.printing.FIELDS
    x_mm: Mapped[int] = mapped_column()
    y_mm: Mapped[int] = mapped_column()

    format: Mapped[PrintFormat] = relationship(back_populates="fields")
