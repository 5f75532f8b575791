"""Sign-in rules (SPEC §9, 003 §二): password, lockout, SMS codes, password changes.

No Flask here: callers pass the SQLAlchemy session, the user, the time and the settings.
Functions add rows to the session and never commit. A refusal raises ``WorkflowError``
*after* recording what must survive it (failure counters, code attempts, the 操作日志 row),
so the caller commits on the error path too.
"""

from __future__ import annotations

import math
import secrets
import string
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from models import AccountKind, AccountRequest, AccountStatus, OrgStatus, SmsCode, User, UserSession
from models.user import ACTIVE_PHONE_INDEX
from workflows import WorkflowError, sessions
from workflows.audit import Kind, log
from workflows.sms import SmsError, SmsMessage, deliver
from workflows.validators import PHONE_TAKEN, check_password_policy


class Purpose:
    """What an SMS code is for; a code only ever opens the door it was sent for."""

    LOGIN = "login"
    RESET = "reset"      # 找回密码
    PHONE = "phone"      # 更换绑定手机
    REGISTER = "register"  # 企业注册 / 个人注册: 手机号绑定

    LABELS = {"login": "登录", "reset": "找回密码", "phone": "更换绑定手机", "register": "注册"}


class SmsThrottled(WorkflowError):
    """A code was sent less than a minute ago; the one already sent still works."""


BAD_CREDENTIALS = "用户名或密码错误"
NO_PHONE = "未绑定手机号，请联系管理员"

# A sign-in may be refused after the password was right; the order is SPEC §1's.
_ORG_REFUSALS = {
    OrgStatus.pending: "账号待主管部门审核",
    OrgStatus.rejected: "账号审核未通过",
    OrgStatus.offline: "所属机构已下线，无法登录",
}

# 6-digit codes have a million values: a salted hash keeps them out of backups, and
# the attempt limit (not the hash cost) is what stops guessing. Cheap on purpose.
_CODE_HASH_METHOD = "pbkdf2:sha256:20000"
# No 0/O, 1/l/I: a temporary password is read aloud or copied from a screen.
_TEMP_LETTERS = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
_TEMP_DIGITS = "23456789"
TEMP_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def password_matches(user: User, password: str) -> bool:
    return bool(user.password_hash) and check_password_hash(user.password_hash, password or "")


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def _seconds_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


# --- one phone, one active account (issue 17) ------------------------------------------------

