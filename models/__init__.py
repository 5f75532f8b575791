"""SQLAlchemy models, one module per aggregate (shared/ARCHITECTURE.md).

Importing this package imports every model so that Alembic and ``db.create_all`` see the
whole schema.
"""

from models import changes  # noqa: E402,F401  - updated_at for the API's incremental sync
from models.apikey import ApiKey
from models.attachment import Attachment, AttachmentKind
from models.audit import AuditLog, Message, TransitionLog
from models.base import Base, db
from models.batch import Batch, BatchStatus, Candidate
from models.business import (
    ApplicationItem,
    ApplicationKind,
    ApplicationStatus,
    CertificateApplication,
    ChangeField,
)
from models.certificate import (
    Certificate,
    CertificateStatus,
    NumberSegment,
    PrintFormat,
    PrintFormatField,
    PrintStatus,
)
from models.ecert import ElectronicCertificate, ElectronicEnd
from models.job import IN_FLIGHT, Job, JobChunk, JobKind, JobStatus
from models.org import Level, Occupation, Organization, OrgKind, OrgStatus, ScopeItem
from models.person import Person
from models.ratelimit import RateLimitHit
from models.registration import (
    AccountKind,
    AccountRequest,
    AccountStatus,
    Anomaly,
    AnomalyKind,
    AnomalyStatus,
    EnterpriseChange,
    EnterpriseChangeKind,
    EnterpriseChangeStatus,
    Registration,
    RegistrationKind,
    RegistrationStatus,
)
from models.user import Permission, Role, SmsCode, User, UserPermission, UserSession

__all__ = [
    "db", "Base",
    "Organization", "OrgKind", "OrgStatus", "Occupation", "Level", "ScopeItem",
    "User", "Role", "Permission", "UserPermission", "SmsCode", "UserSession",
    "Person",
    "Batch", "BatchStatus", "Candidate",
    "CertificateApplication", "ApplicationItem", "ApplicationKind", "ApplicationStatus", "ChangeField",
    "Certificate", "CertificateStatus", "PrintStatus", "NumberSegment", "PrintFormat", "PrintFormatField",
    "TransitionLog", "AuditLog", "Message",
    "Attachment", "AttachmentKind",
    "RateLimitHit",
    "ApiKey",
    "ElectronicCertificate", "ElectronicEnd",
    "Job", "JobChunk", "JobKind", "JobStatus", "IN_FLIGHT",
    "AccountRequest", "AccountKind", "AccountStatus", "EnterpriseChange", "EnterpriseChangeKind",
    "EnterpriseChangeStatus", "Registration", "RegistrationKind", "RegistrationStatus", "Anomaly", "AnomalyKind",
    "AnomalyStatus",
]
