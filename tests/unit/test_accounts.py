"""企业注册 / 个人注册 and 注册审核 rules (SPEC §5.3; 000 §一, 001, 002 §3.1.1).

``register_enterprise`` / ``register_individual`` check every field and report every error at
once (``FormErrors``), store nothing unless all of it is right, and bind the phone with the
手机号绑定 SMS code. ``ACCOUNT`` is the city authority's 审核通过 / 审核不通过.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import (
    AccountKind,
    AccountRequest,
    AccountStatus,
    Attachment,
    AuditLog,
    Message,
    Organization,
    OrgStatus,
    Person,
    TransitionLog,
    User,
)
from models.base import utcnow
from models.org import OrgKind
from models.user import Permission, Role
from tests.factories import png_files, user
from tests.samples import make_jpeg, make_pdf, make_png
from workflows import FormErrors, WorkflowError
from workflows.accounts import ACCOUNT, register_enterprise, register_individual
from workflows.auth import Purpose, authenticate, issue_code, login_refusal
from workflows.enterprise import city_authorities
from workflows.validators import make_credit_code, make_id_number
from workflows.visibility import clause

PASSWORD = "Zc2026abc"
REASON = "营业执照图片不清晰，请重新上传"
_n = itertools.count(1)


# -- helpers ---------------------------------------------------------------------------------------------
class Inbox:
    """An SMS sender that keeps what it sent."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


def sms_code(session, phone: str, now=None) -> str:
    return issue_code(session, phone, Purpose.REGISTER, Inbox(), now=now or utcnow())


def enterprise_values(session, *, code: bool = True, **over) -> dict:
    """A complete, correct 企业注册 form for a new enterprise in 济南 (the SMS code already sent)."""
    n = next(_n)
    values = {
        "name": f"济南测试注册建设{n}有限公司", "credit_code": make_credit_code(f"91370100MA9Y{n:05d}"),
        "region_code": "370100", "address": "济南市历下区经十路1号", "postcode": "250000", "contact": "王经理",
        "contact_phone": "0531-12345678", "qualification_no": "D237019999", "admin_name": "王管理员",
        "username": f"reg_ent_{n}", "password": PASSWORD, "password2": PASSWORD, "phone": f"1590000{n:04d}",
    }
    values.update(over)
    if code and "sms_code" not in over:
        values["sms_code"] = sms_code(session, values["phone"])
    return values


def individual_values(session, *, code: bool = True, **over) -> dict:
    n = next(_n)
    values = {
        "name": f"测试个人{n}", "id_number": make_id_number("370102", date(1990, 1, 1) + timedelta(days=n), 2 * n % 998,
                                                            "男"),
        "region_code": "370100", "username": f"reg_person_{n}", "password": PASSWORD, "password2": PASSWORD,
        "phone": f"1580000{n:04d}",
    }
    values.update(over)
    if code and "sms_code" not in over:
        values["sms_code"] = sms_code(session, values["phone"])
    return values


def counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(model))
                 for model in (Organization, User, Person, Attachment, AccountRequest, AuditLog))


def errors_of(call) -> dict[str, str]:
    with pytest.raises(FormErrors) as caught:
        call()
    return caught.value.errors


def enterprise_request(session, **over) -> AccountRequest:
    return register_enterprise(session, enterprise_values(session, **over), png_files(1, stem="营业执照"), [],
                               now=utcnow())


def individual_request(session, **over) -> AccountRequest:
    return register_individual(session, individual_values(session, **over), now=utcnow())


# -- 企业注册 --------------------------------------------------------------------------------------------
def test_city_authorities_are_the_active_city_authorities_by_region(session):
    cities = city_authorities(session)
    assert [a.region_code for a in cities] == sorted(a.region_code for a in cities)
    assert {a.kind for a in cities} == {OrgKind.authority} and len(cities) == 15  # 菏泽市 not yet onboarded
    assert cities[0].name == "济南市住房和城乡建设局"


