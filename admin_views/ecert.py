"""电子证书 (issue 19) in the back office: producing one for a certificate a user may see.

What an electronic certificate says and when it is current is ``workflows.ecert``; the file is
``workflows.ecert_document``; the signing key is read by ``admin_views.ecert_keys``, the address
its QR code opens is ``admin_views.verify``'s.
"""

from __future__ import annotations

from admin_views.ecert_keys import signing_key, trust_roots  # noqa: F401 (their home before; callers keep it)
from models import Certificate, db
from workflows import WorkflowError, ecert, ecert_document


def filename(certificate: Certificate) -> str:
    return f"电子证书_{certificate.number}.pdf"


def electronic_pdf(certificate: Certificate) -> bytes:
    """The signed PDF of the certificate's current electronic certificate, or WorkflowError (a
    certificate that is not valid has none). The caller checked visibility and logs the download."""
    from admin_views.verify import ecert_url

    issued = ecert.current(db.session, certificate)
    if issued is None:
        raise WorkflowError(f"证书「{certificate.number}」状态为{certificate.status.label}，不能下载电子证书")
    data = ecert.metadata(issued, ecert.naming().department_code, ecert.department_name(db.session))
    return ecert_document.produce(data, ecert_document.Face(verify_url=ecert_url(issued.identifier)),
                                  signing_key())
