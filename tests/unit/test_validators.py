"""Validators of SPEC §1, §3, §9: tables of good and bad input with the exact message."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflows import FormErrors
from workflows.validators import (
    FormFields,
    IdInfo,
    check_credit_code,
    check_password_policy,
    check_phone,
    check_postcode,
    make_credit_code,
    make_id_number,
    mask_id_number,
    normalize_id_number,
    parse_id_number,
)

# --- ID numbers (GB 11643) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 11010519491231002x ", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),  # full-width IME input
        ("110105 19491231 002X", "11010519491231002X"),
        (None, ""),
    ],
)
def test_normalize_id_number(raw, expected):
    assert normalize_id_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "birth", "gender"),
    [
        ("11010519491231002X", date(1949, 12, 31), "女"),  # GB 11643-1999 example
        ("11010519491231002x", date(1949, 12, 31), "女"),
        ("11010119900307803X", date(1990, 3, 7), "男"),
        ("370102200002291234", date(2000, 2, 29), "男"),  # leap day
        ("１１０１０５１９４９１２３１００２ｘ", date(1949, 12, 31), "女"),
    ],
)
def test_parse_id_number_valid(raw, birth, gender):
    info = parse_id_number(raw)
    assert info == IdInfo(number=normalize_id_number(raw), birth_date=birth, gender=gender)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "身份证号应为18位"),
        ("11010519491231002", "身份证号应为18位"),  # 17 digits
        ("11010519491231002XX", "身份证号应为18位"),
        ("110105194912310", "身份证号应为18位"),  # old 15-digit number
        ("1101051949123100X2", "身份证号应为18位"),  # X not last
        ("11010519491231002A", "身份证号应为18位"),
        ("3.70102199001E+17", "身份证号应为18位"),  # what Excel shows for a number
        ("11010519491231002\u0663", "身份证号应为18位"),  # Arabic-Indic 3: a bare \d would accept it
        ("01010519491231002X", "身份证号中的地区码无效"),
        ("110105194913310020", "身份证号中的出生日期无效"),  # month 13
        ("110105190102290027", "身份证号中的出生日期无效"),  # 1901 is not a leap year
        ("440524188001010014", "身份证号中的出生日期无效"),  # GB example, but born 1880
        ("110105209901010011", "身份证号中的出生日期无效"),  # in the future
        ("110105194912310021", "身份证号校验位错误"),
        ("110105194912310029", "身份证号校验位错误"),
    ],
)
def test_parse_id_number_invalid(raw, message):
    with pytest.raises(ValueError) as exc:
        parse_id_number(raw, today=date(2026, 1, 1))
    assert str(exc.value) == message


def test_generated_ids_round_trip():
    for gender in ("男", "女"):
        for seq in (0, 1, 250, 998, 999):
            number = make_id_number("370102", date(1985, 6, 15), seq, gender)
            info = parse_id_number(number)
            assert info == IdInfo(number, date(1985, 6, 15), gender)


def test_make_id_number_sequence_code():
    """seq is the 顺序码; its last digit is forced to the gender (odd for men)."""
    assert make_id_number("370102", date(1990, 1, 1), 12, "男")[14:17] == "013"
    assert make_id_number("370102", date(1990, 1, 1), 13, "女")[14:17] == "012"
    assert len({make_id_number("370102", date(1990, 1, 1), 2 * i, "女") for i in range(500)}) == 500


@pytest.mark.parametrize(
    "args",
    [("070102", date(1985, 1, 1), 1, "男"), ("37010", date(1985, 1, 1), 1, "男"),
     ("370102", date(1985, 1, 1), 1000, "男"), ("370102", date(1985, 1, 1), -1, "女"), ("370102", date(1985, 1, 1), 1, "M")],
)
def test_make_id_number_refuses_bad_arguments(args):
    with pytest.raises(ValueError):
        make_id_number(*args)


def test_mask_id_number():
    assert mask_id_number("370102199003071234") == "3701**********1234"


birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31))
regions = st.from_regex(r"[1-9][0-9]{5}", fullmatch=True)


@given(region=regions, birth=birth_dates, seq=st.integers(0, 999), gender=st.sampled_from(["男", "女"]))
def test_make_id_number_always_validates(region, birth, seq, gender):
    number = make_id_number(region, birth, seq, gender)
    assert parse_id_number(number) == IdInfo(number, birth, gender)


@given(region=regions, birth=birth_dates, seq=st.integers(0, 999), gender=st.sampled_from(["男", "女"]),
       position=st.integers(0, 16), delta=st.integers(1, 9))
def test_changing_one_digit_always_fails(region, birth, seq, gender, position, delta):
    """GB 11643's weights are all non-zero mod 11, so any single-digit change is caught."""
    number = make_id_number(region, birth, seq, gender)
    digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(digit) + number[position + 1:]
    with pytest.raises(ValueError):
        parse_id_number(changed)


