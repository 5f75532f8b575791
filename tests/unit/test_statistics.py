"""首页 chart and 统计分析 counts (SPEC §8, 003 §三, §八.4): months, cities, institutions, visibility."""

from __future__ import annotations

import itertools
from datetime import date

from sqlalchemy import func, select

from models import Certificate, Occupation, Organization, Person
from models.certificate import CertificateStatus
from models.org import OrgKind
from tests.factories import next_identity, org, user
from workflows.statistics import (
    ISSUED_CHART_TITLE,
    VALID_CARD_LABEL,
    issued_per_city,
    issued_per_institution,
    issued_per_month,
    month_buckets,
)

# Far from the demo's certificates (issued "today"), so each test controls every count it reads.
TODAY = date(2031, 1, 15)
_numbers = itertools.count(1)


def cert(session, issuer_code: str, day: date, occupation: str = "砌筑工",
         status: CertificateStatus = CertificateStatus.valid) -> Certificate:
    issuer = org(session, issuer_code)
    number, birth, gender = next_identity()
    person = Person(name="统计测试", id_number=number, birth_date=birth, gender=gender)
    session.add(person)
    session.flush()
    occ = session.scalar(select(Occupation).where(Occupation.name == occupation))
    authority = issuer.authority
    row = Certificate(number=f"T{next(_numbers):014d}", person_id=person.id, occupation_id=occ.id,
                      issuer_id=issuer.id, authority_id=authority.id if authority else None, issue_date=day,
                      status=status)
    session.add(row)
    session.flush()
    return row


def test_month_buckets_cross_the_year_boundary():
    assert month_buckets(6, TODAY) == [(2030, 8), (2030, 9), (2030, 10), (2030, 11), (2030, 12), (2031, 1)]
    assert month_buckets(1, date(2030, 12, 31)) == [(2030, 12)]


def test_issued_per_month_has_every_month_zero_ones_included(rolled_session):
    s = rolled_session
    for day in (date(2030, 8, 1), date(2030, 12, 31), date(2030, 12, 1), date(2031, 1, 15)):
        cert(s, "JG370101", day)
    cert(s, "JG370101", date(2031, 1, 3), status=CertificateStatus.cancelled)  # issued all the same
    cert(s, "JG370101", date(2030, 7, 31))  # before the window
    cert(s, "JG370101", date(2031, 2, 1))  # after it
    got = issued_per_month(s, user(s, "province"), months=6, today=TODAY)
    assert got == [("2030-08", 1), ("2030-09", 0), ("2030-10", 0), ("2030-11", 0), ("2030-12", 2), ("2031-01", 2)]


def test_the_home_chart_and_card_labels_say_what_they_count(rolled_session):
    """首页 (003 §三): the chart counts every certificate issued — the cancelled and the voided too —
    and says so; the 有效证书总数 card counts only the valid ones. One valid, one 已注销 and one
    已作废 certificate this month: the chart reads 3, the valid count 1, and neither label lies."""
    s = rolled_session
    for status in CertificateStatus:
        cert(s, "JG370101", date(2031, 1, 5), status=status)
    month = dict(issued_per_month(s, user(s, "province"), months=6, today=TODAY))["2031-01"]
    valid = s.scalar(select(func.count()).select_from(Certificate).where(
        Certificate.issue_date == date(2031, 1, 5), Certificate.status == CertificateStatus.valid))
    assert (month, valid) == (3, 1)
    assert ISSUED_CHART_TITLE == "近6个月发证数量（含已注销、已作废）"
    assert all(s.label in ISSUED_CHART_TITLE for s in CertificateStatus if s != CertificateStatus.valid)
    assert VALID_CARD_LABEL == "有效证书总数"


def test_issued_per_month_follows_visibility(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 2))  # inst_jinan, 济南
    cert(s, "JG370102", date(2031, 1, 2))  # another 济南 institution
    cert(s, "JG370201", date(2031, 1, 2))  # 青岛
    cert(s, "SZ370001", date(2031, 1, 2))  # 省直所

    def january(username):
        return issued_per_month(s, user(s, username), months=6, today=TODAY)[-1]

    assert january("province") == ("2031-01", 4)
    assert january("jinan") == ("2031-01", 2)
    assert january("inst_jinan") == ("2031-01", 1)
    assert january("qingdao") == ("2031-01", 1)
    assert january("direct_inst") == ("2031-01", 1)
    assert january("enterprise") == ("2031-01", 0)


