"""Certificate numbers and number segments (SPEC §4): ``YY RRRR OOO L X SSSS``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Certificate, Level, NumberSegment, Occupation, db
from models.base import local_today
from tests.factories import org
from workflows import WorkflowError
from workflows.numbering import SegmentKey, allocate_numbers, rollover, segment_key

FUTURE = 2031  # a year no demo number uses, so every segment starts empty
BRICK_JUNIOR = SegmentKey(FUTURE, "3701", "001", "5")


@pytest.fixture
def session(rolled_session):
    """This module's tests share one demo copy and are rolled back; tests that commit use conftest's app."""
    return rolled_session


@pytest.fixture
def fresh(app):
    """conftest's own copy of the demo for this test alone: free to commit."""
    return db.session


def _segments(session, key: SegmentKey) -> dict[int, int]:
    """seg_index → position for ``key``."""
    return dict(session.execute(
        select(NumberSegment.seg_index, NumberSegment.position).where(
            NumberSegment.year == key.year, NumberSegment.region_code == key.region_code,
            NumberSegment.occupation_code == key.occupation_code, NumberSegment.level_code == key.level_code,
        )
    ).all())


def _fill(session, key: SegmentKey, positions: dict[int, int]) -> None:
    for index, position in positions.items():
        session.add(NumberSegment(year=key.year, region_code=key.region_code, occupation_code=key.occupation_code,
                                  level_code=key.level_code, seg_index=index, position=position))
    session.flush()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SegmentKey(2031, "3701", "001", "5"), "313701001510001"),  # 济南 砌筑工 初级工
        (SegmentKey(2030, "3700", "101", "0"), "303700101010001"),  # 省直所 施工员 (no level)
        (SegmentKey(2100, "3702", "012", "1"), "003702012110001"),  # YY is the year mod 100
    ],
)
def test_number_format(session, key, expected):
    [number] = allocate_numbers(session, key, 1)
    assert number == expected
    assert len(number) == 15 and number.isdigit()


@pytest.mark.parametrize(
    ("issuer_code", "occupation", "level", "expected"),
    [
        ("JG370101", "砌筑工", "初级工(五级)", SegmentKey(FUTURE, "3701", "001", "5")),
        ("JG370201", "焊工", "中级工(四级)", SegmentKey(FUTURE, "3702", "005", "4")),
        ("SZ370001", "木工", "初级工(五级)", SegmentKey(FUTURE, "3700", "009", "5")),  # province code + 00
        ("JG370101", "施工员", None, SegmentKey(FUTURE, "3701", "101", "0")),
    ],
)
def test_segment_key_follows_the_issuer(session, issuer_code, occupation, level, expected):
    occ = session.scalar(select(Occupation).where(Occupation.name == occupation))
    lvl = session.scalar(select(Level).where(Level.name == level)) if level else None
    assert segment_key(org(session, issuer_code), occ, lvl, FUTURE) == expected


@pytest.mark.parametrize("code", ["SD370100", "QY370101", "SD370000"])
def test_only_issuers_get_a_segment_key(session, code):
    occ = session.scalar(select(Occupation).where(Occupation.name == "施工员"))
    with pytest.raises(WorkflowError, match="只有培训机构和省直所可以发放证书"):
        segment_key(org(session, code), occ, None, FUTURE)


def test_allocation_is_sequential_across_calls(session):
    first = allocate_numbers(session, BRICK_JUNIOR, 3)
    second = allocate_numbers(session, BRICK_JUNIOR, 2)
    assert [int(n[-4:]) for n in first + second] == [1, 2, 3, 4, 5]
    assert {n[:11] for n in first + second} == {"31370100151"}
    assert _segments(session, BRICK_JUNIOR) == {1: 5}


def test_zero_numbers_touch_nothing(session):
    assert allocate_numbers(session, BRICK_JUNIOR, 0) == []
    assert _segments(session, BRICK_JUNIOR) == {}


def test_full_segment_opens_the_next_index(session):
    _fill(session, BRICK_JUNIOR, {1: 9998})
    assert allocate_numbers(session, BRICK_JUNIOR, 1) == ["313701001519999"]
    assert _segments(session, BRICK_JUNIOR) == {1: 9999}  # index 2 only when needed
    assert allocate_numbers(session, BRICK_JUNIOR, 2) == ["313701001520001", "313701001520002"]
    assert _segments(session, BRICK_JUNIOR) == {1: 9999, 2: 2}


def test_one_allocation_spans_two_indexes(session):
    _fill(session, BRICK_JUNIOR, {1: 9997})
    numbers = allocate_numbers(session, BRICK_JUNIOR, 4)
    assert numbers == ["313701001519998", "313701001519999", "313701001520001", "313701001520002"]


def test_index_nine_full_fails_naming_the_segment(session):
    _fill(session, BRICK_JUNIOR, {i: 9999 for i in range(1, 10)})
    with pytest.raises(WorkflowError) as exc:
        allocate_numbers(session, BRICK_JUNIOR, 1)
    message = exc.value.message
    assert "第9号段" in message
    assert "2031年" in message and "3701" in message
    assert "砌筑工" in message and "初级工(五级)" in message
    assert "0001-9999" in message
    assert _segments(session, BRICK_JUNIOR) == {i: 9999 for i in range(1, 10)}


