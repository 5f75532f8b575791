"""电子证书 (issue 19): which issue of a certificate's electronic certificate is current, its
证照标识, and the data it carries.

An electronic certificate is issued with the certificate (batch approval, a reissue's approval,
激活) and again after an approved 姓名 or 身份证号 change; 注销, 作废 and 补办作废 end the current
issue. The hooks are the certificate workflow's and the business workflow's effects, so every
event that changes what a certificate says also decides its electronic certificate, in the same
transaction. An electronic certificate is never produced for a certificate that is not valid
(``current`` answers None).

证照标识, in the manner of GB/T 36904 (its parts joined by dots, then a check character)::

    <prefix>.<licence type code>.<department code>.<certificate number>.<issue>.<check>
    1.2.156.3005.2.11370000MB00000015001.11370000MB00000015.263701001010001.001.Z

* prefix — ``ECERT_ID_PREFIX`` (the electronic licences' object identifier arc);
* licence type code — the issuing department's code and a three-digit type (001 技能人员职业培训
  合格证, 002 现场专业管理人员岗位证书), as the national catalogue codes licence types;
* department code — the 统一社会信用代码 of the department that signs (``ECERT_DEPARTMENT_CODE``);
* certificate number — 15 digits, unique and never reused (SPEC §4);
* issue — three digits, 001 for the first electronic issue of this certificate;
* check — ISO 7064 MOD 37,36 (GB/T 17710) over the letters and digits before it.

The holder's ID number is left out on purpose: the identifier is printed and checked publicly,
and SPEC §10 never shows an ID number unmasked.

No Flask here: callers pass the settings they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import settings
from models import (
    Certificate,
    CertificateStatus,
    ElectronicCertificate,
    ElectronicEnd,
    Occupation,
    Organization,
)
from models.base import to_local, utcnow
from models.org import OrgKind

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_IDENTIFIER_LENGTH = 100


@dataclass(frozen=True)
class LicenceType:
    suffix: str
    name: str


# 技能人员 (occupations with levels) and 现场专业管理人员 (posts without levels), SPEC §2 and the
# manuals' own names for the two certificates
SKILLED = LicenceType("001", "住房和城乡建设行业技能人员职业培训合格证")
SITE_POST = LicenceType("002", "住房和城乡建设领域现场专业管理人员岗位证书")


def licence_type(has_levels: bool) -> LicenceType:
    return SKILLED if has_levels else SITE_POST


# --- 证照标识 ------------------------------------------------------------------------------
def check_char(body: str) -> str:
    """ISO 7064 MOD 37,36 hybrid system (GB/T 17710-2008) check character of ``body``'s letters
    and digits (anything else, such as the dots, is skipped; letters are folded to upper case)."""
    modulus = len(ALPHABET)
    product = modulus
    for ch in body.upper():
        value = ALPHABET.find(ch)
        if value < 0:
            continue
        total = (product + value) % modulus or modulus
        product = total * 2 % (modulus + 1)
    return ALPHABET[(modulus + 1 - product) % modulus]


def is_valid_identifier(identifier: str) -> bool:
    """The check character matches (a typo or a forged identifier is refused before any query)."""
    if not identifier or len(identifier) > MAX_IDENTIFIER_LENGTH or "." not in identifier:
        return False
    body, _, check = identifier.rpartition(".")
    return len(check) == 1 and check_char(body) == check.upper()


def type_code(department_code: str, kind: LicenceType) -> str:
    return f"{department_code}{kind.suffix}"


def make_identifier(prefix: str, department_code: str, kind: LicenceType, number: str, sequence: int) -> str:
    body = ".".join((prefix, type_code(department_code, kind), department_code, number, f"{sequence:03d}"))
    return f"{body}.{check_char(body)}"


# --- issuing and ending -------------------------------------------------------------------
@dataclass(frozen=True)
class Naming:
    """The settings an identifier is built from (read once by the caller)."""

    prefix: str
    department_code: str


_naming = Naming(settings.Defaults.ECERT_ID_PREFIX, settings.Defaults.ECERT_DEPARTMENT_CODE)


def configure(naming: Naming) -> None:
    """The app's settings (``ECERT_ID_PREFIX``, ``ECERT_DEPARTMENT_CODE``), read once at start:
    the workflows' effects issue electronic certificates without a request at hand."""
    global _naming
    _naming = naming


def naming() -> Naming:
    return _naming


