"""下载电子证书 (issue 19): one certificate's signed PDF for whoever sees it, refused in Chinese
for a certificate that is not valid, logged; many as a .zip job (我的导出).

Who may download is the certificate's visibility (SPEC §1) on the screen each role sees
certificates on: 证书查看 (institutions, city authorities), 证书库 (the province), 学员基本信息
（企业）'s 人员详细信息 (the holder's enterprise), 我的基本信息 and 首页 (the holder)."""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from admin_views.exports import build_worker
from models import AuditLog, Certificate, Job, JobKind, JobStatus, db
from models.certificate import CertificateStatus
from tests.integration.test_certificate_library import flashes
from workflows import ecert, ecert_document
from workflows.audit import Kind

# demo certificates (seed/demo.py): issued by 济南 inst_jinan to 山东鲁建 (enterprise) employees,
# to 张建国 (person), and by 青岛 inst_qingdao to 青岛海晟 (enterprise2)
JINAN = "263701001510001"  # 李明, 山东鲁建, 济南市建设职业技能培训中心
HOLDER = "263701001510003"  # 张建国 (account ``person``)
QINGDAO = "263702002510001"  # 钱坤, 青岛海晟, 青岛市建筑业职业培训学校
CANCELLED = "263701001410007"
VOIDED = "263701002510003"

ROUTES = {  # account → the view its download link is on
    "person": "my_info", "enterprise": "student", "inst_jinan": "certificate", "jinan": "certificate",
    "province": "certificate_library",
}


def cert(number: str) -> Certificate:
    return db.session.scalar(select(Certificate).where(Certificate.number == number))


def url(who: str, number: str) -> str:
    return f"/admin/{ROUTES[who]}/ecert/?certificate_id={cert(number).id}"


def roots() -> list:
    from flask import current_app

    key = ecert_document.SigningKey(current_app.config["ECERT_SIGNING_PKCS12"],
                                    current_app.config["ECERT_SIGNING_PASSWORD"])
    return ecert_document.trust_roots(key)


def downloads_of(number: str) -> list[AuditLog]:
    c = cert(number)
    return list(db.session.scalars(select(AuditLog).where(
        AuditLog.kind == Kind.DOWNLOAD, AuditLog.object_type == "certificate", AuditLog.object_id == c.id)))


@pytest.mark.parametrize("who, number", [("person", HOLDER), ("enterprise", JINAN), ("inst_jinan", JINAN),
                                         ("jinan", JINAN), ("province", QINGDAO)])
def test_each_role_downloads_a_genuine_signed_pdf_it_may_see(app, login, who, number):
    browser = login(who)
    resp = browser.get(url(who, number))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert resp.headers["Cache-Control"] == "no-store"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and unquote(disposition.split("''", 1)[1]) == f"电子证书_{number}.pdf"
    check = ecert_document.check_file(resp.data, roots(), max_bytes=app.config["ECERT_VERIFY_MAX_BYTES"])
    assert check.genuine, check.problem
    assert check.identifier == ecert.current(db.session, cert(number)).identifier
    logs = downloads_of(number)
    assert len(logs) == 1 and logs[0].summary == f"下载电子证书「{number}」" and logs[0].username == who


@pytest.mark.parametrize("who, number", [("person", JINAN), ("enterprise", QINGDAO), ("inst_jinan", QINGDAO),
                                         ("jinan", QINGDAO), ("inst_qingdao", JINAN), ("enterprise2", JINAN)])
def test_a_foreign_certificate_is_a_404(app, login, who, number):
    route = ROUTES.get(who) or {"inst_qingdao": "certificate", "enterprise2": "student"}[who]
    resp = login(who).get(f"/admin/{route}/ecert/?certificate_id={cert(number).id}")
    assert resp.status_code == 404
    assert not downloads_of(number)


def test_forged_ids_and_other_screens_are_refused(app, login):
    browser = login("inst_jinan")
    assert browser.get("/admin/certificate/ecert/?certificate_id=99999999").status_code == 404
    assert browser.get("/admin/certificate/ecert/?certificate_id=abc").status_code == 404
    # the screen's own rule too: an institution does not open 证书库 or 我的基本信息
    assert browser.get(f"/admin/certificate_library/ecert/?certificate_id={cert(JINAN).id}").status_code == 403
    assert browser.get(f"/admin/my_info/ecert/?certificate_id={cert(JINAN).id}").status_code == 403