def _by_name(rows):
    return {r.name: r.count for r in rows}


def test_issued_per_city_lists_every_city_and_the_direct_row(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 2))
    cert(s, "JG370102", date(2031, 1, 5), status=CertificateStatus.voided)
    cert(s, "JG370201", date(2031, 1, 3))
    cert(s, "SZ370001", date(2031, 1, 4))
    cert(s, "SZ370001", date(2031, 1, 4))
    rows = issued_per_city(s, user(s, "province"), date(2031, 1, 1), date(2031, 1, 31))
    counts = _by_name(rows)
    assert counts["济南市住房和城乡建设局"] == 2
    assert counts["青岛市住房和城乡建设局"] == 1
    assert counts["淄博市住房和城乡建设局"] == 0  # every city, zero ones included
    assert rows[-1].name == "省直所" and rows[-1].key == "direct" and rows[-1].count == 2
    authorities = s.scalar(select(func.count()).select_from(Organization).where(Organization.kind == OrgKind.authority))
    assert authorities == 15 and len(rows) == authorities + 1  # every city with an authority (菏泽 has none yet), 省直所
    assert rows[0].label == "济南市"


def test_issued_per_city_totals_match_every_visible_certificate(rolled_session):
    s = rolled_session
    total = s.scalar(select(func.count()).select_from(Certificate))
    assert total > 0
    assert sum(r.count for r in issued_per_city(s, user(s, "province"))) == total


def test_issued_per_city_filters_dates_and_occupation(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 1))
    cert(s, "JG370101", date(2031, 1, 31), occupation="钢筋工")
    cert(s, "JG370101", date(2030, 12, 31))
    cert(s, "JG370101", date(2031, 2, 1))
    prov = user(s, "province")
    jinan = "济南市住房和城乡建设局"
    assert _by_name(issued_per_city(s, prov, date(2031, 1, 1), date(2031, 1, 31)))[jinan] == 2
    assert _by_name(issued_per_city(s, prov, date(2031, 1, 1), None))[jinan] == 3
    assert _by_name(issued_per_city(s, prov, None, date(2030, 12, 31)))[jinan] >= 1
    steel = s.scalar(select(Occupation.id).where(Occupation.name == "钢筋工"))
    assert _by_name(issued_per_city(s, prov, date(2031, 1, 1), date(2031, 12, 31), steel))[jinan] == 1


def test_an_authority_sees_only_its_city(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 2))
    cert(s, "JG370201", date(2031, 1, 2))
    cert(s, "SZ370001", date(2031, 1, 2))
    rows = issued_per_city(s, user(s, "jinan"), date(2031, 1, 1), date(2031, 1, 31))
    assert [(r.name, r.count) for r in rows] == [("济南市住房和城乡建设局", 1)]
    # a forged city: qingdao's id asked for by jinan shows nothing
    qingdao = org(s, "SD370200")
    assert issued_per_institution(s, user(s, "jinan"), qingdao.id) == []
    assert issued_per_institution(s, user(s, "jinan"), None) == []


def test_issued_per_institution_lists_the_city_institutions(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 2))
    cert(s, "JG370101", date(2031, 1, 3))
    cert(s, "JG370201", date(2031, 1, 3))
    jinan = org(s, "SD370100")
    window = (date(2031, 1, 1), date(2031, 1, 31))
    rows = issued_per_institution(s, user(s, "province"), jinan.id, *window)
    assert _by_name(rows) == {"济南市建设职业技能培训中心": 2, "济南建筑技工学校培训部": 0}
    assert _by_name(issued_per_institution(s, user(s, "jinan"), jinan.id, *window)) == _by_name(rows)
    # an institution counts only its own certificates
    assert _by_name(issued_per_institution(s, user(s, "inst_jinan"), jinan.id, *window)) == {
        "济南市建设职业技能培训中心": 2}
    direct = issued_per_institution(s, user(s, "province"), None, *window)
    assert _by_name(direct) == {"山东省建设职业技能鉴定指导中心": 0}


def test_an_institution_sees_only_its_own_city_count(rolled_session):
    s = rolled_session
    cert(s, "JG370101", date(2031, 1, 2))
    cert(s, "JG370102", date(2031, 1, 2))
    rows = issued_per_city(s, user(s, "inst_jinan"), date(2031, 1, 1), date(2031, 1, 31))
    assert [(r.name, r.count) for r in rows] == [("济南市住房和城乡建设局", 1)]
