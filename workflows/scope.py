"""职业(工种)范围 (SPEC §2): which (occupation, level) pairs an organization may use."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Level, Occupation, Organization, ScopeItem


def scope_pairs(session: Session, org: Organization) -> set[tuple[int, int | None]]:
    """(occupation_id, level_id) pairs in ``org``'s scope; level_id None for posts without levels."""
    rows = session.execute(
        select(ScopeItem.occupation_id, ScopeItem.level_id).where(ScopeItem.organization_id == org.id)
    )
    return {(o, lv) for o, lv in rows}


def scope_name_pairs(session: Session, org: Organization) -> list[tuple[str, str | None]]:
    """The same pairs by name, in code order: what the template's dropdowns offer."""
    rows = session.execute(
        select(Occupation.name, Level.name)
        .select_from(ScopeItem)
        .join(Occupation, Occupation.id == ScopeItem.occupation_id)
        .outerjoin(Level, Level.id == ScopeItem.level_id)
        .where(ScopeItem.organization_id == org.id)
        .order_by(Occupation.code, Level.code)
    )
    return [(o, lv) for o, lv in rows]


def lookup_tables(session: Session):
    """Name → (id, code, has_levels) for occupations and name → (id, code) for levels."""
    occupations = {o.name: o for o in session.scalars(select(Occupation))}
    levels = {lv.name: lv for lv in session.scalars(select(Level))}
    return occupations, levels
