"""Column helpers shared by the aggregates."""

import enum
from datetime import UTC, datetime

from sqlalchemy import Enum


def utcnow() -> datetime:
    """Naive UTC timestamp: the same on SQLite and PostgreSQL ``timestamp without time zone``."""
    return datetime.now(UTC).replace(tzinfo=None)


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


def local_today():
    """Today in the province's time zone: issue dates and number years follow Beijing time."""
    from datetime import datetime as _dt
    from zoneinfo import ZoneInfo

    return _dt.now(ZoneInfo("Asia/Shanghai")).date()