def test_enterprise_registration_stores_a_pending_enterprise_its_admin_and_its_images(session):
    values = enterprise_values(session, credit_code=" " + make_credit_code("91370100MA9Y99001").lower())
    licences = [*png_files(2, stem="营业执照"), ("营业执照副本.jpg", make_jpeg())]
    request = register_enterprise(session, values, licences, png_files(1, stem="资质证书"), now=utcnow(),
                                  ip="10.0.0.1")
    org, admin = request.organization, request.user
    assert (request.kind, request.status, request.authority.code) == (AccountKind.enterprise, AccountStatus.pending,
                                                                     "SD370100")
    assert (org.kind, org.status, org.credit_code, org.region_code) == (
        OrgKind.enterprise, OrgStatus.pending, make_credit_code("91370100MA9Y99001"), "370100")
    assert org.parent.code == "SD370100" and org.path.startswith(org.parent.path)
    assert (org.address, org.postcode, org.contact, org.phone, org.qualification_no) == (
        "济南市历下区经十路1号", "250000", "王经理", "0531-12345678", "D237019999")
    assert (admin.username, admin.name, admin.phone, admin.role, admin.organization_id) == (
        values["username"], "王管理员", values["phone"], Role.admin, org.id)
    assert admin.has(Permission.user_manage) and admin.has(Permission.enterprise_manage)
    assert admin.password_hash != PASSWORD
    images = session.scalars(select(Attachment).where(Attachment.owner_type == "organization",
                                                      Attachment.owner_id == org.id).order_by(Attachment.id)).all()
    assert [(a.purpose, a.content_type) for a in images] == [
        ("营业执照", "image/png"), ("营业执照", "image/png"), ("营业执照", "image/jpeg"), ("资质证书", "image/png")]
    entry = session.scalars(select(AuditLog).where(AuditLog.user_id == admin.id)).one()
    assert "企业注册" in entry.summary and entry.ip == "10.0.0.1"


def test_every_missing_field_is_reported_at_once(session):
    before = counts(session)
    errors = errors_of(lambda: register_enterprise(session, {}, [], [], now=utcnow()))
    assert errors == {
        "name": "请填写企业名称", "credit_code": "请填写统一社会信用代码", "region_code": "请选择所属地市",
        "address": "请填写通讯地址", "contact": "请填写联系人", "contact_phone": "请填写联系电话",
        "licence": "请上传营业执照", "admin_name": "请填写管理员姓名", "username": "请填写登录用户名",
        "password": "密码至少8位，且必须包含字母和数字", "phone": "请填写手机号码",
    }
    assert counts(session) == before


