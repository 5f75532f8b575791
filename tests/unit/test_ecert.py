"""电子证书 (issue 19): the 证照标识 and its check character, the data the file carries, and which issue
of a certificate's electronic certificate is current after every event that changes the certificate."""

from __future__ import annotations

import json
import random
import string
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from stdnum.iso7064 import mod_37_36

from models import CertificateStatus, ElectronicCertificate, ElectronicEnd
from models.base import local_today
from tests.factories import issued_certificates, make_application, org, user
from workflows import ecert
from workflows.business import BUSINESS
from workflows.certificate import CERTIFICATE
from workflows.datafix import fix
from workflows.validators import make_id_number

ALNUM = string.digits + string.ascii_uppercase
NAMING = ecert.naming()


# -- the identifier -------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALNUM, min_size=1, max_size=80))
def test_check_character_is_iso_7064_mod_37_36_as_python_stdnum_computes_it(body):
    assert ecert.check_char(body) == mod_37_36.calc_check_digit(body)
    assert mod_37_36.is_valid(body + ecert.check_char(body))


def identifier(number="263701001010001", sequence=1, kind=ecert.SKILLED):
    return ecert.make_identifier(NAMING.prefix, NAMING.department_code, kind, number, sequence)


def test_identifier_parts_in_order():
    made = identifier()
    parts = made.split(".")
    assert ".".join(parts[:5]) == NAMING.prefix == "1.2.156.3005.2"
    assert parts[5] == NAMING.department_code + "001"  # licence type: the department's code + 3 digits
    assert parts[6] == NAMING.department_code  # 颁证单位代码
    assert parts[7:9] == ["263701001010001", "001"]  # the certificate's number, the first issue
    assert len(parts[9]) == 1 and ecert.is_valid_identifier(made)
    assert identifier(kind=ecert.SITE_POST).split(".")[5].endswith("002")
    assert identifier(sequence=2) != made and identifier(sequence=2).split(".")[8] == "002"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_one_character_mistyped_is_refused(data):
    made = identifier(number=data.draw(st.from_regex(r"\A2[0-9]{14}\Z")), sequence=data.draw(st.integers(1, 999)))
    i = data.draw(st.sampled_from([i for i, ch in enumerate(made) if ch != "."]))
    wrong = data.draw(st.sampled_from([c for c in ALNUM if c != made[i]]))
    assert not ecert.is_valid_identifier(made[:i] + wrong + made[i + 1:])


def test_nearly_every_swap_of_two_neighbours_is_refused():
    """MOD 37,36 catches most, not all, adjacent transpositions: the README's 99.8 % is this figure."""
    rng = random.Random(19)
    swapped = caught = 0
    for _ in range(20_000):
        made = identifier(number="2" + "".join(rng.choice(string.digits) for _ in range(14)),
                          sequence=rng.randint(1, 999))
        i = rng.randrange(len(made) - 1)
        if made[i] == made[i + 1] or "." in made[i:i + 2]:
            continue
        swapped += 1
        caught += not ecert.is_valid_identifier(made[:i] + made[i + 1] + made[i] + made[i + 2:])
    assert caught / swapped > 0.99


@pytest.mark.parametrize("bad", ["", "x", "1.2.3", "." * 5, "A" * 101, "1.2.156.3005.2..", None])
def test_malformed_identifiers_are_not_looked_up(rolled_session, bad):
    assert ecert.by_identifier(rolled_session, bad) is None


# -- the data it carries --------------------------------------------------------------------------------------
def test_metadata_maps_each_field_from_its_column(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s, "inst_jinan", [("电工", "初级工(五级)")])
    issued = ecert.current(s, cert)
    data = ecert.metadata(issued, NAMING.department_code, "山东省住房和城乡建设厅")
    assert list(data) == [f.key for f in ecert.METADATA_FIELDS]
    person = cert.person
    assert data["licence_number"] == cert.number and data["licence_identifier"] == issued.identifier
    assert (data["holder_name"], data["holder_id_number"], data["holder_id_type"]) == (
        person.name, person.id_number, "居民身份证")
    assert (data["occupation"], data["level"], data["issuer_name"]) == ("电工", "初级工(五级)", cert.issuer.name)
    assert data["licence_type_name"] == "住房和城乡建设行业技能人员职业培训合格证"
    assert data["licence_type_code"] == NAMING.department_code + "001"
    assert data["issuing_department_code"] == NAMING.department_code
    assert data["issue_date"] == data["valid_from"] == cert.issue_date.isoformat()
    assert data["valid_until"] == "长期" and data["status"] == "有效"
    assert data["birth_date"] == person.birth_date.isoformat() and data["gender"] == person.gender
    json.dumps(data, ensure_ascii=False)  # the attachment is JSON


def test_a_site_post_is_the_other_licence_type(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s, "inst_jinan", [("施工员", None)])
    data = ecert.metadata(ecert.current(s, cert), NAMING.department_code, "省厅")
    assert data["licence_type_name"] == "住房和城乡建设领域现场专业管理人员岗位证书"
    assert data["level"] == "" and data["licence_type_code"].endswith("002")


