"""Field validators shared by imports, forms and seed data (SPEC §1, §3, §9).

Pure functions: they take what a user typed and return the normalised value, or raise
``ValueError`` whose message is shown to the user as is (Chinese). Callers that need a
``WorkflowError`` wrap them; the Excel import reports them per cell.

``FormFields`` is the one reader of a form's typed fields (企业注册, 个人注册, 用户管理, 机构管理,
企业信息): required text and its length, the login name, the bound phone, the password typed
twice — every error collected and raised at once as ``FormErrors``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import User
from workflows import FormErrors

# GB 11643-1999: weights of the first 17 digits and the check character for sum % 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# A birth year before 1900 on a certificate applicant is a typo, not a person.
_ID_MIN_YEAR = 1900

# GB 32100-2015: 31 characters (no I, O, S, V, Z) and the weights of positions 1–17.
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {ch: i for i, ch in enumerate(_CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_PHONE = re.compile(r"1[3-9][0-9]{9}")
_PASSWORD_MIN = 8
_PASSWORD_MAX = 128  # bounds the cost of hashing an attacker-chosen string

USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")
USERNAME_TAKEN = "该登录用户名已被使用，请换一个"

MALE = "男"
FEMALE = "女"


def _half_width(raw: object) -> str:
    """NFKC folds full-width digits and letters (０-９, Ｘ) to ASCII; what IMEs often produce."""
    if raw is None:
        return ""
    return unicodedata.normalize("NFKC", str(raw))


def _strip_spaces(text: str) -> str:
    return "".join(text.split())


# --- resident ID number (SPEC §3) ---------------------------------------------------------


# -- one phone, one active account (issue 17) ---------------------------------------------------
PHONE_TAKEN = "该手机号已绑定其他账号（一个手机号只能绑定一个账号），请更换手机号"


def phone_taken(session: Session, phone: str | None, *, besides: User | None = None) -> bool:
    """``phone`` is bound to an active account other than ``besides`` (models.user.ACTIVE_PHONE_WHERE):
    an SMS code for one would reach the other. Checked before every bind; the index decides races."""
    if not phone:
        return False
    stmt = select(User.id).where(User.phone == phone, User.holds_phone())
    if besides is not None and besides.id is not None:
        stmt = stmt.where(User.id != besides.id)
    with session.no_autoflush:  # the row being bound is not written by asking
        return session.scalar(stmt.limit(1)) is not None


@dataclass(frozen=True)
class IdInfo:
    """A checked ID number and what SPEC §3 derives from it (never typed separately)."""

    number: str
    birth_date: date
    gender: str  # '男' / '女'


def normalize_id_number(raw: object) -> str:
    """Canonical form stored in ``Person.id_number``: half-width, no spaces, upper-case X.

    Normalising before lookup keeps one person from appearing twice because one clerk
    typed a lower-case x or a full-width digit.
    """
    return _strip_spaces(_half_width(raw)).upper()


def id_check_char(first17: str) -> str:
    """GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def parse_id_number(raw: object, *, today: date | None = None) -> IdInfo:
    """Validate an 18-digit resident ID (SPEC §3) and derive birth date and gender.

    Only the first digit of the region code is checked (1–9): region codes are retired
    and renumbered over time, and a person keeps the number they were given.
    """
    number = normalize_id_number(raw)
    if not _ID_SHAPE.fullmatch(number):
        raise ValueError("身份证号应为18位")
    if number[0] == "0":
        raise ValueError("身份证号中的地区码无效")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("身份证号中的出生日期无效") from None
    if birth.year < _ID_MIN_YEAR or birth > (today or date.today()):
        raise ValueError("身份证号中的出生日期无效")
    if id_check_char(number[:17]) != number[17]:
        raise ValueError("身份证号校验位错误")
    gender = MALE if int(number[16]) % 2 else FEMALE
    return IdInfo(number=number, birth_date=birth, gender=gender)


