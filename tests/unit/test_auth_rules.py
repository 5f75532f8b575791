"""Sign-in rules (SPEC §9) straight against workflows.auth and workflows.sms, no HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from models import AuditLog, OrgStatus, SmsCode, User
from models.base import utcnow
from workflows import WorkflowError
from workflows import auth as rules
from workflows.audit import Kind
from workflows.engine import setting_state
from workflows.privacy import mask_phone
from workflows.sms import SENDERS, OutboxSender, SmsError, get_sender, outbox_path, register_sender
from workflows.validators import check_password_policy

DEMO_PASSWORD = "Demo@2026"
CODE_RE = re.compile(r"验证码[：:]?\s*(\d{6})")


class FakeSender:
    """Records what would have gone to the carrier."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, phone, text):
        self.sent.append((phone, text))

    @property
    def last_code(self) -> str:
        return CODE_RE.search(self.sent[-1][1]).group(1)


class BrokenSender:
    def send(self, phone, text):
        raise SmsError("gateway down")


def user_named(session, username) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def audit_rows(session, kind, username=None):
    stmt = select(AuditLog).where(AuditLog.kind == kind)
    if username is not None:
        stmt = stmt.where(AuditLog.username == username)
    return session.scalars(stmt.order_by(AuditLog.id)).all()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- passwords and lockout ----------------------------------------------------------------


def test_demo_passwords_are_stored_hashed(session):
    user = user_named(session, "jinan")
    assert user.password_hash != DEMO_PASSWORD
    assert DEMO_PASSWORD not in user.password_hash
    assert rules.password_matches(user, DEMO_PASSWORD)
    assert not rules.password_matches(user, "demo@2026")


def test_hash_password_is_salted():
    first, second = rules.hash_password("Secret123"), rules.hash_password("Secret123")
    assert first != second
    assert check_password_hash(first, "Secret123")


def test_authenticate_returns_user_and_leaves_success_row_to_complete_login(session):
    now = utcnow()
    user = rules.authenticate(session, " jinan ", DEMO_PASSWORD, now=now, ip="10.0.0.1")
    assert user.username == "jinan"
    assert audit_rows(session, Kind.LOGIN_OK, "jinan") == []
    rules.complete_login(session, user, now=now, ip="10.0.0.1")
    (row,) = audit_rows(session, Kind.LOGIN_OK, "jinan")
    assert row.user_id == user.id and row.organization_id == user.organization_id and row.ip == "10.0.0.1"
    assert user.last_login_at == now


def test_unknown_username_is_refused_like_a_wrong_password_and_logged(session):
    with pytest.raises(WorkflowError) as exc:
        rules.authenticate(session, "nobody", DEMO_PASSWORD, now=utcnow(), ip="10.0.0.2")
    assert exc.value.message == "用户名或密码错误"
    (row,) = audit_rows(session, Kind.LOGIN_FAIL, "nobody")
    assert row.user_id is None and row.ip == "10.0.0.2"


def test_wrong_password_counts_and_is_logged(session):
    with pytest.raises(WorkflowError, match="^用户名或密码错误$"):
        rules.authenticate(session, "jinan", "wrong-password1", now=utcnow())
    user = user_named(session, "jinan")
    assert user.failed_logins == 1
    (row,) = audit_rows(session, Kind.LOGIN_FAIL, "jinan")
    assert row.user_id == user.id


def test_fifth_wrong_password_locks_for_15_minutes(session):
    now = utcnow()
    for _ in range(4):
        with pytest.raises(WorkflowError, match="^用户名或密码错误$"):
            rules.authenticate(session, "jinan", "bad", now=now)
    with pytest.raises(WorkflowError) as exc:
        rules.authenticate(session, "jinan", "bad", now=now)
    assert exc.value.message == "密码错误次数过多，账号已锁定，请15分钟后再试"
    user = user_named(session, "jinan")
    assert user.locked_until == now + timedelta(minutes=15)

    # Locked: even the right password is refused, with the minutes left.
    with pytest.raises(WorkflowError, match="^账号已锁定，请15分钟后再试$"):
        rules.authenticate(session, "jinan", DEMO_PASSWORD, now=now)
    with pytest.raises(WorkflowError, match="^账号已锁定，请5分钟后再试$"):
        rules.authenticate(session, "jinan", DEMO_PASSWORD, now=now + timedelta(minutes=10))

    later = now + timedelta(minutes=15, seconds=1)
    assert rules.authenticate(session, "jinan", DEMO_PASSWORD, now=later) is user
    assert user.failed_logins == 0 and user.locked_until is None


