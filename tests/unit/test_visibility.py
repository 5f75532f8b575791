"""Row visibility (SPEC §1) for every demo account over every model.

The expected rows are computed here in plain Python from the relationships (the organization
tree by ``parent``, a certificate's issuer, a person's employer …), independently of the
indexed shortcuts ``workflows.visibility`` uses (materialised paths, denormalised
``authority_id``), so a wrong shortcut shows up as a difference.
"""

from __future__ import annotations

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import func, select

from models import (
    AccountRequest,
    Anomaly,
    Attachment,
    AuditLog,
    Batch,
    Candidate,
    Certificate,
    CertificateApplication,
    EnterpriseChange,
    NumberSegment,
    Organization,
    Person,
    Registration,
    TransitionLog,
    User,
)
from models.org import OrgKind
from tests.factories import (
    advance,
    make_application,
    make_attachment,
    make_audit,
    make_batch,
    rolled_back,
    shared_demo,
    user,
)
from workflows import NotFoundError
from workflows.visibility import clause, get_visible, load_visible, visible

DEMO_USERS = [
    "province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
    "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry",
]
MODELS = [Batch, Candidate, Certificate, Person, Organization, User, NumberSegment, CertificateApplication,
          Attachment, TransitionLog, AuditLog, AccountRequest, EnterpriseChange, Registration, Anomaly]
ISSUERS = (OrgKind.institution, OrgKind.direct_institution)
CITY_KINDS = (OrgKind.enterprise, OrgKind.school)


@pytest.fixture(scope="module")
def scene(demo_template, tmp_path_factory):
    """The demo plus attachments and operation-log rows of every owner kind, shared read-only."""
    with shared_demo(demo_template, tmp_path_factory.mktemp("visibility")) as app:
        with rolled_back(app) as s:
            jinan_batch = advance(s, make_batch(s, "inst_jinan"), "submit")
            qingdao_batch = make_batch(s, "inst_qingdao")
            direct_batch = make_batch(s, "direct_inst")
            holder = s.scalar(select(Person).where(Person.name == "张建国"))
            qingdao_cert = s.scalar(select(Certificate).where(Certificate.issuer_id == qingdao_batch.institution_id))
            for owner_type, owner_id in [("batch", jinan_batch.id), ("batch", qingdao_batch.id),
                                         ("batch", direct_batch.id), ("certificate", holder.certificates[0].id),
                                         ("certificate", qingdao_cert.id), ("person", holder.id),
                                         ("organization", user(s, "enterprise").organization_id),
                                         ("organization", user(s, "qingdao").organization_id)]:
                make_attachment(s, owner_type, owner_id)
            # 证书业务 beyond the demo's (all reviewed by 济南): other cities, a 省直所, an individual
            direct_cert = s.scalar(select(Certificate).where(
                Certificate.issuer_id == user(s, "direct_inst").organization_id).order_by(Certificate.id))
            enterprise2 = user(s, "enterprise2").organization_id
            e2_cert = s.scalar(select(Certificate).join(Person).where(Person.employer_id == enterprise2,
                                                                      Certificate.id != qingdao_cert.id)
                               .order_by(Certificate.id.desc()))
            own_cert = s.scalar(select(Certificate).where(Certificate.person_id == user(s, "person").person_id)
                                .order_by(Certificate.id.desc()))
            for applicant, certificate in [("inst_qingdao", qingdao_cert), ("direct_inst", direct_cert),
                                           ("enterprise2", e2_cert), ("person", own_cert)]:
                make_application(s, applicant, "cancel", certificate)
            _registration_rows(s)
            for name in DEMO_USERS:
                make_audit(s, user(s, name), f"{name} 的操作")
            s.commit()
        yield app