def _bad_credit_code() -> str:
    good = make_credit_code("91370100MA9Y88001")
    return good[:-1] + ("1" if good[-1] != "1" else "2")


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"credit_code": "BAD"}, "credit_code", "统一社会信用代码校验位错误"),
        ({"credit_code": "9137010"}, "credit_code", "统一社会信用代码应为18位"),
        ({"credit_code": "DEMO"}, "credit_code", "禁止重复注册"),
        ({"name": "山东鲁建建设集团有限公司"}, "name", "该企业名称已经注册，禁止重复注册"),
        ({"region_code": "370000"}, "region_code", "请选择所属地市"),  # the province is no city
        ({"region_code": "999999"}, "region_code", "请选择所属地市"),
        ({"postcode": "2500"}, "postcode", "邮政编码应为6位数字"),
        ({"address": "路" * 256}, "address", "通讯地址不能超过255个字符"),
        ({"username": "jinan"}, "username", "该登录用户名已被使用，请换一个"),
        ({"username": "JINAN"}, "username", "该登录用户名已被使用，请换一个"),
        ({"username": "ab"}, "username", "登录用户名为4–64位字母、数字或 _ . - @"),
        ({"username": "王五五五"}, "username", "登录用户名为4–64位字母、数字或 _ . - @"),
        ({"password": "abcdefgh", "password2": "abcdefgh"}, "password", "密码至少8位，且必须包含字母和数字"),
        ({"password": "12345678", "password2": "12345678"}, "password", "密码至少8位，且必须包含字母和数字"),
        ({"password": "Ab1", "password2": "Ab1"}, "password", "密码至少8位，且必须包含字母和数字"),
        ({"password2": "Zc2026abd"}, "password2", "两次输入的密码不一致"),
        ({"phone": "12345"}, "phone", "手机号格式不正确"),
        ({"phone": ""}, "phone", "请填写手机号码"),
        ({"sms_code": ""}, "sms_code", "请填写短信验证码"),
        ({"sms_code": "WRONG"}, "sms_code", "验证码错误"),
        ({"sms_code": "000000", "phone": "15999999999"}, "sms_code", "请先获取验证码"),  # no code for this phone
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_enterprise_field_is_refused_with_its_message_and_nothing_is_stored(session, override, field, message):
    demo = session.scalar(select(Organization.credit_code).where(Organization.code == "QY370101"))
    values = enterprise_values(session)
    substitutes = {"BAD": _bad_credit_code(), "DEMO": demo,
                   "WRONG": f"{(int(values['sms_code']) + 1) % 10**6:06d}"}
    values.update({k: substitutes.get(v, v) for k, v in override.items()})
    before = counts(session)
    errors = errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow()))
    assert message in errors.get(field, ""), errors
    assert set(errors) == {field}, errors
    assert counts(session) == before


@pytest.mark.parametrize(
    ("licences", "qualifications", "field", "message"),
    [
        ([], [], "licence", "请上传营业执照"),
        ([("", b"")], [], "licence", "请上传营业执照"),  # an empty file input
        ([("营业执照.png", make_pdf())], [], "licence", "营业执照：文件「营业执照.png」不是有效的图片"),
        ([("营业执照.pdf", make_pdf())], [], "licence", "不是有效的图片（仅支持 jpg、png）"),
        ([("营业执照.jpg", make_png(3, 3))], [], "licence", "内容与扩展名不符"),
        ([("营业执照.png", b"<script>alert(1)</script>")], [], "licence", "不是有效的图片"),
        (png_files(1, size=201 * 1024), [], "licence", "超过200KB"),
        (png_files(4), [], "licence", "营业执照：最多上传3张图片"),
        (png_files(1), [("资质证书.png", make_pdf())], "qualification", "资质证书：文件「资质证书.png」不是有效的图片"),
        (png_files(1), png_files(4), "qualification", "资质证书：最多上传3张图片"),
    ],
    ids=["none", "empty-input", "pdf-as-png", "pdf", "png-as-jpg", "script", "201KB", "four", "bad-qualification",
         "four-qualifications"],
)
def test_bad_images_are_refused_and_nothing_is_stored(session, licences, qualifications, field, message):
    values = enterprise_values(session)
    before = counts(session)
    errors = errors_of(lambda: register_enterprise(session, values, licences, qualifications, now=utcnow()))
    assert set(errors) == {field} and message in errors[field], errors
    assert counts(session) == before


def test_three_licences_of_200kb_are_accepted_and_the_qualification_is_optional(session):
    request = register_enterprise(session, enterprise_values(session), png_files(3, size=200 * 1024), [],
                                  now=utcnow())
    assert session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.owner_type == "organization", Attachment.owner_id == request.organization_id)) == 3


def test_a_second_registration_with_the_same_credit_code_is_refused(session):
    first = enterprise_request(session)
    values = enterprise_values(session, credit_code=first.organization.credit_code)
    errors = errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow()))
    assert errors == {"credit_code": "该统一社会信用代码已经注册，禁止重复注册，请使用已注册的用户名登录"}


