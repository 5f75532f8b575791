"""What a search box term is (workflows.search): each kind maps to one indexed lookup."""

from __future__ import annotations

from datetime import date

import pytest

from workflows.search import MAX_TERM, TermKind, classify, prefix_pattern, starts_with
from workflows.validators import make_id_number

K = TermKind


@pytest.mark.parametrize(
    ("raw", "kind", "term"),
    [
        # resident ID numbers (SPEC §3): upper-case X, full-width digits from IMEs
        ("11010519491231002X", K.id_number, "11010519491231002X"),
        ("11010519491231002x", K.id_number, "11010519491231002X"),
        (" 11010519491231002x\t", K.id_number, "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", K.id_number, "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２ｘ", K.id_number, "11010519491231002X"),
        ("\u3000370102198001011234\u3000", K.id_number, "370102198001011234"),
        # certificate numbers (SPEC §4): 15 digits
        ("263701001510001", K.certificate_number, "263701001510001"),
        ("２６３７０１００１５１０００１", K.certificate_number, "263701001510001"),
        (" 263700009510002 ", K.certificate_number, "263700009510002"),
        # mobile phones
        ("13812345678", K.phone, "13812345678"),
        ("19912345678", K.phone, "19912345678"),
        ("１３８１２３４５６７８", K.phone, "13812345678"),
        # codes: organization, batch and credit codes
        ("JG370101", K.code, "JG370101"),
        ("jg370101", K.code, "JG370101"),
        ("91370100MA3C000015", K.code, "91370100MA3C000015"),
        ("12812345678", K.code, "12812345678"),  # not a mobile number
        # names and other text
        ("张建国", K.text, "张建国"),
        ("  张建国  ", K.text, "张建国"),
        ("%张建国%", K.text, "张建国"),  # the user's own wildcards are dropped
        ("济南市建设职业技能培训中心", K.text, "济南市建设职业技能培训中心"),
        ("ABCD", K.text, "ABCD"),  # a code needs a digit
        ("张" * MAX_TERM, K.text, "张" * MAX_TERM),
    ],
)
def test_classify(raw, kind, term):
    assert classify(raw) == (kind, term)


@pytest.mark.parametrize(
    "raw",
    [
        None, "", " ", "          ", "\u3000\u3000", "\t\n",
        "%", "%%%", "%_%", " % ", "_",
        "张" * (MAX_TERM + 1),
        "1" * 10_000,
        "a" * 10_000,
        "张" * 10_000,
        "%" * 10_000,
    ],
    ids=lambda raw: repr(raw)[:20],
)
def test_empty_or_absurd_input_searches_for_nothing(raw):
    assert classify(raw) == (K.empty, "")


def test_every_generated_id_number_is_recognised():
    from datetime import date

    for seq in range(0, 500, 37):
        for gender in ("男", "女"):
            number = make_id_number("370102", date(1988, 6, 30), seq, gender)
            assert classify(number.lower()) == (K.id_number, number)


@pytest.mark.parametrize(
    ("term", "pattern"),
    [
        ("张建国", "张建国%"),
        ("50%", "50\\%%"),
        ("a_b", "a\\_b%"),
        ("c:\\x", "c:\\\\x%"),
    ],
)
def test_prefix_pattern_escapes_the_users_wildcards(term, pattern):
    assert prefix_pattern(term) == pattern


# -- starts_with: the one prefix search, answered from an index on both databases -----------------------
def _sql(stmt, dialect) -> str:
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_starts_with_is_glob_on_sqlite_and_like_elsewhere_with_wildcards_escaped():
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    from models import Person

    stmt = select(Person.id).where(starts_with(Person.name, "张*?[%_"))
    assert "person.name GLOB '张[*][?][[]%_*'" in _sql(stmt, sqlite.dialect())
    assert "= 1" not in _sql(stmt, sqlite.dialect())  # a condition, not a value compared with 1
    pg = _sql(stmt, postgresql.dialect())
    assert "person.name LIKE" in pg and "ESCAPE" in pg


def test_starts_with_finds_prefixes_only_and_sqlite_uses_the_name_index(rolled_session):
    from sqlalchemy import select, text

    from models import Person

    s = rolled_session
    s.add_all([Person(name="张*三", id_number=make_id_number("370102", date(1990, 1, 1), 901, "男")),
               Person(name="张三丰", id_number=make_id_number("370102", date(1990, 1, 2), 902, "男")),
               Person(name="李张三", id_number=make_id_number("370102", date(1990, 1, 3), 903, "男"))])
    s.flush()
    names = set(s.scalars(select(Person.name).where(starts_with(Person.name, "张三"))))
    assert "张三丰" in names and "李张三" not in names and "张*三" not in names
    assert set(s.scalars(select(Person.name).where(starts_with(Person.name, "张*")))) == {"张*三"}
    assert set(s.scalars(select(Person.name).where(starts_with(Person.name, "%")))) == set()
    sql = _sql(select(Person.id).where(starts_with(Person.name, "张")), s.get_bind().dialect)
    plan = " ".join(str(row[-1]) for row in s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "INDEX ix_person_name" in plan, plan


def test_a_prefix_search_is_compiled_once_for_every_term():
    """The term is a bound parameter of the cache key: one compiled statement serves every search
    (issue 16: an uncacheable predicate was compiled anew on every request), and each execution
    carries its own term (the sequence of terms above finds each its own rows)."""
    from sqlalchemy import select

    from models import Person

    first = select(Person.id).where(starts_with(Person.name, "王")).limit(1001)._generate_cache_key()
    second = select(Person.id).where(starts_with(Person.name, "李_")).limit(1001)._generate_cache_key()
    assert first is not None and first == second
    assert "王%" in [p.value for p in first.bindparams] and "李\\_%" in [p.value for p in second.bindparams]
