"""SQLAlchemy models, one module per aggregate (shared/ARCHITECTURE.md).

Importing this package imports every model so that Alembic and ``db.create_all`` see the
whole schema.
"""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

from models.attachment import Attachment, AttachmentKind  # noqa: E402
from models.audit import AuditLog, Message, TransitionLog  # noqa: E402
from models.batch import Batch, BatchStatus, Candidate  # noqa: E402
from models.certificate import Certificate, CertificateStatus, NumberSegment, PrintStatus  # noqa: E402
from models.org import Level, Occupation, Organization, OrgKind, OrgStatus, ScopeItem  # noqa: E402
from models.person import Person  # noqa: E402
from models.user import Permission, Role, SmsCode, User, UserPermission  # noqa: E402

__all__ = [
    "db", "Base",
    "Organization", "OrgKind", "OrgStatus", "Occupation", "Level", "ScopeItem",
    "User", "Role", "Permission", "UserPermission", "SmsCode",
    "Person",
    "Batch", "BatchStatus", "Candidate",
    "Certificate", "CertificateStatus", "PrintStatus", "NumberSegment",
    "TransitionLog", "AuditLog", "Message",
    "Attachment", "AttachmentKind",
]
