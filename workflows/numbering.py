"""Certificate numbers from number segments (证书号段, SPEC §4, 003 §八.5).

A number is ``YY RRRR OOO L X SSSS``: year, the 4-digit region of the issuing institution's
authority (the province code for direct institutions), occupation, level (0 without level),
segment index 1–9, serial 0001–9999. Allocation happens inside the caller's transaction and
locks the segment row (SELECT … FOR UPDATE on PostgreSQL; SQLite transactions are begun
IMMEDIATE by the app, see app.py), so concurrent approvals never duplicate a number and a
rolled-back approval leaves no gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Level, NumberSegment, Occupation, Organization
from models.base import utcnow
from models.org import NO_LEVEL_CODE, OrgKind
from workflows import WorkflowError


@dataclass(frozen=True)
class SegmentKey:
    year: int
    region_code: str  # 4 digits
    occupation_code: str
    level_code: str

    def describe(self, session: Session | None = None, index: int | None = None) -> str:
        occupation = level = None
        if session is not None:
            occupation = session.scalar(select(Occupation.name).where(Occupation.code == self.occupation_code))
            level = session.scalar(select(Level.name).where(Level.code == self.level_code))
        text = (
            f"{self.year}年 地区{self.region_code} "
            f"{occupation or ''}({self.occupation_code}) {level or '无等级'}({self.level_code})"
        )
        if index is not None:
            text += f" 第{index}号段"
        return text


def region_for(issuer: Organization) -> str:
    """SPEC §4: the authority's city code, or the province code for a direct institution."""
    if issuer.kind == OrgKind.direct_institution:
        region = issuer.parent.region_code if issuer.parent is not None else issuer.region_code
    elif issuer.kind == OrgKind.institution:
        region = issuer.parent.region_code
    else:
        raise WorkflowError("只有培训机构和省直所可以发放证书")
    return region[:4]


def segment_key(issuer: Organization, occupation: Occupation, level: Level | None, year: int) -> SegmentKey:
    return SegmentKey(year, region_for(issuer), occupation.code, level.code if level is not None else NO_LEVEL_CODE)


def _insert_missing(session: Session, key: SegmentKey, index: int) -> None:
    """Create the segment row if absent, racing safely with other processes."""
    values = dict(
        year=key.year, region_code=key.region_code, occupation_code=key.occupation_code,
        level_code=key.level_code, seg_index=index, position=0, created_at=utcnow(),
    )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(NumberSegment).values(**values).on_conflict_do_nothing(
        index_elements=["year", "region_code", "occupation_code", "level_code", "seg_index"]
    )
    session.execute(stmt)


def _locked_segment(session: Session, key: SegmentKey, index: int) -> NumberSegment:
    stmt = (
        select(NumberSegment)
        .where(
            NumberSegment.year == key.year,
            NumberSegment.region_code == key.region_code,
            NumberSegment.occupation_code == key.occupation_code,
            NumberSegment.level_code == key.level_code,
            NumberSegment.seg_index == index,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    segment = session.scalars(stmt).first()
    if segment is None:
        _insert_missing(session, key, index)
        segment = session.scalars(stmt).one()
    return segment


def allocate_numbers(session: Session, key: SegmentKey, count: int) -> list[str]:
    """Hand out ``count`` consecutive numbers of ``key``, opening the next index when one is full."""
    if count <= 0:
        return []
    # a savepoint: when the segments run out, nothing of this allocation remains, even for a
    # caller that catches the error and commits (no gap, SPEC §4)
    with session.begin_nested():
        return _allocate(session, key, count)


def _allocate(session: Session, key: SegmentKey, count: int) -> list[str]:
    numbers: list[str] = []
    remaining = count
    for index in range(1, NumberSegment.INDEX_MAX + 1):
        segment = _locked_segment(session, key, index)
        free = NumberSegment.SERIAL_MAX - segment.position
        if free <= 0:
            continue
        take = min(free, remaining)
        prefix = segment.prefix
        start = segment.position + 1
        numbers.extend(f"{prefix}{serial:04d}" for serial in range(start, start + take))
        segment.position += take
        segment.updated_at = utcnow()
        remaining -= take
        if remaining == 0:
            break
    if remaining:
        raise WorkflowError(
            f"证书号段已用完：{key.describe(session, NumberSegment.INDEX_MAX)}"
            f"（0001-9999）已全部使用，无法再生成 {remaining} 个证书编号，请联系省厅"
        )
    session.flush()
    return numbers


def rollover(session: Session, year: int) -> int:
    """Create index-1 segments of ``year`` for every key used the year before (003 §八.5:
    每年第一天自动更新当年的证书号段). Returns how many were created. Idempotent."""
    previous = session.execute(
        select(NumberSegment.region_code, NumberSegment.occupation_code, NumberSegment.level_code)
        .where(NumberSegment.year == year - 1, NumberSegment.position > 0)
        .distinct()
    ).all()
    created = 0
    for region, occupation, level in previous:
        key = SegmentKey(year, region, occupation, level)
        exists_already = session.scalar(
            select(NumberSegment.id).where(
                NumberSegment.year == year, NumberSegment.region_code == region,
                NumberSegment.occupation_code == occupation, NumberSegment.level_code == level,
                NumberSegment.seg_index == 1,
            )
        )
        if exists_already is None:
            _insert_missing(session, key, 1)
            created += 1
    session.flush()
    return created
