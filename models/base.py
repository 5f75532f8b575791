"""The declarative base and ``db``, column helpers shared by the aggregates, and the clock."""

import enum
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Enum, MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

PROVINCE_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    """Naive UTC timestamp: the same on SQLite and PostgreSQL ``timestamp without time zone``."""
    return datetime.now(UTC).replace(tzinfo=None)


def local_today() -> date:
    """Today in the province's time zone: issue dates and number years follow Beijing time."""
    return datetime.now(PROVINCE_TZ).date()


def to_local(value: datetime | None) -> datetime | None:
    """A stored naive-UTC timestamp in Beijing time, for display."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(PROVINCE_TZ).replace(tzinfo=None)


def format_local(value: datetime | None) -> str:
    local = to_local(value)
    return local.strftime("%Y-%m-%d %H:%M:%S") if local else ""


class StrEnum(enum.StrEnum):
    """Enumerations stored as their string value (ARCHITECTURE: enums stored as strings)."""


def enum_column_type(enum_cls) -> Enum:
    """A VARCHAR holding the enum's value; no database ENUM type to migrate when states grow."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def include_for(dialect_name: str):
    """Alembic's ``include_object`` for one database: an index declared ``.ddl_if(dialect=…)`` for
    another database (a PostgreSQL text_pattern_ops index) is not expected on this one."""

    def include_object(obj, name, type_, reflected, compare_to):
        ddl_if = getattr(obj, "_ddl_if", None)
        return ddl_if is None or ddl_if.dialect in (None, dialect_name)

    return include_object
