"""Domain factories for tests (CTFd's ``gen_*`` habit): small functions named for what they build.

They work on the demo database of ``conftest.py`` (SPEC §12) and go through the same workflow
functions the product uses, so a batch built here is exactly what an institution would create.
"""

from __future__ import annotations

import itertools
import shutil
from contextlib import contextmanager
from datetime import date, timedelta

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from models import (
    Attachment,
    AttachmentKind,
    AuditLog,
    Batch,
    Candidate,
    Certificate,
    Organization,
    Person,
    User,
)
from models.base import utcnow
from models.org import OrgKind, OrgStatus
from models.user import Role, role_preset
from seed.reference import ensure_reference
from workflows.batch import BATCH, create_batch
from workflows.excel import CandidateRow
from workflows.validators import make_id_number

DEFAULT_PAIRS = [("砌筑工", "初级工(五级)")]
DEFAULT_REASON = "资料不全，请补充"

# Unique identities across every call in the test session: birth dates far from the demo's
# (which start in 1975) and a sequence code that changes with each person.
_people = itertools.count(1)
_names = itertools.count(1)
_orgs = itertools.count(1)

# Who fires each batch transition on a batch of a given institution (SPEC §5.1 "who").
_AUTHORITY_OF = {"inst_jinan": "jinan", "inst_qingdao": "qingdao"}


@contextmanager
def shared_demo(template, folder):
    """An app over a private copy of the demo database, for a module's read-mostly tables.

    conftest's ``app`` copies the demo for every test; a table of hundreds of refusals or
    visibility checks shares one copy instead and rolls each test back (see ``rolled_back``).
    """
    from app import create_app
    from models import db
    from tests.conftest import _config

    path = folder / "shared-demo.db"
    shutil.copyfile(template, path)
    app = create_app(_config(path, folder))
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextmanager
def rolled_back(app):
    """The app's session inside an app context; whatever the test did is rolled back after."""
    from models import db

    with app.app_context():
        try:
            yield db.session
        finally:
            db.session.rollback()
            db.session.remove()


def user(session, username: str) -> User:
    """A demo account (SPEC §12) by username."""
    found = session.scalar(select(User).where(User.username == username))
    if found is None:
        raise LookupError(f"no demo user {username!r}")
    return found


def org(session, code: str) -> Organization:
    return session.scalar(select(Organization).where(Organization.code == code))


