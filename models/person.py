"""Persons (学员/持证人), SPEC §3."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import db, utcnow


class Person(db.Model):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    # 18-digit resident ID (GB 11643), stored upper-case; birth date and gender derive from it.
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    birth_date: Mapped[date | None] = mapped_column()
    gender: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(11), index=True)
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    employer_name: Mapped[str | None] = mapped_column(String(200))  # free text when not registered
    last_employer_change_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    employer = relationship("Organization", foreign_keys=[employer_id])

    def __str__(self) -> str:
        return f"{self.name} {self.id_number}"

    @property
    def employer_display(self) -> str:
        """SPEC §3: the employer shown is the current one, so a renamed enterprise shows at once."""
        if self.employer is not None:
            return self.employer.name
        return self.employer_name or ""


# Name searches are prefix matches (workflows.search.starts_with): LIKE 'name%' on PostgreSQL uses
# a b-tree only with text_pattern_ops whatever the database's collation (SQLite uses ix_person_name,
# whose entries hold the rowid, i.e. the id). With the id in the index a search reads the matching
# persons' ids from the index alone (a surname matches ~8,000 persons at a million certificates).
Index("ix_person_name_prefix", Person.name, Person.id,
      postgresql_ops={"name": "text_pattern_ops"}).ddl_if(dialect="postgresql")