def _registration_rows(s):
    """Issue 4's rows beyond the demo's: a registration forwarded to the ministry and one not, a
    city change between 济南 and 青岛, an anomaly, an enterprise account filed in 青岛."""
    from datetime import timedelta

    from models.base import utcnow
    from workflows.enterprise import ENTERPRISE_CHANGE, start_change
    from workflows.registration import REGISTRATION, Commitment, declare

    holder = user(s, "person")
    holder.person.birth_date = holder.person.birth_date  # unchanged: he declares as himself
    enterprise, enterprise2 = user(s, "enterprise"), user(s, "enterprise2")
    enterprise.organization.qualification_no = enterprise.organization.qualification_no or "D137000001"
    # before the registration below: a change is refused while one is in progress (SPEC §5.4)
    start_change(s, enterprise, enterprise.organization, {"new_name": "山东鲁建建设集团股份有限公司"})
    mine = declare(s, holder, {"kind": "initial", "specialty": "10", "enterprise": enterprise.organization.name})
    REGISTRATION.fire(s, enterprise, mine, "report",
                      commitment=Commitment(shown_at=utcnow() - timedelta(seconds=61), ticked=True))
    REGISTRATION.fire(s, user(s, "province"), mine, "province_accept")
    REGISTRATION.fire(s, user(s, "province"), mine, "province_forward")
    s.add(Registration(kind="initial", person_id=user(s, "person").person_id, enterprise_id=enterprise2.organization_id,
                       declared_by_id=holder.id, specialty="01"))
    qingdao = user(s, "qingdao").organization
    change = start_change(s, enterprise2, enterprise2.organization, {"new_region_code": "370100"})
    ENTERPRISE_CHANGE.fire(s, user(s, "qingdao"), change, "out_approve")
    assert change.to_authority_id == user(s, "jinan").organization_id and change.from_authority_id == qingdao.id
    other = s.scalar(select(Person).where(Person.employer_id == enterprise2.organization_id))
    s.add(Registration(kind="initial", person_id=other.id, enterprise_id=enterprise2.organization_id,
                       declared_by_id=enterprise2.id, specialty="02"))
    for org_id in (enterprise.organization_id, enterprise2.organization_id):
        s.add(Anomaly(enterprise_id=org_id, person_id=holder.person_id, kind="other", description="测试异常"))
    for city in (qingdao, user(s, "jinan").organization):
        new_org = Organization(code=f"VIS-{city.region_code}", name=f"可见性测试企业{city.region_code}",
                               kind=OrgKind.enterprise, parent=city, region_code=city.region_code, status="pending")
        s.add(new_org)
        s.flush()
        new_org.refresh_path()
        applicant = User(username=f"vis_new_{city.region_code}", password_hash="x", name="新企业管理员",
                         organization=new_org)
        s.add(applicant)
        s.flush()
        s.add(AccountRequest(kind="enterprise", organization=new_org, user=applicant, authority=city))
    s.flush()


@pytest.fixture
def vs(scene):
    with rolled_back(scene) as s:
        yield s


# -- the rule, written out from SPEC §1 --------------------------------------------------------


def _chain(o: Organization):
    while o is not None:
        yield o
        o = o.parent


def _subtree(root: Organization, orgs) -> set[int]:
    return {o.id for o in orgs if any(a.id == root.id for a in _chain(o))}


def _under_authority(issuer: Organization, authority: Organization) -> bool:
    return issuer.kind == OrgKind.institution and issuer.parent_id == authority.id


