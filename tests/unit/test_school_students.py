"""A school's students' certificates are moved only by the school (000 §二(二).4, 001 信息变更 4):
``may_move`` (one certificate) and ``movable_by`` (the lists) are the same rule, and applying
follows it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from models import ApplicationKind, Certificate, ChangeField, Person
from models.org import OrgKind
from models.user import Role
from tests.factories import issued_certificates, make_org, make_user, org, user
from workflows import WorkflowError
from workflows.business import check_may_apply, may_move, movable_by, offered_kinds


@pytest.fixture
def students(rolled_session):
    """Holders at the demo's school, at a second school, at an enterprise and without employer;
    and that second school's administrator."""
    other_school = make_org(rolled_session, OrgKind.school, org(rolled_session, "SD370100"))
    held = {
        "school": issued_certificates(rolled_session, employer=org(rolled_session, "XX370101"))[0],
        "other_school": issued_certificates(rolled_session, employer=other_school)[0],
        "enterprise": issued_certificates(rolled_session, employer=org(rolled_session, "QY370101"))[0],
        "free": issued_certificates(rolled_session)[0],
    }
    return held, make_user(rolled_session, other_school, role=Role.admin)


@pytest.mark.parametrize("username", ["province", "jinan", "inst_jinan", "direct_inst", "enterprise", "school",
                                      "person", None])
def test_the_list_and_the_row_agree(rolled_session, students, username):
    _held, other_admin = students
    someone = user(rolled_session, username) if username else other_admin
    every = rolled_session.scalars(select(Certificate).options(
        joinedload(Certificate.person).joinedload(Person.employer))).all()
    listed = set(rolled_session.scalars(select(Certificate.id).where(movable_by(someone))))
    assert listed == {c.id for c in every if may_move(someone, c)}


@pytest.mark.parametrize(("username", "holder", "expected"), [
    ("school", "school", True),
    ("school", "enterprise", True),
    ("inst_jinan", "school", False),
    ("inst_jinan", "free", True),
    ("person", "school", False),
    (None, "school", False),        # another school
    (None, "other_school", True),   # its own student
])
def test_only_the_school_moves_its_students(rolled_session, students, username, holder, expected):
    held, other_admin = students
    someone = user(rolled_session, username) if username else other_admin
    assert may_move(someone, held[holder]) is expected


def test_an_institution_is_refused_its_issued_certificate_of_a_student(rolled_session, students):
    held, _other_admin = students
    with pytest.raises(WorkflowError, match="在校学生的证书只能由学校办理工作单位变更"):
        check_may_apply(user(rolled_session, "inst_jinan"), held["school"], ApplicationKind.change,
                        (ChangeField.employer,))


@pytest.mark.parametrize(("username", "kinds"), [
    ("school", {ApplicationKind.change}),
    ("enterprise", set(ApplicationKind)),
    ("inst_jinan", set(ApplicationKind)),
    ("person", set(ApplicationKind)),
])
def test_a_school_is_offered_the_move_only(rolled_session, username, kinds):
    assert set(offered_kinds(user(rolled_session, username))) == kinds