# --- unified social credit codes (GB 32100-2015) ------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["9144030071526726XG", "914403001922038216", "91330100799655058B", "91110000802100433B"],
)
def test_real_credit_codes_pass(code):
    assert check_credit_code(code) == code
    assert check_credit_code(f" {code.lower()} ") == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "请填写统一社会信用代码"),
        ("9144030071526726X", "统一社会信用代码应为18位"),
        ("9144030071526726XGG", "统一社会信用代码应为18位"),
        ("9144030071526726IG", "统一社会信用代码只能包含数字和大写字母（不含I、O、S、V、Z）"),
        ("91440300715267260G", "统一社会信用代码校验位错误"),
        ("9144030071526726XH", "统一社会信用代码校验位错误"),
    ],
)
def test_bad_credit_codes(raw, message):
    with pytest.raises(ValueError) as exc:
        check_credit_code(raw)
    assert str(exc.value) == message


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_make_credit_code_round_trip(body):
    code = make_credit_code(body)
    assert check_credit_code(code) == code
    wrong = "0" if code[-1] != "0" else "1"
    with pytest.raises(ValueError):
        check_credit_code(code[:-1] + wrong)


def test_make_credit_code_refuses_bad_body():
    with pytest.raises(ValueError):
        make_credit_code("91440300715267I6X")


# --- phones and passwords (SPEC §9) -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("13812345678", "13812345678"), (" 199 1234 5678 ", "19912345678"), ("138-1234-5678", "13812345678"),
     ("+8613812345678", "13812345678"), ("１３８１２３４５６７８", "13812345678"), (13812345678, "13812345678")],
)
def test_good_phones(raw, expected):
    assert check_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "1381234567\u0663", "12812345678", "1381234567", "138123456789", "0531-88886666", "1381234567a"])
def test_bad_phones(raw):
    with pytest.raises(ValueError, match="^手机号格式不正确$"):
        check_phone(raw)


@pytest.mark.parametrize("password", ["Demo@2026", "abcd1234", "12345678a", "长密码abcdefg1"])
def test_good_passwords(password):
    check_password_policy(password)


@pytest.mark.parametrize("password", ["", "abc123", "abcdefgh", "12345678", "!@#$%^&*", "密码密码密码密码1", None])
def test_bad_passwords(password):
    with pytest.raises(ValueError) as exc:
        check_password_policy(password)
    assert str(exc.value) == "密码至少8位，且必须包含字母和数字"


def test_password_has_an_upper_bound():
    with pytest.raises(ValueError, match="128"):
        check_password_policy("a1" * 65)


@pytest.mark.parametrize("raw, expected", [("250000", "250000"), ("２５００００", "250000"), (" 250000 ", "250000"),
                                           ("", None), (None, None)])
def test_a_postcode_is_six_ascii_digits_full_width_folded(raw, expected):
    assert check_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["25000", "2500001", "25000a", "٢٥٠٠٠٠"])
def test_other_digits_or_lengths_are_not_a_postcode(raw):
    with pytest.raises(ValueError, match="邮政编码应为6位数字"):
        check_postcode(raw)


# --- a form's fields: one reader for 企业注册, 个人注册, 用户管理, 机构管理, 企业信息 ------------------------


@pytest.mark.parametrize(
    ("value", "required", "expected", "message"),
    [
        ("  张三 ", True, "张三", None),
        ("   ", True, None, "请填写姓名"),
        ("", False, None, None),
        ("张" * 51, True, "张" * 51, "姓名不能超过50个字符"),
    ],
)
def test_form_text_is_stripped_required_and_bounded(value, required, expected, message):
    form = FormFields({"name": value})
    assert form.text("name", "姓名", 50, required=required) == expected
    assert form.errors.get("name") == message


def test_form_collects_every_error_and_raises_them_at_once():
    form = FormFields({"password": "abc", "password2": "abd", "postcode": "25000"})
    form.text("name", "姓名", 50)
    form.password()
    form.postcode()
    with pytest.raises(FormErrors) as refused:
        form.raise_if_any()
    assert refused.value.errors == {"name": "请填写姓名", "password2": "两次输入的密码不一致",
                                    "password": "密码至少8位，且必须包含字母和数字", "postcode": "邮政编码应为6位数字"}


def test_form_with_no_error_raises_nothing():
    form = FormFields({"password": "Zc2026abc", "password2": "Zc2026abc", "postcode": "２５００００"})
    assert form.password() == "Zc2026abc"
    assert form.postcode() == "250000"
    form.raise_if_any()

