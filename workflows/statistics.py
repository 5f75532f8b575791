"""首页 chart and 统计分析 (SPEC §8, 003 §三, §八.4): certificates issued, counted through visibility.

Every count here is "certificates issued": a certificate counts in the month / city /
institution of its ``issue_date`` whatever its status now (有效, 已注销 and 已作废 alike) —
it was issued. Every query goes through ``workflows.visibility``: the province counts
everything, an authority its institutions' certificates, an institution its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Certificate, Organization
from models.base import local_today
from models.org import OrgKind
from workflows.visibility import visible

DIRECT_LABEL = "省直所"
# What 首页 says it counts (003 §三): the chart counts certificates issued — 有效, 已注销 and 已作废
# alike, by issue date — and the card only those 有效 now; so the two never read as one figure.
ISSUED_CHART_TITLE = "近6个月发证数量（含已注销、已作废）"
VALID_CARD_LABEL = "有效证书总数"
ISSUING_INSTITUTIONS = (OrgKind.institution, OrgKind.direct_institution)


@dataclass(frozen=True)
class StatRow:
    """One row of the 统计分析 table and one bar of its chart.

    ``key`` is the authority id of a city row ("direct" for the 省直所 row), the issuer id of
    an institution row.
    """

    key: int | str
    name: str
    count: int
    short_name: str = ""

    @property
    def label(self) -> str:
        return self.short_name or self.name


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def month_buckets(months: int, today: date) -> list[tuple[int, int]]:
    """The last ``months`` calendar months, oldest first, ending with ``today``'s month."""
    return [_shift_month(today.year, today.month, -i) for i in range(months - 1, -1, -1)]


def issued_per_month(session: Session, user, months: int = 6, today: date | None = None) -> list[tuple[str, int]]:
    """Certificates issued per calendar month, [("YYYY-MM", count)] oldest first.

    The last ``months`` months including the current one (Beijing time unless ``today`` is
    given); months without certificates are there with 0. Counted by ``issue_date``, every
    status (a certificate cancelled or voided later was still issued that month), only
    certificates ``user`` may see.
    """
    today = today or local_today()
    buckets = month_buckets(months, today)
    first = date(buckets[0][0], buckets[0][1], 1)
    end_year, end_month = _shift_month(today.year, today.month, 1)
    end = date(end_year, end_month, 1)
    stmt = (select(Certificate.issue_date, func.count())
            .where(Certificate.issue_date >= first, Certificate.issue_date < end)
            .group_by(Certificate.issue_date))
    counts = dict.fromkeys(buckets, 0)
    for day, count in session.execute(visible(user, stmt, Certificate)):
        counts[(day.year, day.month)] += count
    return [(f"{y:04d}-{m:02d}", counts[(y, m)]) for y, m in buckets]


def _filtered(stmt, date_from: date | None, date_to: date | None, occupation_id: int | None):
    if date_from is not None:
        stmt = stmt.where(Certificate.issue_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(Certificate.issue_date <= date_to)
    if occupation_id is not None:
        stmt = stmt.where(Certificate.occupation_id == occupation_id)
    return stmt


def city_short_name(authority: Organization) -> str:
    """济南市住房和城乡建设局 → 济南市: the bar label of a city."""
    name = authority.name
    cut = name.find("市")
    return name[:cut + 1] if cut > 0 else name


def issued_per_city(session: Session, user, date_from: date | None = None, date_to: date | None = None,
                    occupation_id: int | None = None) -> list[StatRow]:
    """One row per city authority the user may see (zero counts included), by region code,
    then 「省直所」 for certificates without an authority when the user may see any
    (the province: always). Counts are certificates issued (every status) in the filters."""
    stmt = _filtered(select(Certificate.authority_id, func.count()).group_by(Certificate.authority_id),
                     date_from, date_to, occupation_id)
    counts = dict(session.execute(visible(user, stmt, Certificate)).all())
    cities = list(session.scalars(visible(user, select(Organization).where(
        Organization.kind == OrgKind.authority).order_by(Organization.region_code, Organization.id), Organization)))
    known = {c.id for c in cities}
    missing = [i for i in counts if i is not None and i not in known]
    if missing:  # a certificate the user sees whose city is outside its organization list
        cities += list(session.scalars(select(Organization).where(Organization.id.in_(missing))
                                       .order_by(Organization.region_code, Organization.id)))
    rows = [StatRow(c.id, c.name, counts.get(c.id, 0), city_short_name(c)) for c in cities]
    sees_direct = session.scalar(visible(user, select(func.count()).select_from(Organization).where(
        Organization.kind == OrgKind.direct_institution), Organization))
    if None in counts or sees_direct:
        rows.append(StatRow("direct", DIRECT_LABEL, counts.get(None, 0), DIRECT_LABEL))
    return rows


def issued_per_institution(session: Session, user, authority_id: int | None, date_from: date | None = None,
                           date_to: date | None = None, occupation_id: int | None = None) -> list[StatRow]:
    """The institutions of one city (``authority_id``; None = the 省直所) with their counts.

    Institutions the user may see under that authority are listed even with 0; counts are
    certificates the user may see. A city outside the user's visibility yields no rows.
    """
    if authority_id is None:
        city_clause = Certificate.authority_id.is_(None)
        org_clause = (Organization.kind == OrgKind.direct_institution)
    else:
        city_clause = Certificate.authority_id == authority_id
        org_clause = (Organization.parent_id == authority_id) & Organization.kind.in_(ISSUING_INSTITUTIONS)
    stmt = _filtered(select(Certificate.issuer_id, func.count()).where(city_clause).group_by(Certificate.issuer_id),
                     date_from, date_to, occupation_id)
    counts = dict(session.execute(visible(user, stmt, Certificate)).all())
    orgs = list(session.scalars(visible(user, select(Organization).where(org_clause)
                                        .order_by(Organization.code, Organization.id), Organization)))
    known = {o.id for o in orgs}
    missing = [i for i in counts if i not in known]
    if missing:  # an issuer since moved elsewhere: its certificates still count for this city
        orgs += list(session.scalars(select(Organization).where(Organization.id.in_(missing))
                                     .order_by(Organization.code, Organization.id)))
    return [StatRow(o.id, o.name, counts.get(o.id, 0)) for o in orgs]
