"""`flask seed scale` (SPEC §12) on SQLite: a small province-scale set beside the demo.

The module builds it once (``scaled``) and its read-only tests roll back; the tests that run the
command again or issue real certificates work on a copy of their own.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import aliased

from models import (
    ApplicationItem,
    Batch,
    Candidate,
    Certificate,
    CertificateApplication,
    Level,
    NumberSegment,
    Occupation,
    Organization,
    Person,
    Registration,
    TransitionLog,
    User,
    db,
)
from models.base import local_today
from models.org import OrgKind
from seed.scale import (
    DIRECT_INSTITUTIONS,
    ENTERPRISES,
    INSTITUTIONS_PER_CITY,
    SCALE_PREFIX,
    district_index,
    id_number_for,
)
from tests.factories import (
    business_print_marks_from_applications,
    candidate_rows,
    rolled_back,
    shared_demo,
    user,
)
from workflows.batch import BATCH, create_batch
from workflows.numbering import SegmentKey, allocate_numbers
from workflows.validators import parse_id_number
from workflows.visibility import visible

N = 3000
SCALE = Organization.code.startswith(SCALE_PREFIX)


def seed(app, certificates: int) -> str:
    """Run the command as the CLI does; its output."""
    db.session.commit()  # SQLite: the command's connection needs the write lock
    result = app.test_cli_runner().invoke(args=["seed", "scale", "--certificates", str(certificates)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def scaled(demo_template, tmp_path_factory):
    with shared_demo(demo_template, tmp_path_factory.mktemp("seed-scale")) as app:
        with app.app_context():
            output = seed(app, N)
            db.session.remove()
        yield app, output


@pytest.fixture
def s(scaled):
    with rolled_back(scaled[0]) as session:
        yield session


def scale_certificates(session):
    issuer = aliased(Organization)
    return select(Certificate).join(issuer, issuer.id == Certificate.issuer_id).where(
        issuer.code.startswith(SCALE_PREFIX))


def count(session, stmt) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery()))


# -- what is built -------------------------------------------------------------------------------------
def test_counts_and_proportions(s, scaled):
    certificates = count(s, scale_certificates(s))
    assert certificates == N
    assert "第1轮" in scaled[1] and "certificate" in scaled[1]

    kinds = Counter(s.scalars(select(Organization.kind).where(SCALE)))
    assert kinds[OrgKind.institution] == 16 * INSTITUTIONS_PER_CITY
    assert kinds[OrgKind.direct_institution] == DIRECT_INSTITUTIONS
    assert abs(kinds[OrgKind.enterprise] - ENTERPRISES) <= 10
    assert len(kinds) == 3
    authorities = s.scalars(select(Organization.region_code).where(Organization.kind == OrgKind.authority)).all()
    assert len(authorities) == len(set(authorities)) == 16  # the demo's 15 reused, 菏泽 added

    holders = s.scalar(select(func.count(func.distinct(Certificate.person_id))).where(
        Certificate.id.in_(scale_certificates(s).with_only_columns(Certificate.id))))
    assert 0.75 * N <= holders <= 0.85 * N
    employed = s.scalar(select(func.count()).select_from(Person).join(
        Organization, Organization.id == Person.employer_id).where(Organization.kind == OrgKind.enterprise, SCALE))
    assert employed >= 0.5 * holders

    statuses = Counter(s.scalars(scale_certificates(s).with_only_columns(Certificate.status)))
    assert statuses["cancelled"] > 0 and statuses["voided"] > 0
    assert statuses["valid"] > 0.95 * N

    applications = count(s, select(CertificateApplication).join(
        Organization, Organization.id == CertificateApplication.applicant_org_id).where(SCALE | (
            Organization.kind == OrgKind.enterprise)))
    assert 0.01 * N < applications < 0.05 * N
    kinds = Counter(s.scalars(select(CertificateApplication.kind).join(
        Organization, Organization.id == CertificateApplication.applicant_org_id).where(SCALE)))
    assert set(kinds) == {"change", "reissue", "cancel"}
    registrations = count(s, select(Registration).join(
        Organization, Organization.id == Registration.enterprise_id).where(SCALE))
    assert 0.02 * N < registrations < 0.08 * N

    approved = s.execute(select(Batch.candidate_count, Batch.institution_id).join(
        Organization, Organization.id == Batch.institution_id).where(SCALE, Batch.status == "approved")).all()
    sizes = sorted(size for size, _ in approved)
    assert all(50 <= size <= 500 for size in sizes[1:])  # the last one takes what is left
    open_states = set(s.scalars(select(Batch.status).join(Organization, Organization.id == Batch.institution_id)
                                .where(SCALE, Batch.status != "approved")))
    assert open_states  # some batches are still on their way


def test_every_batch_has_its_candidates_and_its_steps_logged(s):
    batches = s.execute(select(Batch.id, Batch.status, Batch.candidate_count, Organization.kind).join(
        Organization, Organization.id == Batch.institution_id).where(SCALE)).all()
    rows = dict(s.execute(select(Candidate.batch_id, func.count()).group_by(Candidate.batch_id)).all())
    logs: dict[int, list[str]] = {}
    for object_id, transition in s.execute(select(TransitionLog.object_id, TransitionLog.transition).where(
            TransitionLog.object_type == "batch").order_by(TransitionLog.id)):
        logs.setdefault(object_id, []).append(transition)
    for batch_id, status, candidates, kind in batches:
        assert rows[batch_id] == candidates
        if status == "approved":
            assert logs[batch_id] == (["submit", "province_approve"] if kind == OrgKind.direct_institution
                                      else ["submit", "authority_approve", "province_approve"])
        elif status == "draft":
            assert batch_id not in logs
    # each certificate came from a candidate of its batch, but a 补办's new one (it replaces one)
    linked = s.execute(select(Certificate.id, Certificate.batch_id, Certificate.replaces_id, Candidate.batch_id,
                              Candidate.id_number, Person.id_number)
                       .join(Person, Person.id == Certificate.person_id)
                       .outerjoin(Candidate, Candidate.certificate_id == Certificate.id)
                       .where(Certificate.id.in_(scale_certificates(s).with_only_columns(Certificate.id)))).all()
    for _, batch_id, replaces, candidate_batch, candidate_number, person_number in linked:
        if replaces is None:
            assert candidate_batch == batch_id and candidate_number == person_number
        else:
            assert candidate_batch is None
    assert sum(1 for row in linked if row[2] is not None) > 0


def test_numbers_are_unique_well_formed_and_behind_their_segments(s):
    rows = s.execute(select(Certificate.number, Certificate.issue_date, Occupation.code, Level.code,
                            Organization.kind, Organization.parent_id)
                     .join(Occupation, Occupation.id == Certificate.occupation_id)
                     .outerjoin(Level, Level.id == Certificate.level_id)
                     .join(Organization, Organization.id == Certificate.issuer_id)).all()
    regions = dict(s.execute(select(Organization.id, Organization.region_code)).all())
    numbers = [r[0] for r in rows]
    assert len(numbers) == len(set(numbers))
    highest: dict[str, int] = {}
    for number, issued, occupation, level, kind, parent_id in rows:
        assert re.fullmatch(r"[0-9]{15}", number)
        region = "3700" if kind == OrgKind.direct_institution else regions[parent_id][:4]
        assert number[:10] == f"{issued.year % 100:02d}{region}{occupation}{level or '0'}"
        highest[number[:11]] = max(highest.get(number[:11], 0), int(number[11:]))
    segments = {s_.prefix: s_.position for s_ in s.scalars(select(NumberSegment))}
    for prefix, serial in highest.items():
        assert segments[prefix] >= serial, prefix


def test_denormalised_columns_paths_and_keys_are_consistent(s):
    orgs = {o.id: o for o in s.scalars(select(Organization))}
    for org in orgs.values():
        parent = orgs.get(org.parent_id)
        assert org.path == (parent.path if parent else "/") + f"{org.id}/", org.code
    for org in (o for o in orgs.values() if o.code.startswith(SCALE_PREFIX)):
        assert org.region_code == (orgs[org.parent_id].region_code if org.kind != OrgKind.direct_institution
                                   else "370000")

    def authority_of(issuer_id):
        issuer = orgs[issuer_id]
        return issuer.parent_id if issuer.kind == OrgKind.institution else None

    for issuer_id, authority_id in s.execute(select(Certificate.issuer_id, Certificate.authority_id).distinct()):
        assert authority_id == authority_of(issuer_id)
    for institution_id, authority_id in s.execute(select(Batch.institution_id, Batch.authority_id).distinct()):
        assert authority_id == authority_of(institution_id)
    mismatched = s.scalar(select(func.count()).select_from(Certificate).join(Batch, Batch.id == Certificate.batch_id)
                          .where(Batch.institution_id != Certificate.issuer_id))
    assert mismatched == 0
    items = s.execute(select(ApplicationItem.certificate_id, CertificateApplication.person_id, Certificate.person_id)
                      .join(CertificateApplication, CertificateApplication.id == ApplicationItem.application_id)
                      .join(Certificate, Certificate.id == ApplicationItem.certificate_id))
    assert all(a == b for _, a, b in items)
    marked = dict(s.execute(select(Certificate.id, Certificate.business_print_application_id)
                            .where(Certificate.business_print_application_id.is_not(None))).all())
    assert len(marked) > 10 and marked == business_print_marks_from_applications(s)  # 业务打印 as approvals mark it
    assert s.execute(text("PRAGMA foreign_key_check")).all() == []

    sample = s.scalars(select(Person.id_number).join(Certificate, Certificate.person_id == Person.id)
                       .where(Certificate.issuer_id.in_([o.id for o in orgs.values() if o.code.startswith("SCJG")]))
                       .limit(300)).all()
    for number in sample:
        parse_id_number(number)  # valid (check digit, birth date)


def test_id_number_scheme_is_a_bijection():
    seen = set()
    for k in list(range(0, 2000)) + list(range(16_000, 17_000)) + [4_000_000, 8_035_499]:
        number = id_number_for("370123", k, k % 3 == 0)
        assert district_index(number) == k
        seen.add(number)
    assert len(seen) == 3002
    assert district_index("370123190001011234") is None  # born before the scheme's first day


# -- the demo beside it ---------------------------------------------------------------------------------
def test_demo_accounts_see_what_they_saw_plus_their_city(s):
    jinan, qingdao = user(s, "jinan"), user(s, "qingdao")
    seen = s.execute(visible(jinan, select(Certificate.authority_id, Organization.code)
                             .join(Organization, Organization.id == Certificate.issuer_id), Certificate)).all()
    assert {authority for authority, _ in seen} == {jinan.organization_id}
    codes = {code for _, code in seen}
    assert "JG370101" in codes and any(c.startswith("SCJG3701") for c in codes)
    assert not any(c.startswith("SCJG3702") or c.startswith("SCSZ") for c in codes)
    qingdao_seen = s.scalars(visible(qingdao, select(Certificate.id), Certificate)).all()
    assert not set(qingdao_seen) & {c.id for c in s.scalars(visible(jinan, select(Certificate), Certificate))}

    holder = user(s, "person")
    assert len(s.scalars(visible(holder, select(Certificate), Certificate)).all()) == 2
    # the admin the seed gives a city sees that city only
    other = s.scalar(scale_certificates(s).with_only_columns(Certificate.authority_id).where(
        Certificate.authority_id.not_in([jinan.organization_id, qingdao.organization_id])).limit(1))
    city_admin = user(s, f"sc_auth_{s.get(Organization, other).region_code}")
    assert {a for (a,) in s.execute(visible(city_admin, select(Certificate.authority_id), Certificate))} == {other}
    assert s.scalar(select(Organization.code).where(Organization.kind == OrgKind.authority,
                                                    Organization.region_code == "371700")) == "SD371700"


# -- running again, and real work afterwards ---------------------------------------------------------------
def _counts(session) -> dict[str, int]:
    return {t: session.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in (
        "organization", "scope_item", "user_account", "user_permission", "person", "batch", "candidate",
        "certificate", "certificate_application", "application_item", "registration", "transition_log",
        "number_segment")}


def test_a_second_run_changes_nothing_and_a_bigger_one_tops_up(app, session, login):
    seed(app, 1500)
    before = _counts(session)
    output = seed(app, 1500)
    assert "未做改动" in output
    assert _counts(session) == before

    seed(app, 2000)
    after = _counts(session)
    assert count(session, scale_certificates(session)) == 2000
    for table in ("organization", "scope_item", "user_permission"):
        assert after[table] == before[table], table
    assert after["person"] > before["person"] and after["batch"] > before["batch"]
    numbers = session.scalars(select(Certificate.number)).all()
    assert len(numbers) == len(set(numbers))
    assert session.scalar(select(func.count(func.distinct(Batch.code)))) == after["batch"]
    assert session.execute(text("PRAGMA foreign_key_check")).all() == []
    # the demo's accounts still sign in
    assert login("jinan").get("/admin/").status_code == 200


def test_real_issuing_continues_the_seeded_segments(scaled):
    with rolled_back(scaled[0]) as s:
        this_year = local_today().year
        number = s.scalar(scale_certificates(s).with_only_columns(Certificate.number).where(
            func.substr(Certificate.number, 1, 2) == f"{this_year % 100:02d}").order_by(Certificate.number.desc())
            .limit(1))
        assert number is not None, "the seed issues certificates this year"
        key = SegmentKey(this_year, number[2:6], number[6:9], number[9])
        [fresh] = allocate_numbers(s, key, 1)
        assert fresh[:11] == number[:11] and int(fresh[11:]) == int(number[11:]) + 1
        assert s.scalar(select(Certificate.id).where(Certificate.number == fresh)) is None

        # a whole batch of a scale institution, through the real workflow
        inst_user = user(s, "sc_jg370101")
        pairs = s.execute(select(Occupation.name, Level.name).select_from(Organization)
                          .join(Organization.scope_items).join(Occupation).outerjoin(Level)
                          .where(Organization.id == inst_user.organization_id).limit(2)).all()
        occupations = {o.name: o for o in s.scalars(select(Occupation))}
        levels = {lv.name: lv for lv in s.scalars(select(Level))}
        batch = create_batch(s, inst_user, "规模数据后的新批次", candidate_rows(5, [tuple(p) for p in pairs]),
                             occupations, levels)
        for who, step in ((inst_user, "submit"), (user(s, "sc_auth_370100"), "authority_approve"),
                          (user(s, "sc_province"), "province_approve")):
            BATCH.fire(s, who, batch, step)
        issued = s.scalars(select(Certificate.number).where(Certificate.batch_id == batch.id)).all()
        assert len(issued) == 5
        duplicates = s.execute(select(Certificate.number).group_by(Certificate.number)
                               .having(func.count() > 1)).all()
        assert duplicates == []
        assert s.scalar(select(User.id).where(User.username == "sc_jg370101")) == inst_user.id