def issue(session: Session, certificates: Iterable[Certificate | int], *, now: datetime | None = None,
          first: bool = False) -> int:
    """A new current issue for each certificate (valid ones only), in bulk; returns how many.

    Runs inside the transition's savepoint, so a refused approval leaves none behind. ``first``:
    issue 001 whatever is there, so that two first issues at once collide on the unique
    (certificate, issue) instead of becoming 001 and 002."""
    naming = _naming
    ids = [c if isinstance(c, int) else c.id for c in certificates]
    if not ids:
        return 0
    now = now or utcnow()
    made = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = session.execute(
            select(Certificate.id, Certificate.number, Occupation.has_levels,
                   select(func.coalesce(func.max(ElectronicCertificate.sequence), 0))
                   .where(ElectronicCertificate.certificate_id == Certificate.id).scalar_subquery())
            .join(Occupation, Occupation.id == Certificate.occupation_id)
            .where(Certificate.id.in_(chunk), Certificate.status == CertificateStatus.valid)
        ).all()
        values = [
            dict(certificate_id=cid, sequence=sequence, issued_at=now,
                 identifier=make_identifier(naming.prefix, naming.department_code,
                                            licence_type(has_levels), number, sequence))
            for cid, number, has_levels, last in rows
            for sequence in (1 if first else last + 1,)
        ]
        if values:
            session.execute(insert(ElectronicCertificate), values)
            made += len(values)
    return made


def end(session: Session, certificate_ids: Iterable[int], reason: ElectronicEnd, *,
        now: datetime | None = None) -> int:
    """The current issue of each certificate is no longer current, for ``reason``."""
    ids = list(certificate_ids)
    if not ids:
        return 0
    return session.execute(
        update(ElectronicCertificate)
        .where(ElectronicCertificate.certificate_id.in_(ids), ElectronicCertificate.ended_at.is_(None))
        .values(ended_at=now or utcnow(), end_reason=reason)
        .execution_options(synchronize_session="fetch")  # an issue already loaded shows it ended
    ).rowcount


def reissue(session: Session, certificate_ids: Iterable[int], *, now: datetime | None = None) -> None:
    """What a certificate says changed (姓名, 身份证号, a date): the current issue of each ends as
    「已变更」 and a new one of the same certificate replaces it."""
    now = now or utcnow()
    ids = list(certificate_ids)
    end(session, ids, ElectronicEnd.changed, now=now)
    issue(session, ids, now=now)


def reissue_for_person(session: Session, person_id: int, *, now: datetime | None = None) -> None:
    """The holder's 姓名 or 身份证号 changed: every valid certificate of theirs shows it."""
    reissue(session, session.scalars(select(Certificate.id).where(
        Certificate.person_id == person_id, Certificate.status == CertificateStatus.valid)).all(), now=now)


def current(session: Session, certificate: Certificate) -> ElectronicCertificate | None:
    """The current issue of a valid certificate; issued now for a certificate that predates
    electronic certificates (and has never had one). None for a certificate that is not valid."""
    if CertificateStatus(certificate.status) != CertificateStatus.valid:
        return None
    found = session.scalars(
        select(ElectronicCertificate)
        .where(ElectronicCertificate.certificate_id == certificate.id, ElectronicCertificate.ended_at.is_(None))
        .order_by(ElectronicCertificate.sequence.desc()).limit(1)
    ).first()
    if found is None and not session.scalar(
            select(func.count()).select_from(ElectronicCertificate)
            .where(ElectronicCertificate.certificate_id == certificate.id)):
        try:
            with session.begin_nested():
                issue(session, [certificate], first=True)
        except IntegrityError:
            pass  # two first downloads at once: the other one's issue 001 is this one's too
        return session.scalars(
            select(ElectronicCertificate)
            .where(ElectronicCertificate.certificate_id == certificate.id, ElectronicCertificate.ended_at.is_(None))
            .order_by(ElectronicCertificate.sequence.desc()).limit(1)
        ).first()
    return found


def by_identifier(session: Session, identifier: object) -> ElectronicCertificate | None:
    if not isinstance(identifier, str) or not is_valid_identifier(identifier.strip()):
        return None
    return session.scalars(
        select(ElectronicCertificate).where(ElectronicCertificate.identifier == identifier.strip().upper())
    ).first()


