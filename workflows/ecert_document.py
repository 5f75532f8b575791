"""The electronic certificate as a file (issue 19): a PDF/A-3 face with its QR code and its data
attached, signed (PAdES) with the province's key; and the check of an uploaded file.

* The face is drawn by fpdf2 (``enforce_compliance="PDF/A-3B"``: embedded, subset font; sRGB
  output intent; XMP) in the CJK font shipped in ``workflows/fonts`` (Noto Sans CJK SC, subset to
  the CJK Unified Ideographs and Extension A, OFL), so no font needs to be installed.
* The data (``workflows.ecert.metadata``) travels as ``certificate.json``, an associated file
  with relationship /Data, as PDF/A-3 allows.
* pyHanko signs it (PAdES B-B, SHA-256, an invisible signature field) with the key and certificate
  of a PKCS#12 file (``ECERT_SIGNING_PKCS12``, password ``ECERT_SIGNING_PASSWORD``).
* ``check_file`` validates an upload with pyHanko's validator against the trusted roots only,
  reading it under tight decoding limits (a PDF bomb is refused, not expanded).

No Flask here: callers pass the settings, the verification address and the rows.
"""

from __future__ import annotations

import asyncio
import copy
import ctypes
import ctypes.util
import datetime as dt
import io
import json
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from workflows import WorkflowError

FONTS = os.path.join(os.path.dirname(__file__), "fonts")
# Two cuts of one font (Noto Sans CJK SC Regular, OFL): GB 2312's 6,763 characters with TrueType
# outlines, which fpdf2 reads and subsets in ~40 ms, and — only for a page with a character outside
# it — the whole of the CJK Unified Ideographs and Extension A (CFF outlines, ~150 ms more)
FONT_PATH = os.path.join(FONTS, "NotoSansSC-Regular-GB2312.ttf")
FONT_FULL_PATH = os.path.join(FONTS, "NotoSansSC-Regular-CJK.otf")
FONT, FONT_FULL = "noto-sc", "noto-sc-full"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SIGNATURE_BYTES = 8192  # the CMS container: RSA-2048 signature, two certificates, signed attributes
ATTACHMENT_NAME = "certificate.json"
SIGNATURE_FIELD = "ElectronicCertificateSignature"

NOT_CONFIGURED = "未配置电子证书签名证书，暂不能签发电子证书，请联系省厅系统管理员"


# --- signing key --------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    pkcs12_path: str
    password: str | None


_signers: dict[tuple, object] = {}
_signers_lock = threading.Lock()


def _key_once(signer):
    """pyHanko's SimpleSigner parses (and, for RSA, validates) its private key on every signature,
    twice per document (once to size the container): ~30 ms each. The key loaded and checked once
    at start is used for every signature instead; everything else is pyHanko's."""
    from cryptography.hazmat.primitives import serialization
    from pyhanko.sign import signers

    class KeyOnceSigner(signers.SimpleSigner):
        _pyca_key = serialization.load_der_private_key(signer.signing_key.dump(), password=None)

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
            from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
            from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
            from pyhanko.sign.general import get_pyca_cryptography_hash

            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
            hash_algo = get_pyca_cryptography_hash(digest_algorithm)
            if mechanism == "rsassa_pkcs1v15" and isinstance(self._pyca_key, RSAPrivateKey):
                return self._pyca_key.sign(data, PKCS1v15(), hash_algo)
            if mechanism == "ecdsa" and isinstance(self._pyca_key, EllipticCurvePrivateKey):
                return self._pyca_key.sign(data, ECDSA(hash_algo))
            return super().sign_raw(data, digest_algorithm)

    return KeyOnceSigner(signing_key=signer.signing_key, signing_cert=signer.signing_cert,
                         cert_registry=signer.cert_registry)


def _signer(key: SigningKey):
    """pyHanko's signer for the PKCS#12 file, loaded once per process (per file version)."""
    from pyhanko.sign import signers

    try:
        stamp = os.stat(key.pkcs12_path).st_mtime_ns
    except OSError:
        raise WorkflowError(NOT_CONFIGURED) from None
    cache_key = (key.pkcs12_path, stamp, key.password)
    with _signers_lock:
        signer = _signers.get(cache_key)
        if signer is None:
            password = key.password.encode() if key.password is not None else None
            signer = signers.SimpleSigner.load_pkcs12(key.pkcs12_path, passphrase=password)
            if signer is None:
                raise WorkflowError("电子证书签名证书无法读取（文件或密码不正确），请联系省厅系统管理员")
            signer = _key_once(signer)
            _signers.clear()
            _signers[cache_key] = signer
    return signer


