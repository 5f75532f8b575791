"""What a search box term is (workflows.search): each kind maps to one indexed lookup."""

from __future__ import annotations

import pytest

from workflows.search import MAX_TERM, TermKind, classify, prefix_pattern
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