def test_limits_come_from_the_caller(session):
    now = utcnow()
    with pytest.raises(WorkflowError, match="^用户名或密码错误$"):
        rules.authenticate(session, "jinan", "bad", now=now, max_failures=2, lock_minutes=3)
    with pytest.raises(WorkflowError, match="^密码错误次数过多，账号已锁定，请3分钟后再试$"):
        rules.authenticate(session, "jinan", "bad", now=now, max_failures=2, lock_minutes=3)


def test_right_password_resets_the_failure_counter(session):
    now = utcnow()
    for _ in range(4):
        with pytest.raises(WorkflowError):
            rules.authenticate(session, "jinan", "bad", now=now)
    rules.authenticate(session, "jinan", DEMO_PASSWORD, now=now)
    assert user_named(session, "jinan").failed_logins == 0
    with pytest.raises(WorkflowError, match="^用户名或密码错误$"):  # a fresh count, no lock
        rules.authenticate(session, "jinan", "bad", now=now)


@pytest.mark.parametrize("status, message", [
    (OrgStatus.pending, "账号待主管部门审核"),
    (OrgStatus.rejected, "账号审核未通过"),
    (OrgStatus.offline, "所属机构已下线，无法登录"),
])
def test_organization_status_refuses_sign_in(session, status, message):
    user = user_named(session, "enterprise")
    with setting_state():
        user.organization.status = status
    session.flush()
    with pytest.raises(WorkflowError) as exc:
        rules.authenticate(session, "enterprise", DEMO_PASSWORD, now=utcnow())
    assert exc.value.message == message
    assert rules.login_refusal(user) == message
    assert not rules.may_stay_signed_in(user)
    assert audit_rows(session, Kind.LOGIN_FAIL, "enterprise")[-1].summary == f"登录失败：{message}"


def test_disabled_account_is_refused(session):
    user_named(session, "jinan").is_enabled = False
    with pytest.raises(WorkflowError, match="^账号已停用$"):
        rules.authenticate(session, "jinan", DEMO_PASSWORD, now=utcnow())


def test_account_status_is_not_revealed_without_the_password(session):
    user_named(session, "jinan").is_enabled = False
    with pytest.raises(WorkflowError, match="^用户名或密码错误$"):
        rules.authenticate(session, "jinan", "bad", now=utcnow())


def test_account_without_a_phone_cannot_sign_in(session):
    user_named(session, "jinan").phone = None
    with pytest.raises(WorkflowError, match="^未绑定手机号，请联系管理员$"):
        rules.authenticate(session, "jinan", DEMO_PASSWORD, now=utcnow())


def test_individual_user_without_organization_signs_in(session):
    user = rules.authenticate(session, "person", DEMO_PASSWORD, now=utcnow())
    assert user.organization is None and rules.may_stay_signed_in(user)


# --- SMS codes ----------------------------------------------------------------------------


def test_issue_code_sends_six_digits_and_stores_only_a_hash(session):
    user = user_named(session, "jinan")
    sender = FakeSender()
    now = utcnow()
    code = rules.issue_code(session, user, rules.Purpose.LOGIN, sender, now=now)
    assert re.fullmatch(r"\d{6}", code)
    phone, text = sender.sent[-1]
    assert phone == user.phone and f"验证码：{code}" in text
    row = session.scalars(select(SmsCode).where(SmsCode.user_id == user.id)).one()
    assert row.code_hash != code and code not in row.code_hash
    assert row.expires_at == now + timedelta(minutes=5) and not row.used


def test_resend_within_a_minute_is_refused(session):
    user = user_named(session, "jinan")
    sender = FakeSender()
    now = utcnow()
    rules.issue_code(session, user, "login", sender, now=now)
    with pytest.raises(WorkflowError, match="^验证码发送过于频繁，请60秒后再试$"):
        rules.issue_code(session, user, "login", sender, now=now)
    with pytest.raises(rules.SmsThrottled, match="^验证码发送过于频繁，请20秒后再试$"):
        rules.issue_code(session, user, "login", sender, now=now + timedelta(seconds=40))
    assert len(sender.sent) == 1
    rules.issue_code(session, user, "login", sender, now=now + timedelta(seconds=60))
    assert len(sender.sent) == 2