def signer_name(key: SigningKey) -> str:
    return _signer(key).signing_cert.subject.human_friendly


def trust_roots(key: SigningKey, extra_pem_path: str | None = None) -> list:
    """The certificates a signature must chain to: the signing key's own chain (its CA, or the
    certificate itself when self-signed) and any configured in ``ECERT_TRUST_ROOTS``."""
    from asn1crypto import pem, x509

    signer = _signer(key)
    roots = [c for c in signer.cert_registry if c.self_signed != "no"]
    if not roots:
        roots = [signer.signing_cert]
    if extra_pem_path:
        with open(extra_pem_path, "rb") as fh:
            for _, _, der in pem.unarmor(fh.read(), multiple=True):
                roots.append(x509.Certificate.load(der))
    return roots


# --- the face -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _primary_characters() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(FONT_PATH, lazy=True) as font:
        return frozenset(font.getBestCmap())


_font_templates: dict[str, tuple] = {}
_font_lock = threading.Lock()


def _add_font(pdf, family: str, path: str) -> None:
    """``pdf.add_font(family, fname=path)``, without parsing the font again for every document.

    fpdf2 reads the whole font into a ``TTFFont`` (every character's width and glyph id: ~40 ms of a
    page's ~90) and subsets its fontTools object in place when writing. So the parse is kept once per
    process and each document gets a copy with its own fontTools object (opened lazily from bytes
    held in memory), its own subset and its own font descriptor, sharing only the read-only maps.
    The attributes are fpdf2 2.8's (``fonts.TTFFont``); tests/unit/test_ecert_document.py reads back
    the text of pages drawn this way, so a change inside fpdf2 fails there first."""
    from fontTools import ttLib
    from fpdf import FPDF
    from fpdf.fonts import SubsetMap, TTFFont

    with _font_lock:
        template = _font_templates.get(path)
        if template is None:
            with open(path, "rb") as fh:
                raw = fh.read()
            parsed = TTFFont(FPDF(), path, family, "")
            # its fontTools object is not needed any more (each document opens its own): dropped, so
            # that its ~16,000 glyph and metric objects do not slow every garbage collection
            parsed.ttfont.close()
            parsed.ttfont = parsed.subset = None
            template = (parsed, raw)
            _font_templates[path] = template
    parsed, raw = template
    font = copy.copy(parsed)
    font.i = len(pdf.fonts) + 1
    font.fontkey = family
    # the glyphs keep the bounding boxes they were cut with: not recomputed (and recompiled) on writing
    font.ttfont = ttLib.TTFont(io.BytesIO(raw), recalcTimestamp=False, recalcBBoxes=False, lazy=True)
    font.desc = copy.copy(parsed.desc)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None
    font.subset = SubsetMap(font)
    pdf.fonts[family] = font


def _covered(text: str) -> bool:
    """Every character of the page is in the GB 2312 cut (the face's own words are)."""
    known = _primary_characters()
    return all(ord(ch) in known for ch in text if not ch.isspace())

@lru_cache(maxsize=1)
def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@dataclass(frozen=True)
class Face:
    """What the page shows besides the metadata: the verification address of the QR code."""

    verify_url: str


ROWS = (
    ("姓　　名", "holder_name"), ("性　　别", "gender"), ("出生日期", "birth_date"),
    ("身份证号", "holder_id_number"), ("职业(工种)", "occupation"), ("等　　级", "level"),
    ("证书编号", "licence_number"), ("发证机构", "issuer_name"), ("发证日期", "issue_date"),
    ("有效期至", "valid_until"),
)


