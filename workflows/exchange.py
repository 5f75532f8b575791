"""数据交换 (issue 20): the rows an API key reads — certificates, registered persons (注册人员),
batches' status — through the one visibility rule, a page at a time.

Pages are keyset pages in ``(updated_at, id)`` order, never OFFSET: a row inserted or changed while
a client pages moves to the end (it has the newest ``updated_at``), so nothing shifts under the
client and nothing is skipped; a row changed after the client passed it comes again. The cursor is
signed and carries a digest of the query that made it (the endpoint, the key, its filters): another
query's cursor, or a forged one, is refused. ``updated_at`` is kept by ``models.changes``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, aliased

from models import (
    Batch,
    BatchStatus,
    Certificate,
    CertificateStatus,
    Level,
    Occupation,
    Organization,
    Person,
    PrintStatus,
    Registration,
    RegistrationKind,
    RegistrationStatus,
)
from models.base import PROVINCE_TZ
from models.registration import SPECIALTIES
from workflows import WorkflowError
from workflows.visibility import clause

PAGE_DEFAULT = 100
PAGE_MAX = 1000
CURSOR_SALT = "api-cursor"
BAD_CURSOR = "游标无效：请使用上一页返回的 next_cursor，原样传回"
FOREIGN_CURSOR = "游标与本次查询不符：游标只能用于产生它的查询（同一接口、同一密钥、同样的筛选条件）"


class CursorError(WorkflowError):
    """A cursor that is not ours, or not this query's (400)."""


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None


# -- what a client sees of each row ------------------------------------------------------------------
def aware(value: datetime | None) -> datetime | None:
    """A stored naive-UTC time as Beijing time with its offset (+08:00): what the API answers."""
    return value.replace(tzinfo=UTC).astimezone(PROVINCE_TZ) if value is not None else None


