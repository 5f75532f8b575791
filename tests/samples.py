"""Real sample files built in code (no binary fixtures): PNG, JPEG, PDF, DOCX, XLSX, ZIP."""

from __future__ import annotations

import importlib.util
import io
import struct
import sys
import zipfile
from pathlib import Path

import xlsxwriter

from seed.images import make_png

__all__ = ["make_png", "make_jpeg", "make_pdf", "make_docx", "make_xlsx", "make_zip", "bench_module"]


def bench_module(name: str):
    """A script of bench/ as a module (bench/import_template.py's hostile uploads, its candidate
    rows and raw sheets): the tests refuse the very files the benchmark times."""
    module = sys.modules.get(f"bench_{name}")
    if module is None:
        path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def make_jpeg() -> bytes:
    """A baseline 8×8 grey JPEG: one DC and one AC Huffman code, one block of 'DC 0, EOB'."""
    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    huffman = bytes([1] + [0] * 15) + b"\x00"  # a single 1-bit code for symbol 0
    return (b"\xff\xd8"
            + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xDB, b"\x00" + b"\x01" * 64)
            + segment(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
            + segment(0xC4, b"\x00" + huffman) + segment(0xC4, b"\x10" + huffman)
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x3f" + b"\xff\xd9")


def make_pdf() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                    'package/2006/content-types"/>')
        zf.writestr("word/document.xml", '<?xml version="1.0"?><w:document xmlns:w="http://schemas.'
                    'openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>')
    return out.getvalue()


def make_xlsx() -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.add_worksheet().write(0, 0, "培训记录")
    wb.close()
    return buf.getvalue()


def make_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("readme.txt", "not an office file")
    return out.getvalue()