def make_id_number(region6: str, birth: date, seq: int, gender: str) -> str:
    """A valid ID for tests and seed data.

    ``seq`` is the 3-digit sequence code (顺序码, 0–999); its last digit is the gender
    digit (odd for men), so it is rounded to the gender's parity: ``seq`` and ``seq ^ 1``
    give the same number. Vary ``seq`` in steps of 2 (or vary the birth date) for
    distinct people: 500 per region, birthday and gender.
    """
    if not re.fullmatch(r"[1-9][0-9]{5}", region6):
        raise ValueError(f"region6 must be 6 digits not starting with 0: {region6!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"seq must be 0..999: {seq}")
    if gender not in (MALE, FEMALE):
        raise ValueError(f"gender must be 男 or 女: {gender!r}")
    order = (seq & ~1) | (1 if gender == MALE else 0)
    first17 = f"{region6}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_char(first17)


def mask_id_number(number: str) -> str:
    """SPEC §10: 3701**********1234 — region prefix and last four only."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


# --- unified social credit code (SPEC §1) -------------------------------------------------


def credit_check_char(body17: str) -> str:
    """GB 32100-2015 check character of the first 17 characters."""
    total = sum(_CREDIT_VALUE[ch] * w for ch, w in zip(body17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(raw: object) -> str:
    """Validate an enterprise's 统一社会信用代码 (SPEC §1) and return it upper-case.

    The check character catches the usual single-character typos before a duplicate
    enterprise is registered under a misspelt code.
    """
    code = _strip_spaces(_half_width(raw)).upper()
    if not code:
        raise ValueError("请填写统一社会信用代码")
    if len(code) != 18:
        raise ValueError("统一社会信用代码应为18位")
    if any(ch not in _CREDIT_VALUE for ch in code):
        raise ValueError("统一社会信用代码只能包含数字和大写字母（不含I、O、S、V、Z）")
    if credit_check_char(code[:17]) != code[17]:
        raise ValueError("统一社会信用代码校验位错误")
    return code


def make_credit_code(body17: str) -> str:
    """A valid credit code for tests and seed data: ``body17`` plus its check character."""
    body = body17.upper()
    if len(body) != 17 or any(ch not in _CREDIT_VALUE for ch in body):
        raise ValueError(f"body17 must be 17 characters of {_CREDIT_ALPHABET}: {body17!r}")
    return body + credit_check_char(body)


# --- phone and password (SPEC §9) ---------------------------------------------------------


def check_postcode(raw: object) -> str | None:
    """邮政编码: six ASCII digits (full-width ones folded), or None when left empty."""
    text = _strip_spaces(_half_width(raw))
    if not text:
        return None
    if not (len(text) == 6 and text.isascii() and text.isdigit()):
        raise ValueError("邮政编码应为6位数字")
    return text


def check_phone(raw: object) -> str:
    """A mainland mobile number: SMS codes (SPEC §9) can only reach one of these.

    Spaces and hyphens people type for readability are dropped, as is a +86 prefix.
    """
    phone = _half_width(raw)
    phone = "".join(ch for ch in phone if not ch.isspace() and ch != "-")
    if phone.startswith("+86"):
        phone = phone[3:]
    if not _PHONE.fullmatch(phone):
        raise ValueError("手机号格式不正确")
    return phone


def check_password_policy(password: str) -> None:
    """SPEC §9: at least 8 characters with both letters and digits.

    Letters are ASCII only: a password that can't be typed on another keyboard or
    IME locks its owner out at the next terminal.
    """
    pw = password or ""
    has_letter = any("a" <= ch.lower() <= "z" for ch in pw)
    has_digit = any("0" <= ch <= "9" for ch in pw)
    if len(pw) < _PASSWORD_MIN or not (has_letter and has_digit):
        raise ValueError("密码至少8位，且必须包含字母和数字")
    if len(pw) > _PASSWORD_MAX:
        raise ValueError(f"密码不能超过{_PASSWORD_MAX}位")


# --- a form's fields ------------------------------------------------------------------------


@dataclass
class FormFields:
    """What was typed into one form, read field by field. Each reader returns the normalised
    value (None when blank or wrong) and keeps the field's error; ``raise_if_any`` refuses them
    all at once, so the user corrects every field in one go and nothing is stored before."""

    values: Mapping
    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, label: str, max_len: int, *, required: bool = True) -> str | None:
        value = (self.values.get(name) or "").strip()
        if required and not value:
            self.errors[name] = f"请填写{label}"
        elif len(value) > max_len:
            self.errors[name] = f"{label}不能超过{max_len}个字符"
        return value or None

    def check(self, name: str, validator: Callable, *args):
        """``validator(*args)``'s value; its ValueError's message becomes the field's error."""
        try:
            return validator(*args)
        except ValueError as exc:
            self.errors[name] = str(exc)
            return None

    def postcode(self, name: str = "postcode") -> str | None:
        return self.check(name, check_postcode, self.values.get(name))

    def password(self) -> str:
        """A password typed twice (password, password2), to the policy of SPEC §9."""
        password = self.values.get("password") or ""
        if password != (self.values.get("password2") or ""):
            self.errors["password2"] = "两次输入的密码不一致"
        self.check("password", check_password_policy, password)
        return password

    def username(self, session: Session, *, besides: User | None = None) -> str | None:
        """登录用户名: 4–64 of the characters a login form accepts, used by no other account
        (whatever the case; ``besides``: the account being registered again)."""
        username = self.text("username", "登录用户名", 64)
        if not username or "username" in self.errors:
            return username
        if len(username) < 4 or any(c not in USERNAME_CHARS for c in username):
            self.errors["username"] = "登录用户名为4–64位字母、数字或 _ . - @"
            return username
        taken = select(User.id).where(func.lower(User.username) == username.lower())
        if besides is not None:
            taken = taken.where(User.id != besides.id)
        if session.scalar(taken.limit(1)) is not None:
            self.errors["username"] = USERNAME_TAKEN
        return username

    def phone(self, session: Session, *, missing: str, besides: User | None = None) -> str | None:
        """The mobile number an account binds (it receives the sign-in codes): required, and bound
        to no other active account (issue 17: one phone, one active account)."""
        if not (self.values.get("phone") or "").strip():
            self.errors["phone"] = missing
            return None
        phone = self.check("phone", check_phone, self.values.get("phone"))
        if phone and phone_taken(session, phone, besides=besides):
            self.errors["phone"] = PHONE_TAKEN
        return phone

    def raise_if_any(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)


def phone_race() -> FormErrors:
    """A concurrent request bound the phone first (the unique index decided): the phone field's
    error, as if the check had caught it."""
    return FormErrors({"phone": PHONE_TAKEN})
