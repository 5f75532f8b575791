"""电子证书核验 on 证书查询 (issue 19): an uploaded electronic certificate, and the page its QR code opens.

Real files: ``admin_views.ecert.electronic_pdf`` signs with the tests' key (tests/signing.py), as a
download does. Every bad file gets a Chinese answer with status 200 and says nothing of any holder;
a genuine file shows the certificate's masked card and whether that issue is still current.
"""

from __future__ import annotations

import io
import logging
import tracemalloc
import zlib
from datetime import date
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from admin_views import ecert as ecert_files
from admin_views import verify as page
from admin_views.ecert_keys import trust_roots
from models import Certificate, CertificateStatus, ElectronicCertificate, RateLimitHit
from models.base import to_local
from tests.factories import issued_certificates, make_application, org, user
from tests.samples import make_pdf, make_png
from tests.signing import PASSWORD, signing_key
from workflows import ecert, ecert_document
from workflows import verification as rules
from workflows.business import BUSINESS
from workflows.certificate import CERTIFICATE
from workflows.validators import make_id_number

LONG_WINDOW = 10**9  # never crosses a window boundary during a test
ENTERPRISE = "QY370101"
SIGNER_ORG = "山东省住房和城乡建设厅（演示）"


# --- helpers -------------------------------------------------------------------------------------


def valid_certificate(session) -> Certificate:
    return session.scalars(select(Certificate).where(Certificate.status == CertificateStatus.valid)
                           .order_by(Certificate.id)).first()


def fresh_certificate(session) -> Certificate:
    """A valid certificate of a new holder employed by an enterprise, issued through an approved batch."""
    return issued_certificates(session, "inst_jinan", [("砌筑工", "初级工(五级)")], employer=org(session, ENTERPRISE))[0]


def download(app, certificate: Certificate) -> bytes:
    """The signed file, as 下载电子证书 produces it."""
    with app.test_request_context():
        return ecert_files.electronic_pdf(certificate)


def current_issue(session, certificate: Certificate) -> ElectronicCertificate:
    return ecert.current(session, certificate)


def unsigned(app, session, certificate: Certificate) -> bytes:
    """The same face and data, never signed."""
    issued = current_issue(session, certificate)
    data = ecert.metadata(issued, ecert.naming().department_code, ecert.department_name(session))
    with app.test_request_context():
        return ecert_document.render(data, ecert_document.Face(page.ecert_url(issued.identifier)))


def upload(browser, data: bytes | None, filename: str = "电子证书.pdf", **kw):
    form = {} if data is None else {"file": (io.BytesIO(data), filename)}
    return browser.post("/verify/file", form, token_from="/verify/file", content_type="multipart/form-data", **kw)


def hits(session) -> int:
    return session.scalar(select(func.coalesce(func.sum(RateLimitHit.count), 0)))


def ecert_path(app, identifier: str) -> str:
    with app.test_request_context():
        return urlsplit(page.ecert_url(identifier)).path


def assert_nothing_of(text: str, certificate: Certificate) -> None:
    """No card, and nothing of the holder or the certificate, masked or not."""
    person = certificate.person
    assert 'id="verify-result"' not in text and "证书信息" not in text
    for secret in (person.name, rules.mask_name(person.name), person.id_number, rules.mask_id_number(person.id_number),
                   certificate.number):
        assert secret not in text, secret


# --- the page ------------------------------------------------------------------------------------


def test_the_file_tab_opens_signed_out(browser):
    resp = browser.get("/verify/file")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for words in ("证书查询", "电子证书核验", 'enctype="multipart/form-data"', 'type="file"', 'name="csrf_token"',
                  "不超过1MB", "核验"):
        assert words in text, words
    assert resp.headers["Cache-Control"] == "no-store"
    assert 'href="/verify/file"' in browser.get("/verify").get_data(as_text=True)  # the tab beside 证书编号查询


def test_a_genuine_file_shows_the_masked_card(app, browser, session, caplog):
    cert = valid_certificate(session)
    name, id_number = cert.person.name, cert.person.id_number
    data = download(app, cert)
    identifier = current_issue(session, cert).identifier
    with caplog.at_level(logging.INFO):
        resp = upload(browser, data)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for words in ("电子证书核验结果", "签名是否有效", "有效", "文件是否被修改", "未被修改", "签名者", SIGNER_ORG,
                  "DEMO 电子证书签名证书", "电子证书状态", cert.number, cert.occupation.name, cert.issuer.name):
        assert words in text, words
    assert "无效" not in text and "已被修改" not in text and "Common Name" not in text
    assert rules.mask_name(name) in text and rules.mask_id_number(id_number) in text
    assert name not in text and id_number not in text and id_number[6:14] not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"identifier={identifier}" in logged and "matched=True" in logged
    assert name not in logged and id_number not in logged  # like the other lookups: never the holder
    assert hits(session) == 1


