"""Issue 4's one-of rules under concurrency on PostgreSQL (SPEC §5.3–§5.5).

Each rule is checked by reading first (one open declaration per specialty, one open enterprise
change, one registration per credit code); two requests at the same moment both pass that
read. The partial unique indexes and unique columns decide, and the loser gets the rule's
Chinese message, never a 500 and never a second row.
"""

from __future__ import annotations

from pg_helpers import run, user
from sqlalchemy import func, select

from models import EnterpriseChange, Organization, Registration, User, db
from models.base import utcnow
from seed.images import make_png
from workflows.auth import Purpose, issue_code
from workflows.validators import make_credit_code


def test_two_simultaneous_declarations_of_one_specialty_leave_one(pg_app, tmp_path):
    holder = user(db.session, "person")
    enterprise = user(db.session, "enterprise").organization.name
    outcomes = run(pg_app, tmp_path, [("declare_job", ("person", "08", enterprise))] * 2)
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "已有办理中" in next(o[1] for o in outcomes if o[0] == "refused")
    assert db.session.scalar(select(func.count()).select_from(Registration).where(
        Registration.person_id == holder.person_id, Registration.specialty == "08")) == 1


class _Keep:
    def __init__(self):
        self.sent = []

    def send(self, phone, text):
        self.sent.append((phone, text))


def test_two_simultaneous_enterprise_registrations_with_one_credit_code_leave_one(pg_app, tmp_path):
    code = make_credit_code("91370100MA3RACE01")
    sender, now = _Keep(), utcnow()
    jobs = []
    for n, phone in enumerate(("13799990001", "13799990002")):  # numbers no demo account holds
        sms = issue_code(db.session, phone, Purpose.REGISTER, sender, now=now)
        jobs.append(("enterprise_registration_job", (
            {"name": f"并发注册测试企业{n}", "credit_code": code, "region_code": "370100", "address": "济南市历下区",
             "contact": "王经理", "contact_phone": "0531-88888888", "admin_name": "王经理",
             "username": f"race_ent_{n}", "password": "Race2026ok", "password2": "Race2026ok", "phone": phone,
             "sms_code": sms}, make_png())))
    db.session.commit()
    outcomes = run(pg_app, tmp_path, jobs)
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "禁止重复注册" in next(o[1] for o in outcomes if o[0] == "refused")
    assert db.session.scalar(select(func.count()).select_from(Organization).where(
        Organization.credit_code == code)) == 1


def test_two_simultaneous_enterprise_changes_leave_one_open(pg_app, tmp_path):
    org_id = user(db.session, "enterprise").organization_id
    outcomes = run(pg_app, tmp_path, [("change_job", ("enterprise", {"new_name": "山东鲁建建设集团股份有限公司"})),
                                      ("change_job", ("enterprise", {"new_region_code": "370200"}))])
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "不允许再次提交" in next(o[1] for o in outcomes if o[0] == "refused")
    assert db.session.scalar(select(func.count()).select_from(EnterpriseChange).where(
        EnterpriseChange.enterprise_id == org_id)) == 1


def test_two_simultaneous_binds_of_one_phone_leave_one(pg_app, tmp_path):
    """Issue 17: both 修改 pass the check; the partial unique index lets one bind the number and the
    other reads the Chinese refusal — never two accounts receiving one number's SMS codes."""
    phone = "13799990003"
    outcomes = run(pg_app, tmp_path, [("phone_update_job", ("province", "jinan_reviewer", phone)),
                                      ("phone_update_job", ("province", "province_reviewer", phone))])
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    assert "该手机号已绑定其他账号" in next(o[1] for o in outcomes if o[0] == "refused")
    assert db.session.scalar(select(func.count()).select_from(User).where(User.phone == phone)) == 1
