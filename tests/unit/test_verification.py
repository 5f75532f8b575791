"""证书查询 rules (SPEC §10) straight against workflows.verification, no HTTP."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Certificate, CertificateStatus, RateLimitHit
from workflows import verification as rules
from workflows.engine import setting_state

SECRET = "test-verify-secret"
T0 = datetime(2026, 3, 1, 8, 0, 5)  # naive UTC, 5 s into a one-minute window
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def demo_certificate(session) -> Certificate:
    return session.scalars(select(Certificate).order_by(Certificate.id)).first()


def reissue(session, old: Certificate, number: str, *, void_old: bool = True) -> Certificate:
    """What 补证 leaves behind: the old certificate voided, a new one pointing at it."""
    if void_old:
        with setting_state():
            old.status = CertificateStatus.voided
    new = Certificate(number=number, person_id=old.person_id, occupation_id=old.occupation_id,
                      level_id=old.level_id, issuer_id=old.issuer_id, authority_id=old.authority_id,
                      issue_date=date(2026, 2, 1), replaces_id=old.id)
    session.add(new)
    session.flush()
    return new


# --- lookup ------------------------------------------------------------------------------


def test_number_and_name_open_the_masked_card(session):
    cert = demo_certificate(session)
    person = cert.person
    result = rules.lookup(session, cert.number, person.name)
    assert result is not None
    assert result.number == cert.number
    assert (result.status, result.status_label) == (CertificateStatus.valid, "有效")
    assert result.occupation == cert.occupation.name
    assert result.level == cert.level.name
    assert result.issuer == cert.issuer.name
    assert result.issue_date == cert.issue_date
    assert result.holder_name == rules.mask_name(person.name) != person.name
    assert result.id_number == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    assert result.replaced_by_number is None


def test_wrong_name_and_unknown_number_give_the_same_answer(session):
    cert = demo_certificate(session)
    wrong_name = rules.lookup(session, cert.number, cert.person.name + "某")
    unknown = rules.lookup(session, "999999999999999", cert.person.name)
    assert wrong_name is None and unknown is None


@pytest.mark.parametrize("number, name", [("", "张三"), ("123", ""), (None, None), ("1" * 200, "张三"),
                                          ("260001", "张" * 200)])
def test_empty_or_silly_input_finds_nothing(session, number, name):
    assert rules.lookup(session, number, name) is None


def test_spaces_and_full_width_digits_are_normalised(session):
    cert = demo_certificate(session)
    name = cert.person.name
    spaced = " ".join([cert.number[:4], cert.number[4:10], cert.number[10:]])
    typed_number = " " + spaced.translate(FULL_WIDTH) + "\u3000"
    typed_name = " " + "\u3000".join(name) + " "
    result = rules.lookup(session, typed_number, typed_name)
    assert result is not None and result.number == cert.number


def test_only_the_current_name_matches(session):
    """SPEC §10: the holder's current name; an old name after a correction finds nothing."""
    cert = demo_certificate(session)
    old_name = cert.person.name
    cert.person.name = "欧阳娜娜"
    session.flush()
    assert rules.lookup(session, cert.number, old_name) is None
    assert rules.lookup(session, cert.number, "欧阳娜娜").holder_name == "欧阳**"


def test_a_certificate_without_level(session):
    cert = demo_certificate(session)
    cert.level_id = None
    session.flush()
    session.expire(cert)
    assert rules.lookup(session, cert.number, cert.person.name).level == "无等级"


def test_cancelled_certificate_shows_its_status(session):
    cert = demo_certificate(session)
    with setting_state():
        cert.status = CertificateStatus.cancelled
    session.flush()
    result = rules.lookup(session, cert.number, cert.person.name)
    assert (result.status_label, result.replaced_by_number) == ("已注销", None)


def test_voided_certificate_names_its_reissue(session):
    cert = demo_certificate(session)
    new = reissue(session, cert, "269999999990001")
    old_result = rules.lookup(session, cert.number, cert.person.name)
    assert (old_result.status_label, old_result.replaced_by_number) == ("已作废", new.number)
    new_result = rules.lookup(session, new.number, cert.person.name)
    assert (new_result.status_label, new_result.replaced_by_number) == ("有效", None)


def test_a_chain_of_reissues_points_at_the_one_in_force(session):
    cert = demo_certificate(session)
    second = reissue(session, cert, "269999999990001")
    third = reissue(session, second, "269999999990002")
    assert rules.lookup(session, cert.number, cert.person.name).replaced_by_number == third.number
    assert rules.lookup(session, second.number, cert.person.name).replaced_by_number == third.number


