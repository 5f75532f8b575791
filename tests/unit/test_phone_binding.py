"""One phone number, one active account (issue 17): two accounts on one number would each receive the
other's SMS codes. Every place a phone is bound refuses a number an active account holds, in Chinese;
the partial unique index decides what the checks cannot (two binds at once); a rejected registration
or a disabled account holds no number."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from models import AccountStatus, AuditLog, User
from models.base import utcnow
from tests.factories import make_user, user
from tests.unit.test_accounts import (
    enterprise_request,
    enterprise_values,
    errors_of,
    individual_values,
    png_files,
)
from workflows import FormErrors, WorkflowError
from workflows.accounts import ACCOUNT, register_enterprise, register_individual
from workflows.auth import Purpose, binding_phone, issue_code
from workflows.profile import change_phone, start_phone_change
from workflows.users import create_user, set_enabled, update_user
from workflows.validators import PHONE_TAKEN, phone_taken


class Inbox:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


def phone_of(session, username: str) -> str:
    return user(session, username).phone


def test_the_demo_binds_no_number_twice(session):
    held = select(User.phone, func.count()).where(User.phone.is_not(None), User.holds_phone()).group_by(User.phone)
    assert all(n == 1 for _, n in session.execute(held))


def test_new_user_and_edit_refuse_a_number_another_account_holds(session):
    taken = phone_of(session, "jinan")
    manager = user(session, "inst_jinan")
    assert errors_of(lambda: create_user(session, manager, manager.organization, {
        "name": "新同事", "username": "dup_phone", "phone": taken, "role": "operator"}))["phone"] == PHONE_TAKEN
    target = make_user(session, manager.organization)
    target.phone = "13912300001"
    session.flush()
    errors = errors_of(lambda: update_user(session, manager, target, {"name": target.name, "phone": taken,
                                                                        "role": target.role.value}))
    assert errors["phone"] == PHONE_TAKEN and target.phone == "13912300001"
    # its own number again is no conflict
    assert update_user(session, manager, target, {"name": "改名", "phone": "13912300001",
                                                  "role": target.role.value}) == ["姓名"]


def test_changing_ones_own_phone_to_a_held_number_is_refused_before_any_code_is_sent(session):
    me, taken, inbox = user(session, "inst_jinan"), phone_of(session, "jinan"), Inbox()
    with pytest.raises(WorkflowError, match=PHONE_TAKEN):
        start_phone_change(session, me, taken, inbox, now=utcnow())
    assert inbox.sent == []
    with pytest.raises(WorkflowError, match=PHONE_TAKEN):
        change_phone(session, me, taken, "123456", now=utcnow())
    assert me.phone != taken


@pytest.mark.parametrize("kind", ["enterprise", "individual"])
def test_a_registration_may_not_bind_a_held_number_and_keeps_its_code(session, kind):
    taken = phone_of(session, "jinan")
    code = issue_code(session, taken, Purpose.REGISTER, Inbox(), now=utcnow())
    if kind == "enterprise":
        values = enterprise_values(session, phone=taken, sms_code=code)
        errors = errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow()))
    else:
        values = individual_values(session, phone=taken, sms_code=code)
        errors = errors_of(lambda: register_individual(session, values, now=utcnow()))
    assert errors == {"phone": PHONE_TAKEN}


def test_a_rejected_registration_releases_its_number_and_cannot_take_it_back(session):
    first = enterprise_request(session)
    phone = first.user.phone
    assert phone_taken(session, phone)  # a pending registration holds its number
    ACCOUNT.fire(session, user(session, "jinan"), first, "reject", reason="营业执照图片不清晰")
    assert first.user.account_status == AccountStatus.rejected and not phone_taken(session, phone)
    other = register_individual(session, individual_values(session, phone=phone), now=utcnow())
    assert other.user.phone == phone
    org, admin = first.organization, first.user
    again = enterprise_values(session, credit_code=org.credit_code, name=org.name, username=admin.username,
                              phone=phone)
    assert errors_of(lambda: register_enterprise(session, again, png_files(1), [], now=utcnow())) == {
        "phone": PHONE_TAKEN}
    again = enterprise_values(session, credit_code=org.credit_code, name=org.name, username=admin.username)
    assert register_enterprise(session, again, png_files(1), [], now=utcnow()).user == admin
    assert admin.account_status == AccountStatus.pending and phone_taken(session, admin.phone)


def test_a_disabled_account_holds_no_number_and_comes_back_without_a_taken_one(session):
    manager = user(session, "inst_jinan")
    target = make_user(session, manager.organization)
    target.phone = "13912300002"
    session.flush()
    set_enabled(session, manager, target, False)
    assert not phone_taken(session, "13912300002")
    newcomer, _ = create_user(session, manager, manager.organization, {
        "name": "新同事", "username": "takes_the_number", "phone": "13912300002", "role": "operator"})
    set_enabled(session, manager, target, True)
    assert target.is_enabled and target.phone is None and newcomer.phone == "13912300002"
    logged = session.scalars(select(AuditLog.summary).where(AuditLog.object_type == "user_account",
                                                            AuditLog.object_id == target.id)).all()
    assert any("139****0002 已绑定其他账号，取消绑定" in s for s in logged), logged


def test_the_index_refuses_what_the_checks_did_not_see(session):
    """Two binds at once both pass the check; the database lets one win and the other reads the
    Chinese refusal (the PostgreSQL race is in tests/postgres)."""
    a, b = user(session, "jinan"), user(session, "qingdao")
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            b.phone = a.phone
            session.flush()
    session.refresh(b)
    with pytest.raises(WorkflowError, match=PHONE_TAKEN):
        with binding_phone(session):
            b.phone = a.phone
            session.flush()
    session.refresh(b)
    assert b.phone != a.phone
    with pytest.raises(FormErrors) as caught:
        with binding_phone(session, FormErrors({"phone": PHONE_TAKEN})):
            b.phone = a.phone
            session.flush()
    assert caught.value.errors == {"phone": PHONE_TAKEN}
    session.refresh(b)
    b.is_enabled = False  # a disabled account may keep a number on record: the index leaves it out
    b.phone = a.phone
    session.flush()
    assert session.scalar(select(func.count()).select_from(User).where(User.phone == a.phone)) == 2
