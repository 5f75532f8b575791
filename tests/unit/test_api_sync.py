"""``updated_at`` of what the API syncs (issue 20, models.changes): every change of a certificate, a
registration or a batch moves it, whichever workflow made it, and so does a change of the holder a
certificate or a registration shows. Without it, a client syncing with ``updated_since`` would keep
a cancelled certificate as valid, or a holder's old name, for ever."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from models import Batch, Certificate, Registration, RegistrationStatus
from models.base import utcnow
from tests.factories import batch_in_state, issued_certificates, user
from workflows import batch as batch_workflow
from workflows import datafix
from workflows.certificate import CERTIFICATE
from workflows.engine import setting_state
from workflows.printing import print_certificates

ROOT = Path(__file__).resolve().parents[2]


def _age(session, *rows) -> None:
    """Pretend the rows were last changed long ago (as seed data is)."""
    with setting_state():
        for row in rows:
            row.updated_at = utcnow() - timedelta(days=30)
    session.commit()


def _moved(session, row, mark) -> bool:
    session.expire(row)
    return row.updated_at >= mark


def test_a_certificate_transition_moves_it(session):
    certificate = issued_certificates(session)[0]
    _age(session, certificate)
    mark = utcnow()
    CERTIFICATE.fire(session, user(session, "province"), certificate, "cancel", reason="持证人申请注销")
    session.commit()
    assert _moved(session, certificate, mark)


def test_printing_moves_the_certificate(session):
    certificate = issued_certificates(session)[0]
    _age(session, certificate)
    mark = utcnow()
    print_certificates(session, user(session, "inst_jinan"), {str(certificate.id): certificate}, [str(certificate.id)])
    session.commit()
    assert _moved(session, certificate, mark)


def test_a_holders_new_name_moves_their_certificates_and_registrations_not_others(session):
    mine = issued_certificates(session)
    other = issued_certificates(session)[0]
    holder = mine[0].person
    registration = session.scalars(select(Registration).where(Registration.status == RegistrationStatus.approved)).first()
    with setting_state():
        registration.person_id = holder.id
    _age(session, *mine, other, registration)
    mark = utcnow()
    datafix.fix(session, user(session, "province"), "person", holder, {"name": "赵新名"}, "身份证姓名更正")
    session.commit()
    assert all(_moved(session, c, mark) for c in mine)
    assert _moved(session, registration, mark)
    assert not _moved(session, other, mark)


def test_a_batch_transition_moves_the_batch(session):
    batch = batch_in_state(session, "inst_jinan", "draft")
    _age(session, batch)
    mark = utcnow()
    batch_workflow.BATCH.fire(session, user(session, "inst_jinan"), batch, "submit")
    session.commit()
    assert _moved(session, batch, mark)


def test_a_flush_that_changes_nothing_moves_nothing(session):
    certificate = issued_certificates(session)[0]
    _age(session, certificate)
    mark = utcnow()
    certificate.person.name = certificate.person.name  # the same value: no change
    session.commit()
    assert not _moved(session, certificate, mark)


def test_no_bulk_update_bypasses_the_stamp():
    """``models.changes`` stamps what the ORM flushes; a Core ``update()`` of these tables would not be."""
    pattern = re.compile(r"\bupdate\(\s*(Certificate|Registration|Batch|Person)\b")
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for folder in ("workflows", "admin_views", "models")
             for path in (ROOT / folder).rglob("*.py") for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not found, found


def test_new_rows_start_with_their_creation_time(session):
    certificate = issued_certificates(session)[0]
    assert certificate.updated_at is not None and certificate.updated_at <= utcnow()
    assert session.scalars(select(Batch).where(Batch.updated_at.is_(None))).first() is None
    assert session.scalars(select(Certificate).where(Certificate.updated_at.is_(None))).first() is None