# -- which issue is current -----------------------------------------------------------------------------------
def issues(session, cert) -> list[tuple[int, str | None]]:
    rows = session.scalars(select(ElectronicCertificate).where(ElectronicCertificate.certificate_id == cert.id)
                           .order_by(ElectronicCertificate.sequence)).all()
    return [(r.sequence, r.end_reason.value if r.end_reason else None) for r in rows]


def province(session):
    return user(session, "province")


def test_batch_approval_issues_one_current_electronic_certificate_per_certificate(rolled_session):
    s = rolled_session
    certs = issued_certificates(s, "inst_jinan", [("电工", "初级工(五级)"), ("焊工", "中级工(四级)")])
    for cert in certs:
        assert issues(s, cert) == [(1, None)]
        issued = ecert.current(s, cert)
        assert issued.identifier.split(".")[7] == cert.number and ecert.standing(issued).current


@pytest.mark.parametrize(("transition", "reason", "label"), [
    ("cancel", ElectronicEnd.cancelled, "已注销"),
    ("void", ElectronicEnd.voided, "已作废"),
])
def test_the_provinces_cancel_and_void_end_it(rolled_session, transition, reason, label):
    s = rolled_session
    [cert] = issued_certificates(s)
    issued = ecert.current(s, cert)
    CERTIFICATE.fire(s, province(s), cert, transition, reason="测试")
    s.refresh(issued)
    assert issues(s, cert) == [(1, reason.value)]
    assert ecert.standing(issued) == ecert.Standing(False, label, local_today())
    assert ecert.current(s, cert) is None  # never produced for a certificate that is not valid


def test_reactivation_issues_a_new_one_and_the_cancelled_one_stays_cancelled(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s)
    first = ecert.current(s, cert)
    CERTIFICATE.fire(s, province(s), cert, "cancel", reason="测试")
    CERTIFICATE.fire(s, province(s), cert, "activate", reason="误注销")
    assert issues(s, cert) == [(1, "cancelled"), (2, None)]
    second = ecert.current(s, cert)
    s.refresh(first)
    assert second.identifier != first.identifier and ecert.standing(second).current
    assert ecert.standing(first).label == "已注销"


def approve(session, app):
    if app.status.value == "pending_authority":
        BUSINESS.fire(session, user(session, "jinan"), app, "authority_approve", social_security_checked=True)
    BUSINESS.fire(session, province(session), app, "province_approve")
    return app


def test_an_approved_cancel_application_ends_it_as_cancelled(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s, employer=org(s, "QY370101"))
    approve(s, make_application(s, "enterprise", "cancel", cert))
    assert cert.status == CertificateStatus.cancelled and issues(s, cert) == [(1, "cancelled")]


def test_a_reissue_voids_the_old_one_and_issues_the_new_certificates(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s, employer=org(s, "QY370101"))
    approve(s, make_application(s, "enterprise", "reissue", cert))
    [new] = cert.replaced_by
    assert issues(s, cert) == [(1, "voided")] and issues(s, new) == [(1, None)]
    assert ecert.standing(ecert.current(s, new)).current


@pytest.mark.parametrize("field", ["name", "id_number"])
def test_a_name_or_id_change_reissues_every_valid_certificate_of_the_holder(rolled_session, field):
    s = rolled_session
    applied, other = issued_certificates(s, employer=org(s, "QY370101"),
                                         pairs=[("电工", "初级工(五级)"), ("焊工", "中级工(四级)")])
    before = [ecert.current(s, c).identifier for c in (applied, other)]
    values = {"new_name": "王新名"} if field == "name" else {
        "new_id_number": make_id_number("370203", date(1970, 3, 4), 77, applied.person.gender)}
    approve(s, make_application(s, "enterprise", "change", applied, fields=[field], values=values))
    for cert, old in zip((applied, other), before, strict=True):
        assert issues(s, cert) == [(1, "changed"), (2, None)]
        assert ecert.current(s, cert).identifier != old
        ended = ecert.by_identifier(s, old)
        assert ecert.standing(ended).label == "已变更，请以新证为准" and ecert.standing(ended).since == local_today()


def test_an_employer_change_keeps_it(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s, employer=org(s, "QY370101"))
    approve(s, make_application(s, "enterprise", "change", cert, fields=["employer"],
                                values={"new_employer_id": org(s, "QY370102").id}))
    assert issues(s, cert) == [(1, None)]  # the employer is not on the electronic certificate


@pytest.mark.parametrize(("kind", "values"), [
    ("person", {"name": "张更正"}),
    ("certificate", {"valid_until": "2031-12-31"}),
])
def test_a_data_fix_of_what_it_shows_reissues_it(rolled_session, kind, values):
    s = rolled_session
    [cert] = issued_certificates(s)
    obj = cert.person if kind == "person" else cert
    fix(s, province(s), kind, obj, values, "录入错误")
    assert issues(s, cert) == [(1, "changed"), (2, None)]


def test_a_certificate_from_before_electronic_certificates_gets_its_first_on_request(rolled_session):
    s = rolled_session
    [cert] = issued_certificates(s)
    s.execute(ElectronicCertificate.__table__.delete().where(ElectronicCertificate.certificate_id == cert.id))
    assert issues(s, cert) == []
    assert ecert.current(s, cert).sequence == 1 and issues(s, cert) == [(1, None)]