@dataclass(frozen=True)
class Standing:
    """What 证书查询 says of one issue: current or not, and since when."""

    current: bool
    label: str  # 有效 / 已注销 / 已作废 / 已变更，请以新证为准
    since: date | None  # the day (in the province) it stopped being current


def standing(ecert: ElectronicCertificate) -> Standing:
    if ecert.ended_at is not None:
        return Standing(False, ElectronicEnd(ecert.end_reason).label, to_local(ecert.ended_at).date())
    status = CertificateStatus(ecert.certificate.status)
    if status == CertificateStatus.valid:
        return Standing(True, status.label, None)
    return Standing(False, status.label, None)  # ended outside the hooks: the certificate decides


# --- the data it carries ------------------------------------------------------------------
ID_TYPE = "居民身份证"
ID_TYPE_CODE = "111"
DATE_UNLIMITED = "长期"


@dataclass(frozen=True)
class MetadataField:
    key: str
    label: str
    source: str  # for the README: the column it comes from


METADATA_FIELDS = (
    MetadataField("licence_type_name", "证照类型名称", "occupation.has_levels → 技能人员 / 现场专业管理人员"),
    MetadataField("licence_type_code", "证照类型代码", "ECERT_DEPARTMENT_CODE + 001 / 002"),
    MetadataField("licence_number", "证照编号", "certificate.number"),
    MetadataField("licence_identifier", "证照标识", "electronic_certificate.identifier"),
    MetadataField("holder_name", "持证主体名称", "person.name"),
    MetadataField("holder_id_type", "持证主体代码类型", "居民身份证 (SPEC §3: an 18-digit ID number)"),
    MetadataField("holder_id_type_code", "持证主体代码类型代码", "111"),
    MetadataField("holder_id_number", "持证主体代码", "person.id_number"),
    MetadataField("gender", "性别", "person.gender"),
    MetadataField("birth_date", "出生日期", "person.birth_date"),
    MetadataField("occupation", "职业(工种)", "occupation.name"),
    MetadataField("level", "等级", "level.name (empty without a level)"),
    MetadataField("issuing_department_name", "颁证单位", "organization.name of the province"),
    MetadataField("issuing_department_code", "颁证单位代码", "ECERT_DEPARTMENT_CODE"),
    MetadataField("issuer_name", "发证机构", "organization.name of certificate.issuer_id"),
    MetadataField("issue_date", "发证日期", "certificate.issue_date"),
    MetadataField("valid_from", "有效期起始日期", "certificate.issue_date"),
    MetadataField("valid_until", "有效期截止日期", "certificate.valid_until (长期 when empty)"),
    MetadataField("status", "证照状态", "certificate.status (有效: produced for valid ones only)"),
    MetadataField("electronic_issued_at", "电子证照签发时间", "electronic_certificate.issued_at (in Asia/Shanghai, ISO 8601)"),
)


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def metadata(ecert: ElectronicCertificate, department_code: str, department_name: str) -> dict[str, str]:
    """The electronic certificate's data as its attachment carries it, keys in METADATA_FIELDS' order."""
    certificate = ecert.certificate
    person, occupation = certificate.person, certificate.occupation
    kind = licence_type(occupation.has_levels)
    values = {
        "licence_type_name": kind.name,
        "licence_type_code": type_code(department_code, kind),
        "licence_number": certificate.number,
        "licence_identifier": ecert.identifier,
        "holder_name": person.name,
        "holder_id_type": ID_TYPE,
        "holder_id_type_code": ID_TYPE_CODE,
        "holder_id_number": person.id_number,
        "gender": person.gender or "",
        "birth_date": _day(person.birth_date),
        "occupation": occupation.name,
        "level": certificate.level.name if certificate.level is not None else "",
        "issuing_department_name": department_name,
        "issuing_department_code": department_code,
        "issuer_name": certificate.issuer.name,
        "issue_date": _day(certificate.issue_date),
        "valid_from": _day(certificate.issue_date),
        "valid_until": _day(certificate.valid_until) or DATE_UNLIMITED,
        "status": CertificateStatus(certificate.status).label,
        "electronic_issued_at": to_local(ecert.issued_at).replace(microsecond=0).isoformat(),
    }
    return {f.key: values[f.key] for f in METADATA_FIELDS}


def department_name(session: Session) -> str:
    name = session.scalar(select(Organization.name).where(Organization.kind == OrgKind.province).limit(1))
    return name or "省住房和城乡建设厅"
