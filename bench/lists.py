"""Time every list view at province scale, as three roles (issue 7 item 2).

For each list the role may open: the first page, page 1,000, each tab (the lists' filters), a
search by certificate number, by ID number, by a full name (taken from a row the role may see)
and by the most common surname alone, and a sort by a date column. Per case it prints the page's
server time (p50 and p90 over ``--requests`` requests, through the app in-process: routing, access, visibility,
queries and the template), the time of the bare SQL of the page (every statement it sent — the
count, the rows, the user's session, the filters' options — replayed alone with the same
parameters), and the ratio of the two. ``--explain`` prints each statement's plan and flags a
sequential scan of certificate or person.

Roles: the issue's three (province, jinan, inst_jinan) and sc_jg370101, a Jinan institution of
the scale data set: inst_jinan is the demo's institution and holds only the demo's few
certificates among a million — the case that shows whether an institution's list finds its rows
through an index or by walking the table — while sc_jg370101 holds a typical institution's ~2,000.

    flask --app app seed scale --certificates 1000000        # once, on the configured database
    python bench/lists.py --database sqlite:///instance/certoffice.db
    python bench/lists.py --database postgresql+psycopg://user@host/db --roles province --explain

Before the lists, each role's 首页 and 统计分析 (all cities, one city's institutions, a date range
with one occupation) are timed the same way.

Targets (PostgreSQL): every case p50 ≤ 50 ms; page 1,000 ≤ 100 ms; exact certificate or ID
number ≤ 20 ms; 首页 and 统计分析 ≤ 300 ms. SQLite within twice these.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_admin.contrib.sqla import ModelView
from sqlalchemy import event, func, select

from app import create_app
from models import Certificate, Occupation, Organization, Person, User, db
from models.base import local_today
from workflows.visibility import visible

PASSWORD = "Demo@2026"
SEQ_SCAN = re.compile(r"Seq Scan on (certificate|person)\b|\bSCAN (certificate|person)\b(?! USING)")


def _token(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def sign_in(app, username: str):
    """The real two steps: password, then the SMS code the development sender wrote to the outbox."""
    client = app.test_client()
    resp = client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": _token(client.get("/login").get_data(as_text=True))})
    assert resp.status_code == 302, f"{username}: sign-in refused"
    with open(app.config["SMS_OUTBOX_PATH"], encoding="utf-8") as fh:
        code = re.findall(r"验证码[：:]?\s*(\d{6})", fh.read())[-1]
    resp = client.post("/login/sms", data={"code": code,
                                           "csrf_token": _token(client.get("/login/sms").get_data(as_text=True))})
    assert resp.status_code == 302, f"{username}: SMS step refused"
    return client


class Statements:
    """The SQL a request sent, to replay the row query alone and to EXPLAIN it."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []
        event.listen(engine, "before_cursor_execute", self._keep)

    def _keep(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append((statement, parameters))

    def page_queries(self):
        """Every statement the page sent (the user's session, the count, the ids of the page, its rows
        with their related columns, the filters' options): the SQL the page cannot do without."""
        return [(st, p) for st, p in self.seen if st.lstrip().upper().startswith("SELECT")]


def timed(fn, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]


def samples(app, username: str) -> dict:
    """A certificate number, an ID number and a full name from a row this role may see, and the
    most common surname alone (the widest prefix a name search meets: ~7% of persons), for the
    search cases."""
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        stmt = visible(user, select(Certificate.number, Person.id_number, Person.name)
                       .join(Person, Person.id == Certificate.person_id).order_by(Certificate.id.desc()).limit(1),
                       Certificate)
        row = db.session.execute(stmt).first()
        surname = func.substr(Person.name, 1, 1)
        common = db.session.scalar(select(surname).group_by(surname).order_by(func.count().desc()).limit(1))
        return {"certificate": row[0], "id_number": row[1], "name": row[2], "surname": common} if row else {}


def cases(view, sample: dict) -> list[tuple[str, str]]:
    base = f"/admin/{view.endpoint}/"
    out = [("first page", base), ("page 1,000", base + "?page=999")]
    for key, label, _ in getattr(view, "tabs", [])[1:]:
        out.append((f"tab {label}", f"{base}?tab={key}"))
    if view.search_rules or view.column_searchable_list:
        for kind in ("certificate", "id_number", "name", "surname"):
            if sample.get(kind):
                out.append((f"search {kind}", f"{base}?search={quote(sample[kind])}"))
    dates = [i for i, (name, _) in enumerate(view._list_columns) if name in dict(view._sortable_columns)
             and name in ("issue_date", "created_at", "reviewed_at", "submitted_at", "approved_at", "last_login_at")]
    if dates:
        out.append(("sort by date", f"{base}?sort={dates[0]}&desc=1"))
    return out


def page_cases(app) -> list[tuple[str, str, str]]:
    """首页 and 统计分析 (issue 7 item 6): (name, case, url)."""
    with app.app_context():
        jinan = db.session.scalar(select(Organization.id).where(Organization.code == "SD370100"))
        occupation = db.session.scalar(select(Occupation.id).order_by(Occupation.code).limit(1))
    year = local_today().year
    return [("首页", "dashboard", "/admin/"),
            ("统计分析", "all cities", "/admin/statistics/"),
            ("统计分析", "one city", f"/admin/statistics/?city={jinan}"),
            ("统计分析", "dates + occupation",
             f"/admin/statistics/?date_from={year - 2}-01-01&date_to={year}-06-30&occupation={occupation}")]


def explain(engine, statement: str, parameters) -> str:
    with engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    return "\n".join(str(r[-1]) for r in rows)


def run(database: str, roles: list[str], requests: int, show_plans: bool, only: str | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database, "SECRET_KEY": "bench", "SMS_SHOW_CODE": False,
                          "SMS_OUTBOX_PATH": f"{tmp}/outbox.log", "IDLE_TIMEOUT_MINUTES": 600})
        views = [v for v in app.extensions["admin"][0]._views if isinstance(v, ModelView)]
        with app.app_context():
            engine = db.engine
        statements = Statements(engine)
        scans = 0
        print(f"{'role':<11} {'list':<26} {'case':<22} {'p50 ms':>8} {'p90 ms':>8} {'SQL ms':>8} {'ratio':>6}")
        for role in roles:
            client = sign_in(app, role)
            sample = samples(app, role)
            todo = [] if only else [(name, label, url) for name, label, url in page_cases(app)
                                    if client.get(url).status_code == 200]
            for view in views:
                if only and view.endpoint != only:
                    continue
                if client.get(f"/admin/{view.endpoint}/").status_code != 200:
                    continue
                todo += [(view.endpoint, label, url) for label, url in cases(view, sample)]
            for name, label, url in todo:
                statements.seen.clear()
                resp = client.get(url)
                if resp.status_code != 200:
                    print(f"{role:<11} {name:<26} {label:<22} HTTP {resp.status_code}")
                    continue
                queries = statements.page_queries()
                p50, p90 = timed(lambda u=url, c=client: c.get(u), requests)
                sql = None
                if queries:
                    def bare(qs=queries):
                        with engine.connect() as conn:
                            for q in qs:
                                conn.exec_driver_sql(*q).all()
                    sql = timed(bare, requests)[0]
                ratio = f"{p50 / sql:6.1f}" if sql else "     -"
                sql_text = f"{sql:8.1f}" if sql is not None else "       -"
                print(f"{role:<11} {name:<26} {label:<22} {p50:8.1f} {p90:8.1f} {sql_text} {ratio}")
                if show_plans:
                    for statement, parameters in statements.seen:
                        if not statement.lstrip().upper().startswith("SELECT"):
                            continue
                        plan = explain(engine, statement, parameters)
                        flagged = SEQ_SCAN.search(plan)
                        scans += bool(flagged)
                        if flagged or show_plans:
                            print(("  !! " if flagged else "     ") + " ".join(statement.split())[:300])
                            print("     " + plan.replace("\n", "\n     "))
        print(f"\nsequential scans of certificate or person: {scans}" if show_plans else "")
        event.remove(engine, "before_cursor_execute", statements._keep)
        engine.dispose()  # no pooled connection outlives the run
        return 1 if scans else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of a database built with `seed scale`")
    parser.add_argument("--roles", default="province,jinan,inst_jinan,sc_jg370101")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="print each statement's plan; flag sequential scans")
    parser.add_argument("--list", help="only this list (its endpoint, e.g. certificate_library)")
    args = parser.parse_args()
    return run(args.database, args.roles.split(","), args.requests, args.explain, args.list)


if __name__ == "__main__":
    raise SystemExit(main())