@contextmanager
def binding_phone(session: Session, error: WorkflowError | None = None):
    """A savepoint in which binding a phone that a concurrent request bound first — the unique index's
    violation — becomes ``error`` (by default PHONE_TAKEN), never a 500; other violations pass on."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        text = str(exc.orig)
        if ACTIVE_PHONE_INDEX in text or "user_account.phone" in text:  # PostgreSQL names the index, SQLite the column
            raise (error or WorkflowError(PHONE_TAKEN)) from None
        raise


# --- who may be signed in -----------------------------------------------------------------


def login_refusal(user: User | None) -> str | None:
    """Why ``user`` may not be signed in right now (disabled, organization not active), or None.

    The same rule serves the login form and every later request (the session's user
    loader), so taking an organization offline ends its users' sessions too.
    """
    if user is None:
        return BAD_CREDENTIALS
    if not user.is_enabled:
        return "账号已停用"
    org = user.organization
    if org is not None and org.status != OrgStatus.active:
        return _ORG_REFUSALS.get(org.status, "所属机构不可用，无法登录")
    if org is None and user.account_status != AccountStatus.active:  # a self-registered individual
        return _ORG_REFUSALS.get(OrgStatus(user.account_status.value), "账号不可用，无法登录")
    return None


def rejection_notice(session: Session, user: User) -> str | None:
    """Why the authority turned down ``user``'s 企业注册 / 个人注册, and what to do next, or None.

    001/002 §3.1.1 have the applicant wait for the authority; a rejected registration registers
    again with the same 统一社会信用代码 / 身份证号 (workflows.accounts: 重新注册 reuses the
    record), so the refusal names the reason and that path. Shown only after the right password."""
    owner = (AccountRequest.organization_id == user.organization_id if user.organization_id is not None
             else AccountRequest.user_id == user.id)
    request = session.scalars(select(AccountRequest).where(owner).order_by(AccountRequest.id.desc()).limit(1)).first()
    if request is None or request.status != AccountStatus.rejected:
        return None
    reason = f"，原因：{request.reject_reason}" if request.reject_reason else ""
    again = ("点击「企业注册」，使用同一统一社会信用代码重新注册" if request.kind == AccountKind.enterprise
             else "点击「个人注册」，使用同一身份证号重新注册")
    return f"{_ORG_REFUSALS[OrgStatus.rejected]}{reason}。请按原因修改后{again}，待主管部门审核后方可登录"


def _refusal_explained(session: Session, user: User) -> str | None:
    refusal = login_refusal(user)
    if refusal == _ORG_REFUSALS[OrgStatus.rejected]:
        return rejection_notice(session, user) or refusal
    return refusal


def may_stay_signed_in(user: User | None) -> bool:
    return user is not None and login_refusal(user) is None


def _load_for_update(session: Session, username: str) -> User | None:
    # FOR UPDATE (PostgreSQL) serialises concurrent attempts on one account, so five
    # parallel wrong passwords still lock it; SQLite's BEGIN IMMEDIATE already does.
    stmt = (select(User).where(User.username == username).with_for_update()
            .execution_options(populate_existing=True))
    return session.scalars(stmt).first()


def authenticate(session: Session, username: str, password: str, *, now: datetime,
                 max_failures: int = 5, lock_minutes: int = 15, ip: str | None = None) -> User:
    """Step one of signing in: the password (SPEC §9). Returns the user; the SMS step follows.

    Wrong passwords count; the ``max_failures``-th locks the account for ``lock_minutes``.
    A locked account is refused before its password is looked at. Account and organization
    status are reported only to someone who knows the password. Refusals are logged here;
    the success row is written by ``complete_login`` once the SMS code is right.
    """
    typed = (username or "").strip()
    user = _load_for_update(session, typed) if typed else None
    if user is None:
        _dummy_check(password)  # same cost as a real check: response time does not reveal usernames
        log(session, None, Kind.LOGIN_FAIL, "登录失败：用户名不存在", username=typed[:64] or "(空)", ip=ip)
        raise WorkflowError(BAD_CREDENTIALS)

    if user.locked_until is not None and user.locked_until > now:
        message = f"账号已锁定，请{_minutes_left(user.locked_until, now)}分钟后再试"
        log(session, user, Kind.LOGIN_FAIL, f"登录失败：{message}", obj=user, ip=ip)
        raise WorkflowError(message)

    if not password_matches(user, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= max_failures:
            # The counter starts again once the lock has run out: five more tries, then another lock.
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=lock_minutes)
            message = f"密码错误次数过多，账号已锁定，请{lock_minutes}分钟后再试"
            log(session, user, Kind.LOGIN_FAIL, f"登录失败：密码错误，账号锁定{lock_minutes}分钟", obj=user, ip=ip)
        else:
            message = BAD_CREDENTIALS
            log(session, user, Kind.LOGIN_FAIL, f"登录失败：密码错误（第{user.failed_logins}次）", obj=user, ip=ip)
        session.flush()
        raise WorkflowError(message)

    if user.failed_logins or user.locked_until is not None:
        user.failed_logins = 0
        user.locked_until = None
    # SPEC §9: the SMS code is part of signing in, so an account without a phone cannot.
    refusal = _refusal_explained(session, user) or (None if user.phone else NO_PHONE)
    if refusal:
        log(session, user, Kind.LOGIN_FAIL, f"登录失败：{refusal}", obj=user, ip=ip)
        session.flush()
        raise WorkflowError(refusal)
    session.flush()
    return user


def _dummy_check(password: str) -> None:
    check_password_hash(_dummy_hash(), password or "")


def complete_login(session: Session, user: User, *, now: datetime, ip: str | None = None) -> None:
    """The sign-in is complete (password and SMS code): the 操作日志 success row."""
    user.last_login_at = now
    log(session, user, Kind.LOGIN_OK, "登录成功", obj=user, ip=ip)
    session.flush()


def verify_login_code(session: Session, user: User, code: str, *, now: datetime, max_attempts: int = 5,
                      ip: str | None = None) -> None:
    """Step two of signing in. Re-checks the account, since it may have changed since step one."""
    refusal = login_refusal(user)
    if refusal:
        log(session, user, Kind.LOGIN_FAIL, f"登录失败：{refusal}", obj=user, ip=ip)
        raise WorkflowError(refusal)
    try:
        verify_code(session, user, Purpose.LOGIN, code, now=now, max_attempts=max_attempts)
    except WorkflowError as exc:
        log(session, user, Kind.LOGIN_FAIL, f"登录失败：短信{exc.message}", obj=user, ip=ip)
        raise
    complete_login(session, user, now=now, ip=ip)


def record_logout(session: Session, user: User, *, reason: str = "退出登录", ip: str | None = None) -> None:
    log(session, user, Kind.LOGOUT, reason, obj=user, ip=ip)


# --- SMS codes ----------------------------------------------------------------------------


def _open_codes(purpose: str, *, user: User | None = None, phone: str | None = None, subject: str | None = None):
    """Where a purpose's open codes are found: 找回密码's by the username typed (``subject``), a
    user's by the user, a bare number's by the number."""
    stmt = select(SmsCode).where(SmsCode.purpose == purpose, SmsCode.used.is_(False))
    if subject is not None:
        return stmt.where(SmsCode.subject == subject)
    if user is not None:
        return stmt.where(SmsCode.user_id == user.id)
    return stmt.where(SmsCode.phone == phone, SmsCode.user_id.is_(None))


def _latest_open_code(session: Session, purpose: str, *, user: User | None = None, phone: str | None = None,
                      subject: str | None = None) -> SmsCode | None:
    stmt = _open_codes(purpose, user=user, phone=phone, subject=subject)
    return session.scalars(stmt.order_by(SmsCode.created_at.desc(), SmsCode.id.desc()).limit(1)).first()


def issue_code(session: Session, user_or_phone: User | str | None, purpose: str, sender, *, now: datetime,
               ttl_minutes: int = 5, resend_seconds: int = 60, subject: str | None = None,
               before_send: Callable[[], None] | None = None) -> str:
    """Send a fresh 6-digit code (SPEC §9: valid ``ttl_minutes``, once per ``resend_seconds``).

    A user's code goes to their bound phone; a bare phone number (a new phone being bound)
    gets a code tied to no user. Only the hash is stored, and earlier open codes for the
    same purpose stop working. The throttle counts only codes still open, so a user who
    finished signing in may sign in again at once.

    ``subject`` keys the codes by a typed username (找回密码); with ``user_or_phone`` None the code
    is stored and not sent — an unknown account's, which must be throttled and checked exactly as a
    real one's. ``before_send`` is the caller ending its transaction: a gateway may take seconds to
    answer, and no lock (SQLite's write lock, a user row's) may be held meanwhile (issue 16).
    """
    if isinstance(user_or_phone, User):
        user, phone = user_or_phone, user_or_phone.phone
        if not phone:
            raise WorkflowError(NO_PHONE)
    elif user_or_phone is None:
        user, phone = None, None
        if subject is None:
            raise WorkflowError("请输入手机号")
    else:
        user, phone = None, (user_or_phone or "").strip()
        if not phone:
            raise WorkflowError("请输入手机号")

    previous = _latest_open_code(session, purpose, user=user, phone=phone, subject=subject)
    if previous is not None and previous.created_at > now - timedelta(seconds=resend_seconds):
        wait = _seconds_left(previous.created_at + timedelta(seconds=resend_seconds), now)
        raise SmsThrottled(f"验证码发送过于频繁，请{wait}秒后再试")

    code = f"{secrets.randbelow(10**6):06d}"
    label = Purpose.LABELS.get(purpose, "")
    text = f"【建设行业证书管理】您的{label}验证码：{code}，{ttl_minutes}分钟内有效，请勿泄露给他人。"
    user_id = user.id if user is not None else None
    if before_send is not None:
        before_send()
    # Sent before anything is stored: a failed send must not start the resend throttle.
    if phone is not None:
        try:
            deliver(sender, SmsMessage(phone=phone, text=text, code=code, minutes=ttl_minutes, purpose=purpose))
        except SmsError as exc:
            raise WorkflowError("短信发送失败，请稍后重试") from exc

    for row in session.scalars(_open_codes(purpose, user=user, phone=phone, subject=subject)):
        row.used = True  # earlier codes for the same door stop working
    session.add(SmsCode(user_id=user_id, phone=phone, subject=subject, purpose=purpose,
                        code_hash=generate_password_hash(code, method=_CODE_HASH_METHOD), created_at=now,
                        expires_at=now + timedelta(minutes=ttl_minutes), attempts=0, used=False))
    session.flush()
    return code


def _normalize_code(code: str | None) -> str:
    return "".join(unicodedata.normalize("NFKC", code or "").split())


def verify_code(session: Session, user: User | None, purpose: str, code: str, *, now: datetime,
                max_attempts: int = 5, phone: str | None = None, subject: str | None = None) -> SmsCode:
    """Check the latest open code for ``purpose`` and mark it used (SPEC §9: 5 attempts).

    The ``max_attempts``-th wrong try closes the code; a new one must be requested.
    Pass ``user=None`` and ``phone`` for a code sent to a bare number, ``subject`` for 找回密码.
    A code that was never sent (an unknown account's) is never right, and is refused in the same
    words, after the same attempts, as a wrong one.
    """
    row = _latest_open_code(session, purpose, user=user, phone=phone, subject=subject)
    if row is None:
        raise WorkflowError("请先获取验证码")
    if row.expires_at <= now:
        raise WorkflowError("验证码已过期，请重新获取")
    if row.attempts >= max_attempts:
        raise WorkflowError("验证码错误次数过多，请重新获取")
    typed = _normalize_code(code)
    matches = len(typed) == 6 and typed.isdigit() and check_password_hash(row.code_hash, typed)
    if not matches or (subject is not None and row.user_id is None):
        row.attempts += 1
        session.flush()
        if row.attempts >= max_attempts:
            raise WorkflowError("验证码错误次数过多，请重新获取")
        raise WorkflowError("验证码错误")
    row.used = True
    session.flush()
    return row


# --- passwords ----------------------------------------------------------------------------


def _check_new_password(new: str, confirm: str) -> None:
    if (new or "") != (confirm or ""):
        raise WorkflowError("两次输入的新密码不一致")
    try:
        check_password_policy(new)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from exc


def change_password(session: Session, user: User, old: str, new: str, confirm: str, *,
                    keep: UserSession | None = None) -> None:
    """修改密码 (SPEC §7: old password required). Clears a forced change after a reset; every
    other signed-in session of the user ends (issue 16), ``keep`` — the one changing it — stays."""
    if not password_matches(user, old):
        raise WorkflowError("原密码错误")
    if (new or "") == (old or ""):
        raise WorkflowError("新密码不能与原密码相同")
    _check_new_password(new, confirm)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    ended = sessions.end_all(session, sessions.Reason.PASSWORD_CHANGED, user_ids=[user.id], keep=keep)
    log(session, user, Kind.PASSWORD, "修改密码" + (f"，其他 {ended} 个登录会话已退出" if ended else ""), obj=user)
    session.flush()


def start_password_reset(session: Session, username: str, sender, *, now: datetime, ttl_minutes: int = 5,
                         resend_seconds: int = 60, ip: str | None = None,
                         before_send: Callable[[], None] | None = None) -> str | None:
    """找回密码, step one: a code to the account's bound phone. Returns the code sent, or None.

    Issue 16: the answer must never tell an outsider which accounts exist. An unknown username, or
    an account that may not sign in, gets a code too — stored under the typed name and never sent —
    so the resend throttle, the attempts and the expiry of step two behave exactly as for a real
    account. Raises ``SmsThrottled`` alike for both (the caller moves on to step two anyway)."""
    typed = (username or "").strip()[:64]
    if not typed:
        raise WorkflowError("请输入用户名")
    user = session.scalars(select(User).where(User.username == typed)).first()
    refusal = "用户名不存在" if user is None else (login_refusal(user) or (None if user.phone else NO_PHONE))
    code = issue_code(session, None if refusal else user, Purpose.RESET, sender, now=now, ttl_minutes=ttl_minutes,
                      resend_seconds=resend_seconds, subject=typed, before_send=before_send)
    if refusal:
        log(session, user, Kind.PASSWORD, f"找回密码未发送验证码：{refusal}", username=typed, ip=ip)
        return None
    return code


def reset_password_with_code(session: Session, username: str, code: str, new: str, confirm: str, *,
                             now: datetime, max_attempts: int = 5, ip: str | None = None) -> User:
    """找回密码 (SPEC §9), step two: an SMS code to the bound phone instead of the old password.

    The new password is checked first so that a typo in it does not use up the code — for an unknown
    account too, in the same words. Proving the phone also lifts a lockout (the guessed-at password no
    longer exists) and ends every session of the account."""
    _check_new_password(new, confirm)
    typed = (username or "").strip()[:64]
    row = verify_code(session, None, Purpose.RESET, code, now=now, max_attempts=max_attempts, subject=typed)
    user = session.get(User, row.user_id)
    refusal = login_refusal(user)
    if refusal:  # disabled or taken offline since the code was sent
        raise WorkflowError("验证码错误")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.failed_logins = 0
    user.locked_until = None
    sessions.end_all(session, sessions.Reason.PASSWORD_RESET, user_ids=[user.id])
    log(session, user, Kind.PASSWORD, "通过短信验证码找回密码", obj=user, ip=ip)
    session.flush()
    return user


def temporary_password() -> str:
    """A random password that meets the policy: letters and digits, unambiguous characters."""
    alphabet = _TEMP_LETTERS + _TEMP_DIGITS
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(TEMP_PASSWORD_LENGTH))
        if any(c in string.ascii_letters for c in pw) and any(c.isdigit() for c in pw):
            check_password_policy(pw)
            return pw


def set_temporary_password(session: Session, admin_user: User, target_user: User, *, ip: str | None = None) -> str:
    """重置密码 (SPEC §7): a one-time password, shown once; the user must change it at next login.

    Whether ``admin_user`` may reset ``target_user`` is the caller's permission check
    (user management); this records who did it and unlocks the account.
    """
    pw = temporary_password()
    target_user.password_hash = hash_password(pw)
    target_user.must_change_password = True
    target_user.failed_logins = 0
    target_user.locked_until = None
    sessions.end_all(session, sessions.Reason.PASSWORD_RESET, user_ids=[target_user.id])
    log(session, admin_user, Kind.PASSWORD, f"重置用户 {target_user.username} 的密码", obj=target_user, ip=ip)
    session.flush()
    return pw