def naive_utc(value: datetime) -> datetime:
    """A client's time as stored (naive UTC); a time without offset is Beijing time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=PROVINCE_TZ)
    return value.astimezone(UTC).replace(tzinfo=None)


_Issuer = aliased(Organization, name="issuer")
_Employer = aliased(Organization, name="employer")
_Replaced = aliased(Certificate, name="replaced")
_Enterprise = aliased(Organization, name="enterprise")
_Institution = aliased(Organization, name="institution")


def _certificates() -> Select:
    return (
        select(Certificate.id, Certificate.updated_at, Certificate.number, Certificate.status,
               Certificate.print_status, Certificate.issue_date, Certificate.valid_until,
               Person.name.label("holder_name"), Person.id_number.label("holder_id_number"),
               _Employer.name.label("employer_org"), Person.employer_name,
               Occupation.code.label("occupation_code"), Occupation.name.label("occupation"),
               Level.code.label("level_code"), Level.name.label("level"),
               _Issuer.code.label("issuer_code"), _Issuer.name.label("issuer"),
               Batch.code.label("batch_code"), _Replaced.number.label("replaces_number"))
        .join(Person, Person.id == Certificate.person_id)
        .join(Occupation, Occupation.id == Certificate.occupation_id)
        .join(_Issuer, _Issuer.id == Certificate.issuer_id)
        .outerjoin(Level, Level.id == Certificate.level_id)
        .outerjoin(_Employer, _Employer.id == Person.employer_id)
        .outerjoin(Batch, Batch.id == Certificate.batch_id)
        .outerjoin(_Replaced, _Replaced.id == Certificate.replaces_id)
    )


def _certificate_record(row) -> dict:
    status = CertificateStatus(row.status)
    return {
        "number": row.number, "status": status.value, "status_label": status.label,
        "print_status": PrintStatus(row.print_status).value,
        "holder_name": row.holder_name, "holder_id_number": row.holder_id_number,
        "employer": row.employer_org or row.employer_name or None,
        "occupation_code": row.occupation_code, "occupation": row.occupation,
        "level_code": row.level_code or "0", "level": row.level,
        "issuer_code": row.issuer_code, "issuer": row.issuer, "batch_code": row.batch_code,
        "issue_date": row.issue_date, "valid_until": row.valid_until, "replaces_number": row.replaces_number,
        "updated_at": aware(row.updated_at),
    }


def _registrations() -> Select:
    return (
        select(Registration.id, Registration.updated_at, Registration.registration_number, Registration.kind,
               Registration.specialty, Registration.valid_until, Registration.decided_at,
               Registration.superseded_by_id,
               Person.name.label("holder_name"), Person.id_number.label("holder_id_number"),
               _Enterprise.code.label("enterprise_code"), _Enterprise.name.label("enterprise"))
        .join(Person, Person.id == Registration.person_id)
        .join(_Enterprise, _Enterprise.id == Registration.enterprise_id)
        .where(Registration.status == RegistrationStatus.approved)
    )


def _registration_record(row) -> dict:
    kind = RegistrationKind(row.kind)
    return {
        "registration_number": row.registration_number, "holder_name": row.holder_name,
        "holder_id_number": row.holder_id_number, "enterprise_code": row.enterprise_code,
        "enterprise": row.enterprise, "specialty_code": row.specialty,
        "specialty": SPECIALTIES.get(row.specialty, row.specialty), "kind": kind.value, "kind_label": kind.label,
        "valid_until": row.valid_until, "registered_at": aware(row.decided_at),
        "in_force": row.superseded_by_id is None, "updated_at": aware(row.updated_at),
    }


def _batches() -> Select:
    return (
        select(Batch.id, Batch.updated_at, Batch.code, Batch.name, Batch.status, Batch.candidate_count,
               Batch.created_at, Batch.submitted_at, Batch.reviewed_at, Batch.reject_reason,
               _Institution.code.label("institution_code"), _Institution.name.label("institution"))
        .join(_Institution, _Institution.id == Batch.institution_id)
    )


def _batch_record(row) -> dict:
    status = BatchStatus(row.status)
    return {
        "code": row.code, "name": row.name, "institution_code": row.institution_code,
        "institution": row.institution, "status": status.value, "status_label": status.label,
        "candidate_count": row.candidate_count, "created_at": aware(row.created_at),
        "submitted_at": aware(row.submitted_at), "reviewed_at": aware(row.reviewed_at),
        "reject_reason": row.reject_reason if status == BatchStatus.rejected else None,
        "updated_at": aware(row.updated_at),
    }


@dataclass(frozen=True)
class Collection:
    """One kind of row the API pages through: its model (for visibility and the keyset), its query,
    its record, and the column a single row is asked for by (证书编号, 批次代码, 注册证书编号)."""

    name: str
    model: type
    query: callable
    record: callable
    key_column: object


CERTIFICATES = Collection("certificates", Certificate, _certificates, _certificate_record, Certificate.number)
REGISTRATIONS = Collection("registrations", Registration, _registrations, _registration_record,
                           Registration.registration_number)
BATCHES = Collection("batches", Batch, _batches, _batch_record, Batch.code)


def page(session: Session, principal, collection: Collection, *, limit: int, since: datetime | None = None,
         cursor: str | None = None, fingerprint: str, secret: str) -> Page:
    """One page of ``collection`` as ``principal`` sees it, after ``cursor`` (or from the start);
    ``since``: rows changed at or after it, naive UTC as stored (``naive_utc``)."""
    model = collection.model
    stmt = collection.query().where(clause(principal, model))
    if since is not None:
        stmt = stmt.where(model.updated_at >= since)
    if cursor:
        after_time, after_id = decode_cursor(secret, cursor, fingerprint)
        stmt = stmt.where(tuple_(model.updated_at, model.id) > tuple_(after_time, after_id))
    rows = session.execute(stmt.order_by(model.updated_at, model.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor(secret, fingerprint, rows[-1].updated_at, rows[-1].id) if more else None
    return Page([collection.record(row) for row in rows], following)


def one(session: Session, principal, collection: Collection, key: str) -> dict | None:
    """One row by its number or code, if ``principal`` sees it (else None: the same as no such row)."""
    stmt = collection.query().where(collection.key_column == key, clause(principal, collection.model))
    row = session.execute(stmt.limit(1)).first()
    return collection.record(row) if row is not None else None


# -- cursors -----------------------------------------------------------------------------------------
def fingerprint(*parts) -> str:
    """What a cursor is bound to: the endpoint, the key, the filters (not the page size)."""
    text = json.dumps([str(p) if isinstance(p, datetime | date) else p for p in parts], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def encode_cursor(secret: str, query: str, updated_at: datetime, ident: int) -> str:
    return URLSafeSerializer(secret, salt=CURSOR_SALT).dumps([query, updated_at.isoformat(), ident])


def decode_cursor(secret: str, token: str, query: str) -> tuple[datetime, int]:
    try:
        made_for, when, ident = URLSafeSerializer(secret, salt=CURSOR_SALT).loads(token)
        position = (datetime.fromisoformat(when), int(ident))
    except (BadSignature, ValueError, TypeError):
        raise CursorError(BAD_CURSOR) from None
    if made_for != query:
        raise CursorError(FOREIGN_CURSOR)
    return position