def test_a_new_code_replaces_the_old_one(session):
    user = user_named(session, "jinan")
    sender = FakeSender()
    now = utcnow()
    first = rules.issue_code(session, user, "login", sender, now=now)
    later = now + timedelta(seconds=61)
    second = rules.issue_code(session, user, "login", sender, now=later)
    if first != second:  # one chance in a million they coincide
        with pytest.raises(WorkflowError, match="^验证码错误$"):
            rules.verify_code(session, user, "login", first, now=later)
    rules.verify_code(session, user, "login", second, now=later)


def test_a_used_code_does_not_throttle_the_next_sign_in(session):
    user = user_named(session, "jinan")
    sender = FakeSender()
    now = utcnow()
    rules.verify_code(session, user, "login", rules.issue_code(session, user, "login", sender, now=now), now=now)
    rules.issue_code(session, user, "login", sender, now=now + timedelta(seconds=1))
    assert len(sender.sent) == 2


def test_verify_code_marks_it_used(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, "login", FakeSender(), now=now)
    row = rules.verify_code(session, user, "login", f" {code} ", now=now + timedelta(minutes=4))
    assert row.used
    with pytest.raises(WorkflowError, match="^请先获取验证码$"):
        rules.verify_code(session, user, "login", code, now=now)


def test_code_is_only_good_for_its_purpose(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, rules.Purpose.LOGIN, FakeSender(), now=now)
    with pytest.raises(WorkflowError, match="^请先获取验证码$"):
        rules.verify_code(session, user, rules.Purpose.RESET, code, now=now)


def test_expired_code_is_refused(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, "login", FakeSender(), now=now)
    with pytest.raises(WorkflowError, match="^验证码已过期，请重新获取$"):
        rules.verify_code(session, user, "login", code, now=now + timedelta(minutes=5))


def test_five_wrong_codes_close_the_code(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, "login", FakeSender(), now=now)
    for _ in range(4):
        with pytest.raises(WorkflowError, match="^验证码错误$"):
            rules.verify_code(session, user, "login", wrong(code), now=now)
    with pytest.raises(WorkflowError, match="^验证码错误次数过多，请重新获取$"):
        rules.verify_code(session, user, "login", "abc", now=now)
    with pytest.raises(WorkflowError, match="^验证码错误次数过多，请重新获取$"):
        rules.verify_code(session, user, "login", code, now=now)
    # A new code (after the resend interval) works again.
    fresh = rules.issue_code(session, user, "login", FakeSender(), now=now + timedelta(seconds=61))
    rules.verify_code(session, user, "login", fresh, now=now + timedelta(seconds=61))


def test_issue_code_needs_a_bound_phone(session):
    user = user_named(session, "jinan")
    user.phone = None
    with pytest.raises(WorkflowError, match="^未绑定手机号，请联系管理员$"):
        rules.issue_code(session, user, "login", FakeSender(), now=utcnow())


def test_failed_send_does_not_start_the_throttle(session):
    user = user_named(session, "jinan")
    now = utcnow()
    with pytest.raises(WorkflowError, match="^短信发送失败，请稍后重试$"):
        rules.issue_code(session, user, "login", BrokenSender(), now=now)
    rules.issue_code(session, user, "login", FakeSender(), now=now)


def test_code_to_a_bare_phone_number(session):
    now = utcnow()
    sender = FakeSender()
    code = rules.issue_code(session, "13900000000", rules.Purpose.PHONE, sender, now=now)
    assert sender.sent[-1][0] == "13900000000"
    rules.verify_code(session, None, rules.Purpose.PHONE, code, now=now, phone="13900000000")


def test_verify_login_code_logs_failures_and_success(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, "login", FakeSender(), now=now)
    with pytest.raises(WorkflowError, match="^验证码错误$"):
        rules.verify_login_code(session, user, wrong(code), now=now)
    assert audit_rows(session, Kind.LOGIN_FAIL, "jinan")[-1].summary == "登录失败：短信验证码错误"
    rules.verify_login_code(session, user, code, now=now)
    assert len(audit_rows(session, Kind.LOGIN_OK, "jinan")) == 1