def expected_ids(s, u: User, model) -> set[int]:
    orgs = list(s.scalars(select(Organization)))
    org = u.organization
    kind = org.kind if org is not None else None
    everything = kind == OrgKind.province

    def rows(m):
        return list(s.scalars(select(m)))

    def orgs_visible() -> set[int]:
        if everything:
            return {o.id for o in orgs}
        if kind == OrgKind.authority:
            city = {o.id for o in orgs if o.kind in CITY_KINDS and o.region_code == org.region_code}
            return _subtree(org, orgs) | city
        return {org.id} if org is not None else set()

    def batches() -> set[int]:
        out = set()
        for b in rows(Batch):
            if everything or (kind in ISSUERS and b.institution_id == org.id) or (
                    kind == OrgKind.authority and _under_authority(b.institution, org)):
                out.add(b.id)
        return out

    def certificates() -> set[int]:
        out = set()
        for c in rows(Certificate):
            if (everything
                    or (kind == OrgKind.authority and _under_authority(c.issuer, org))
                    or (kind in ISSUERS and c.issuer_id == org.id)
                    or (kind in CITY_KINDS and c.person.employer_id == org.id)
                    or (org is None and u.person_id is not None and c.person_id == u.person_id)):
                out.add(c.id)
        return out

    def persons() -> set[int]:
        certs = {c.person_id for c in rows(Certificate) if c.id in certificates()}
        out = set()
        for p in rows(Person):
            employer = p.employer
            if (everything
                    or (kind in ISSUERS and p.id in certs)
                    or (kind == OrgKind.authority and (p.id in certs or (
                        employer is not None and employer.kind in CITY_KINDS
                        and employer.region_code == org.region_code)))
                    or (kind in CITY_KINDS and p.employer_id == org.id)
                    or (org is None and p.id == u.person_id)):
                out.add(p.id)
        return out

    def applications() -> set[int]:
        # 证书业务 (SPEC §1 + §5.2): the province; the city authority that reviews it first; the
        # applicant organization; an enterprise or school for the holders it employs; the holder
        out = set()
        for a in rows(CertificateApplication):
            if (everything
                    or (kind == OrgKind.authority and a.reviewing_authority is not None
                        and a.reviewing_authority.id == org.id)
                    or (kind in ISSUERS and a.applicant_org is not None and a.applicant_org.id == org.id)
                    or (kind in CITY_KINDS and ((a.applicant_org is not None and a.applicant_org.id == org.id)
                                                or a.person.employer_id == org.id))
                    or (org is None and u.person_id is not None and a.person.id == u.person_id)):
                out.add(a.id)
        return out

    def accounts() -> set[int]:
        # 注册审核 (SPEC §5.3): the city authority it is filed with; the enterprise itself
        return {a.id for a in rows(AccountRequest)
                if everything or (kind == OrgKind.authority and a.authority.id == org.id)
                or (org is not None and a.organization is not None and a.organization.id == org.id)}

    def changes() -> set[int]:
        # 企业信息变更 (SPEC §5.4): the enterprise; the 调出市 and 调入市 authorities
        return {c.id for c in rows(EnterpriseChange)
                if everything or (org is not None and c.enterprise.id == org.id)
                or (kind == OrgKind.authority and org.id in (c.from_authority_id, c.to_authority_id))}

    def registrations() -> set[int]:
        # 注册申报: the ministry sees what the province forwarded (its transition log says so)
        forwarded = {t.object_id for t in rows(TransitionLog)
                     if t.object_type == "registration" and t.transition == "province_forward"}
        return {r.id for r in rows(Registration)
                if everything or (kind == OrgKind.ministry and r.id in forwarded)
                or (kind == OrgKind.enterprise and r.enterprise.id == org.id)
                or (org is None and u.person_id is not None and r.person.id == u.person_id)}

    def anomalies() -> set[int]:
        return {a.id for a in rows(Anomaly) if everything or (org is not None and a.enterprise.id == org.id
                                                              and kind == OrgKind.enterprise)}

    owners = {"batch": batches, "certificate": certificates, "organization": orgs_visible, "person": persons,
              "application": applications, "account": accounts, "enterprise_change": changes,
              "registration": registrations, "anomaly": anomalies}
    direct = {AccountRequest: accounts, EnterpriseChange: changes, Registration: registrations, Anomaly: anomalies}
    if model in direct:
        return direct[model]()

    if model is Organization:
        return orgs_visible()
    if model is Batch:
        return batches()
    if model is Candidate:
        visible_batches = batches()
        return {c.id for c in rows(Candidate) if c.batch_id in visible_batches}
    if model is Certificate:
        return certificates()
    if model is CertificateApplication:
        return applications()
    if model is Person:
        return persons()
    if model is User:
        if everything:
            return {x.id for x in rows(User)}
        if org is None:
            return {u.id}
        visible_orgs = orgs_visible()
        return {x.id for x in rows(User) if x.organization_id in visible_orgs}
    if model is NumberSegment:
        return {x.id for x in rows(NumberSegment)} if everything else set()
    if model in (Attachment, TransitionLog):
        type_of = (lambda r: r.owner_type) if model is Attachment else (lambda r: r.object_type)
        id_of = (lambda r: r.owner_id) if model is Attachment else (lambda r: r.object_id)
        cache = {name: fn() for name, fn in owners.items()}
        return {r.id for r in rows(model) if id_of(r) in cache.get(type_of(r), set())}
    if model is AuditLog:
        if everything:
            return {x.id for x in rows(AuditLog)}
        if org is None:
            return {x.id for x in rows(AuditLog) if x.user_id == u.id}
        mine = _subtree(org, orgs)
        return {x.id for x in rows(AuditLog) if x.organization_id in mine}
    raise AssertionError(model)