def test_voided_without_reissue(session):
    cert = demo_certificate(session)
    with setting_state():
        cert.status = CertificateStatus.voided
    session.flush()
    result = rules.lookup(session, cert.number, cert.person.name)
    assert (result.status_label, result.replaced_by_number) == ("已作废", None)


def test_lookup_by_number_is_the_same_card(session):
    cert = demo_certificate(session)
    by_name = rules.lookup(session, cert.number, cert.person.name)
    assert rules.lookup_by_number(session, cert.number) == by_name
    assert rules.lookup_by_number(session, "999999999999999") is None


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, masked", [
    ("", ""),
    ("张", "*"),  # a one-character name shown whole would be the full name
    ("张三", "张*"),
    ("欧阳", "欧*"),  # two characters: surname 欧, given name 阳
    ("张三丰", "张**"),
    ("欧阳锋", "欧阳*"),
    ("王小二五", "王***"),
    ("欧阳娜娜", "欧阳**"),
    ("诸葛孔明", "诸葛**"),
    (" 李 四 ", "李*"),
    ("阿卜杜拉・买买提", "阿*******"),
])
def test_mask_name(name, masked):
    assert rules.mask_name(name) == masked


# --- QR code tokens ----------------------------------------------------------------------


def test_token_round_trip():
    token = rules.token_for("260001001010001", SECRET)
    assert rules.number_from_token(token, SECRET) == "260001001010001"
    assert rules.token_for("260001001010001", SECRET) == token  # stable: the same QR on a reprint


def test_tampered_and_foreign_tokens_are_refused():
    token = rules.token_for("260001001010001", SECRET)
    other = rules.token_for("260001001010002", SECRET)
    forged = other.split(".")[0] + "." + token.split(".")[1]  # another number under this signature
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (forged, flipped, token + "x", "x" + token, "", "abc", "a" * 500, None):
        assert rules.number_from_token(bad, SECRET) is None, bad
    assert rules.number_from_token(token, "another-secret") is None


def test_a_token_of_another_salt_is_refused():
    from itsdangerous import URLSafeSerializer

    session_like = URLSafeSerializer(SECRET, salt="something-else").dumps("260001001010001")
    assert rules.number_from_token(session_like, SECRET) is None


def test_qr_svg_is_inline_and_deterministic():
    url = "https://zscx.example.gov.cn/verify/t/" + rules.token_for("260001001010001", SECRET)
    svg = rules.qr_svg(url)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<path" in svg
    assert rules.qr_svg(url) == svg
    assert rules.qr_svg(url + "x") != svg


# --- rate limiting -----------------------------------------------------------------------


def test_limiter_allows_the_limit_then_refuses(session):
    answers = [rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=i)) for i in range(5)]
    assert answers == [True, True, True, False, False]


def test_limiter_resets_in_the_next_window(session):
    for i in range(4):
        rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=i))
    assert rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=50)) is False  # 08:00:55
    assert rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=55)) is True  # 08:01:00


def test_limiter_keys_are_independent(session):
    for i in range(3):
        rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=i))
    assert rules.hit(session, "verify:10.0.0.1", 3, 60, T0) is False
    assert rules.hit(session, "verify:10.0.0.2", 3, 60, T0) is True


def test_limiter_deletes_windows_that_are_over(session):
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        rules.hit(session, f"verify:{ip}", 3, 60, T0)
    rules.hit(session, "long:10.0.0.1", 3, 3600, T0)  # an hour-long window is not over yet
    rules.hit(session, "verify:10.0.0.9", 3, 60, T0 + timedelta(minutes=2))
    keys = set(session.scalars(select(RateLimitHit.key)))
    assert keys == {"long:10.0.0.1", "verify:10.0.0.9"}


def test_limiter_counts_in_one_row_per_window(session):
    for i in range(7):
        rules.hit(session, "verify:10.0.0.1", 3, 60, T0 + timedelta(seconds=i))
    rows = session.execute(select(RateLimitHit.window_start, RateLimitHit.count)).all()
    assert rows == [(datetime(2026, 3, 1, 8, 0, 0), 7)]
    assert session.scalar(select(func.count()).select_from(RateLimitHit)) == 1


@pytest.mark.parametrize("now, wait", [
    (datetime(2026, 3, 1, 8, 0, 5), 55),
    (datetime(2026, 3, 1, 8, 0, 59, 500000), 1),
    (datetime(2026, 3, 1, 8, 1, 0), 60),
])
def test_retry_after(now, wait):
    assert rules.retry_after(now, 60) == wait