def test_verify_login_code_rechecks_the_organization(session):
    user = user_named(session, "jinan")
    now = utcnow()
    code = rules.issue_code(session, user, "login", FakeSender(), now=now)
    with setting_state():
        user.organization.status = OrgStatus.offline
    with pytest.raises(WorkflowError, match="^所属机构已下线，无法登录$"):
        rules.verify_login_code(session, user, code, now=now)


@pytest.mark.parametrize("phone, masked", [
    ("13800000001", "138****0001"), (None, ""), ("12345", "*****"),
])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


# --- changing and resetting passwords -----------------------------------------------------


@pytest.mark.parametrize("old, new, confirm, message", [
    ("Wrong@2026", "Better2026", "Better2026", "原密码错误"),
    (DEMO_PASSWORD, DEMO_PASSWORD, DEMO_PASSWORD, "新密码不能与原密码相同"),
    (DEMO_PASSWORD, "Better2026", "Better2027", "两次输入的新密码不一致"),
    (DEMO_PASSWORD, "short1", "short1", "密码至少8位，且必须包含字母和数字"),
    (DEMO_PASSWORD, "12345678", "12345678", "密码至少8位，且必须包含字母和数字"),
    (DEMO_PASSWORD, "abcdefgh", "abcdefgh", "密码至少8位，且必须包含字母和数字"),
])
def test_change_password_refusals(session, old, new, confirm, message):
    user = user_named(session, "jinan")
    before = user.password_hash
    with pytest.raises(WorkflowError) as exc:
        rules.change_password(session, user, old, new, confirm)
    assert exc.value.message == message
    assert user.password_hash == before


def test_change_password(session):
    user = user_named(session, "jinan")
    user.must_change_password = True
    rules.change_password(session, user, DEMO_PASSWORD, "Better2026", "Better2026")
    assert user.password_hash != "Better2026"
    assert rules.password_matches(user, "Better2026") and not rules.password_matches(user, DEMO_PASSWORD)
    assert user.must_change_password is False
    assert audit_rows(session, Kind.PASSWORD, "jinan")[-1].summary == "修改密码"


def test_temporary_password(session):
    admin, target = user_named(session, "province"), user_named(session, "jinan")
    target.locked_until = utcnow() + timedelta(minutes=10)
    pw = rules.set_temporary_password(session, admin, target)
    check_password_policy(pw)
    assert len(pw) == rules.TEMP_PASSWORD_LENGTH
    assert rules.password_matches(target, pw) and target.password_hash != pw
    assert target.must_change_password is True and target.locked_until is None
    row = audit_rows(session, Kind.PASSWORD, "province")[-1]
    assert row.object_id == target.id and "jinan" in row.summary
    assert pw not in row.summary
    assert rules.set_temporary_password(session, admin, target) != pw


def test_temporary_passwords_always_meet_the_policy():
    for _ in range(200):
        check_password_policy(rules.temporary_password())


def test_reset_password_with_code(session):
    user = user_named(session, "jinan")
    now = utcnow()
    user.locked_until = now + timedelta(minutes=10)
    sender = FakeSender()
    code = rules.start_password_reset(session, "jinan", sender, now=now)
    assert sender.sent[-1][0] == user.phone and code in sender.sent[-1][1]
    # A weak new password is refused before the code is looked at, so the code survives.
    with pytest.raises(WorkflowError, match="^密码至少8位"):
        rules.reset_password_with_code(session, "jinan", code, "weak", "weak", now=now)
    assert rules.reset_password_with_code(session, "jinan", code, "Better2026", "Better2026", now=now) is user
    assert rules.password_matches(user, "Better2026")
    assert user.locked_until is None
    assert audit_rows(session, Kind.PASSWORD, "jinan")[-1].summary == "通过短信验证码找回密码"


def test_start_password_reset_sends_nothing_for_an_unknown_user(session):
    sender = FakeSender()
    assert rules.start_password_reset(session, "nobody", sender, now=utcnow()) is None
    assert not sender.sent
    with pytest.raises(WorkflowError, match="^请输入用户名$"):
        rules.start_password_reset(session, "  ", sender, now=utcnow())


def test_start_password_reset_sends_nothing_for_an_offline_organization(session):
    with setting_state():
        user_named(session, "jinan").organization.status = OrgStatus.offline
    sender = FakeSender()
    assert rules.start_password_reset(session, "jinan", sender, now=utcnow()) is None
    assert not sender.sent