def _actual(s, u, model) -> set[int]:
    return set(s.scalars(visible(u, select(model.id), model)))


# SPEC §1 "province: everything in its province" — the province cannot see individual accounts
# (User.organization_id IS NULL falls out of the IN (...) of workflows/visibility.py _user_clause).
def _cases():
    for name in DEMO_USERS:
        for model in MODELS:
            yield pytest.param(name, model, id=f"{name}-{model.__name__}")


@pytest.mark.parametrize(("username", "model"), _cases())
def test_visible_returns_exactly_what_spec_1_allows(vs, username, model):
    u = user(vs, username)
    expected = expected_ids(vs, u, model)
    assert _actual(vs, u, model) == expected
    # counts go through the same hook
    count = vs.scalar(visible(u, select(func.count()).select_from(model), model))
    assert count == len(expected)


@pytest.mark.parametrize(
    ("username", "model", "minimum"),
    [
        # the scene is rich enough for the table above to mean something
        ("inst_jinan", Batch, 6), ("inst_jinan", Certificate, 6), ("inst_jinan", Attachment, 1),
        ("jinan", Batch, 6), ("jinan", Organization, 5), ("jinan", Person, 6), ("jinan", TransitionLog, 5),
        ("direct_inst", Certificate, 2), ("enterprise", Certificate, 4), ("enterprise", Person, 4),
        ("enterprise2", Certificate, 3), ("person", Certificate, 2), ("person", Person, 1),
        ("qingdao", Attachment, 3), ("province", NumberSegment, 5), ("province", AuditLog, 13),
        ("jinan", CertificateApplication, 16), ("inst_jinan", CertificateApplication, 11),
        ("enterprise", CertificateApplication, 16), ("qingdao", CertificateApplication, 1),
        ("inst_qingdao", CertificateApplication, 1), ("direct_inst", CertificateApplication, 1),
        ("enterprise2", CertificateApplication, 1), ("person", CertificateApplication, 1),
        ("qingdao", TransitionLog, 10), ("enterprise", Attachment, 16),
        ("ministry", Registration, 1), ("person", Registration, 2), ("enterprise", Registration, 1),
        ("enterprise2", Registration, 1), ("enterprise", EnterpriseChange, 1), ("qingdao", EnterpriseChange, 1),
        ("enterprise2", Anomaly, 1), ("qingdao", AccountRequest, 1), ("ministry", TransitionLog, 1),
    ],
)
def test_scene_gives_every_account_something_to_see(vs, username, model, minimum):
    u = user(vs, username)
    seen = _actual(vs, u, model)
    assert len(seen) >= minimum
    assert len(seen) < vs.scalar(select(func.count()).select_from(model)) or username == "province"


@pytest.mark.parametrize("model", [Batch, Certificate, Candidate, NumberSegment])
def test_ministry_sees_no_batches_certificates_or_segments(vs, model):
    assert _actual(vs, user(vs, "ministry"), model) == set()


@pytest.mark.parametrize("model", MODELS)
def test_anonymous_sees_nothing(vs, model):
    assert set(vs.scalars(visible(AnonymousUserMixin(), select(model.id), model))) == set()
    assert set(vs.scalars(visible(None, select(model.id), model))) == set()


def test_unknown_model_is_invisible(vs):
    from models import SmsCode

    assert str(clause(user(vs, "province"), SmsCode)) == "false"


# -- get_visible / load_visible ------------------------------------------------------------------


def _one(vs, model, *where):
    return vs.scalar(select(model.id).where(*where).order_by(model.id).limit(1))


def test_get_visible_returns_own_rows(vs):
    u = user(vs, "inst_jinan")
    own = _one(vs, Batch, Batch.institution_id == u.organization_id)
    assert get_visible(vs, u, Batch, str(own)).id == own
    assert get_visible(vs, u, Batch, own).id == own