def render(data: dict[str, str], face: Face) -> bytes:
    """The unsigned PDF/A-3B: an A4 page (screen and printer) and ``certificate.json`` attached."""
    import segno
    from fpdf import FPDF
    from fpdf.enums import OutputIntentSubType
    from fpdf.output import PDFICCProfile

    pdf = FPDF(orientation="P", unit="mm", format="A4", enforce_compliance="PDF/A-3B")
    pdf.set_creation_date(dt.datetime.now(dt.UTC))
    _add_font(pdf, FONT, FONT_PATH)
    if not _covered("".join(data.values()) + face.verify_url):
        _add_font(pdf, FONT_FULL, FONT_FULL_PATH)
        pdf.set_fallback_fonts([FONT_FULL], exact_match=False)
    pdf.add_output_intent(OutputIntentSubType.PDFA, "sRGB IEC61966-2.1", "sRGB IEC61966-2.1",
                          "http://www.color.org", PDFICCProfile(contents=_srgb_profile(), n=3, alternate="DeviceRGB"),
                          "sRGB IEC61966-2.1")
    pdf.set_lang("zh-CN")
    pdf.set_title(f"{data['licence_type_name']}（电子证书）{data['licence_number']}")
    pdf.set_author(data["issuing_department_name"])
    pdf.set_subject(data["licence_identifier"])
    pdf.set_creator("证书管理系统")
    pdf.set_auto_page_break(False)
    pdf.add_page()

    # frame
    pdf.set_draw_color(150, 20, 20)
    pdf.set_line_width(1.2)
    pdf.rect(12, 12, 186, 273)
    pdf.set_line_width(0.3)
    pdf.rect(15, 15, 180, 267)

    pdf.set_text_color(150, 20, 20)
    pdf.set_font(FONT, size=20)
    pdf.set_xy(15, 32)
    pdf.cell(180, 12, data["licence_type_name"], align="C")
    pdf.set_font(FONT, size=13)
    pdf.set_xy(15, 46)
    pdf.cell(180, 8, "电 子 证 书", align="C")

    pdf.set_text_color(20, 20, 20)
    top, left, label_w, value_w, row_h = 66, 32, 34, 112, 13
    for i, (label, key) in enumerate(ROWS):
        y = top + i * row_h
        pdf.set_font(FONT, size=12)
        pdf.set_xy(left, y)
        pdf.set_text_color(90, 90, 90)
        pdf.cell(label_w, row_h, label)
        pdf.set_text_color(20, 20, 20)
        pdf.set_font(FONT, size=14)
        pdf.set_xy(left + label_w, y)
        value = data[key] or ("无" if key == "level" else "")
        pdf.cell(value_w, row_h, value)
        pdf.set_draw_color(210, 210, 210)
        pdf.set_line_width(0.2)
        pdf.line(left, y + row_h - 1, left + label_w + value_w, y + row_h - 1)

    # QR code to 证书查询, and how to check this file
    qr = segno.make(face.verify_url, error="m", micro=False, boost_error=False)
    svg = io.BytesIO()
    qr.save(svg, kind="svg", scale=1, border=2, xmldecl=False, svgns=True, nl=False, unit="mm")
    svg.seek(0)
    pdf.image(svg, x=140, y=206, w=40, h=40)
    pdf.set_font(FONT, size=9)
    pdf.set_text_color(90, 90, 90)
    pdf.set_xy(136, 247)
    pdf.cell(48, 5, "扫码查询证书状态", align="C")

    pdf.set_font(FONT, size=12)
    pdf.set_text_color(20, 20, 20)
    pdf.set_xy(32, 216)
    pdf.cell(100, 8, f"颁证单位：{data['issuing_department_name']}")
    pdf.set_xy(32, 226)
    pdf.cell(100, 8, f"签发日期：{data['electronic_issued_at'][:10]}")

    pdf.set_font(FONT, size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.set_xy(22, 258)
    pdf.cell(166, 5, f"证照标识：{data['licence_identifier']}", align="C")
    pdf.set_xy(26, 264)
    pdf.multi_cell(158, 4.5,
                   "本电子证书由颁证单位加盖电子签名，与纸质证书具有同等效力。文件被修改后签名即失效；"
                   "可在证书查询页面上传本文件或扫描二维码核验真伪及当前状态。", align="C")

    pdf.embed_file(bytes=json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"),
                   basename=ATTACHMENT_NAME, mime_type="application/json",
                   associated_file_relationship="Data", desc="电子证照元数据",
                   modification_date=dt.datetime.now(dt.UTC))
    return bytes(pdf.output())


def sign(pdf: bytes, key: SigningKey, *, location: str | None = None) -> bytes:
    """PAdES B-B signature over the whole file by the province's key (an incremental update)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _signer(key)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason="电子证书签发", location=location,
    )
    out = _outside_event_loop(signers.sign_pdf, writer, meta, signer=signer, bytes_reserved=SIGNATURE_BYTES)
    return out.getvalue()


def _outside_event_loop(call, *args, **kwargs):
    """pyHanko's synchronous calls run ``asyncio.run``, which a thread whose event loop is running
    refuses (an async server, Playwright's sync API in a test process): there, in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(call, *args, **kwargs).result()


def produce(data: dict[str, str], face: Face, key: SigningKey | None) -> bytes:
    if key is None or not key.pkcs12_path:
        raise WorkflowError(NOT_CONFIGURED)
    _signer(key)  # a missing or unreadable key is refused before drawing anything
    return sign(render(data, face), key)


def _end_with_parent(parent: int) -> None:
    """A drawing process ends with the job worker that started it, even one killed with SIGKILL
    (which runs no clean-up): Linux's PR_SET_PDEATHSIG. Without it they wait for work forever."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the pool's own shutdown only
        pass
    if os.getppid() != parent:  # the worker died before the line above ran
        os._exit(1)


def produce_many(items: Iterable[tuple[str, dict[str, str], Face]], key: SigningKey, *,
                 processes: int) -> Iterator[tuple[str, bytes]]:
    """(name, data, face) → (name, signed PDF), in the order given: for a job of many (the .zip).

    With ``processes`` > 1 the pages are drawn and signed in that many spawned processes (each keeps
    its font map and signer warm), so a job uses the cores it is given; at most a few documents per
    process are in flight, so memory stays flat however long the job. Stopping early (the caller
    closes the iterator) cancels what was not started."""
    if processes <= 1:
        for name, data, face in items:
            yield name, produce(data, face, key)
        return
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_end_with_parent, initargs=(os.getpid(),))
    pending: deque = deque()
    try:
        for name, data, face in items:
            pending.append((name, pool.submit(produce, data, face, key)))
            if len(pending) >= 4 * processes:
                done_name, future = pending.popleft()
                yield done_name, future.result()
        while pending:
            done_name, future = pending.popleft()
            yield done_name, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- checking an uploaded file ------------------------------------------------------------
NOT_PDF = "上传的文件不是PDF文件，请上传下载的电子证书（.pdf）"
UNREADABLE = "无法读取该PDF文件，文件可能已损坏或不是本系统签发的电子证书"
NO_SIGNATURE = "该PDF文件没有电子签名，不是本系统签发的电子证书"
TOO_BIG = "文件过大，请上传本系统下载的电子证书原件"
BOMB = "文件内容异常（解压后数据过大），已拒绝处理"


@dataclass(frozen=True)
class FileCheck:
    """The answer to an uploaded file, before the certificate's status is looked up."""

    signature_valid: bool  # the signature verifies and its certificate chains to our roots
    unmodified: bool  # the signed bytes are intact and cover the whole file
    trusted: bool  # signed by the configured signing certificate's chain
    signer: str | None  # whom the signing certificate names
    signed_at: dt.datetime | None
    identifier: str | None  # 证照标识 from the signed attachment, only when all of the above hold
    problem: str | None  # what is wrong, in Chinese, when anything is

    @property
    def genuine(self) -> bool:
        return self.signature_valid and self.unmodified and self.trusted and self.identifier is not None


def _refused(problem: str) -> FileCheck:
    return FileCheck(False, False, False, None, None, None, problem)


def check_file(data: bytes, roots: list, *, max_bytes: int) -> FileCheck:
    """Validate an uploaded electronic certificate: never raises for a bad file."""
    from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    if len(data) > max_bytes:
        return _refused(TOO_BIG)
    if not data.lstrip()[:5] == b"%PDF-":
        return _refused(NOT_PDF)
    mib = 1024 * 1024
    # our own files decode to well under a megabyte: anything expanding past these is not one of them
    limits = DecodeLimits(
        per_stream=StreamDecodeLimits(max_ratio=200, ratio_floor=mib, max_output_size=4 * mib),
        document_budget=DocumentDecodeBudget(base_allowance=16 * mib, max_ratio=20),
    )
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False, decode_limits=limits)
        signatures = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 - any parse failure of a foreign file is its problem
        return _refused(BOMB if _is_limit_error(exc) else UNREADABLE)
    if not signatures:
        return _refused(NO_SIGNATURE)
    signature = signatures[-1]
    try:
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
        status = _outside_event_loop(validate_pdf_signature, signature, context)
    except Exception as exc:  # noqa: BLE001
        return _refused(BOMB if _is_limit_error(exc) else UNREADABLE)
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    signer = _subject_name(status.signing_cert)
    unmodified = bool(status.intact) and status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    trusted = bool(status.trusted)
    # "valid" for a visitor: the signature verifies AND is the province's (a stranger's key is no signature of ours)
    signature_valid = bool(status.intact and status.valid) and trusted
    signed_at = getattr(status, "signer_reported_dt", None)
    identifier = None
    problem = None
    if not status.intact:
        problem = "签名校验失败：文件内容在签名后被修改"
    elif not status.valid:
        problem = "签名无效"
    elif not trusted:
        problem = "签名证书不是本省电子证书签名证书，无法确认颁证单位"
    elif status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problem = "签名有效，但文件在签名后被追加修改，不能作为电子证书原件"
    else:
        try:
            identifier = _attached_identifier(reader)
        except Exception as exc:  # noqa: BLE001
            problem = BOMB if _is_limit_error(exc) else UNREADABLE
        else:
            if identifier is None:
                problem = "签名有效，但文件中没有电子证照数据，不是本系统签发的电子证书"
    return FileCheck(signature_valid, unmodified, trusted, signer, signed_at, identifier, problem)


MAX_SIGNER_LENGTH = 200
UNKNOWN_SIGNER = "（签名证书未载明名称）"


def _subject_name(certificate) -> str:
    """Whom a signing certificate names, as a reader says it: its organisation, then its common name
    (「山东省住房和城乡建设厅（演示），DEMO 电子证书签名证书（演示用，非正式）」), not pyHanko's
    "Common Name: …, Organization: …". The text comes from the uploaded file: bounded in length."""
    try:
        native = certificate.subject.native if certificate is not None else {}
    except Exception:  # noqa: BLE001 - a foreign certificate's subject that does not parse names nobody
        native = {}
    parts = []
    for key in ("organization_name", "common_name"):
        value = native.get(key) if isinstance(native, dict) else None
        values = value if isinstance(value, list | tuple) else [value]
        parts += [str(v).strip() for v in values if v is not None and str(v).strip()]
    name = "，".join(dict.fromkeys(parts)) or UNKNOWN_SIGNER
    return name if len(name) <= MAX_SIGNER_LENGTH else name[:MAX_SIGNER_LENGTH - 1] + "…"


def _is_limit_error(exc: BaseException) -> bool:
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError

    while exc is not None:
        if isinstance(exc, PdfDecodeLimitError | MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _attached_identifier(reader) -> str | None:
    """``licence_identifier`` of the attached ``certificate.json`` (of the signed revision: the
    signature covers the whole file, checked before this is read)."""
    root = reader.root
    names = root.get("/Names")
    if names is None or "/EmbeddedFiles" not in names:
        return None
    entries = names["/EmbeddedFiles"].get("/Names", [])
    for i in range(0, len(entries) - 1, 2):
        if str(entries[i]) != ATTACHMENT_NAME:
            continue
        stream = entries[i + 1]["/EF"]["/F"]
        payload = json.loads(stream.data.decode("utf-8"))
        value = payload.get("licence_identifier") if isinstance(payload, dict) else None
        return value if isinstance(value, str) else None
    return None


# --- the demo signing certificate (make run) ------------------------------------------------
DEMO_MARK = "（演示用，非正式）"


def make_demo_ca(directory: str, department: str, *, password: str) -> str:
    """A demo CA and a signing certificate it issued, both clearly named as demo, as a PKCS#12
    file (key, certificate, CA) and the CA's PEM; returns the PKCS#12 path. RSA-2048, SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    def named(common_name: str):
        return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{department[:20]}（演示）"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"DEMO {common_name}{DEMO_MARK}")])

    def key_usage(*, signs: bool):
        return x509.KeyUsage(digital_signature=signs, content_commitment=signs, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not signs,
                             crl_sign=not signs, encipher_only=False, decipher_only=False)

    ca_name = named("电子证书根证书")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(key_usage(signs=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = named("电子证书签名证书")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(signs=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    p12 = pkcs12.serialize_key_and_certificates(
        b"ecert-signing", key, cert, [ca], serialization.BestAvailableEncryption(password.encode()))
    path = os.path.join(directory, "demo-signing.p12")
    _write_private(path, p12)
    with open(os.path.join(directory, "demo-ca.pem"), "wb") as fh:
        fh.write(ca.public_bytes(serialization.Encoding.PEM))
    return path


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
