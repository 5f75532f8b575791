"""Public certificate verification (SPEC §10, 证书查询): lookup, QR tokens, rate limiting.

No Flask here: the public page (``admin_views.verify``) and the print page call these with
the database session, the secret and the clock they were given.

What a visitor learns is decided here, in one place: a certificate number and its holder's
name together open a card with the name and ID masked; a wrong name and an unknown number
get the same ``None``, so the page never tells whether a number exists (SPEC §10).
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import segno
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from models import (
    Certificate,
    CertificateStatus,
    ElectronicEnd,
    Level,
    Occupation,
    Organization,
    Person,
    RateLimitHit,
)
from workflows import ecert_document
from workflows.ecert import Standing, by_identifier, standing
from workflows.validators import mask_id_number

TOKEN_SALT = "certificate-verify"
# An electronic certificate's QR code signs its 证照标识 under its own salt: a printed certificate's
# token never opens /verify/e/ and an electronic one's never opens /verify/t/ (issue 19).
ECERT_TOKEN_SALT = "electronic-certificate-verify"
NO_LEVEL = "无等级"
# Longer input is not a certificate number or a name; refused before any query.
MAX_NUMBER_LENGTH = 32
MAX_NAME_LENGTH = 50
MAX_TOKEN_LENGTH = 200
# Reissue chains are short; the bound only guards against a cycle in bad data.
MAX_REISSUE_HOPS = 20

# Compound surnames (复姓) kept whole when masking a name of three or more characters:
# 欧阳娜娜 → 欧阳**, as a clerk would read it out. A two-character name keeps one.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "夏侯", "令狐", "端木", "独孤", "南宫", "西门", "轩辕", "呼延", "澹台", "闻人",
    "万俟", "太史", "申屠", "钟离", "赫连", "拓跋", "百里", "东郭", "公羊", "濮阳", "淳于",
})
# The separator in transliterated names (阿卜杜拉·买买提) comes in several look-alikes.
_NAME_DOTS = str.maketrans({ch: "·" for ch in "•・‧∙⋅．.﹒"})

_EPOCH = datetime(1970, 1, 1)

logger = logging.getLogger(__name__)

# 电子证书核验 (issue 19): what a visitor reads about an uploaded file besides ecert_document's problems
EMPTY_FILE = "上传的文件为空，请选择下载的电子证书（.pdf）"
# an issue ended by a change: the holder has a newer file of the same certificate
CHANGED_HINT = "持证人信息已变更，已重新签发电子证书，该文件（二维码）不再有效，请以变更后的新电子证书为准"
UNKNOWN_ECERT = "电子签名有效且文件未被修改，但未查询到该电子证书，请联系颁证单位核实"


@dataclass(frozen=True)
class VerificationResult:
    """The card a visitor sees: nothing here identifies the holder beyond the masks."""

    number: str
    status: CertificateStatus
    status_label: str  # 有效 / 已注销 / 已作废
    occupation: str
    level: str  # or 无等级
    issuer: str
    issue_date: date
    valid_until: date | None
    holder_name: str  # masked: 张*
    id_number: str  # masked: 3701**********1234
    replaced_by_number: str | None  # a voided certificate's reissue, if any
    # issue 19: asked about one electronic certificate (its QR code, an uploaded file): is that issue current
    electronic: Standing | None = None
    electronic_hint: str | None = None  # what to do about an issue that is no longer current


# --- lookup ------------------------------------------------------------------------------


def normalize_number(raw: object) -> str:
    """Half-width, no spaces: ``３７０１ ２６…`` typed on a phone finds 3701 26…."""
    if raw is None:
        return ""
    return "".join(unicodedata.normalize("NFKC", str(raw)).split())


def normalize_name(raw: object) -> str:
    """No spaces (also the full-width 　), full-width letters folded, one middle dot."""
    if raw is None:
        return ""
    return "".join(unicodedata.normalize("NFKC", str(raw)).split()).translate(_NAME_DOTS)


def mask_name(name: str) -> str:
    """SPEC §10: the surname stays, every other character becomes ``*`` (张三 → 张*).

    A one-character name is masked whole: showing it would show the full name.
    """
    name = normalize_name(name)
    if len(name) <= 1:
        return "*" * len(name)
    kept = 2 if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES else 1
    return name[:kept] + "*" * (len(name) - kept)


def lookup(session: Session, number: object, name: object) -> VerificationResult | None:
    """The card for a certificate ``number`` whose holder is currently called ``name``.

    Exact matches only (the number is the unique index; the name is compared after
    normalising both sides). A wrong name and an unknown number both give None. The same
    query as 批量核验's, for one number (columns, not the ORM's objects: the public API's
    hot path).
    """
    return lookup_many(session, [(number, name)])[0]


MAX_BULK = 1000
# built once: making the statement was a third of a lookup's CPU (bench/api.py's profile)
_CARDS = (select(Certificate.id, Certificate.number, Certificate.status, Certificate.issue_date,
                 Certificate.valid_until, Person.name.label("holder"), Person.id_number,
                 Occupation.name.label("occupation"), Level.name.label("level"),
                 Organization.name.label("issuer"))
          .join(Person, Person.id == Certificate.person_id)
          .join(Occupation, Occupation.id == Certificate.occupation_id)
          .join(Organization, Organization.id == Certificate.issuer_id)
          .outerjoin(Level, Level.id == Certificate.level_id)
          .where(Certificate.number.in_(bindparam("numbers", expanding=True))))


def lookup_many(session: Session, pairs) -> list[VerificationResult | None]:
    """批量核验 (issue 20): ``lookup`` for each (number, name), in order, with one query for all of
    them: the same answers, the same ``None`` for a wrong name as for an unknown number."""
    pairs = [(normalize_number(number), normalize_name(name)) for number, name in pairs][:MAX_BULK]
    wanted = sorted({number for number, name in pairs if number and len(number) <= MAX_NUMBER_LENGTH
                     and name and len(name) <= MAX_NAME_LENGTH})
    found = {}
    if wanted:
        found = {row.number: row for row in session.execute(_CARDS, {"numbers": wanted})}
    results = []
    for number, name in pairs:
        row = found.get(number)
        if row is None or not name or normalize_name(row.holder) != name:
            results.append(None)
            continue
        results.append(_card(session, row.id, row.number, row.status, row.occupation, row.level, row.issuer,
                             row.issue_date, row.valid_until, row.holder, row.id_number))
    return results


def lookup_by_number(session: Session, number: object) -> VerificationResult | None:
    """The card for a number that came out of a signed QR token (``number_from_token``):
    the signature stands in for the holder's name. Never call it with a typed number."""
    certificate = _certificate(session, number)
    return _result(session, certificate) if certificate is not None else None