def _reset_answers(session, username: str, now) -> list[str]:
    """Every branch of 找回密码 for ``username``, in order: what the user is told each time."""
    said = []

    def attempt(fn):
        try:
            fn()
            said.append("ok")
        except WorkflowError as exc:
            said.append(exc.message)

    sender = FakeSender()
    attempt(lambda: rules.start_password_reset(session, username, sender, now=now))
    attempt(lambda: rules.start_password_reset(session, username, sender, now=now + timedelta(seconds=10)))
    attempt(lambda: rules.reset_password_with_code(session, username, "000000", "Better2026", "Other2026", now=now))
    attempt(lambda: rules.reset_password_with_code(session, username, "000000", "weak", "weak", now=now))
    for _ in range(6):  # a wrong code, up to the limit and one beyond
        attempt(lambda: rules.reset_password_with_code(session, username, "000000", "Better2026", "Better2026",
                                                       now=now))
    attempt(lambda: rules.start_password_reset(session, username, sender, now=now + timedelta(seconds=61)))
    attempt(lambda: rules.reset_password_with_code(session, username, "000000", "Better2026", "Better2026",
                                                   now=now + timedelta(minutes=7)))
    return said


def test_password_reset_answers_the_same_for_real_and_unknown_accounts(session, monkeypatch):
    """Issue 16: mismatched confirmation, weak password, resend within the limit, wrong codes, the
    attempt limit and expiry — word for word the same whether the account exists or not."""
    import secrets

    monkeypatch.setattr(secrets, "randbelow", lambda n: 123456)  # so that "000000" is wrong for both
    now = utcnow()
    real = _reset_answers(session, "jinan", now)
    unknown = _reset_answers(session, "no-such-user", now)
    disabled_user = user_named(session, "qingdao")
    disabled_user.is_enabled = False
    disabled = _reset_answers(session, "qingdao", now)
    assert real == unknown == disabled
    assert real[:4] == ["ok", "验证码发送过于频繁，请50秒后再试", "两次输入的新密码不一致", real[3]]
    assert real[3].startswith("密码至少8位")
    assert real[4:10] == ["验证码错误"] * 4 + ["验证码错误次数过多，请重新获取"] * 2
    assert real[10:] == ["ok", "验证码已过期，请重新获取"]


def test_an_unknown_accounts_code_is_never_right(session, monkeypatch):
    import secrets

    monkeypatch.setattr(secrets, "randbelow", lambda n: 123456)
    now = utcnow()
    rules.start_password_reset(session, "no-such-user", FakeSender(), now=now)
    with pytest.raises(WorkflowError, match="^验证码错误$"):  # even the code that was stored
        rules.reset_password_with_code(session, "no-such-user", "123456", "Better2026", "Better2026", now=now)


# --- senders ------------------------------------------------------------------------------


def test_outbox_sender_appends_one_line_per_message(tmp_path):
    path = tmp_path / "sub" / "outbox.log"
    sender = OutboxSender(str(path))
    sender.send("13800000001", "您的登录验证码：123456，5分钟内有效")
    sender.send("13800000002", "第二条\n换行\t制表")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    stamp, phone, text = lines[0].split("\t")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", stamp)
    assert phone == "13800000001" and CODE_RE.search(text).group(1) == "123456"
    assert lines[1].split("\t")[2] == "第二条 换行 制表"


def test_get_sender_picks_by_config(tmp_path):
    sender = get_sender({}, str(tmp_path))
    assert isinstance(sender, OutboxSender) and sender.path == str(tmp_path / "sms_outbox.log")
    assert get_sender({"SMS_SENDER": "outbox", "SMS_OUTBOX_PATH": "/x/y.log"}).path == "/x/y.log"
    assert outbox_path({"SMS_OUTBOX_PATH": ""}, "/inst") == "/inst/sms_outbox.log"
    with pytest.raises(ValueError, match="unknown SMS_SENDER"):
        get_sender({"SMS_SENDER": "carrier-pigeon"})


def test_senders_are_pluggable():
    @register_sender("test-fake")
    def _fake(config, instance_path):
        return FakeSender()

    try:
        assert isinstance(get_sender({"SMS_SENDER": "test-fake"}), FakeSender)
    finally:
        SENDERS.pop("test-fake")


def test_app_outbox_path_comes_from_config(app):
    sender = get_sender(app.config, app.instance_path)
    assert sender.path == app.config["SMS_OUTBOX_PATH"]
