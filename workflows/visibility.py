"""Row visibility (SPEC §1): the one place the rule lives.

``visible(user, query, Model)`` narrows any SQLAlchemy ``Select`` or legacy ``Query`` to the
rows ``user`` may see; ``clause(user, Model)`` is the bare predicate. Every list, count,
detail, edit, delete, action, export and download goes through here. The predicates use
indexed columns of the row itself (issuer, authority, employer, materialised org path), never
a walk of the organization tree per request. A row outside visibility behaves like a row
that does not exist.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from models import (
    AccountRequest,
    Anomaly,
    ApiKey,
    Attachment,
    AuditLog,
    Batch,
    Candidate,
    Certificate,
    CertificateApplication,
    EnterpriseChange,
    Job,
    Message,
    NumberSegment,
    Organization,
    Person,
    Registration,
    TransitionLog,
    User,
)
from models.org import ISSUING_KINDS, OrgKind
from workflows import NotFoundError

CITY_ORG_KINDS = (OrgKind.enterprise, OrgKind.school)


def _org(user):
    return user.organization if user is not None else None


def _is(user, *kinds) -> bool:
    org = _org(user)
    return org is not None and org.kind in kinds


def _org_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        # its own organization, every descendant, and enterprises and schools in its city
        return or_(
            Organization.path.startswith(org.path, autoescape=True),
            and_(Organization.kind.in_(CITY_ORG_KINDS), Organization.region_code == org.region_code),
        )
    if org is not None:
        return Organization.id == org.id
    return false()


def _batch_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return Batch.authority_id == org.id
    if _is(user, *ISSUING_KINDS):
        return Batch.institution_id == org.id
    return false()


def _certificate_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return Certificate.authority_id == org.id
    if _is(user, *ISSUING_KINDS):
        return Certificate.issuer_id == org.id
    if _is(user, *CITY_ORG_KINDS):
        return Certificate.person_id.in_(select(Person.id).where(Person.employer_id == org.id))
    if user is not None and org is None and user.person_id:
        return Certificate.person_id == user.person_id
    return false()


def _person_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return or_(
            exists().where(Certificate.person_id == Person.id, Certificate.authority_id == org.id),
            Person.employer_id.in_(
                select(Organization.id).where(
                    Organization.kind.in_(CITY_ORG_KINDS), Organization.region_code == org.region_code
                )
            ),
        )
    if _is(user, *ISSUING_KINDS):
        return exists().where(Certificate.person_id == Person.id, Certificate.issuer_id == org.id)
    if _is(user, *CITY_ORG_KINDS):
        return Person.employer_id == org.id
    if user is not None and org is None and user.person_id:
        return Person.id == user.person_id
    return false()


def _user_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()  # including individual accounts, which belong to no organization
    if org is None:
        return User.id == (user.id if user is not None else None)
    return User.organization_id.in_(select(Organization.id).where(_org_clause(user)))


def _audit_clause(user):
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if org is None:
        return AuditLog.user_id == (user.id if user is not None else None)
    # 操作日志: the organization's users and its descendants' (003 §四)
    return AuditLog.organization_id.in_(
        select(Organization.id).where(Organization.path.startswith(org.path, autoescape=True))
    )


def _segment_clause(user):
    return true() if _is(user, OrgKind.province) else false()


def _candidate_clause(user):
    return Candidate.batch_id.in_(select(Batch.id).where(_batch_clause(user)))


def _application_clause(user):
    """证书业务: the reviewing authority, the applicant, the holder's employer, the holder."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return CertificateApplication.reviewing_authority_id == org.id
    if _is(user, *ISSUING_KINDS):
        return CertificateApplication.applicant_org_id == org.id
    if _is(user, *CITY_ORG_KINDS):
        return or_(CertificateApplication.applicant_org_id == org.id,
                   CertificateApplication.person_id.in_(select(Person.id).where(Person.employer_id == org.id)))
    if user is not None and org is None and user.person_id:
        return CertificateApplication.person_id == user.person_id
    return false()


def _account_clause(user):
    """注册审核 (SPEC §5.3): the reviewing city authority; the enterprise itself."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return AccountRequest.authority_id == org.id
    if _is(user, OrgKind.enterprise):
        return AccountRequest.organization_id == org.id
    return false()


def _enterprise_change_clause(user):
    """企业信息变更 (SPEC §5.4): the enterprise; the city authority (调出市 and 调入市)."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.authority):
        return or_(EnterpriseChange.from_authority_id == org.id, EnterpriseChange.to_authority_id == org.id)
    if _is(user, OrgKind.enterprise):
        return EnterpriseChange.enterprise_id == org.id
    return false()


def _registration_clause(user):
    """注册申报 (SPEC §1): the province; the ministry once the province forwarded it; the
    enterprise it is declared with; the declaring individual."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.ministry):
        return Registration.ministry_at.is_not(None)
    if _is(user, OrgKind.enterprise):
        return Registration.enterprise_id == org.id
    if user is not None and org is None and user.person_id:
        return Registration.person_id == user.person_id
    return false()


def _anomaly_clause(user):
    """申辩管理: the province; the enterprise the anomaly is flagged against."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    if _is(user, OrgKind.enterprise):
        return Anomaly.enterprise_id == org.id
    return false()


