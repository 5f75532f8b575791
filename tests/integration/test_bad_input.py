"""Input the database cannot take is refused where it enters, the same on SQLite and PostgreSQL
(issue 16 item 9): a NUL byte anywhere → 400 with a Chinese message; an integer no column can hold,
or an id that is no integer → 404, as a record that does not exist. Nothing is written either way.

tests/postgres/test_bad_input_pg.py runs ``check_bad_input`` on PostgreSQL, where each of these
used to be a 500 (DataError: NUL, NumericValueOutOfRange); tests/served fuzzes every form.
"""

from __future__ import annotations

from sqlalchemy import Integer, func, select

from admin_views.hardening import MSG_NOT_FOUND, MSG_NUL
from models import AuditLog, Base, Batch, TransitionLog, db
from models.base import CheckedInteger

HUGE = "99999999999"  # beyond a 32-bit column: PostgreSQL's NumericValueOutOfRange
HUGER = "9" * 30  # beyond 64 bits: pysqlite's OverflowError


def _batch_id(session, status: str) -> int:
    return session.scalar(select(Batch.id).where(Batch.status == status).order_by(Batch.id))


# (account, method, url, form) — each refused; ``{review}`` is a batch waiting for the province
NUL_CASES = [
    ("province", "GET", "/admin/audit_log/?search=a\x00b", None),
    ("province", "GET", "/admin/certificate_library/?search=\x00", None),
    ("province", "GET", "/admin/data_fix/?q=%E5%BC%A0\x00", None),
    ("enterprise", "GET", "/admin/registered/?search=\x00", None),
    ("province", "GET", "/admin/certificate_library/?flt0_status=\x00", None),
    ("province", "GET", "/admin/batch_review/details/?id=1\x00", None),
    ("province", "POST", "/admin/batch_review/reason/", {"transition": "province_reject", "id": "{review}",
                                                          "reason": "不\x00通过"}),
    ("province", "POST", "/admin/settings/profile/", {"name": "张\x00三"}),
    (None, "POST", "/login", {"username": "province\x00", "password": "x"}),
    (None, "GET", "/verify?number=26\x00&name=张", None),
]

RANGE_CASES = [
    ("province", "GET", f"/admin/certificate_library/details/?id={HUGE}", None),
    ("province", "GET", f"/admin/certificate_library/details/?id={HUGER}", None),
    ("province", "GET", "/admin/certificate_library/details/?id=1e3", None),
    ("province", "GET", f"/admin/batch_review/details/?id={HUGE}", None),
    ("province", "GET", f"/admin/my_export/download/{HUGER}", None),
    ("province", "POST", "/admin/batch_review/transition/", {"transition": "province_approve", "id": HUGE}),
    ("province", "POST", "/admin/batch_review/action/", {"action": "wf_province_approve", "rowid": HUGE}),
    ("province", "POST", "/admin/batch_review/reason/", {"transition": "province_reject", "id": HUGER,
                                                          "reason": "越权"}),
    ("inst_jinan", "POST", "/admin/batch/attach/", {"id": HUGE}),
    ("enterprise", "POST", "/admin/appeal/answer/", {"id": HUGE, "explanation": "说明"}),
]
# a list filter names the value it cannot use and shows the list without it
FILTER_CASES = [
    ("province", "GET", f"/admin/certificate_library/?flt0_issuer={HUGE}", None),
    ("province", "GET", f"/admin/certificate_library/?flt0_issuer={HUGER}", None),
]


def _counts(session) -> tuple:
    session.commit()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (AuditLog, TransitionLog, Batch))


def check_bad_input(login, anonymous, session):
    """``login(who)`` signs in a Browser; ``anonymous`` is one nobody signed in to."""
    review = str(_batch_id(session, "province_review"))
    browsers = {None: anonymous}
    problems = []
    for cases, status, message in ((NUL_CASES, 400, MSG_NUL), (RANGE_CASES, 404, MSG_NOT_FOUND),
                                   (FILTER_CASES, 200, "无效，已忽略")):
        for who, method, url, form in cases:
            if who not in browsers:
                browsers[who] = login(who)
            browser = browsers[who]
            before = _counts(session)
            if method == "GET":
                resp = browser.get(url)
            else:
                resp = browser.post(url, {k: v.replace("{review}", review) for k, v in form.items()})
            text = resp.get_data(as_text=True)
            if resp.status_code != status or message not in text:
                problems.append(f"{who} {method} {url!r}: {resp.status_code} {text[:200]!r}")
            if _counts(session) != before:
                problems.append(f"{who} {method} {url!r}: the database moved")
    assert not problems, "\n".join(problems)


def test_bad_input_is_refused_where_it_enters(login, browser, session):
    check_bad_input(login, browser, session)


def test_every_integer_column_is_range_checked():
    """A column added later with a bare ``Integer`` would let a forged id reach PostgreSQL again."""
    bare = [f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns
            if isinstance(c.type, Integer) and not isinstance(c.type, CheckedInteger)]
    assert bare == [], bare
    assert isinstance(db.Model.metadata.tables["certificate"].c.id.type, CheckedInteger)