def lookup_by_identifier(session: Session, identifier: object) -> VerificationResult | None:
    """The card for an electronic certificate's 证照标识 that came out of a signed QR token or a file
    whose signature checked (never a typed one), with whether that issue is still current."""
    issued = by_identifier(session, identifier)
    if issued is None:
        return None
    changed = issued.ended_at is not None and ElectronicEnd(issued.end_reason) == ElectronicEnd.changed
    return replace(_result(session, issued.certificate), electronic=standing(issued),
                   electronic_hint=CHANGED_HINT if changed else None)


@dataclass(frozen=True)
class FileAnswer:
    """What 电子证书核验 says of an uploaded file. The certificate's card (``result``) only for a file
    that is genuine (signature valid, by the province's key, covering the whole file) and whose
    证照标识 is known: a bad or foreign file learns nothing about any certificate (SPEC §10)."""

    examined: bool  # a signature was found and checked; False: the file was refused before (``problem``)
    signature_valid: bool
    unmodified: bool
    signer: str | None
    signed_at: datetime | None
    problem: str | None  # in Chinese, whenever there is no card
    result: VerificationResult | None = None
    identifier: str | None = None  # the checked 证照标识 (for the log), only for a genuine file


def check_upload(session: Session, data: bytes, roots: list, *, max_bytes: int) -> FileAnswer:
    """The answer to an uploaded electronic certificate; never raises for a bad file (a failure of
    the check itself is logged and answered as an unreadable file)."""
    if not data:
        return FileAnswer(False, False, False, None, None, EMPTY_FILE)
    try:
        check = ecert_document.check_file(data, roots, max_bytes=max_bytes)
    except Exception:  # noqa: BLE001 - whatever a foreign file does to the reader, the visitor gets an answer
        logger.exception("电子证书核验: the check of an uploaded file failed")
        return FileAnswer(False, False, False, None, None, ecert_document.UNREADABLE)
    examined = check.signer is not None
    if not check.genuine:
        return FileAnswer(examined, check.signature_valid, check.unmodified, check.signer, None,
                          check.problem or ecert_document.UNREADABLE)
    result = lookup_by_identifier(session, check.identifier)
    signed_at = check.signed_at
    if signed_at is not None and signed_at.tzinfo is not None:  # naive UTC, as every stored time
        signed_at = signed_at.astimezone(UTC).replace(tzinfo=None)
    return FileAnswer(True, True, True, check.signer, signed_at,
                      None if result is not None else UNKNOWN_ECERT, result, check.identifier)


def _certificate(session: Session, number: object) -> Certificate | None:
    number = normalize_number(number)
    if not number or len(number) > MAX_NUMBER_LENGTH:
        return None
    return session.scalars(
        select(Certificate)
        .options(joinedload(Certificate.person), joinedload(Certificate.occupation),
                 joinedload(Certificate.level), joinedload(Certificate.issuer))
        .where(Certificate.number == number)
    ).first()


def _result(session: Session, certificate: Certificate) -> VerificationResult:
    return _card(session, certificate.id, certificate.number, certificate.status, certificate.occupation.name,
                 certificate.level.name if certificate.level is not None else None, certificate.issuer.name,
                 certificate.issue_date, certificate.valid_until, certificate.person.name,
                 certificate.person.id_number)


