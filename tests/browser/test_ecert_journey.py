"""下载电子证书 (issue 19): an institution opens 证书查看 → 查看详情 → 下载电子证书 and saves the file.

The saved PDF's signature is checked with endesive, independently of pyHanko (which signed it):
the hash of the signed bytes, the signature, and the signing certificate's chain to the demo CA
(tests/signing.py's ``demo-ca.pem``) all hold; one byte flipped inside the signed range breaks the
hash. Page 1 is rendered to test-artifacts/ecert-page1.png by pypdfium2, and the details page
with its button to test-artifacts/ecert-details.png, so a person can look at both. Then the file
goes to 证书查询 › 电子证书核验 as a visitor would upload it: the original checks (the card masked),
the tampered copy does not (test-artifacts/ecert-verify*.png).
"""

from __future__ import annotations

import os
import re

from tests.browser.conftest import ARTIFACTS, list_row, open_menu, playwright_unavailable, sign_in
from tests.signing import signing_key

try:
    from playwright.sync_api import expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()

NUMBER = "263701001510001"  # 李明, issued by 济南市建设职业技能培训中心 (seed/demo.py)
OPENSSL_VERSION_PATTERN = "\\b(\\d\\.\\d\\.\\d[a-z]*)\\b"


def endesive_verify():
    """``endesive.pdf.verify``. Its dependency oscrypto 1.3.0 (the last release) cannot read
    OpenSSL's version from 3.0.10 on ("Error detecting the version of libcrypto",
    wbond/oscrypto#75 and #78; fixed on its master, not released): while it is imported, its
    version pattern reads two-digit patch numbers, as the fix does. Nothing else is changed."""
    original = re.search

    def search(pattern, string, flags=0):
        if pattern == OPENSSL_VERSION_PATTERN:
            pattern = "\\b(\\d\\.\\d\\.\\d+[a-z]*)\\b"
        return original(pattern, string, flags)

    re.search = search
    try:
        from endesive.pdf import verify
    finally:
        re.search = original
    return verify


def demo_ca_pem() -> bytes:
    with open(os.path.join(os.path.dirname(signing_key()), "demo-ca.pem"), "rb") as fh:
        return fh.read()


def signed_range(data: bytes) -> tuple[int, int, int, int]:
    found = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    assert found, "a signed PDF has a /ByteRange"
    return tuple(int(n) for n in found[-1])


def test_an_institution_downloads_a_signed_electronic_certificate(live_server, browser_page, tmp_path):
    page, (base, _app) = browser_page, live_server
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, base, "inst_jinan")
    open_menu(page, "证书管理", "证书查看")
    search = page.locator("input[name=search]:not([type=hidden])")
    search.fill(NUMBER)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"search={NUMBER}"))
    row = list_row(page, NUMBER)
    expect(row).to_have_count(1)
    expect(row.locator("a.row-ecert")).to_have_text(re.compile(r"^\s*下载电子证书\s*$"))
    row.locator("a.row-details").click()
    expect(page).to_have_url(re.compile(r"/admin/certificate/details/\?id=\d+"))
    button = page.locator("#ecert-download")
    expect(button).to_have_text("下载电子证书")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ecert-details.png"), full_page=True)

    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == f"电子证书_{NUMBER}.pdf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF")
    expect(page).to_have_url(re.compile(r"/admin/certificate/details/\?id=\d+"))  # the page stays

    verify = endesive_verify()
    result, unsigned_tail = verify(data, [demo_ca_pem()])
    assert result.hashok and result.signatureok and result.certok, vars(result)
    assert unsigned_tail is None  # the signature covers the whole file

    start, first, second, _ = signed_range(data)
    assert start == 0
    spot = first // 2  # inside the first signed range: the document's body
    tampered = data[:spot] + bytes([data[spot] ^ 0x01]) + data[spot + 1:]
    result, _ = verify(tampered, [demo_ca_pem()])
    assert not result.hashok

    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        image = document[0].render(scale=2).to_pil()
        image.save(ARTIFACTS / "ecert-page1.png")
        assert image.width > 500 and image.height > 500
    finally:
        document.close()

    # 证书查询 › 电子证书核验, as anyone would: the saved file checks, the tampered copy does not
    page.goto(f"{base}/verify")
    page.locator("#verify-tab-file").click()
    expect(page).to_have_url(re.compile(r"/verify/file$"))
    page.locator("#ecert-form input[type=file]").set_input_files(str(saved))
    page.locator("#ecert-button").click()
    expect(page.locator("#ecert-signature")).to_have_text("有效")
    expect(page.locator("#ecert-unmodified")).to_have_text("未被修改")
    expect(page.locator("#ecert-signer")).to_contain_text("演示用，非正式")
    expect(page.locator("#verify-number")).to_have_text(NUMBER)
    expect(page.locator("#verify-name")).to_have_text("李*")
    expect(page.locator("body")).not_to_contain_text("370102197602270037")
    page.screenshot(path=str(ARTIFACTS / "ecert-verify.png"), full_page=True)

    copy = tmp_path / "改过的电子证书.pdf"
    copy.write_bytes(tampered)
    page.locator("#verify-again").click()
    page.locator("#ecert-form input[type=file]").set_input_files(str(copy))
    page.locator("#ecert-button").click()
    expect(page.locator("#ecert-signature")).to_have_text("无效")
    expect(page.locator("#ecert-unmodified")).to_have_text("已被修改")
    expect(page.locator("#verify-error")).to_contain_text("签名后被修改")
    expect(page.locator("#verify-number")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "ecert-verify-tampered.png"), full_page=True)
