"""``updated_at`` of what the API syncs (issue 20): certificates, registrations, batches.

A client keeps its copy current with ``updated_since`` (admin_views.api), so every change must move
the row's ``updated_at``, whichever workflow made it. It is stamped here, on every flush, not by
each workflow: a flush that changes a certificate, a registration or a batch stamps it; a flush that
changes a person (name, ID number, employer — what a certificate and a registration show) stamps that
person's certificates and registrations too. Core ``update()`` statements on these tables bypass
this (there are none; ``tests/unit/test_api_sync.py`` holds every workflow that changes them).
"""

from __future__ import annotations

from sqlalchemy import event, inspect, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.batch import Batch
from models.certificate import Certificate
from models.person import Person
from models.registration import Registration

SYNCED = (Certificate, Registration, Batch)
_PERSONS = "changed_person_ids"


@event.listens_for(Session, "before_flush")
def _stamp(session: Session, flush_context, instances) -> None:
    now = None
    for obj in session.dirty:
        if isinstance(obj, SYNCED) and session.is_modified(obj, include_collections=False):
            if inspect(obj).attrs.updated_at.history.added:
                continue  # set on purpose (a batch's own workflow, a test's old timestamp)
            now = now or utcnow()
            obj.updated_at = now
        elif isinstance(obj, Person) and session.is_modified(obj, include_collections=False):
            session.info.setdefault(_PERSONS, set()).add(obj.id)


@event.listens_for(Session, "after_flush")
def _stamp_holders(session: Session, flush_context) -> None:
    ids = session.info.pop(_PERSONS, None)
    if not ids:
        return
    now, connection = utcnow(), session.connection()
    for model in (Certificate, Registration):
        table = model.__table__
        connection.execute(update(table).where(table.c.person_id.in_(sorted(ids))).values(updated_at=now))


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    session.info.pop(_PERSONS, None)