def test_the_sms_code_expires_after_five_minutes(session):
    values = enterprise_values(session, code=False)
    values["sms_code"] = sms_code(session, values["phone"], now=utcnow() - timedelta(minutes=6))
    before = counts(session)
    errors = errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow()))
    assert errors == {"sms_code": "验证码已过期，请重新获取"}
    assert counts(session) == before


def test_a_typo_elsewhere_does_not_use_up_the_code(session):
    values = enterprise_values(session)
    errors = errors_of(lambda: register_enterprise(session, dict(values, password2="x"), png_files(1), [],
                                                   now=utcnow()))
    assert set(errors) == {"password2"}
    request = register_enterprise(session, values, png_files(1), [], now=utcnow())
    assert request.status == AccountStatus.pending


def test_a_code_opens_one_registration_and_five_wrong_tries_close_it(session):
    values = enterprise_values(session)
    first = register_enterprise(session, values, png_files(1), [], now=utcnow())
    ACCOUNT.fire(session, user(session, "jinan"), first, "reject", reason=REASON)  # its phone is free again
    again = enterprise_values(session, phone=values["phone"], sms_code=values["sms_code"])
    assert errors_of(lambda: register_enterprise(session, again, png_files(1), [], now=utcnow())) == {
        "sms_code": "请先获取验证码"}

    values = enterprise_values(session)
    wrong = dict(values, sms_code=f"{(int(values['sms_code']) + 1) % 10**6:06d}")
    messages = [errors_of(lambda: register_enterprise(session, wrong, png_files(1), [], now=utcnow()))["sms_code"]
                for _ in range(5)]
    assert messages == ["验证码错误"] * 4 + ["验证码错误次数过多，请重新获取"]
    errors = errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow()))
    assert errors == {"sms_code": "验证码错误次数过多，请重新获取"}  # even the right code, now


def test_a_code_sent_to_another_purpose_does_not_bind_the_phone(session):
    values = enterprise_values(session, code=False)
    values["sms_code"] = issue_code(session, values["phone"], Purpose.PHONE, Inbox(), now=utcnow())
    assert errors_of(lambda: register_enterprise(session, values, png_files(1), [], now=utcnow())) == {
        "sms_code": "请先获取验证码"}


# -- 个人注册 --------------------------------------------------------------------------------------------
def test_individual_registration_stores_a_pending_individual_and_its_person(session):
    values = individual_values(session)
    request = register_individual(session, values, now=utcnow())
    account, person = request.user, request.person
    assert (request.kind, request.status, request.authority.code, request.organization_id) == (
        AccountKind.individual, AccountStatus.pending, "SD370100", None)
    assert (account.role, account.account_status, account.organization_id, account.person_id) == (
        Role.individual, AccountStatus.pending, None, person.id)
    assert (person.name, person.id_number, person.phone, person.gender) == (
        values["name"], values["id_number"], values["phone"], "男")
    assert person.birth_date == date(int(values["id_number"][6:10]), int(values["id_number"][10:12]),
                                     int(values["id_number"][12:14]))


def test_a_holder_already_in_the_system_registers_onto_their_person(session):
    holder = session.scalar(select(Person).where(Person.id.notin_(
        select(User.person_id).where(User.person_id.is_not(None)))).order_by(Person.id))
    before = session.scalar(select(func.count()).select_from(Person))
    request = register_individual(session, individual_values(session, name=holder.name,
                                                             id_number=holder.id_number.lower()), now=utcnow())
    assert request.person_id == holder.id
    assert session.scalar(select(func.count()).select_from(Person)) == before