@pytest.mark.parametrize("number, status", [(CANCELLED, "已注销"), (VOIDED, "已作废")])
def test_a_certificate_that_is_not_valid_is_refused_in_chinese(app, login, number, status):
    browser = login("inst_jinan")
    resp = browser.get(url("inst_jinan", number))
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/admin/certificate/details/?id={cert(number).id}")
    page = browser.get(resp.headers["Location"])
    assert f"证书「{number}」状态为{status}，不能下载电子证书" in flashes(page)
    assert not downloads_of(number)
    assert "ecert-download" not in page.get_data(as_text=True)  # and no button offers it


def test_without_a_signing_key_the_download_says_so(app, login):
    app.config["ECERT_SIGNING_PKCS12"] = None
    browser = login("inst_jinan")
    resp = browser.get(url("inst_jinan", JINAN))
    assert resp.status_code == 302
    assert ecert_document.NOT_CONFIGURED in flashes(browser.get(resp.headers["Location"]))
    assert not downloads_of(JINAN)


def test_the_buttons_are_offered_on_valid_certificates_only(app, login):
    inst = login("inst_jinan")
    details = inst.get(f"/admin/certificate/details/?id={cert(JINAN).id}").get_data(as_text=True)
    assert 'id="ecert-download"' in details and "下载电子证书" in details
    listing = inst.get("/admin/certificate/").get_data(as_text=True)
    assert "row-ecert" in listing and "下载电子证书(压缩包)" in listing
    library = login("province").get(f"/admin/certificate_library/details/?id={cert(QINGDAO).id}")
    assert 'id="ecert-download"' in library.get_data(as_text=True)
    home = login("person").get("/admin/").get_data(as_text=True)
    assert f"/admin/my_info/ecert/?certificate_id={cert(HOLDER).id}" in home
    mine = login("person").get("/admin/my_info/").get_data(as_text=True)
    assert f"/admin/my_info/ecert/?certificate_id={cert(HOLDER).id}" in mine
    person_id = cert(JINAN).person_id
    employee = login("enterprise").get(f"/admin/student/details/?id={person_id}").get_data(as_text=True)
    assert f"/admin/student/ecert/?certificate_id={cert(JINAN).id}" in employee
    cancelled = cert(CANCELLED)
    employee = login("enterprise").get(f"/admin/student/details/?id={cancelled.person_id}").get_data(as_text=True)
    assert f"/admin/student/ecert/?certificate_id={cancelled.id}" not in employee


# -- the .zip job ---------------------------------------------------------------------------
def run_jobs(app) -> int:
    db.session.commit()  # the test's read ends before the worker writes
    return build_worker(app).run(once=True)


def zip_of(browser, job: Job) -> zipfile.ZipFile:
    resp = browser.get(f"/admin/my_export/download/{job.id}")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert unquote(resp.headers["Content-Disposition"].split("''", 1)[1]).endswith(".zip")
    return zipfile.ZipFile(io.BytesIO(resp.data))


def pdfs_in(app, archive: zipfile.ZipFile) -> dict[str, str]:
    """PDF name → its signed 证照标识, every one checked genuine."""
    found = {}
    for name in archive.namelist():
        if not name.endswith(".pdf"):
            continue
        check = ecert_document.check_file(archive.read(name), roots(), max_bytes=app.config["ECERT_VERIFY_MAX_BYTES"])
        assert check.genuine, (name, check.problem)
        found[name] = check.identifier
    return found