def test_the_last_serial_of_index_nine_is_still_handed_out(session):
    _fill(session, BRICK_JUNIOR, {**{i: 9999 for i in range(1, 9)}, 9: 9998})
    assert allocate_numbers(session, BRICK_JUNIOR, 1) == ["313701001599999"]


def test_running_out_mid_request_takes_nothing_even_if_the_caller_goes_on(session):
    """Nine segments with 1 number left and a request for 3: refused, and the last number is
    still free afterwards — a caller that catches the error and commits leaves no gap."""
    _fill(session, BRICK_JUNIOR, {**{i: 9999 for i in range(1, 9)}, 9: 9998})
    with pytest.raises(WorkflowError):
        allocate_numbers(session, BRICK_JUNIOR, 3)
    assert _segments(session, BRICK_JUNIOR)[9] == 9998
    assert allocate_numbers(session, BRICK_JUNIOR, 1) == ["313701001599999"]


def test_new_year_starts_at_0001(session):
    year = local_today().year
    this_year = SegmentKey(year, "3701", "001", "5")
    assert _segments(session, this_year)[1] > 0  # the demo issued such numbers this year
    [number] = allocate_numbers(session, SegmentKey(year + 1, "3701", "001", "5"), 1)
    assert number == f"{(year + 1) % 100:02d}370100151" + "0001"


def _keys_issued_in(session, year) -> set[tuple[str, str, str]]:
    """(region, occupation, level) of certificates numbered in ``year``, read off the numbers."""
    yy = f"{year % 100:02d}"
    numbers = session.scalars(select(Certificate.number).where(Certificate.number.startswith(yy)))
    return {(n[2:6], n[6:9], n[9]) for n in numbers}


def test_rollover_creates_next_years_first_segments_and_is_idempotent(session):
    year = local_today().year
    used = _keys_issued_in(session, year)
    assert len(used) >= 5
    _fill(session, SegmentKey(year, "3705", "011", "2"), {1: 0})  # opened but never used: not rolled over

    created = rollover(session, year + 1)

    assert created == len(used)
    rows = session.execute(
        select(NumberSegment.region_code, NumberSegment.occupation_code, NumberSegment.level_code,
               NumberSegment.seg_index, NumberSegment.position).where(NumberSegment.year == year + 1)
    ).all()
    assert {(r, o, lv) for r, o, lv, _, _ in rows} == used
    assert {(index, position) for *_, index, position in rows} == {(1, 0)}

    assert rollover(session, year + 1) == 0
    assert session.scalar(select(func.count()).select_from(NumberSegment).where(NumberSegment.year == year + 1)) \
        == len(used)
    region, occupation, level = sorted(used)[0]
    [first] = allocate_numbers(session, SegmentKey(year + 1, region, occupation, level), 1)
    assert first.endswith("10001")


def test_rollover_cli_reports_what_it_created(app, fresh):
    session = fresh
    year = local_today().year
    expected = len(_keys_issued_in(session, year))
    result = app.test_cli_runner().invoke(args=["segments", "rollover", "--year", str(year + 1)])
    assert result.exit_code == 0, result.output
    assert f"{year + 1} 年新建号段 {expected} 个" in result.output
    again = app.test_cli_runner().invoke(args=["segments", "rollover", "--year", str(year + 1)])
    assert f"{year + 1} 年新建号段 0 个" in again.output


def test_rolled_back_allocation_leaves_no_gap(fresh):
    session = fresh
    key = SegmentKey(local_today().year, "3701", "001", "5")  # a demo segment, committed
    position = _segments(session, key)[1]
    [first] = allocate_numbers(session, key, 1)
    assert int(first[-4:]) == position + 1

    session.rollback()
    [again] = allocate_numbers(session, key, 1)
    assert again == first

    session.commit()
    [after_commit] = allocate_numbers(session, key, 1)
    assert int(after_commit[-4:]) == position + 2  # committed numbers are never handed out twice


def test_allocation_undone_with_its_savepoint_is_handed_out_again(session):
    key = SegmentKey(local_today().year, "3701", "001", "5")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), session.begin_nested():
        [inside] = allocate_numbers(session, key, 2)[:1]
        raise Abort
    session.expire_all()
    assert allocate_numbers(session, key, 1) == [inside]


def test_demo_numbers_follow_the_format(session):
    """Every number the demo issued through the workflow has the shape of §4 and is unique."""
    year = f"{local_today().year % 100:02d}"
    numbers = list(session.scalars(select(Certificate.number)))
    assert numbers and len(set(numbers)) == len(numbers)
    for number in numbers:
        assert len(number) == 15 and number.isdigit() and number.startswith(year)
        assert number[2:6] in {"3701", "3702", "3700"}
        assert number[10] == "1" and int(number[11:]) >= 1