def _card(session: Session, ident: int, number: str, status, occupation: str, level: str | None, issuer: str,
          issue_date: date, valid_until: date | None, holder: str, id_number: str) -> VerificationResult:
    """The card, the one place it is made: the holder masked, a voided certificate's reissue."""
    status = CertificateStatus(status)
    return VerificationResult(
        number=number,
        status=status,
        status_label=status.label,
        occupation=occupation,
        level=level or NO_LEVEL,
        issuer=issuer,
        issue_date=issue_date,
        valid_until=valid_until,
        holder_name=mask_name(holder),
        id_number=mask_id_number(id_number),
        replaced_by_number=_reissue_of(session, ident) if status == CertificateStatus.voided else None,
    )


def _reissue_of(session: Session, certificate_id: int) -> str | None:
    """The number of the latest certificate reissued in place of this one: along the chain
    of ``replaces`` links, so an old paper certificate points at the one in force."""
    found, seen = None, {certificate_id}
    current = certificate_id
    for _ in range(MAX_REISSUE_HOPS):
        row = session.execute(
            select(Certificate.id, Certificate.number, Certificate.status)
            .where(Certificate.replaces_id == current).order_by(Certificate.id.desc()).limit(1)
        ).first()
        if row is None or row.id in seen:
            break
        found, current = row.number, row.id
        seen.add(row.id)
        if CertificateStatus(row.status) != CertificateStatus.voided:
            break
    return found


# --- QR code tokens ----------------------------------------------------------------------


def _serializer(secret: str, salt: str = TOKEN_SALT) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def token_for(number: str, secret: str) -> str:
    """A signed token naming the certificate, printed as a QR code (SPEC §6, §10).

    No expiry: a paper certificate is shown for years. The number is readable in the token
    (it is printed beside it anyway); the signature is what stops guessing other numbers.
    """
    return _serializer(secret).dumps(normalize_number(number))


def number_from_token(token: object, secret: str) -> str | None:
    """The number a token was made for, or None for anything tampered with or foreign."""
    return _loads(token, secret, TOKEN_SALT)


def ecert_token_for(identifier: str, secret: str) -> str:
    """The token of an electronic certificate's QR code: its 证照标识 (printed beside it), signed
    under ``ECERT_TOKEN_SALT``, so it names one issue and cannot stand in for a number token."""
    return _serializer(secret, ECERT_TOKEN_SALT).dumps(str(identifier).strip().upper())


def identifier_from_token(token: object, secret: str) -> str | None:
    """The 证照标识 an electronic certificate's token was made for, or None (tampered, foreign,
    or a printed certificate's number token)."""
    return _loads(token, secret, ECERT_TOKEN_SALT)


def _loads(token: object, secret: str, salt: str) -> str | None:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = _serializer(secret, salt).loads(token)
    except BadData:
        return None
    return value if isinstance(value, str) and value else None


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as inline SVG for an HTML page (no XML declaration).

    Error correction M survives a worn or stamped-over corner; ``scale=4`` is 4 px a module.
    """
    code = segno.make(url, error="m", micro=False, boost_error=False)
    return code.svg_inline(scale=4)


# --- rate limiting -----------------------------------------------------------------------


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the fixed window ``now`` falls in (naive UTC, aligned to the epoch)."""
    elapsed = int((now - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % window_seconds)


def retry_after(now: datetime, window_seconds: int) -> int:
    """Seconds until the current window ends (the ``Retry-After`` of a refusal)."""
    end = window_start(now, window_seconds) + timedelta(seconds=window_seconds)
    return max(1, int((end - now).total_seconds() + 0.999))


@functools.cache
def _counting(dialect: str):
    """The counting statement for ``dialect``, built once (every public lookup runs it)."""
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - the product runs on these two (ARCHITECTURE: Data and scale)
        raise NotImplementedError(f"rate limiting needs ON CONFLICT, not available on {dialect}")
    table = RateLimitHit.__table__  # a Core statement: the ORM's bulk-insert path was half its cost
    return (
        insert(table)
        .values(key=bindparam("key"), window_start=bindparam("start"), expires_at=bindparam("expires"), count=1)
        .on_conflict_do_update(index_elements=[table.c.key, table.c.window_start], set_={"count": table.c.count + 1})
        .returning(table.c.count)
    )


def hit(session: Session, key: str, limit: int, window_seconds: int, now: datetime) -> bool:
    """Count one request of ``key`` in the current window; True while within ``limit``.

    One INSERT … ON CONFLICT DO UPDATE … RETURNING: two processes counting the same key at
    once both land (PostgreSQL's unique index, SQLite's write lock), and neither reads a
    stale count. The caller commits. The first hit of a key's window also deletes the
    windows that are over, so the table holds roughly one row per active key.
    """
    start = window_start(now, window_seconds)
    count = session.execute(_counting(session.get_bind().dialect.name), {
        "key": key, "start": start, "expires": start + timedelta(seconds=window_seconds)}).scalar_one()
    if count == 1:
        session.execute(delete(RateLimitHit).where(RateLimitHit.expires_at <= now))
    return count <= limit