def next_identity(region: str = "370102") -> tuple[str, date, str]:
    """(ID number, birth date, gender) never handed out before in this test session."""
    n = next(_people)
    birth = date(1960, 1, 1) + timedelta(days=n % 12000)
    gender = "男" if n % 2 else "女"
    return make_id_number(region, birth, (n // 12000) % 500, gender), birth, gender


def candidate_rows(count: int, pairs=None, *, id_numbers=None, employer_name=None,
                   region: str = "370102") -> list[CandidateRow]:
    """Clean template rows, cycling over ``pairs`` (occupation name, level name or None)."""
    pairs = pairs or DEFAULT_PAIRS
    id_numbers = list(id_numbers or [])
    rows = []
    for i in range(count):
        occupation, level = pairs[i % len(pairs)]
        if i < len(id_numbers):
            number = id_numbers[i]
            birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            gender = "男" if int(number[16]) % 2 else "女"
        else:
            number, birth, gender = next_identity(region)
        rows.append(CandidateRow(i + 2, f"考生{next(_names)}", number, birth, gender, None, employer_name,
                                 occupation, level))
    return rows


def make_batch(session, institution_user: User | str, candidates: int = 3, pairs=None, name: str | None = None,
               *, id_numbers=None, employer_name=None) -> Batch:
    """A draft batch of ``candidates`` clean rows created through ``workflows.batch.create_batch``.

    ``candidates=0`` gives a batch whose only row was removed again: create_batch refuses
    nothing, but an import never stores an empty file, so this is how a batch gets emptied.
    """
    if isinstance(institution_user, str):
        institution_user = user(session, institution_user)
    occupations, levels = ensure_reference(session)
    rows = candidate_rows(max(candidates, 1), pairs, id_numbers=id_numbers, employer_name=employer_name)
    batch = create_batch(session, institution_user, name or f"测试批次{next(_names)}", rows, occupations, levels)
    if candidates == 0:
        for cand in session.scalars(select(Candidate).where(Candidate.batch_id == batch.id)):
            session.delete(cand)
        session.flush()
        batch.candidate_count = 0
    session.refresh(batch)
    return batch


def owner_username(session, batch: Batch) -> str:
    return session.scalar(
        select(User.username).where(User.organization_id == batch.institution_id, User.role == Role.admin)
    )


def actor_for(session, batch: Batch, transition: str) -> User:
    """The demo user who fires ``transition`` on ``batch`` in a normal day's work."""
    owner = owner_username(session, batch)
    if transition in ("submit", "reopen", "delete"):
        return user(session, owner)
    if transition.startswith("authority_"):
        return user(session, _AUTHORITY_OF[owner])
    return user(session, "province")


def advance(session, batch: Batch, *steps: str, reason: str = DEFAULT_REASON) -> Batch:
    """Fire ``steps`` in order with the right demo users (rejections get ``reason``)."""
    for step in steps:
        BATCH.fire(session, actor_for(session, batch, step), batch, step,
                   reason=reason if step.endswith("reject") else None)
    return batch


# Transitions that take a fresh batch of an institution into each state.
PATH_TO = {
    "draft": (),
    "authority_review": ("submit",),
    "province_review": ("submit", "authority_approve"),
    "approved": ("submit", "authority_approve", "province_approve"),
    "rejected": ("submit", "authority_reject"),
}
DIRECT_PATH_TO = {
    "draft": (),
    "province_review": ("submit",),
    "approved": ("submit", "province_approve"),
    "rejected": ("submit", "province_reject"),
}


def batch_in_state(session, owner: str, state: str, **kw) -> Batch:
    paths = DIRECT_PATH_TO if owner == "direct_inst" else PATH_TO
    return advance(session, make_batch(session, owner, **kw), *paths[state])


def make_org(session, kind: OrgKind, parent: Organization | None = None, *, name: str | None = None,
             region: str | None = None, **extra) -> Organization:
    n = next(_orgs)
    new = Organization(code=f"T{kind.value[:3].upper()}{n:05d}", name=name or f"测试{kind.label}{n}", kind=kind,
                       parent=parent, region_code=region or (parent.region_code if parent else "370000"),
                       status=extra.pop("status", OrgStatus.active), created_at=utcnow(), **extra)
    session.add(new)
    session.flush()
    new.refresh_path()
    session.flush()
    return new


def make_user(session, organization: Organization | None, username: str | None = None,
              role: Role = Role.operator, *, person: Person | None = None, enabled: bool = True) -> User:
    n = next(_orgs)
    new = User(username=username or f"test_user_{n}", name=f"测试用户{n}", organization=organization, role=role,
               person_id=person.id if person else None, password_hash=generate_password_hash("x", "pbkdf2:sha256:1"),
               is_enabled=enabled, created_at=utcnow())
    new.set_permissions(role_preset(organization.kind, role) if organization is not None else ())
    session.add(new)
    session.flush()
    return new


def make_attachment(session, owner_type: str, owner_id: int, *, by: User | None = None) -> Attachment:
    row = Attachment(owner_type=owner_type, owner_id=owner_id, kind=AttachmentKind.image, filename="scan.png",
                     content_type="image/png", size=4, sha256="0" * 64, data=b"\x89PNG",
                     uploaded_by_id=by.id if by else None, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def make_audit(session, by: User, summary: str = "测试操作") -> AuditLog:
    row = AuditLog(kind="edit", user_id=by.id, username=by.username, organization_id=by.organization_id,
                   summary=summary, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def certificates_of(session, batch_id: int) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.batch_id == batch_id).order_by(Certificate.id)))


# -- certificate business (SPEC §5.2) ---------------------------------------------------------------

def png_files(count: int, *, size: int | None = None, stem: str = "申请表") -> list[tuple[str, bytes]]:
    """``count`` real PNG files named like a scanned paper form; ``size`` pads each to that many bytes
    (the bytes after IEND are ignored by viewers, but count for the 200 KB rule)."""
    from tests.samples import make_png

    files = []
    for i in range(count):
        data = make_png(i + 1, 1)
        if size is not None:
            data += b"\x00" * (size - len(data))
        files.append((f"{stem}{i + 1}.png", data))
    return files


def issued_certificates(session, issuer: str = "inst_jinan", pairs=None, *, employer: Organization | None = None,
                        person: Person | None = None) -> list[Certificate]:
    """Valid certificates of ONE holder, issued by ``issuer`` through an approved batch: a new person
    employed by ``employer`` (free text "自由职业" when None), or the existing ``person``."""
    pairs = pairs or DEFAULT_PAIRS
    id_number = person.id_number if person is not None else next_identity()[0]
    employer_name = employer.name if employer is not None else None
    batch = batch_in_state(session, issuer, "approved", candidates=len(pairs), pairs=pairs,
                           id_numbers=[id_number] * len(pairs), employer_name=employer_name)
    return certificates_of(session, batch.id)


def make_application(session, applicant: User | str, kind: str, certificate: Certificate, *, fields=(),
                     values: dict | None = None, explanation: str = "单位出具纸质申请表", images: int = 1,
                     more=(), submit: bool = True, one_field_only: bool = True):
    """A 证书业务 application through the applicant's functions of workflows.business: started
    (change / cancel / reissue with ``more`` lost certificates), ``images`` PNGs attached, submitted."""
    from workflows.business import (
        BUSINESS,
        add_lost_certificate,
        attach_images,
        start_cancel,
        start_change,
        start_reissue,
    )

    if isinstance(applicant, str):
        applicant = user(session, applicant)
    if kind == "change":
        app = start_change(session, applicant, certificate, fields, dict(values or {}, explanation=explanation),
                           one_field_only=one_field_only)
    elif kind == "cancel":
        app = start_cancel(session, applicant, certificate, explanation)
    elif kind == "reissue":
        app = start_reissue(session, applicant, explanation, certificate)
        for other in more:
            add_lost_certificate(session, applicant, app, other)
    else:
        raise ValueError(kind)
    if images:
        attach_images(session, applicant, app, png_files(images))
    if submit:
        BUSINESS.fire(session, applicant, app, "submit")
    return app


def business_print_marks_from_applications(session) -> dict[int, int]:
    """What 业务打印 must list, worked out from the applications (003 §六.3): certificate id → the
    latest approved name change of it, or the approved reissue that issued it."""
    from models import (
        ApplicationItem,
        ApplicationKind,
        ApplicationStatus,
        CertificateApplication,
        ChangeField,
    )

    marks: dict[int, int] = {}
    rows = session.execute(
        select(CertificateApplication.id, CertificateApplication.kind, CertificateApplication.change_fields,
               ApplicationItem.certificate_id, ApplicationItem.new_certificate_id)
        .join(ApplicationItem, ApplicationItem.application_id == CertificateApplication.id)
        .where(CertificateApplication.status == ApplicationStatus.approved)
        .order_by(CertificateApplication.reviewed_at, CertificateApplication.id))
    for app_id, kind, fields, old_id, new_id in rows:
        if kind == ApplicationKind.reissue:
            marks[new_id] = app_id
        elif kind == ApplicationKind.change and ChangeField.name.value in (fields or "").split(","):
            marks[old_id] = app_id
    return marks
