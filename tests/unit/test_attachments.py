"""Attachments are judged by their bytes (SPEC §5.1, §5.2); the files here are real, built in code."""

from __future__ import annotations

import pytest

from tests.samples import make_docx, make_jpeg, make_pdf, make_png, make_xlsx, make_zip
from workflows import WorkflowError
from workflows.attachments import AttachmentCheck, check_batch_attachment, check_images, safe_filename, sniff

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
PNG, JPEG, PDF, DOCX, XLSX = make_png(), make_jpeg(), make_pdf(), make_docx(), make_xlsx()


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (PNG, "", ("image", "png", "image/png")),
        (JPEG, "", ("image", "jpg", "image/jpeg")),
        (PDF, "", ("document", "pdf", "application/pdf")),
        (DOCX, "", ("document", "docx", DOCX_TYPE)),
        (XLSX, "", ("document", "xlsx", XLSX_TYPE)),
        (OLE2, "报名表.XLS", ("document", "xls", "application/vnd.ms-excel")),
        (OLE2, "通知.doc", ("document", "doc", "application/msword")),
        (OLE2, "unknown.bin", ("document", "doc", "application/msword")),
        (make_zip(), "a.docx", None),
        (b"PK\x03\x04garbage", "a.docx", None),
        (b"GIF89a", "a.gif", None),
        (b"<html></html>", "a.pdf", None),
        (b"", "a.png", None),
    ],
)
def test_sniff(data, filename, expected):
    assert sniff(data, filename) == expected


@pytest.mark.parametrize(
    ("filename", "data", "kind", "content_type", "safe"),
    [
        ("现场照片.png", PNG, "image", "image/png", "现场照片.png"),
        ("IMG_0001.JPEG", JPEG, "image", "image/jpeg", "IMG_0001.jpg"),
        ("考核通知.pdf", PDF, "document", "application/pdf", "考核通知.pdf"),
        ("名单.docx", DOCX, "document", DOCX_TYPE, "名单.docx"),
        ("成绩.xlsx", XLSX, "document", XLSX_TYPE, "成绩.xlsx"),
        ("旧成绩.xls", OLE2, "document", "application/vnd.ms-excel", "旧成绩.xls"),
        ("C:\\Users\\me\\桌面\\通知.doc", OLE2, "document", "application/msword", "通知.doc"),
        ("../../etc/passwd.pdf", PDF, "document", "application/pdf", "passwd.pdf"),
        ('a"b;\r\nc.pdf', PDF, "document", "application/pdf", "a_b_c.pdf"),
        (".pdf", PDF, "document", "application/pdf", "附件.pdf"),
    ],
)
def test_batch_attachment_accepted(filename, data, kind, content_type, safe):
    check = check_batch_attachment(filename, data, existing_documents=0, existing_images=0)
    assert check == AttachmentCheck(kind, content_type, safe, safe.rsplit(".", 1)[1])


SUPPORTED = "（仅支持 pdf、doc、docx、xls、xlsx、jpg、png）"


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("x.png", PDF, "文件「x.png」的内容与扩展名不符"),
        ("x.pdf", PNG, "文件「x.pdf」的内容与扩展名不符"),
        ("x.jpg", PNG, "文件「x.jpg」的内容与扩展名不符"),
        ("x.xlsx", DOCX, "文件「x.xlsx」的内容与扩展名不符"),
        ("x.docx", OLE2, "文件「x.docx」的内容与扩展名不符"),
        ("x.png", b"MZ\x90\x00 an exe", f"文件「x.png」不是有效的图片或文档{SUPPORTED}"),
        ("x.docx", make_zip(), f"文件「x.docx」不是有效的图片或文档{SUPPORTED}"),
        ("x.gif", b"GIF89a\x01\x00", f"文件「x.gif」不是有效的图片或文档{SUPPORTED}"),
        ("x.exe", PDF, f"文件「x.exe」不是有效的图片或文档{SUPPORTED}"),
        ("noextension", PNG, f"文件「noextension」不是有效的图片或文档{SUPPORTED}"),
        ("x.pdf", b"", "文件「x.pdf」为空"),
        ("dir/big.pdf", PDF + b"\0" * (10 * 1024 * 1024), "文件「big.pdf」超过10MB"),
    ],
)
def test_batch_attachment_refused(filename, data, message):
    with pytest.raises(WorkflowError) as exc:
        check_batch_attachment(filename, data, existing_documents=0, existing_images=0)
    assert exc.value.message == message


def test_exactly_10mb_is_accepted():
    data = PDF + b"\0" * (10 * 1024 * 1024 - len(PDF))
    assert check_batch_attachment("a.pdf", data, existing_documents=0, existing_images=0).kind == "document"


def test_batch_attachment_counts():
    """SPEC §5.1: 2 documents and 20 images, counted separately."""
    assert check_batch_attachment("a.pdf", PDF, existing_documents=1, existing_images=20).kind == "document"
    assert check_batch_attachment("a.png", PNG, existing_documents=2, existing_images=19).kind == "image"
    with pytest.raises(WorkflowError, match="^最多上传2个文档$"):
        check_batch_attachment("a.pdf", PDF, existing_documents=2, existing_images=0)
    with pytest.raises(WorkflowError, match="^最多上传20张图片$"):
        check_batch_attachment("a.jpg", JPEG, existing_documents=0, existing_images=20)
    with pytest.raises(WorkflowError, match="^最多上传3个文档$"):
        check_batch_attachment("a.docx", DOCX, existing_documents=3, existing_images=0, max_documents=3)


def test_safe_filename_limits_length():
    assert safe_filename("名" * 300 + ".pdf", "pdf") == "名" * 100 + ".pdf"


def test_check_images_accepts_small_jpg_and_png():
    checks = check_images([("正面.jpg", JPEG), ("背面.png", PNG)])
    assert [(c.kind, c.content_type, c.safe_filename) for c in checks] == [
        ("image", "image/jpeg", "正面.jpg"), ("image", "image/png", "背面.png")]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "请至少上传1张图片"),
        ([("a.png", PNG)] * 6, "最多上传5张图片"),
        ([("a.pdf", PDF)], "文件「a.pdf」不是有效的图片（仅支持 jpg、png）"),
        ([("a.png", PDF)], "文件「a.png」不是有效的图片（仅支持 jpg、png）"),
        ([("a.png", PNG), ("b.jpg", PNG)], "文件「b.jpg」的内容与扩展名不符"),
        ([("a.png", PNG + b"\0" * (200 * 1024))], "文件「a.png」超过200KB"),
        ([("a.png", b"")], "文件「a.png」为空"),
    ],
)
def test_check_images_refused(files, message):
    with pytest.raises(WorkflowError) as exc:
        check_images(files)
    assert exc.value.message == message


def test_check_images_custom_counts():
    with pytest.raises(WorkflowError, match="^请至少上传2张图片$"):
        check_images([("a.png", PNG)], min_count=2)
    assert len(check_images([("a.png", PNG)] * 8, max_count=8)) == 8