def _message_clause(user):
    return Message.user_id == (user.id if user is not None else None)


def _job_clause(user):
    """我的导出 (issue 16): a job and its file are its owner's alone — not even the province
    downloads another user's export."""
    return Job.owner_id == (user.id if user is not None else None)


def _api_key_clause(user):
    """接口密钥 (issue 20): the province's all; an organization's, its own."""
    org = _org(user)
    if _is(user, OrgKind.province):
        return true()
    return ApiKey.organization_id == org.id if org is not None else false()


# Objects that hang off another (logs, attachments) are visible when their owner is.
OWNER_MODELS = {"batch": Batch, "certificate": Certificate, "organization": Organization, "person": Person,
                "application": CertificateApplication, "account": AccountRequest,
                "enterprise_change": EnterpriseChange, "registration": Registration, "anomaly": Anomaly}


def _owned_clause(user, type_col, id_col):
    parts = []
    for name, model in OWNER_MODELS.items():
        parts.append(and_(type_col == name, id_col.in_(select(model.id).where(clause(user, model)))))
    return or_(*parts)


def _transition_log_clause(user):
    if _is(user, OrgKind.province):
        return true()  # also the logs of deleted batches, whose owner row is gone
    return _owned_clause(user, TransitionLog.object_type, TransitionLog.object_id)


def certificate_history_clause(user, certificate_id: int, held: list[int]):
    """业务日志 of a certificate (issue 17): its own transitions and those of every application
    that held it (变更, 补办 — also on the certificate it issued —, 注销; ``held``, read first by
    ``workflows.business.held_applications``), for whoever sees the certificate: the applications'
    history is the certificate's, whoever filed them. ``held`` is a list, not a subquery: as a
    subquery PostgreSQL filtered every application's transition rows through it (15 ms a details
    page at 270,000 rows, bench/served.py); as a list both halves are index lookups."""
    return and_(
        exists().where(Certificate.id == certificate_id, clause(user, Certificate)),
        or_(and_(TransitionLog.object_type == "certificate", TransitionLog.object_id == certificate_id),
            and_(TransitionLog.object_type == "application", TransitionLog.object_id.in_(held))),
    )


def _attachment_clause(user):
    if _is(user, OrgKind.province):
        return true()
    return _owned_clause(user, Attachment.owner_type, Attachment.owner_id)


RULES = {
    Organization: _org_clause,
    Batch: _batch_clause,
    Candidate: _candidate_clause,
    Certificate: _certificate_clause,
    Person: _person_clause,
    User: _user_clause,
    AuditLog: _audit_clause,
    NumberSegment: _segment_clause,
    Message: _message_clause,
    Job: _job_clause,
    CertificateApplication: _application_clause,
    AccountRequest: _account_clause,
    EnterpriseChange: _enterprise_change_clause,
    Registration: _registration_clause,
    Anomaly: _anomaly_clause,
    TransitionLog: _transition_log_clause,
    Attachment: _attachment_clause,
    ApiKey: _api_key_clause,
}


def register(model, rule) -> None:
    """Later aggregates (applications, registrations) add their rule here, next to the others."""
    RULES[model] = rule


def history_clause(user, model, ident: int):
    """操作日志 rows about one row (数据维护's corrections shown on its page): seen by whoever may
    see the row now, whoever wrote them — not only by the readers of the writer's 操作日志."""
    return and_(AuditLog.object_type == model.__tablename__, AuditLog.object_id == ident,
                exists().where(model.id == ident, clause(user, model)))


def clause(user, model):
    """The visibility predicate of ``model`` for ``user``; unknown models are invisible."""
    if user is None or not getattr(user, "is_authenticated", False):
        return false()
    rule = RULES.get(model)
    return rule(user) if rule is not None else false()


def visible(user, query, model):
    """Narrow a ``Select`` or legacy ``Query`` to what ``user`` may see."""
    return query.where(clause(user, model))


def get_visible(session: Session, user, model, ident, *, for_update: bool = False):
    """Load one row through visibility, or raise ``NotFoundError`` (forged or foreign ids)."""
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        raise NotFoundError() from None
    stmt = visible(user, select(model).where(model.id == ident), model)
    if for_update:
        stmt = stmt.with_for_update()
    obj = session.scalars(stmt).first()
    if obj is None:
        raise NotFoundError()
    return obj


def load_visible(session: Session, user, model, ids, where=None) -> dict:
    """Rows of ``ids`` the user may see (and that meet ``where``, a view's own limit), keyed by the
    id string the form sent (bulk actions)."""
    wanted = {}
    for raw in ids:
        try:
            wanted[int(raw)] = raw
        except (TypeError, ValueError):
            continue
    if not wanted:
        return {}
    stmt = visible(user, select(model).where(model.id.in_(list(wanted))), model)
    if where is not None:
        stmt = stmt.where(where)
    return {wanted[obj.id]: obj for obj in session.scalars(stmt)}
