"""电子证书 on PostgreSQL (issue 19): two first downloads of one certificate at the same moment
issue one electronic certificate, not two, and neither fails."""

from __future__ import annotations

from pg_helpers import run
from sqlalchemy import delete, select

from models import Certificate, CertificateStatus, ElectronicCertificate, db
from workflows import ecert


def test_two_first_downloads_at_once_issue_one(pg_app, tmp_path):
    session = db.session
    certificate = session.scalars(select(Certificate).where(Certificate.status == CertificateStatus.valid)
                                  .order_by(Certificate.id)).first()
    session.execute(delete(ElectronicCertificate).where(ElectronicCertificate.certificate_id == certificate.id))
    session.commit()
    outcomes = run(pg_app, tmp_path, [("first_ecert_job", (certificate.id,))] * 4)
    assert [o[0] for o in outcomes] == ["ok"] * 4
    rows = session.scalars(select(ElectronicCertificate)
                           .where(ElectronicCertificate.certificate_id == certificate.id)).all()
    assert [(r.sequence, r.ended_at) for r in rows] == [(1, None)]
    assert ecert.current(session, certificate).identifier == rows[0].identifier
