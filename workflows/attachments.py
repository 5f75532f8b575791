"""Attachment checks by content, not by name (SPEC §5.1, §5.2).

A file is what its bytes say it is: a script renamed ``.pdf`` or a PDF renamed ``.png``
is refused, so a reviewer's browser only ever previews a real image and downloads a
real document. Attachments are stored in the database (ARCHITECTURE: every process
sees them), which is why sizes are bounded here.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from models import Attachment, AttachmentKind
from workflows import WorkflowError

KIND_DOCUMENT = "document"
KIND_IMAGE = "image"

# extension → (kind, content type)
FORMATS: dict[str, tuple[str, str]] = {
    "jpg": (KIND_IMAGE, "image/jpeg"),
    "png": (KIND_IMAGE, "image/png"),
    "pdf": (KIND_DOCUMENT, "application/pdf"),
    "doc": (KIND_DOCUMENT, "application/msword"),
    "xls": (KIND_DOCUMENT, "application/vnd.ms-excel"),
    "docx": (KIND_DOCUMENT, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": (KIND_DOCUMENT, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
_ALIASES = {"jpeg": "jpg", "jpe": "jpg"}

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_PDF = b"%PDF-"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"

BATCH_FORMATS_LABEL = "pdf、doc、docx、xls、xlsx、jpg、png"
IMAGE_FORMATS_LABEL = "jpg、png"
_MAX_NAME = 100  # characters kept of a user's file name


@dataclass(frozen=True)
class AttachmentCheck:
    kind: str  # KIND_DOCUMENT / KIND_IMAGE
    content_type: str
    safe_filename: str
    extension: str


def _display_name(filename: str) -> str:
    """The last path component: browsers on Windows may send ``C:\\…\\name.pdf``."""
    return re.split(r"[\\/]", filename or "")[-1]


def _split_name(filename: str) -> tuple[str, str]:
    """(stem, extension) of the last path component; ``.pdf`` is an extension, not a dotfile."""
    stem, dot, ext = _display_name(filename).rpartition(".")
    return (stem, ext) if dot else (ext, "")


def _declared_extension(filename: str) -> str:
    ext = _split_name(filename)[1].lower()
    return _ALIASES.get(ext, ext)


def sniff(data: bytes, filename: str = "") -> tuple[str, str, str] | None:
    """(kind, extension, content type) from the magic bytes, or None for anything else.

    OLE2 is the container of both .doc and .xls; the bytes alone don't say which without
    parsing the directory, so the extension the user gave decides between those two.
    """
    ext: str | None = None
    if data.startswith(_JPEG):
        ext = "jpg"
    elif data.startswith(_PNG):
        ext = "png"
    elif data.startswith(_PDF):
        ext = "pdf"
    elif data.startswith(_OLE2):
        declared = _declared_extension(filename)
        ext = declared if declared in ("doc", "xls") else "doc"
    elif data.startswith(_ZIP):
        ext = _ooxml_kind(data)
    if ext is None:
        return None
    kind, content_type = FORMATS[ext]
    return kind, ext, content_type


def _ooxml_kind(data: bytes) -> str | None:
    """docx / xlsx by their main part; any other zip (odt, apk, plain archive) is None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def safe_filename(filename: str, extension: str) -> str:
    """The user's name without directories or control/reserved characters, with the
    extension we detected: Chinese names survive (werkzeug's secure_filename drops them),
    path tricks and header injection in Content-Disposition do not."""
    stem = unicodedata.normalize("NFC", _split_name(filename)[0])
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C")
    stem = re.sub(r'[<>:"|?*;]+', "_", stem).strip(" .")[:_MAX_NAME]
    return f"{stem or '附件'}.{extension}"


def _size_label(max_bytes: int) -> str:
    mb, rest = divmod(max_bytes, 1024 * 1024)
    return f"{mb}MB" if not rest else f"{max_bytes // 1024}KB"


def _check_one(filename: str, data: bytes, *, allowed: frozenset[str], formats_label: str,
               what: str, max_bytes: int) -> AttachmentCheck:
    name = _display_name(filename) or "未命名"
    if not data:
        raise WorkflowError(f"文件「{name}」为空")
    if len(data) > max_bytes:
        raise WorkflowError(f"文件「{name}」超过{_size_label(max_bytes)}")
    found = sniff(data, filename)
    declared = _declared_extension(filename)
    if found is None or found[1] not in allowed or declared not in allowed:
        raise WorkflowError(f"文件「{name}」不是有效的{what}（仅支持 {formats_label}）")
    kind, ext, content_type = found
    if declared != ext:
        raise WorkflowError(f"文件「{name}」的内容与扩展名不符")
    return AttachmentCheck(kind, content_type, safe_filename(filename, ext), ext)


_BATCH_ALLOWED = frozenset(FORMATS)
_IMAGE_ALLOWED = frozenset({"jpg", "png"})


def check_batch_attachment(
    filename: str,
    data: bytes,
    *,
    existing_documents: int,
    existing_images: int,
    max_documents: int = 2,
    max_images: int = 20,
    max_bytes: int = 10 * 1024 * 1024,
) -> AttachmentCheck:
    """One batch attachment (SPEC §5.1): at most 2 documents and 20 images, by content."""
    check = _check_one(filename, data, allowed=_BATCH_ALLOWED, formats_label=BATCH_FORMATS_LABEL,
                       what="图片或文档", max_bytes=max_bytes)
    if check.kind == KIND_DOCUMENT and existing_documents >= max_documents:
        raise WorkflowError(f"最多上传{max_documents}个文档")
    if check.kind == KIND_IMAGE and existing_images >= max_images:
        raise WorkflowError(f"最多上传{max_images}张图片")
    return check


def check_images(
    files: list[tuple[str, bytes]],
    *,
    min_count: int = 1,
    max_count: int = 5,
    max_bytes: int = 200 * 1024,
) -> list[AttachmentCheck]:
    """Photos for certificate business (SPEC §5.2): jpg/png only, by content, small.

    The count is checked first so a user who picked too many files is told that, not
    which one of them is too large.
    """
    if len(files) < min_count:
        raise WorkflowError(f"请至少上传{min_count}张图片")
    if len(files) > max_count:
        raise WorkflowError(f"最多上传{max_count}张图片")
    return [
        _check_one(name, data, allowed=_IMAGE_ALLOWED, formats_label=IMAGE_FORMATS_LABEL,
                   what="图片", max_bytes=max_bytes)
        for name, data in files
    ]


def store(session, files, checks, *, owner_type: str, owner_id: int, user_id: int | None,
          purpose: str | None = None) -> list[Attachment]:
    """The one writer of uploaded files: each of ``files`` ((filename, data), in the order their
    ``checks`` came back from ``check_images`` / ``check_batch_attachment`` / ``_check_one``) stored on
    its owner under its safe name, with its size and SHA-256."""
    rows = [Attachment(owner_type=owner_type, owner_id=owner_id, kind=AttachmentKind(check.kind), purpose=purpose,
                       filename=check.safe_filename, content_type=check.content_type, size=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by_id=user_id)
            for (_, data), check in zip(files, checks, strict=True)]
    session.add_all(rows)
    return rows
