"""Time and weigh the streamed .xlsx exports at province scale (issue 7 item 5).

Three cases, each run in a fresh child process (this script, re-run with a hidden flag) so the
peak memory printed is the export's own process: the app, the sign-in and the download.

* certificates: as ``--role``, its certificate list (证书库 for the province, 证书查看 for an
  authority or institution) filtered by 发证日期 不早于 the day on which its ``--rows`` most
  recent certificates start, so about ``--rows`` rows. The list with that URL is opened first
  and must count the same rows as the database.
* registered personnel: 注册人员查询 is the enterprise's own list, so it runs as ``--role`` when
  the role may open it, otherwise as the enterprise holding the most registrations in force.
* over the limit: the certificate case again with EXPORT_MAX_ROWS set to half its rows: the
  answer must be a redirect to the list with 「导出数据共 … 条，超过上限 … 条，请缩小查询范围后再导出」,
  quickly (the count stops at the bound).

Per case: the rows in the downloaded file (opened afterwards with openpyxl, header excluded),
the wall time of the whole download (the body is written to a temp file chunk by chunk), the
file's size, and the child's memory: ``peak RSS`` over its whole life (the figure judged; it
includes the sign-in's scrypt password check, ~32 MB), ``export peak`` since the export began (the
peak reset just before it) and ``RSS before``, resident when the export started.

    flask --app app seed scale --certificates 1000000        # once, on the configured database
    python bench/exports.py --database postgresql+psycopg://user@host/db
    python bench/exports.py --database sqlite:///instance/certoffice.db --rows 50000 --role jinan

Targets: every case under 15 s and its process's peak memory under 150 MB; exit status 1 when
one is missed, a row count differs or the over-limit export is not refused with the message.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))  # bench/, also when loaded by a test

from lists import _token, sign_in  # bench/ is on sys.path, as for bench/numbering.py
from sqlalchemy import func, select

from admin_views.exports import build_worker
from app import create_app
from models import Certificate, Registration, User, db
from workflows.registration import registered_clause
from workflows.visibility import visible

TARGET_SECONDS = 15
TARGET_MB = 150
CERTIFICATE_LISTS = ("certificate_library", "certificate")
LIST_COUNT = re.compile(r'class="nav-link active">[^<(]*\((\d[\d,]*)(\+?)\)</a>')
REFUSAL = "导出数据共 {count} 条，超过上限 {limit} 条，请缩小查询范围后再导出"


def make_app(database: str, tmp: str, **config):
    return create_app({"SQLALCHEMY_DATABASE_URI": database, "SECRET_KEY": "bench", "SMS_SHOW_CODE": False,
                       "SMS_OUTBOX_PATH": f"{tmp}/outbox.log", "IDLE_TIMEOUT_MINUTES": 600, **config})


# -- the child: one export, measured ---------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    """A figure of /proc/self/status in KB (VmRSS: resident now; VmHWM: the peak), None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_kb() -> int:
    """The process's peak RSS. VmHWM, not ``ru_maxrss``: Linux folds the peak of the image a child
    replaced at exec (a copy of the parent) into the child's ``ru_maxrss``, so it would report the
    parent's peak (openpyxl counting the last file's rows) rather than the export's."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> bool:
    """Start the peak RSS (VmHWM, ru_maxrss) over from the RSS now (Linux ≥ 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def export_once(spec: dict) -> dict:
    """Sign in, then download ``spec["url"]`` to ``spec["out"]``; what it took, measured here."""
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(spec["database"], tmp, **spec.get("config", {}))
        client = sign_in(app, spec["username"])
        gc.collect()
        # the process's peak so far: the app, and the sign-in's scrypt password check (~32 MB)
        before_peak = _peak_kb()
        result = {"rss_before_kb": _status_kb("VmRSS") or before_peak, "export_peak_kb": None}
        token = _token(client.get(spec["list_url"]).get_data(as_text=True))
        reset = _reset_peak()
        start = time.perf_counter()
        resp = client.post(spec["url"], data={"csrf_token": token}, buffered=False)
        job = re.search(r"/admin/my_export/\?job=(\d+)", resp.headers.get("Location", ""))
        if job:  # above EXPORT_INLINE_MAX_ROWS: a job, run here by a worker as `flask jobs worker` would
            resp.close()
            with app.app_context():
                build_worker(app).run(once=True)
                db.session.remove()
            result["job"] = int(job.group(1))
            resp = client.get(f"/admin/my_export/download/{job.group(1)}", buffered=False)
        size = 0
        with open(spec["out"], "wb") as fh:
            for chunk in resp.response:  # streamed: never the whole body in memory
                fh.write(chunk)
                size += len(chunk)
        resp.close()
        result["seconds"] = time.perf_counter() - start
        after_peak = _peak_kb()
        result["peak_kb"] = max(before_peak, after_peak)  # the whole process's, sign-in included
        if reset:
            result["export_peak_kb"] = after_peak  # since the export began
        result["status"] = resp.status_code
        result["content_type"] = resp.headers.get("Content-Type", "")
        result["location"] = resp.headers.get("Location", "")
        result["bytes"] = size
        if resp.status_code in (301, 302, 303) and result["location"]:
            result["page"] = client.get(result["location"]).get_data(as_text=True)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return result


def run_child(spec: dict) -> dict:
    """``export_once`` in a fresh interpreter: its peak RSS is this export's alone."""
    path = spec["out"] + ".json"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# -- the parent: what to export, and whether the file holds it --------------------------------------


def list_count(client, url: str) -> str:
    """The count in the list's header: 「列表 (100,234)」, or 「(200,000+)」 past the bound."""
    found = LIST_COUNT.search(client.get(url).get_data(as_text=True))
    return (found.group(1) + found.group(2)) if found else "0"


def xlsx_rows(path: str) -> tuple[list, int]:
    """The header row and the number of rows under it, read back with openpyxl (read-only)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = list(next(rows, ()))
        return header, sum(1 for _ in rows)
    finally:
        wb.close()


def headers_of(app, endpoint: str) -> list[str]:
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", None) == endpoint)
    return [h for h, _, _ in view.export_columns]


def certificate_case(app, client, username: str, rows: int) -> dict:
    """The role's certificate list, 发证日期 不早于 the day its ``rows`` most recent certificates start."""
    endpoint = next((e for e in CERTIFICATE_LISTS if client.get(f"/admin/{e}/").status_code == 200), None)
    if endpoint is None:
        raise SystemExit(f"{username} may open no certificate list")
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        dates = visible(user, select(Certificate.issue_date), Certificate)
        since = db.session.scalar(dates.order_by(Certificate.issue_date.desc()).offset(max(rows, 1) - 1).limit(1))
        if since is None:  # fewer certificates than asked for: all of them
            since = db.session.scalar(visible(user, select(func.min(Certificate.issue_date)), Certificate))
        since = since or date.today()
        expected = db.session.scalar(visible(user, select(func.count()).select_from(Certificate), Certificate)
                                     .where(Certificate.issue_date >= since))
        db.session.remove()
    query = f"?flt0_issued_from={since.isoformat()}"
    return {"label": f"certificates ({username}, {endpoint})", "username": username, "endpoint": endpoint,
            "url": f"/admin/{endpoint}/export.xlsx{query}", "list_url": f"/admin/{endpoint}/{query}",
            "expected": expected, "since": since.isoformat()}


def registered_case(app, client, username: str) -> dict:
    """注册人员查询 as ``username`` when it may open it, else as the enterprise with most in force."""
    with app.app_context():
        if client.get("/admin/registered/").status_code == 200:
            user = db.session.scalars(select(User).where(User.username == username)).one()
        else:
            top = (select(Registration.enterprise_id).where(registered_clause())
                   .group_by(Registration.enterprise_id).order_by(func.count().desc(), Registration.enterprise_id)
                   .limit(1))
            user = db.session.scalars(select(User).where(User.organization_id.in_(top), User.phone.is_not(None))
                                      .order_by(User.id).limit(1)).first()
        if user is None:
            db.session.remove()
            return {}
        expected = db.session.scalar(visible(user, select(func.count()).select_from(Registration), Registration)
                                     .where(registered_clause()))
        name = user.username
        db.session.remove()
    return {"label": f"registered ({name}, registered)", "username": name, "endpoint": "registered",
            "url": "/admin/registered/export.xlsx", "list_url": "/admin/registered/", "expected": expected}


def measure(app, case: dict, database: str, tmp: str, config: dict | None = None) -> dict:
    spec = {"database": database, "username": case["username"], "url": case["url"], "list_url": case["list_url"],
            "config": config or {},
            "out": os.path.join(tmp, f"{case['endpoint']}-{len(os.listdir(tmp))}.xlsx")}
    result = run_child(spec)
    result["out"] = spec["out"]
    if result["status"] == 200:
        result["header"], result["rows"] = xlsx_rows(spec["out"])
    return result


def run(database: str, rows: int, role: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(database, tmp)
        limit = app.config["EXPORT_MAX_ROWS"]
        app.config["LIST_COUNT_LIMIT"] = limit  # the list header counts exactly up to the export's bound
        client = sign_in(app, role)
        cert = certificate_case(app, client, role, rows)
        cert["listed"] = list_count(client, cert["list_url"])
        cases = [cert]
        reg = registered_case(app, client, role)
        if reg:
            reg["listed"] = list_count(sign_in(app, reg["username"]), reg["list_url"])
            cases.append(reg)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()  # no pooled connection held while the children run

        print(f"{cert['label']}: 发证日期 不早于 {cert['since']} — {cert['expected']:,} rows in the database, "
              f"the list says {cert['listed']}")
        if reg:
            print(f"{reg['label']}: {reg['expected']:,} registrations in force, the list says {reg['listed']}"
                  + ("" if reg["username"] == role else f" ({role} may not open 注册人员查询)"))
        failures = 0
        lines = []
        for case in cases:
            result = measure(app, case, database, tmp)
            problems = []
            if result["status"] != 200 or "spreadsheetml" not in result["content_type"]:
                problems.append(f"HTTP {result['status']} {result['content_type']}")
            else:
                if result["header"] != headers_of(app, case["endpoint"]):
                    problems.append(f"header {result['header']}")
                if not (result["rows"] == case["expected"] == int(case["listed"].replace(",", ""))):
                    problems.append(f"rows: file {result['rows']:,}, database {case['expected']:,}, "
                                    f"list {case['listed']}")
            lines.append((case["label"], result, problems))

        over = max(1, cert["expected"] // 2)
        result = measure(app, cert, database, tmp, {"EXPORT_MAX_ROWS": over})
        message = REFUSAL.format(count=f"{over:,}+", limit=over)
        problems = []
        if result["status"] != 302 or not result["location"].split("?")[0].endswith(f"/admin/{cert['endpoint']}/"):
            problems.append(f"HTTP {result['status']} → {result['location'] or '-'}, not a redirect to the list")
        elif message not in result.get("page", ""):
            problems.append(f"「{message}」 not on the list it redirected to")
        else:
            result["rows"] = None
        lines.append((f"over the limit (EXPORT_MAX_ROWS={over:,})", result, problems))

        print(f"\n{'case':<48} {'rows':>9} {'seconds':>8} {'file MB':>8} {'peak RSS MB':>12} "
              f"{'export peak MB':>15} {'RSS before MB':>14}  result")
        for label, result, problems in lines:
            peak, before = result["peak_kb"] / 1024, result["rss_before_kb"] / 1024
            if result["seconds"] >= TARGET_SECONDS:
                problems.append(f"{result['seconds']:.1f} s ≥ {TARGET_SECONDS} s")
            if peak >= TARGET_MB:
                problems.append(f"peak {peak:.0f} MB ≥ {TARGET_MB} MB")
            failures += bool(problems)
            shown = "refused" if result.get("rows") is None else f"{result.get('rows', 0):,}"
            export_peak = f"{result['export_peak_kb'] / 1024:15.1f}" if result["export_peak_kb"] else f"{'-':>15}"
            print(f"{label:<48} {shown:>9} {result['seconds']:8.2f} {result['bytes'] / 2**20:8.2f} {peak:12.1f} "
                  f"{export_peak} {before:14.1f}  {'FAIL: ' + '; '.join(problems) if problems else 'PASS'}")
        print(f"\ntargets: under {TARGET_SECONDS} s and {TARGET_MB} MB peak per export process; "
              f"{'all met' if not failures else f'{failures} case(s) failed'}")
        return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="SQLAlchemy URL of a database built with `seed scale` (required)")
    parser.add_argument("--rows", type=int, default=100_000, help="about this many certificates to export")
    parser.add_argument("--role", default="province", help="the account that exports (password Demo@2026)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a spec file: run one export, write the result back
    args = parser.parse_args(argv)
    if args.child:
        with open(args.child, encoding="utf-8") as fh:
            spec = json.load(fh)
        result = export_once(spec)
        with open(args.child, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
        return 0
    if not args.database:
        parser.error("--database is required")
    return run(args.database, args.rows, args.role)


if __name__ == "__main__":
    raise SystemExit(main())
