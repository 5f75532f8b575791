"""The tests' signing key for 电子证书 (issue 19): a demo CA and signing certificate made once per
process in a temporary folder — the same kind `make run` makes under instance/ecert/."""

from __future__ import annotations

import tempfile
from functools import cache

PASSWORD = "test-signing"


@cache
def signing_key(department: str = "山东省住房和城乡建设厅") -> str:
    """The PKCS#12 path of a demo key for ``department`` (another department: another key)."""
    from workflows.ecert_document import make_demo_ca

    return make_demo_ca(tempfile.mkdtemp(prefix="ecert-"), department, password=PASSWORD)


def signing_config() -> dict:
    return {"ECERT_SIGNING_PKCS12": signing_key(), "ECERT_SIGNING_PASSWORD": PASSWORD}