def test_selected_rows_become_one_zip_of_the_valid_visible_ones(app, login):
    browser = login("inst_jinan")
    chosen = [cert(n).id for n in (JINAN, HOLDER, CANCELLED, QINGDAO)]  # QINGDAO: not inst_jinan's
    resp = browser.post("/admin/certificate/action/", {"action": "ecert_zip", "rowid": [str(i) for i in chosen]},
                        token_from="/admin/certificate/")
    assert resp.status_code == 302 and "/admin/my_export/" in resp.headers["Location"]
    assert "已加入导出队列" in flashes(browser.get(resp.headers["Location"]))
    job = db.session.scalar(select(Job).order_by(Job.id.desc()))
    assert job.kind == JobKind.ecert_zip and job.total == 2 and job.title == "电子证书（2 张）"
    assert run_jobs(app) == 1
    db.session.expire_all()
    assert job.status == JobStatus.done, job.error
    assert job.progress == job.total == 2
    listing = browser.get("/admin/my_export/").get_data(as_text=True)
    assert "电子证书（2 张）" in listing and "job-download" in listing and "job-progress" in listing
    archive = zip_of(browser, job)
    pdfs = pdfs_in(app, archive)
    assert set(pdfs) == {f"电子证书_{JINAN}.pdf", f"电子证书_{HOLDER}.pdf"}
    assert pdfs[f"电子证书_{JINAN}.pdf"] == ecert.current(db.session, cert(JINAN)).identifier
    readme = archive.read("说明.txt").decode("utf-8")
    assert CANCELLED in readme and "已注销" in readme and QINGDAO not in readme
    audit = db.session.scalars(select(AuditLog).where(AuditLog.kind == Kind.DOWNLOAD, AuditLog.object_type == "job",
                                                      AuditLog.object_id == job.id)).all()
    assert any("下载电子证书（压缩包）：2 张" in a.summary for a in audit)


def test_a_certificate_ended_before_the_job_runs_is_left_out_and_named(app, login):
    browser = login("inst_jinan")
    ids = [cert(JINAN).id, cert(HOLDER).id]
    browser.post("/admin/certificate/action/", {"action": "ecert_zip", "rowid": [str(i) for i in ids]},
                 token_from="/admin/certificate/")
    from tests.factories import user
    from workflows.certificate import CERTIFICATE

    CERTIFICATE.fire(db.session, user(db.session, "province"), cert(HOLDER), "cancel", "测试注销")
    db.session.commit()
    assert run_jobs(app) == 1
    job = db.session.scalar(select(Job).order_by(Job.id.desc()))
    db.session.expire_all()
    assert job.status == JobStatus.done and job.total == 1
    archive = zip_of(browser, job)
    assert set(pdfs_in(app, archive)) == {f"电子证书_{JINAN}.pdf"}
    assert HOLDER in archive.read("说明.txt").decode("utf-8")


def test_a_batch_zip_from_its_details_page(app, login):
    browser = login("inst_jinan")
    batch_id = cert(JINAN).batch_id
    batch_cert_ids = db.session.scalars(select(Certificate.id).where(
        Certificate.batch_id == batch_id, Certificate.status == CertificateStatus.valid)).all()
    details = browser.get(f"/admin/batch/details/?id={batch_id}").get_data(as_text=True)
    link = re.search(r'id="ecert-zip" href="([^"]+)"', details)
    assert link, "下载电子证书(压缩包) on an approved batch"
    page = browser.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200 and f"{len(batch_cert_ids)} 张" in page.get_data(as_text=True)
    resp = browser.post("/admin/certificate/ecert/zip/", {"batch_id": batch_id}, token_from=link.group(1))
    assert resp.status_code == 302 and "/admin/my_export/" in resp.headers["Location"]
    assert run_jobs(app) == 1
    job = db.session.scalar(select(Job).order_by(Job.id.desc()))
    assert job.status == JobStatus.done and job.total == len(batch_cert_ids)
    assert len(pdfs_in(app, zip_of(browser, job))) == len(batch_cert_ids)


def test_a_foreign_batch_is_a_404(app, login):
    batch_id = cert(QINGDAO).batch_id
    browser = login("inst_jinan")
    assert browser.get(f"/admin/certificate/ecert/zip/?batch_id={batch_id}").status_code == 404
    assert browser.post("/admin/certificate/ecert/zip/", {"batch_id": batch_id},
                        token_from="/admin/certificate/").status_code == 404
    assert db.session.scalar(select(Job.id)) is None


def test_more_than_the_limit_is_refused_and_none_valid_too(app, login):
    app.config["ECERT_ZIP_MAX"] = 1
    browser = login("inst_jinan")
    ids = [str(cert(n).id) for n in (JINAN, HOLDER)]
    resp = browser.post("/admin/certificate/action/", {"action": "ecert_zip", "rowid": ids},
                        token_from="/admin/certificate/")
    assert "超过一次下载电子证书的上限 1 张" in flashes(browser.get(resp.headers["Location"]))
    resp = browser.post("/admin/certificate/action/", {"action": "ecert_zip", "rowid": [str(cert(CANCELLED).id)]},
                        token_from="/admin/certificate/")
    assert "所选证书中没有有效证书" in flashes(browser.get(resp.headers["Location"]))
    assert db.session.scalar(select(Job.id)) is None