def test_the_signer_is_named_as_a_reader_says_it(app, session):
    data = download(app, valid_certificate(session))
    with app.test_request_context():
        check = ecert_document.check_file(data, trust_roots(), max_bytes=10**6)
    assert check.genuine and check.signer == f"{SIGNER_ORG}，DEMO 电子证书签名证书（演示用，非正式）"


# --- bad files -----------------------------------------------------------------------------------


def modified(data: bytes) -> bytes:
    """One digit of the certificate number in the signed revision's metadata changed."""
    at = data.index("（电子证书）".encode()) + len("（电子证书）".encode()) + 14
    changed = bytearray(data)
    changed[at] = ord("0") + (changed[at] - ord("0") + 1) % 10
    return bytes(changed)


def appended(data: bytes) -> bytes:
    """An incremental update after the signature: the signature no longer covers the whole file."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    writer.root["/Lang"] = generic.TextStringObject("en-US")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def by_another_key(app, session, certificate) -> bytes:
    key = ecert_document.SigningKey(signing_key("别的单位"), PASSWORD)
    return ecert_document.sign(unsigned(app, session, certificate), key)


def pdf_bomb(size: int = 100_000_000) -> bytes:
    """A ~100 KB PDF whose catalog sits in an object stream inflating to ``size`` bytes: opening the
    document at all means decoding it."""
    objects = b"<< /Type /Catalog /Pages 3 0 R >>\n<< /Type /Pages /Kids [] /Count 0 >>\n"
    header = b"2 0 3 %d " % objects.index(b"<< /Type /Pages")
    first = len(header)
    payload = zlib.compress(header + objects + b" " * size, 9)
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    stream_at = out.tell()
    out.write(b"1 0 obj\n<< /Type /ObjStm /N 2 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
              % (first, len(payload)) + payload + b"\nendstream\nendobj\n")
    xref_at = out.tell()
    rows = [(0, 0, 65535), (1, stream_at, 0), (2, 1, 0), (2, 1, 1), (1, xref_at, 0)]
    table = b"".join(kind.to_bytes(1, "big") + a.to_bytes(4, "big") + b.to_bytes(2, "big") for kind, a, b in rows)
    out.write(b"4 0 obj\n<< /Type /XRef /Size 5 /W [1 4 2] /Root 2 0 R /Length %d >>\nstream\n" % len(table)
              + table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at)
    return out.getvalue()


# (file, filename, message, signature row, file row): the rows only when a signature was examined
BAD = {
    "a PNG": (lambda app, s, c: make_png(), "电子证书.pdf", ecert_document.NOT_PDF, None, None),
    "text named .pdf": (lambda app, s, c: "这不是电子证书".encode() * 50, "电子证书.pdf", ecert_document.NOT_PDF, None, None),
    "a broken PDF": (lambda app, s, c: b"%PDF-1.7\n" + b"\x00garbage" * 100, "电子证书.pdf", ecert_document.UNREADABLE,
                     None, None),
    "a PDF without signature": (lambda app, s, c: make_pdf(), "a.pdf", ecert_document.NO_SIGNATURE, None, None),
    "our face, unsigned": (unsigned, "电子证书.pdf", ecert_document.NO_SIGNATURE, None, None),
    "signed by another key": (by_another_key, "电子证书.pdf", "签名证书不是本省电子证书签名证书", "无效", "未被修改"),
    "a modified copy": (lambda app, s, c: modified(download(app, c)), "电子证书.pdf", "文件内容在签名后被修改",
                        "无效", "已被修改"),
    "an update appended": (lambda app, s, c: appended(download(app, c)), "电子证书.pdf", "文件在签名后被追加修改",
                           "有效", "已被修改"),
    "a PDF bomb": (lambda app, s, c: pdf_bomb(), "电子证书.pdf", ecert_document.BOMB, None, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_gets_a_chinese_answer_and_nothing_else(app, browser, session, case):
    make, filename, message, signature, unmodified = BAD[case]
    cert = valid_certificate(session)
    data = make(app, session, cert)
    resp = upload(browser, data, filename)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert message in text
    assert_nothing_of(text, cert)
    if signature is None:  # refused before any signature: the form again, with the answer
        assert 'id="ecert-form"' in text and 'id="ecert-check"' not in text
    else:
        assert 'id="ecert-signature">' + signature in text
        assert 'id="ecert-unmodified">' + unmodified in text
    assert hits(session) == 1  # each counts as a lookup


def test_another_keys_signer_is_named_but_not_trusted(app, browser, session):
    cert = valid_certificate(session)
    text = upload(browser, by_another_key(app, session, cert)).get_data(as_text=True)
    assert "别的单位（演示）" in text and 'id="ecert-signature">无效' in text


def test_the_bomb_is_refused_within_bounded_memory(app):
    data = pdf_bomb()
    assert len(data) < 200_000
    tracemalloc.start()
    try:
        check = ecert_document.check_file(data, [], max_bytes=10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert check.problem == ecert_document.BOMB and not check.genuine
    assert peak < 64 * 1024 * 1024, peak


def test_a_file_over_the_limit_is_too_big(app, browser, session):
    cert = valid_certificate(session)
    data = download(app, cert)
    app.config["ECERT_VERIFY_MAX_BYTES"] = len(data) - 1  # a genuine file, one byte too many
    resp = upload(browser, data)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and ecert_document.TOO_BIG in text
    assert_nothing_of(text, cert)


def test_a_request_far_over_the_limit_is_refused_unread_in_chinese(app, browser, session):
    resp = upload(browser, b"%PDF-1.7\n" + b"0" * (2 * 1024 * 1024))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 413
    assert ecert_document.TOO_BIG in text and "电子证书核验" in text
    assert hits(session) == 0


@pytest.mark.parametrize("data, message", [(b"", rules.EMPTY_FILE), (None, page.NO_FILE)],
                         ids=["an empty file", "no file field"])
def test_an_empty_or_missing_file_is_not_a_lookup(browser, session, data, message):
    resp = upload(browser, data)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and message in text
    assert hits(session) == 0


def test_no_file_chosen_is_not_a_lookup(browser, session):
    resp = upload(browser, b"", filename="")  # what a browser sends when nothing was chosen
    assert resp.status_code == 200 and page.NO_FILE in resp.get_data(as_text=True)
    text_field = browser.post("/verify/file", {"file": "%PDF-1.7 不是文件"}, token_from="/verify/file",
                              content_type="multipart/form-data")  # a text field in the file's place
    assert text_field.status_code == 200 and page.NO_FILE in text_field.get_data(as_text=True)
    assert hits(session) == 0


def test_the_number_form_over_the_apps_request_limit_is_a_chinese_page(app, browser, session):
    app.config["MAX_CONTENT_LENGTH"] = 64  # the upload's own limit does not stretch the other forms'
    resp = browser.post("/verify", {"number": "2" * 30, "name": "张" * 30}, token_from="/verify")
    assert resp.status_code == 413 and "上传的文件过大" in resp.get_data(as_text=True)


def test_an_upload_without_csrf_is_refused(app, browser, session):
    data = download(app, valid_certificate(session))
    for form in ({}, {"csrf_token": "forged-" + "0" * 40}):
        resp = browser.post("/verify/file", {"file": (io.BytesIO(data), "电子证书.pdf"), **form}, csrf=False,
                            content_type="multipart/form-data")
        assert resp.status_code == 400
        assert "缺少安全令牌" in resp.get_data(as_text=True)
    assert hits(session) == 0


def test_a_failing_check_is_an_unreadable_file_not_a_500(app, browser, session, monkeypatch, caplog):
    def broken(*args, **kw):
        raise RuntimeError("reader exploded")

    monkeypatch.setattr(ecert_document, "check_file", broken)
    with caplog.at_level(logging.ERROR, logger="workflows.verification"):
        resp = upload(browser, make_pdf())
    assert resp.status_code == 200 and ecert_document.UNREADABLE in resp.get_data(as_text=True)
    assert any("reader exploded" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_without_a_signing_certificate_the_page_says_so(app, browser, session):
    app.config["ECERT_SIGNING_PKCS12"] = None
    resp = upload(browser, make_pdf())
    assert resp.status_code == 200 and page.NOT_CONFIGURED in resp.get_data(as_text=True)


def test_a_genuine_signature_of_an_unknown_issue(app, browser, session):
    """Signed with our key but its 证照标识 is unknown here (another database): said plainly, no card."""
    cert = valid_certificate(session)
    data = download(app, cert)
    session.execute(ElectronicCertificate.__table__.delete().where(ElectronicCertificate.certificate_id == cert.id))
    resp = upload(browser, data)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and rules.UNKNOWN_ECERT in text
    assert 'id="ecert-signature">有效' in text
    assert_nothing_of(text, cert)


# --- an earlier file after the certificate changed ------------------------------------------------


def approve(session, application):
    BUSINESS.fire(session, user(session, "jinan"), application, "authority_approve", social_security_checked=True)
    BUSINESS.fire(session, user(session, "province"), application, "province_approve")


def cancel(session, cert):
    CERTIFICATE.fire(session, user(session, "province"), cert, "cancel", reason="持证人申请注销")


def void(session, cert):
    CERTIFICATE.fire(session, user(session, "province"), cert, "void", reason="证书信息有误")


def change_name(session, cert):
    approve(session, make_application(session, "inst_jinan", "change", cert, fields=["name"],
                                      values={"new_name": "王新名"}))


def change_id_number(session, cert):
    number = make_id_number("370203", date(1971, 5, 6), 88, cert.person.gender)
    approve(session, make_application(session, "inst_jinan", "change", cert, fields=["id_number"],
                                      values={"new_id_number": number}))


def reissue(session, cert):
    approve(session, make_application(session, "inst_jinan", "reissue", cert))


@pytest.mark.parametrize("event, label", [
    (cancel, "已注销"), (void, "已作废"), (reissue, "已作废"), (change_name, "已变更，请以新证为准"),
    (change_id_number, "已变更，请以新证为准"),
], ids=["注销", "作废", "补办", "姓名变更", "身份证号变更"])
def test_an_earlier_file_says_it_is_no_longer_current(app, browser, session, event, label):
    cert = fresh_certificate(session)
    issued = current_issue(session, cert)
    data = download(app, cert)
    qr = ecert_path(app, issued.identifier)
    before = upload(browser, data).get_data(as_text=True)
    assert '<span class="badge badge-success">有效</span>' in before

    event(session, cert)
    session.commit()
    session.refresh(issued)
    since = to_local(issued.ended_at).date().isoformat()
    for resp in (upload(browser, data), browser.get(qr)):
        text = resp.get_data(as_text=True)
        assert resp.status_code == 200
        assert f"{label}</span>（{since}起）" in text, text
        assert cert.number in text and cert.person.id_number not in text
        assert (rules.CHANGED_HINT in text) == (event in (change_name, change_id_number))
        if event is reissue:  # the new certificate's number, as 证书查询 names a reissue
            [new] = cert.replaced_by
            assert new.number in text
    answer = upload(browser, data).get_data(as_text=True)
    assert 'id="ecert-signature">有效' in answer and 'id="ecert-unmodified">未被修改' in answer


def test_the_file_downloaded_after_a_name_change_is_current(app, browser, session):
    cert = fresh_certificate(session)
    change_name(session, cert)
    text = upload(browser, download(app, cert)).get_data(as_text=True)
    assert '<span class="badge badge-success">有效</span>' in text and "王*" in text and "王新名" not in text
    assert rules.CHANGED_HINT not in text


# --- the QR code of an electronic certificate ----------------------------------------------------


def test_the_qr_page_shows_the_card_and_the_issue(app, browser, session):
    cert = valid_certificate(session)
    identifier = current_issue(session, cert).identifier
    path = ecert_path(app, identifier)
    assert path.startswith("/verify/e/")
    resp = browser.get(path)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "电子证书状态" in text and cert.number in text and rules.mask_name(cert.person.name) in text
    assert cert.person.name not in text and cert.person.id_number not in text
    assert rules.identifier_from_token(path.rsplit("/", 1)[1], app.config["SECRET_KEY"]) == identifier


def test_number_and_electronic_tokens_do_not_open_each_other(app, browser, session):
    cert = valid_certificate(session)
    identifier = current_issue(session, cert).identifier
    secret = app.config["SECRET_KEY"]
    number_token = rules.token_for(cert.number, secret)
    ecert_token = rules.ecert_token_for(identifier, secret)
    for path in ("/verify/e/" + number_token, "/verify/t/" + ecert_token,
                 "/verify/e/" + rules.token_for(identifier, secret),  # the identifier under the number salt
                 "/verify/e/" + rules.ecert_token_for(identifier, "not-our-secret"),
                 "/verify/e/" + ecert_token[:-1] + ("A" if ecert_token[-1] != "A" else "B"),
                 "/verify/e/abc"):
        resp = browser.get(path)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 404 and page.BAD_TOKEN in text, path
        assert cert.number not in text
    assert browser.get("/verify/e/" + ecert_token).status_code == 200


# --- rate limit ----------------------------------------------------------------------------------


def test_uploads_count_towards_the_limit(app, browser, session):
    cert = valid_certificate(session)
    data = download(app, cert)
    app.config.update(VERIFY_RATE_LIMIT=2, VERIFY_RATE_WINDOW=LONG_WINDOW)
    assert upload(browser, b"").status_code == 200  # an empty file is not a lookup
    assert [upload(browser, data).status_code for _ in range(2)] == [200, 200]
    refused = upload(browser, data)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 429 and page.TOO_MANY in text
    assert int(refused.headers["Retry-After"]) > 0
    assert 'id="ecert-form"' in text and 'id="ecert-check"' not in text
    assert_nothing_of(text, cert)
    number_form = browser.post("/verify", {"number": cert.number, "name": cert.person.name})
    assert number_form.status_code == 429  # one limit for every way of asking
    other = upload(browser, data, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200
