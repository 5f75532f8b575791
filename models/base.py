"""The declarative base and ``db``, column helpers shared by the aggregates, and the clock."""

import enum
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Enum, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class OutOfRange(ValueError):
    """A value bound to an integer column that the column cannot hold, or that is no integer at all
    (a forged id in a URL or a form): the row it names cannot exist."""


INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class CheckedInteger(TypeDecorator):
    """INTEGER that refuses, where a value enters the database, what a 32-bit column cannot hold.

    Issue 16: PostgreSQL answers ``id = 99999999999`` with NumericValueOutOfRange (the statement
    fails: a 500), SQLite compares it and finds nothing, and above 2**63 pysqlite raises
    OverflowError. Checked here, once for every integer column and every statement, both databases
    refuse it the same way: ``OutOfRange``, which the app answers as a record that does not exist
    (admin_views.hardening). Digits given as text are bound as the integer they spell."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise OutOfRange(value[:40]) from None
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise OutOfRange(str(value)[:40])
        return value


class Base(DeclarativeBase):
    # every ``Mapped[int]`` column (ids, foreign keys, counters, versions) is range-checked
    registry = registry(metadata=MetaData(naming_convention=NAMING), type_annotation_map={int: CheckedInteger})


db = SQLAlchemy(model_class=Base)

# Execution option read by app.py's BEGIN on SQLite: "IMMEDIATE" (the default) or "DEFERRED".
SQLITE_BEGIN = "sqlite_begin"


def read_only(bind):
    """``bind`` (an engine or connection) for work that only reads: on SQLite its transactions begin
    DEFERRED and take no write lock; elsewhere nothing changes."""
    return bind.execution_options(**{SQLITE_BEGIN: "DEFERRED"})

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


def local_day_start(day: date) -> datetime:
    """The naive-UTC instant a Beijing-time day begins: a date filter on a stored timestamp."""
    return datetime.combine(day, datetime.min.time(), PROVINCE_TZ).astimezone(UTC).replace(tzinfo=None)


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


def render_item(type_, obj, autogen_context):
    """Alembic autogenerate: a CheckedInteger column is a plain ``sa.Integer()`` in a migration (the
    range check lives in Python, the database column is an INTEGER)."""
    if type_ == "type" and isinstance(obj, CheckedInteger):
        return "sa.Integer()"
    return False
