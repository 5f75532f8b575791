"""The province's signing key and the certificates a signature must chain to, read from the settings
(``ECERT_SIGNING_PKCS12``, ``ECERT_SIGNING_PASSWORD``, ``ECERT_TRUST_ROOTS``): for producing an
electronic certificate (``admin_views.ecert``) and for checking an uploaded one (``admin_views.verify``),
which need each other's other half (the QR code's address; the key) — so neither imports the other.
"""

from __future__ import annotations

from flask import current_app

from workflows import WorkflowError, ecert_document


def signing_key() -> ecert_document.SigningKey | None:
    path = current_app.config["ECERT_SIGNING_PKCS12"]
    return ecert_document.SigningKey(path, current_app.config["ECERT_SIGNING_PASSWORD"]) if path else None


def trust_roots() -> list:
    key = signing_key()
    if key is None:
        raise WorkflowError(ecert_document.NOT_CONFIGURED)
    return ecert_document.trust_roots(key, current_app.config["ECERT_TRUST_ROOTS"])