@pytest.mark.parametrize(
    ("username", "model", "foreign"),
    [
        ("inst_jinan", Batch, lambda s: _one(s, Batch, Batch.institution_id == user(s, "inst_qingdao").organization_id)),
        ("jinan", Batch, lambda s: _one(s, Batch, Batch.institution_id == user(s, "direct_inst").organization_id)),
        ("qingdao", Certificate, lambda s: _one(s, Certificate, Certificate.authority_id == user(s, "jinan").organization_id)),
        ("enterprise", Person, lambda s: _one(s, Person, Person.employer_id == user(s, "enterprise2").organization_id)),
        ("person", Certificate, lambda s: _one(s, Certificate, Certificate.person_id != user(s, "person").person_id)),
        ("inst_qingdao", Candidate, lambda s: _one(s, Candidate, Candidate.batch_id == 1)),
        ("jinan", NumberSegment, lambda s: _one(s, NumberSegment)),
        ("enterprise", Organization, lambda s: user(s, "enterprise2").organization_id),
    ],
)
def test_get_visible_foreign_id_is_not_found(vs, username, model, foreign):
    ident = foreign(vs)
    assert ident is not None and vs.get(model, ident) is not None  # the row exists …
    with pytest.raises(NotFoundError) as exc:
        get_visible(vs, user(vs, username), model, str(ident))  # … but not for this user
    assert exc.value.message == "记录不存在或无权访问"


@pytest.mark.parametrize("forged", ["abc", "1 OR 1=1", "1;", "", None, "1.5", "0x1", "999999999", -1, [1]])
def test_get_visible_forged_or_missing_id_is_not_found_like_a_foreign_one(vs, forged):
    with pytest.raises(NotFoundError) as exc:
        get_visible(vs, user(vs, "inst_jinan"), Batch, forged)
    assert exc.value.message == "记录不存在或无权访问"


def test_load_visible_keeps_own_ids_keyed_by_what_the_form_sent(vs):
    u = user(vs, "inst_jinan")
    own = sorted(vs.scalars(select(Batch.id).where(Batch.institution_id == u.organization_id)))[:2]
    foreign = _one(vs, Batch, Batch.institution_id != u.organization_id)
    sent = [str(own[0]), str(foreign), "abc", None, str(own[1]), "999999999"]

    found = load_visible(vs, u, Batch, sent)

    assert set(found) == {str(own[0]), str(own[1])}
    assert {k: v.id for k, v in found.items()} == {str(own[0]): own[0], str(own[1]): own[1]}
    assert load_visible(vs, u, Batch, ["abc", None]) == {}
    assert load_visible(vs, u, Batch, [str(foreign)]) == {}


def test_transition_log_of_a_deleted_batch_stays_visible_to_the_province(vs):
    """SPEC §5.1: delete removes the row but leaves the TransitionLog; the province (who sees
    everything) can still read it in the 审核日志."""
    batch = make_batch(vs, "inst_jinan")
    batch_id = batch.id
    advance(vs, batch, "delete")
    log_ids = set(vs.scalars(select(TransitionLog.id).where(TransitionLog.object_type == "batch",
                                                            TransitionLog.object_id == batch_id)))
    assert log_ids
    assert log_ids <= _actual(vs, user(vs, "province"), TransitionLog)


def test_application_reviewing_authority_is_the_one_spec_5_2_names(vs):
    """The authority rule above trusts ``reviewing_authority``; check it against SPEC §5.2 from the
    organization tree and city codes: an institution's parent authority, none for a 省直所, and
    for an enterprise or school the authority of the (receiving) enterprise's city."""
    authorities = {o.region_code: o.id for o in vs.scalars(select(Organization)) if o.kind == OrgKind.authority}
    apps = list(vs.scalars(select(CertificateApplication)))
    assert apps
    for a in apps:
        applicant = a.applicant_org
        if applicant is None:
            continue  # an individual: the city of the holder's employer at the time of applying
        if applicant.kind == OrgKind.institution:
            expected = applicant.parent_id
        elif applicant.kind == OrgKind.direct_institution:
            expected = None
        else:
            expected = authorities[(a.new_employer or applicant).region_code]
        assert a.reviewing_authority_id == expected, a
