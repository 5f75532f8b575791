"""The electronic certificate as a file (issue 19): the page's text as a reader extracts it (PDFium,
not the code that wrote it), PDF/A-3's markers and the associated data file, the signature, and many
files made in parallel processes."""

from __future__ import annotations

import asyncio
import io
import json

import pypdfium2 as pdfium
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.signing import PASSWORD, signing_key
from workflows import ecert_document as doc
from workflows.ecert import METADATA_FIELDS

KEY = doc.SigningKey(signing_key(), PASSWORD)
FACE = doc.Face("http://127.0.0.1:5000/verify/e/token-of-the-test")


def data(name: str = "张三", number: str = "263701001010001", **more) -> dict[str, str]:
    values = {f.key: "" for f in METADATA_FIELDS}
    values.update(licence_type_name="住房和城乡建设行业技能人员职业培训合格证", licence_number=number,
                  licence_identifier=f"1.2.156.3005.2.X.Y.{number}.001.Z", holder_name=name, gender="男",
                  birth_date="1980-01-02", holder_id_number="370102198001020011", occupation="电工",
                  level="初级工(五级)", issuer_name="济南市建设职业技能培训中心", issue_date="2026-12-01",
                  valid_until="长期", issuing_department_name="山东省住房和城乡建设厅",
                  electronic_issued_at="2026-12-01T09:30:00+08:00", status="有效")
    values.update(more)
    return values


def page_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return document[0].get_textpage().get_text_range()
    finally:
        document.close()


def test_each_page_shows_its_own_holder_in_text_a_reader_extracts():
    """Pages drawn one after another in one process (the font parsed once, copied per document)
    each carry their own text and glyphs: a reader finds every field, and not the page before's."""
    first = doc.render(data("欧阳娜娜", "263701001010001", occupation="钢筋工"), FACE)
    second = doc.render(data("李明", "263701001010002", occupation="砌筑工", level=""), FACE)
    one, two = page_text(first), page_text(second)
    for text in ("欧阳娜娜", "263701001010001", "钢筋工", "济南市建设职业技能培训中心", "370102198001020011",
                 "电 子 证 书", "颁证单位：山东省住房和城乡建设厅", "签发日期：2026-12-01", "长期"):
        assert text in one, text
    assert "李明" in two and "砌筑工" in two and "欧阳娜娜" not in two and "钢筋工" not in two
    assert "无" in two  # no level


def test_a_character_outside_gb2312_is_drawn_from_the_full_font():
    name = "王䶮"  # U+4DAE, CJK Extension A
    assert not doc._covered(name) and doc._covered("王明")
    pdf = doc.render(data(name), FACE)
    assert name in page_text(pdf)
    reader = PdfFileReader(io.BytesIO(pdf))
    fonts = reader.root["/Pages"]["/Kids"][0]["/Resources"]["/Font"]
    assert len(fonts) == 2  # the GB 2312 cut and the full one


def test_pdf_a3_markers_and_the_attached_data():
    values = data("赵六")
    pdf = doc.produce(values, FACE, KEY)
    assert len(pdf) < 300 * 1024
    reader = PdfFileReader(io.BytesIO(pdf))
    xmp = reader.root["/Metadata"].data.decode("utf-8")
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert reader.root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    [spec] = [ref.get_object() for ref in reader.root["/AF"]]
    assert spec["/F"] == doc.ATTACHMENT_NAME and spec["/AFRelationship"] == "/Data"
    assert json.loads(spec["/EF"]["/F"].data.decode("utf-8")) == values
    page = reader.root["/Pages"]["/Kids"][0]
    for font in page["/Resources"]["/Font"].values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]  # embedded, as PDF/A asks


def test_the_signature_covers_the_file_and_names_the_demo_key():
    pdf = doc.produce(data(), FACE, KEY)
    check = doc.check_file(pdf, doc.trust_roots(KEY), max_bytes=1 << 20)
    assert check.genuine and check.identifier == data()["licence_identifier"]
    assert "演示用，非正式" in check.signer


def test_without_a_key_nothing_is_drawn():
    with pytest.raises(doc.WorkflowError, match="未配置电子证书签名证书"):
        doc.produce(data(), FACE, None)
    with pytest.raises(doc.WorkflowError, match="未配置电子证书签名证书"):
        doc.produce(data(), FACE, doc.SigningKey("/nonexistent/key.p12", "x"))
    with pytest.raises(doc.WorkflowError, match="无法读取"):
        doc.produce(data(), FACE, doc.SigningKey(signing_key(), "wrong password"))


def test_many_in_two_processes_come_back_in_order_each_signed():
    items = [(f"{n}.pdf", data(f"持证人{chr(0x4E00 + n)}", f"2637010010100{n:02d}"), FACE) for n in range(6)]
    made = list(doc.produce_many(iter(items), KEY, processes=2))
    assert [name for name, _ in made] == [name for name, _, _ in items]
    roots = doc.trust_roots(KEY)
    for (_, values, _), (_, pdf) in zip(items, made, strict=True):
        check = doc.check_file(pdf, roots, max_bytes=1 << 20)
        assert check.genuine and check.identifier == values["licence_identifier"]
        assert values["holder_name"] in page_text(pdf)


def test_signing_and_checking_work_where_an_event_loop_runs():
    """pyHanko runs asyncio.run inside; from a thread whose loop is running (an async server,
    Playwright's sync API in the test process) that is refused — the calls move to a thread there."""

    async def inside():
        pdf = doc.produce(data("钱七"), FACE, KEY)
        return doc.check_file(pdf, doc.trust_roots(KEY), max_bytes=1 << 20)

    check = asyncio.run(inside())
    assert check.genuine, check.problem
