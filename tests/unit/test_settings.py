"""设置 rules (SPEC §7, 003 §五): 个人资料, 更换绑定手机 (SMS code to the new number), 机构资料."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from models import AuditLog
from tests.factories import user
from workflows import FormErrors, WorkflowError
from workflows import profile as rules
from workflows.auth import SmsThrottled

NOW = datetime(2026, 3, 1, 9, 0, 0)
NEW = "13912340000"


class FakeSender:
    def __init__(self):
        self.sent = []

    def send(self, phone, text):
        self.sent.append((phone, text))


def _logs(session, summary_start):
    return list(session.scalars(select(AuditLog).where(AuditLog.summary.startswith(summary_start))))


def _start(session, account="jinan", phone=NEW, now=NOW):
    sender = FakeSender()
    u = user(session, account)
    normalized, code = rules.start_phone_change(session, u, phone, sender, now=now)
    return u, normalized, code, sender


# --- 更换绑定手机 ---------------------------------------------------------------------------


def test_code_goes_to_the_new_number_only(session):
    u, phone, code, sender = _start(session, phone="139 1234 0000")
    assert phone == NEW
    assert sender.sent == [(NEW, sender.sent[0][1])]
    assert code in sender.sent[0][1] and "更换绑定手机" in sender.sent[0][1]
    assert u.phone == "13800000003"  # nothing changes before the code is entered


def test_right_code_binds_the_new_number_and_logs_masked(session):
    u, phone, code, _ = _start(session)
    rules.change_phone(session, u, phone, code, now=NOW + timedelta(minutes=1), ip="1.2.3.4")
    assert u.phone == NEW
    [row] = _logs(session, "更换绑定手机")
    assert row.detail == {"phone": {"before": "138****0003", "after": "139****0000"}}
    assert row.user_id == u.id and row.object_id == u.id and row.ip == "1.2.3.4"
    assert "13800000003" not in row.summary and NEW not in row.summary


def test_wrong_code_leaves_the_phone_and_counts(session):
    u, phone, code, _ = _start(session)
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(WorkflowError, match="^验证码错误$"):
        rules.change_phone(session, u, phone, wrong, now=NOW)
    assert u.phone == "13800000003"
    assert _logs(session, "更换绑定手机") == []
    rules.change_phone(session, u, phone, code, now=NOW)  # the right one still works
    assert u.phone == NEW


def test_fifth_wrong_code_closes_it(session):
    u, phone, code, _ = _start(session)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        with pytest.raises(WorkflowError, match="^验证码错误$"):
            rules.change_phone(session, u, phone, wrong, now=NOW)
    with pytest.raises(WorkflowError, match="错误次数过多"):
        rules.change_phone(session, u, phone, wrong, now=NOW)
    with pytest.raises(WorkflowError, match="错误次数过多"):
        rules.change_phone(session, u, phone, code, now=NOW)
    assert u.phone == "13800000003"


def test_expired_code_is_refused(session):
    u, phone, code, _ = _start(session)
    with pytest.raises(WorkflowError, match="已过期"):
        rules.change_phone(session, u, phone, code, now=NOW + timedelta(minutes=6))
    assert u.phone == "13800000003"


def test_code_for_another_number_or_purpose_does_not_open(session):
    u, phone, code, _ = _start(session)
    with pytest.raises(WorkflowError, match="请先获取验证码"):
        rules.change_phone(session, u, "13912349999", code, now=NOW)
    assert u.phone == "13800000003"


def test_same_number_and_bad_numbers_are_refused_without_sms(session):
    u = user(session, "jinan")
    sender = FakeSender()
    for typed, message in (("13800000003", "相同"), ("", "请输入新手机号"), ("12345", "手机号格式不正确")):
        with pytest.raises(WorkflowError, match=message):
            rules.start_phone_change(session, u, typed, sender, now=NOW)
    with pytest.raises(WorkflowError, match="相同"):
        rules.change_phone(session, u, "13800000003", "123456", now=NOW)
    assert sender.sent == []


def test_resend_is_throttled_once_a_minute(session):
    u, phone, _, sender = _start(session)
    with pytest.raises(SmsThrottled, match="秒后再试"):
        rules.start_phone_change(session, u, phone, sender, now=NOW + timedelta(seconds=30))
    assert len(sender.sent) == 1
    _, code = rules.start_phone_change(session, u, phone, sender, now=NOW + timedelta(seconds=61))
    assert len(sender.sent) == 2
    rules.change_phone(session, u, phone, code, now=NOW + timedelta(seconds=70))
    assert u.phone == NEW


# --- 个人资料 -------------------------------------------------------------------------------


def test_name_edit_is_logged_with_before_and_after(session):
    u = user(session, "jinan")
    before = u.name
    assert rules.update_name(session, u, "  王新名  ") is True
    assert u.name == "王新名"
    [row] = _logs(session, "修改个人资料")
    assert row.detail == {"name": {"before": before, "after": "王新名"}}
    assert rules.update_name(session, u, "王新名") is False


@pytest.mark.parametrize("typed, message", [("", "请填写姓名"), ("   ", "请填写姓名"), ("张" * 51, "不能超过50")])
def test_bad_names_are_refused(session, typed, message):
    u = user(session, "jinan")
    before = u.name
    with pytest.raises(FormErrors, match=message):
        rules.update_name(session, u, typed)
    assert u.name == before


# --- 机构资料 -------------------------------------------------------------------------------

GOOD = {"contact": "刘科长", "phone": "0531-12345678", "address": "济南市市中区", "postcode": "250001"}


def test_org_admin_edits_contact_details_logged(session):
    u = user(session, "jinan")
    org = u.organization
    before = org.contact
    changed = rules.update_org_profile(session, u, org, GOOD, ip="1.2.3.4")
    assert "联系人" in changed and org.contact == "刘科长" and org.postcode == "250001"
    [row] = _logs(session, "修改机构资料")
    assert row.detail["contact"] == {"before": before, "after": "刘科长"}
    assert row.object_id == org.id
    assert rules.update_org_profile(session, u, org, GOOD) == []


@pytest.mark.parametrize("who, message", [("jinan_reviewer", "只有本机构的管理员"), ("enterprise", "企业信息")])
def test_others_may_not_edit(session, who, message):
    u = user(session, who)
    assert not rules.may_edit_org(u, u.organization)
    before = u.organization.contact
    with pytest.raises(WorkflowError, match=message):
        rules.update_org_profile(session, u, u.organization, GOOD)
    assert u.organization.contact == before


def test_admin_may_not_edit_another_organization(session):
    u = user(session, "jinan")
    other = user(session, "qingdao").organization
    with pytest.raises(WorkflowError):
        rules.update_org_profile(session, u, other, GOOD)


def test_bad_org_values_change_nothing(session):
    u = user(session, "jinan")
    org = u.organization
    before = (org.contact, org.phone, org.address, org.postcode)
    with pytest.raises(FormErrors) as caught:
        rules.update_org_profile(session, u, org, {**GOOD, "contact": "", "postcode": "25A", "address": "路" * 256})
    assert set(caught.value.errors) == {"contact", "postcode", "address"}
    assert (org.contact, org.phone, org.address, org.postcode) == before
    assert _logs(session, "修改机构资料") == []