def _id_with_bad_check_digit() -> str:
    good = make_id_number("370102", date(1991, 2, 3), 10, "女")
    return good[:-1] + ("0" if good[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"id_number": "BAD"}, "id_number", "身份证号校验位错误"),
        ({"id_number": "3701021990"}, "id_number", "身份证号应为18位"),
        ({"id_number": "DEMO"}, "id_number", "该身份证号已经注册，禁止重复注册"),  # the demo individual's
        ({"id_number": "HOLDER"}, "name", "姓名与已登记的身份证号不一致"),
        ({"name": ""}, "name", "请填写姓名"),
        ({"region_code": ""}, "region_code", "请选择所在地市"),
        ({"username": "person"}, "username", "该登录用户名已被使用"),
        ({"password2": "other123"}, "password2", "两次输入的密码不一致"),
        ({"password": "short1", "password2": "short1"}, "password", "密码至少8位"),
        ({"sms_code": "WRONG"}, "sms_code", "验证码错误"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_individual_field_is_refused_and_nothing_is_stored(session, override, field, message):
    demo = user(session, "person").person.id_number
    holder = session.scalar(select(Person).where(Person.id.notin_(
        select(User.person_id).where(User.person_id.is_not(None)))).order_by(Person.id))
    values = individual_values(session)
    substitutes = {"BAD": _id_with_bad_check_digit(), "DEMO": demo, "HOLDER": holder.id_number,
                   "WRONG": f"{(int(values['sms_code']) + 1) % 10**6:06d}"}
    values.update({k: substitutes.get(v, v) for k, v in override.items()})
    before = counts(session)
    errors = errors_of(lambda: register_individual(session, values, now=utcnow()))
    assert set(errors) == {field} and message in errors[field], errors
    assert counts(session) == before


def test_a_second_registration_of_the_same_id_number_is_refused_while_the_first_waits(session):
    first = individual_request(session)
    values = individual_values(session, name=first.person.name, id_number=first.person.id_number)
    assert errors_of(lambda: register_individual(session, values, now=utcnow())) == {
        "id_number": "该身份证号已经注册，禁止重复注册，请使用已注册的用户名登录"}


# -- signing in while pending ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["enterprise", "individual"])
def test_a_pending_account_may_not_sign_in(session, kind):
    request = enterprise_request(session) if kind == "enterprise" else individual_request(session)
    assert login_refusal(request.user) == "账号待主管部门审核"
    with pytest.raises(WorkflowError, match="账号待主管部门审核"):
        authenticate(session, request.user.username, PASSWORD, now=utcnow())


# -- 注册审核 ----------------------------------------------------------------------------------------------
def test_approving_an_enterprise_activates_it_and_its_admin_may_sign_in(session):
    request = enterprise_request(session)
    jinan = user(session, "jinan")
    ACCOUNT.fire(session, jinan, request, "approve")
    assert (request.status, request.organization.status, request.reject_reason) == (
        AccountStatus.active, OrgStatus.active, None)
    assert request.reviewed_at is not None
    assert login_refusal(request.user) is None
    assert authenticate(session, request.user.username, PASSWORD, now=utcnow()) is request.user
    log = session.scalars(select(TransitionLog).where(TransitionLog.object_type == "account",
                                                      TransitionLog.object_id == request.id)).one()
    assert (log.transition, log.from_state, log.to_state, log.actor_id) == ("approve", "pending", "active", jinan.id)
    message = session.scalars(select(Message).where(Message.user_id == request.user_id)).one()
    assert "审核通过" in message.title


def test_approving_an_individual_activates_the_account(session):
    request = individual_request(session)
    ACCOUNT.fire(session, user(session, "jinan"), request, "approve")
    assert request.status == AccountStatus.active and request.user.account_status == AccountStatus.active
    assert login_refusal(request.user) is None


@pytest.mark.parametrize("kind", ["enterprise", "individual"])
def test_rejecting_needs_a_reason_and_the_account_stays_refused(session, kind):
    request = enterprise_request(session) if kind == "enterprise" else individual_request(session)
    jinan = user(session, "jinan")
    for empty in (None, "", "   "):
        with pytest.raises(WorkflowError, match="请填写审核不通过原因"):
            ACCOUNT.fire(session, jinan, request, "reject", reason=empty)
    assert request.status == AccountStatus.pending
    ACCOUNT.fire(session, jinan, request, "reject", reason=REASON)
    assert (request.status, request.reject_reason) == (AccountStatus.rejected, REASON)
    if kind == "enterprise":
        assert request.organization.status == OrgStatus.rejected
    else:
        assert request.user.account_status == AccountStatus.rejected
    assert login_refusal(request.user) == "账号审核未通过"
    with pytest.raises(WorkflowError, match="当前状态为「审核不通过」"):
        ACCOUNT.fire(session, jinan, request, "approve")


def test_a_rejected_enterprise_registers_again_on_the_same_record(session):
    """「…请重新上传后再注册」: the credit code, name and login name of a rejected registration are
    not taken for ever; the same organization and administrator come back to the authority."""
    first = enterprise_request(session)
    ACCOUNT.fire(session, user(session, "jinan"), first, "reject", reason=REASON)
    org, admin = first.organization, first.user
    values = enterprise_values(session, credit_code=org.credit_code, name=org.name, username=admin.username,
                               region_code="370200", address="青岛市市南区香港中路1号")
    again = register_enterprise(session, values, png_files(2, stem="新营业执照"), [], now=utcnow())
    assert again.id != first.id and again.status == AccountStatus.pending
    assert (again.organization, again.user) == (org, admin)
    assert org.status == OrgStatus.pending and org.address == "青岛市市南区香港中路1号"
    assert org.region_code == "370200" and again.authority == user(session, "qingdao").organization
    images = session.scalars(select(Attachment.filename).where(Attachment.owner_type == "organization",
                                                               Attachment.owner_id == org.id)).all()
    assert len(images) == 2 and all("新营业执照" in name for name in images)
    assert login_refusal(admin) == "账号待主管部门审核"
    # a pending or approved registration still holds its credit code
    assert "credit_code" in errors_of(lambda: register_enterprise(
        session, enterprise_values(session, credit_code=org.credit_code), png_files(1), [], now=utcnow()))


def test_a_rejected_individual_registers_again_on_the_same_account(session):
    first = individual_request(session)
    ACCOUNT.fire(session, user(session, "jinan"), first, "reject", reason=REASON)
    person, account = first.person, first.user
    values = individual_values(session, id_number=person.id_number, name=person.name, username="again_person")
    again = register_individual(session, values, now=utcnow())
    assert (again.user, again.person) == (account, person) and again.status == AccountStatus.pending
    assert account.username == "again_person" and account.account_status == AccountStatus.pending
    assert "id_number" in errors_of(lambda: register_individual(
        session, individual_values(session, id_number=person.id_number, name=person.name), now=utcnow()))


@pytest.mark.parametrize("who", ["qingdao", "province", "jinan_reviewer", "enterprise", "inst_jinan"])
def test_only_the_city_authority_of_the_request_may_review_it(session, who):
    request = enterprise_request(session)
    for name in ("approve", "reject"):
        with pytest.raises(WorkflowError, match="无权执行"):
            ACCOUNT.fire(session, user(session, who), request, name, reason=REASON)
    assert request.status == AccountStatus.pending and request.organization.status == OrgStatus.pending


def test_the_qingdao_authority_reviews_a_qingdao_registration(session):
    request = enterprise_request(session, region_code="370200")
    assert request.authority.code == "SD370200" and request.organization.parent.code == "SD370200"
    with pytest.raises(WorkflowError, match="无权执行"):
        ACCOUNT.fire(session, user(session, "jinan"), request, "approve")
    ACCOUNT.fire(session, user(session, "qingdao"), request, "approve")
    assert request.organization.status == OrgStatus.active


def test_the_reviewing_authority_and_the_province_see_the_request_other_cities_do_not(session):
    request = enterprise_request(session)

    def sees(username) -> bool:
        return session.scalar(select(AccountRequest.id).where(
            AccountRequest.id == request.id, clause(user(session, username), AccountRequest))) is not None

    assert sees("jinan") and sees("province")
    assert not sees("qingdao") and not sees("enterprise") and not sees("inst_jinan")
