"""The open API at scale (issue 20 item 7): public verification, 批量核验, a full sync, served throughput.

    python bench/api.py --database postgresql+psycopg://user@host/db [--served-seconds 20] [--workers 4]

On a database built with ``seed scale`` (and upgraded to the API's migration):

1. Single verification, in-process (the app with SERVER_TIMING on, the Flask test client, no
   socket): GET /api/v1/verify/certificate?number=…&name=… for ``--samples`` random real certificates
   (the number and the holder's real name, read from the database). p50/p95 of the wall time around
   the request (routing, hooks, the rate-limit counter and its commit, the lookup, JSON) and of the
   worker's CPU (``Server-Timing: cpu``; PostgreSQL's time is not in it). Then the same over HTTP,
   one request at a time, against gunicorn (as a client sees it).
2. 批量核验: a key with scope verify for the province (made with ``workflows.apikeys.create_key`` as
   the province's administrator), ``--bulk-runs`` POSTs of ``--bulk-size`` real number+name pairs to
   /api/v1/verify/bulk over HTTP against gunicorn, one at a time: p50 of the wall time as the client
   sees it (and the worker's CPU).
3. Full sync: the organization whose certificates number closest to ``--sync-target`` (an
   institution by issuer, a city authority by authority; or ``--org CODE``), a key with scope
   certificates for it, /api/v1/certificates?limit=1000 followed by next_cursor to the end over HTTP
   against gunicorn: total seconds and rows; rows must equal the SQL count of its certificates.
4. Served throughput: gunicorn (``--workers`` sync workers, as `make serve`) and ``--threads`` client
   threads (http.client, one connection per request: a sync worker closes it) hitting the public
   verification for ``--served-seconds``: requests/s, p50/p99, errors (any status but 200; 429 counted
   apart), and the CPU of the web workers, this database's PostgreSQL backends and this client (it
   shares the cores), the whole machine's busy cores beside them (other work on a shared machine
   shows there), and the requests/s that CPU per request would give on 2 free cores.

For the bench only, the public rate limit per address is raised (VERIFY_RATE_LIMIT, printed) and
the job worker ``Served`` starts beside gunicorn is stopped once gunicorn answers (the API does not
use it). The keys made here are left in the database (named 「接口基准 …」), their calls in 操作日志.
``--profile`` prints where one verification's time goes (cProfile over a second pass of the
in-process requests, apart from the timed one); the SQL statements a request sends are always printed.

Targets (2 cores, 1,000,000 certificates, PostgreSQL): single verification p50 ≤ 10 ms server time
(judged on the in-process wall time: it holds PostgreSQL's part, which Server-Timing's CPU does not);
a 1,000-number bulk check ≤ 200 ms; a full sync of ~20,000 certificates ≤ 10 s; served ≥ 300
verification requests/s with 0 errors. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, func, select, text

from app import create_app
from bench.served import cpu_seconds
from models import Certificate, Organization, Person, User, db
from models.base import local_today
from models.org import OrgKind
from tests.served.web import Served, served_env

TARGET_SINGLE_MS, TARGET_BULK_MS, TARGET_SYNC_S, TARGET_RPS = 10, 200, 10, 300
RATE_LIMIT = 1_000_000_000  # VERIFY_RATE_LIMIT for the bench only: one address sends every request
VERIFY = "/api/v1/verify/certificate"
CPU = re.compile(r"cpu;dur=([\d.]+)")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def server_cpu(headers) -> float | None:
    found = CPU.search(headers.get("Server-Timing", "") or "")
    return float(found.group(1)) if found else None


# -- the app in-process -----------------------------------------------------------------------------------
def make_app(database: str, folder: str):
    return create_app({"SQLALCHEMY_DATABASE_URI": database, "SECRET_KEY": "bench", "TESTING": False,
                       "SMS_OUTBOX_PATH": f"{folder}/outbox.log", "SERVER_TIMING": True,
                       "VERIFY_RATE_LIMIT": RATE_LIMIT, "VERIFY_RATE_WINDOW": 60})


def sample_pairs(app, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` random real certificates: (number, the holder's name), by random ids (no sort of
    the whole table), each certificate at most once."""
    with app.app_context():
        low, high = db.session.execute(select(func.min(Certificate.id), func.max(Certificate.id))).one()
        total = db.session.scalar(select(func.count()).select_from(Certificate))
        pairs: dict[str, str] = {}
        for _ in range(20):
            if len(pairs) >= min(count, total):
                break
            ids = {rng.randint(low, high) for _ in range(2 * count)}
            rows = db.session.execute(select(Certificate.number, Person.name)
                                      .join(Person, Person.id == Certificate.person_id)
                                      .where(Certificate.id.in_(ids))).all()
            pairs.update((number, name) for number, name in rows)
        db.session.remove()
    chosen = list(pairs.items())
    rng.shuffle(chosen)
    return chosen[:count]


def single_in_process(app, pairs, profile: bool = False) -> dict:
    """The public verification through the test client: wall time around each request and the
    worker's CPU (Server-Timing), and the SQL statements one request sends."""
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    for number, name in pairs[:20]:  # warm: imports, the pool's connections, caches of compiled SQL
        client.get(VERIFY, query_string={"number": number, "name": name})
    event.listen(engine, "before_cursor_execute", keep)
    wall, cpu, whole, bad = [], [], [], []
    try:
        for number, name in pairs:
            began, cpu_began = time.perf_counter(), time.process_time()
            resp = client.get(VERIFY, query_string={"number": number, "name": name})
            wall.append((time.perf_counter() - began) * 1000)
            whole.append((time.process_time() - cpu_began) * 1000)
            if resp.status_code != 200:
                bad.append(f"{number}: {resp.status_code}")
            cpu.append(server_cpu(resp.headers) or 0.0)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    profiler = None
    if profile:  # a second pass: the profiler's overhead stays out of the times above
        profiler = cProfile.Profile()
        profiler.enable()
        for number, name in pairs:
            client.get(VERIFY, query_string={"number": number, "name": name})
        profiler.disable()
    result = {"n": len(pairs), "wall": wall, "cpu": cpu, "whole": whole, "bad": bad,
              "statements_per_request": len(statements) / max(len(pairs), 1),
              "statements": [" ".join(s.split())[:160] for s in statements[:len(statements) // max(len(pairs), 1)]]}
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(12)  # the framework's frames, outermost first
        stats.print_stats(r"^" + re.escape(str(Path(__file__).resolve().parent.parent)) + r"/(?!\.venv)", 25)
        result["profile"] = out.getvalue()
    return result


def province_admin(session) -> User:
    """The province's administrator who may make keys for any organization."""
    from workflows.apikeys import manages_keys_of

    province = session.scalars(select(Organization).where(Organization.kind == OrgKind.province)).first()
    users = session.scalars(select(User).where(User.organization_id == province.id).order_by(User.id)).all()
    for user in sorted(users, key=lambda u: u.username != "province"):
        if manages_keys_of(user, province):
            return user
    raise SystemExit("no administrator of the province may make API keys")


def make_key(app, org_code: str | None, scopes: list[str]) -> tuple[str, str]:
    """A key of ``org_code`` (the province when None) with ``scopes`` at the highest per-minute limit;
    (token, the organization's name)."""
    from workflows.apikeys import MAX_RATE_LIMIT, create_key

    with app.app_context():
        actor = province_admin(db.session)
        org = (actor.organization if org_code is None
               else db.session.scalars(select(Organization).where(Organization.code == org_code)).one())
        _, token = create_key(db.session, actor, org, {
            "name": f"接口基准 {'、'.join(scopes)} {time.strftime('%H:%M:%S')}", "scopes": scopes,
            "expires_on": (local_today() + timedelta(days=7)).isoformat(), "rate_limit": str(MAX_RATE_LIMIT)})
        db.session.commit()
        name = org.name
        db.session.remove()
    return token, name


def sync_org(app, code: str | None, target: int) -> tuple[str, str, str, int]:
    """The organization to sync: ``code``, or the one whose certificates number closest to ``target``
    (an issuer's by issuer_id, a city authority's by authority_id: what its users see). (code,
    name, kind, the SQL count of its certificates)."""
    with app.app_context():
        counts = []
        for column in (Certificate.issuer_id, Certificate.authority_id):
            stmt = (select(Organization.code, Organization.name, Organization.kind, func.count())
                    .join(Certificate, column == Organization.id)
                    .where(Organization.kind != OrgKind.province)
                    .group_by(Organization.code, Organization.name, Organization.kind))
            if code:
                stmt = stmt.where(Organization.code == code)
            counts += db.session.execute(stmt).all()
        db.session.remove()
    if not counts:
        raise SystemExit(f"no organization {code} with certificates" if code else "no certificates")
    best = min(counts, key=lambda row: (abs(row[3] - target), -row[3]))
    return best[0], best[1], OrgKind(best[2]).label, best[3]


# -- over HTTP ------------------------------------------------------------------------------------------------
class Http:
    """One request at a time to the served app (http.client: no session machinery of its own)."""

    def __init__(self, base: str, headers: dict | None = None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.headers = headers or {}

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()


def single_served(site: Http, pairs) -> dict:
    wall, cpu, bad = [], [], []
    for number, name in pairs:
        began = time.perf_counter()
        status, headers, _ = site.call("GET", f"{VERIFY}?{urlencode({'number': number, 'name': name})}")
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append(server_cpu(headers) or 0.0)
        if status != 200:
            bad.append(f"{number}: {status}")
    return {"n": len(pairs), "wall": wall, "cpu": cpu, "bad": bad}


def bulk(site: Http, token: str, pairs, runs: int) -> dict:
    body = json.dumps({"items": [{"number": n, "name": m} for n, m in pairs]}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    wall, cpu, found, bad = [], [], None, []
    site.call("POST", "/api/v1/verify/bulk", body, headers)  # warm: the worker's first bulk call
    for _ in range(runs):
        began = time.perf_counter()
        status, resp_headers, data = site.call("POST", "/api/v1/verify/bulk", body, headers)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append(server_cpu(resp_headers) or 0.0)
        if status != 200:
            bad.append(f"{status}: {data[:200]!r}")
            continue
        found = json.loads(data)["found"]
    return {"items": len(pairs), "runs": runs, "wall": wall, "cpu": cpu, "found": found, "bad": bad}


def full_sync(site: Http, token: str, limit: int = 1000) -> dict:
    """Every certificate of the key's organization, page after page following next_cursor."""
    headers = {"Authorization": f"Bearer {token}"}
    rows, pages, numbers, cpu, cursor = 0, 0, set(), [], None
    began = time.perf_counter()
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        status, resp_headers, data = site.call("GET", f"/api/v1/certificates?{urlencode(query)}", headers=headers)
        if status != 200:
            raise RuntimeError(f"page {pages + 1}: HTTP {status} {data[:300]!r}")
        page = json.loads(data)
        pages += 1
        rows += len(page["items"])
        numbers.update(item["number"] for item in page["items"])
        cpu.append(server_cpu(resp_headers) or 0.0)
        cursor = page["next_cursor"]
        if not cursor:
            break
    return {"seconds": time.perf_counter() - began, "rows": rows, "distinct": len(numbers), "pages": pages,
            "cpu": cpu}


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every core so far (/proc/stat): what else runs on the machine shows
    in busy minus the groups measured."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL backends serving this database (the web workers' pooled connections), not the
    other clusters or databases of the machine; none for SQLite."""
    if not database.startswith("postgresql"):
        return []
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND pid <> pg_backend_pid()")).scalars())
    finally:
        engine.dispose()


def throughput(site: Http, pairs, threads: int, seconds: float, worker_pids: list[int], addresses: int = 1,
               database_pids: list[int] | None = None) -> dict:
    """``threads`` clients asking the public verification as fast as they can for ``seconds``."""
    latency, errors, limited, lock = [], [], [0], threading.Lock()
    deadline = [0.0]
    start = threading.Barrier(threads + 1)

    def work(n: int):
        rng = random.Random(n)
        client = Http(f"http://{site.host}:{site.port}",
                      {"X-Forwarded-For": f"10.0.{n % addresses // 250}.{n % addresses % 250 + 1}"}
                      if addresses > 1 else None)
        mine, bad, refused = [], [], 0
        start.wait()
        while time.monotonic() < deadline[0]:
            number, name = rng.choice(pairs)
            began = time.perf_counter()
            try:
                status, _, _ = client.call("GET", f"{VERIFY}?{urlencode({'number': number, 'name': name})}")
            except OSError as exc:
                bad.append(type(exc).__name__)
                continue
            mine.append((time.perf_counter() - began) * 1000)
            if status == 429:
                refused += 1
            elif status != 200:
                bad.append(str(status))
        with lock:
            latency.extend(mine)
            errors.extend(bad)
            limited[0] += refused

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    groups = {"web workers": worker_pids, "PostgreSQL": database_pids or [], "this client": [os.getpid()]}
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    busy_before = machine_busy()
    deadline[0] = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - began
    shares = {name: (cpu_seconds(pids) - before[name]) / elapsed for name, pids in groups.items()}
    busy_after = machine_busy()
    shares["the whole machine"] = ((busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
                                   * (os.cpu_count() or 1))
    return {"requests": len(latency), "seconds": elapsed, "rps": len(latency) / elapsed, "latency": latency,
            "errors": errors, "limited": limited[0], "cpu": shares}


def machine_speed() -> float:
    """ms of CPU for a fixed pure-Python loop (bench/served.py's): this machine's speed right now."""
    started, total = time.process_time(), 0
    for i in range(2_000_000):
        total += i
    return (time.process_time() - started) * 1000


# -- the run ----------------------------------------------------------------------------------------------------
def run(database: str, *, samples: int = 500, bulk_size: int = 1000, bulk_runs: int = 20, sync_target: int = 20_000,
        org: str | None = None, page_limit: int = 1000, workers: int = 4, threads: int = 16,
        served_seconds: float = 20, addresses: int = 1, profile: bool = False, seed: int = 7) -> int:
    folder = tempfile.mkdtemp(prefix="api-bench-")
    rng = random.Random(seed)
    app = make_app(database, folder)
    print(f"database: {database.split('@')[-1]}; machine: {os.cpu_count()} cores, "
          f"a fixed loop {machine_speed():.0f} ms")
    print(f"for the bench only: VERIFY_RATE_LIMIT={RATE_LIMIT} per {60} s (the public rate limit per address), "
          f"keys at the highest per-minute limit; SERVER_TIMING=1")
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Certificate))
        db.session.remove()
    pairs = sample_pairs(app, max(samples, bulk_size), rng)
    print(f"{total:,} certificates; {len(pairs):,} random ones sampled (number + holder's name)")

    # 1. single verification, in-process
    single = single_in_process(app, pairs[:samples], profile)
    print(f"\n1. single verification, in-process, {single['n']} certificates: wall p50 "
          f"{percentile(single['wall'], 50):.2f} ms, p95 {percentile(single['wall'], 95):.2f} ms; worker CPU p50 "
          f"{percentile(single['cpu'], 50):.2f} ms, p95 {percentile(single['cpu'], 95):.2f} ms (the whole request with "
          f"the test client and teardown: {percentile(single['whole'], 50):.2f} ms); "
          f"{single['statements_per_request']:.1f} SQL statements per request; not 200: {len(single['bad'])}")
    for statement in single["statements"]:
        print("     SQL:", statement)
    if profile:
        print(single["profile"])

    # the served app, for 1 (over HTTP), 2, 3 and 4
    code, org_name, org_kind, expected = sync_org(app, org, sync_target)
    verify_token, province_name = make_key(app, None, ["verify"])
    sync_token, _ = make_key(app, code, ["certificates"])
    with app.app_context():
        db.engine.dispose()
    env = served_env(database, Path(folder), SERVER_TIMING="1", VERIFY_RATE_LIMIT=str(RATE_LIMIT),
                     VERIFY_RATE_WINDOW="60", JOB_POLL_SECONDS="30",
                     **({"PROXY_COUNT": "1"} if addresses > 1 else {}))
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--timeout", "60",
               "--bind", "127.0.0.1:{port}", "app:create_app()"]
    served = Served("gunicorn", command, env, Path(folder), database)
    served.start()
    for job_worker in served.workers:  # the API does not use it: its cores go to the web workers
        job_worker.terminate()
        job_worker.wait(timeout=15)
    try:
        site = Http(served.base)
        worker_pids = served.web_worker_pids()
        single_served(site, pairs[:4 * workers])  # warm every worker
        over_http = single_served(site, pairs[:min(samples, 200)])
        print(f"   over HTTP against gunicorn, one at a time, {over_http['n']}: client wall p50 "
              f"{percentile(over_http['wall'], 50):.2f} ms, p95 {percentile(over_http['wall'], 95):.2f} ms; "
              f"worker CPU p50 {percentile(over_http['cpu'], 50):.2f} ms; not 200: {len(over_http['bad'])}")

        # 2. bulk
        checked = bulk(site, verify_token, pairs[:bulk_size], bulk_runs)
        print(f"\n2. 批量核验 of {checked['items']:,} pairs ({province_name}'s key), over HTTP against gunicorn, "
              f"{checked['runs']} runs: client wall p50 {percentile(checked['wall'], 50):.0f} ms, p95 "
              f"{percentile(checked['wall'], 95):.0f} ms, max {max(checked['wall'] or [0]):.0f} ms; worker CPU p50 "
              f"{percentile(checked['cpu'], 50):.0f} ms; found {checked['found']} of {checked['items']}; "
              f"errors {len(checked['bad'])}")
        for line in checked["bad"][:3]:
            print("   error:", line)

        # 3. full sync
        synced = full_sync(site, sync_token, page_limit)
        print(f"\n3. full sync of {org_name} ({code}, {org_kind}, {expected:,} certificates by SQL), "
              f"limit={page_limit}: {synced['rows']:,} rows ({synced['distinct']:,} distinct) in {synced['pages']} "
              f"pages, {synced['seconds']:.2f} s ({synced['rows'] / max(synced['seconds'], 1e-9):,.0f} rows/s); "
              f"worker CPU per page p50 {percentile(synced['cpu'], 50):.0f} ms, "
              f"sum {sum(synced['cpu']) / 1000:.2f} s")

        # 4. served throughput
        load = throughput(site, pairs[:samples], threads, served_seconds, worker_pids, addresses,
                          postgres_pids(database))
        print(f"\n4. served: gunicorn {workers} sync workers, {threads} client threads"
              f"{f' from {addresses} addresses (X-Forwarded-For, PROXY_COUNT=1)' if addresses > 1 else ' from one address'}, "
              f"{load['seconds']:.1f} s: {load['requests']:,} requests, {load['rps']:.0f} requests/s; "
              f"p50 {percentile(load['latency'], 50):.1f} ms, p99 {percentile(load['latency'], 99):.1f} ms; "
              f"errors {len(load['errors'])}, 429 {load['limited']}")
        print("   CPU (cores busy on average): " + ", ".join(f"{k} {v:.2f}" for k, v in load["cpu"].items())
              + f"; of {os.cpu_count()} cores")
        per = load["per_request"] = {k: 1000 * v / max(load["rps"], 1e-9) for k, v in load["cpu"].items() if k != "the whole machine"}
        print("   CPU per request: " + ", ".join(f"{k} {v:.1f} ms" for k, v in per.items())
              + f"; {sum(per.values()):.1f} ms in all: {os.cpu_count()} free cores would serve about "
              f"{1000 * (os.cpu_count() or 1) / max(sum(per.values()), 1e-9):.0f} requests/s")
        for line in sorted(set(load["errors"]))[:5]:
            print("   error:", line)
        traces = served.server_errors()
        if traces:
            print(f"   {len(traces)} tracebacks in the server's log; the first:\n{traces[0]}")
    finally:
        served.stop()
        shutil.rmtree(folder, ignore_errors=True)  # gunicorn's log and the SMS outbox

    single_p50 = percentile(single["wall"], 50)
    bulk_p50 = percentile(checked["wall"], 50)
    rows_ok = synced["rows"] == expected == synced["distinct"]
    served_ok = load["rps"] >= TARGET_RPS and not load["errors"] and not load["limited"]
    table = [
        ("single verification p50, server (in-process wall)", f"≤ {TARGET_SINGLE_MS} ms", f"{single_p50:.2f} ms",
         single_p50 <= TARGET_SINGLE_MS and not single["bad"]),
        ("  worker CPU p50 (Server-Timing)", "", f"{percentile(single['cpu'], 50):.2f} ms", None),
        (f"bulk check of {checked['items']:,} p50 (HTTP, client wall)", f"≤ {TARGET_BULK_MS} ms", f"{bulk_p50:.0f} ms",
         bulk_p50 <= TARGET_BULK_MS and not checked["bad"]),
        (f"full sync of {expected:,} certificates", f"≤ {TARGET_SYNC_S} s, all rows",
         f"{synced['seconds']:.2f} s, {synced['rows']:,} rows", synced["seconds"] <= TARGET_SYNC_S and rows_ok),
        (f"served verification, {workers} workers, {threads} threads", f"≥ {TARGET_RPS}/s, 0 errors",
         f"{load['rps']:.0f}/s, {len(load['errors'])} errors, {load['limited']} × 429", served_ok),
        ("  at 2 free cores, from the CPU per request", "", f"≈ {2000 / max(sum(load['per_request'].values()), 1e-9):.0f}/s "
         f"({sum(load['per_request'].values()):.1f} ms CPU each)", None),
    ]
    if bulk_size != 1000 or abs(expected - sync_target) > sync_target // 2:
        print(f"\n(note: bulk size {bulk_size}, synced {expected:,} rows: the targets are set for 1,000 and ~20,000)")
    print(f"\n{'figure':<52} {'target':<20} {'measured':<32} ok")
    for figure, target, measured, ok in table:
        print(f"{figure:<52} {target:<20} {measured:<32} {'' if ok is None else ('yes' if ok else 'NO')}")
    missed = [figure for figure, _, _, ok in table if ok is False]
    print("targets:", "all met" if not missed else "missed — " + "; ".join(missed))
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of a database built with `seed scale`")
    parser.add_argument("--served-seconds", type=float, default=20, help="length of the throughput run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (as `make serve`)")
    parser.add_argument("--threads", type=int, default=16, help="client threads of the throughput run")
    parser.add_argument("--addresses", type=int, default=1,
                        help="client addresses of the throughput run (>1: X-Forwarded-For with PROXY_COUNT=1, "
                             "so each has its own rate-limit counter row)")
    parser.add_argument("--samples", type=int, default=500, help="certificates verified one by one")
    parser.add_argument("--bulk-size", type=int, default=1000)
    parser.add_argument("--bulk-runs", type=int, default=20)
    parser.add_argument("--sync-target", type=int, default=20_000,
                        help="sync the organization whose certificates number closest to this")
    parser.add_argument("--org", help="sync this organization (its code) instead")
    parser.add_argument("--page-limit", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process verifications")
    args = parser.parse_args()
    return run(args.database, samples=args.samples, bulk_size=args.bulk_size, bulk_runs=args.bulk_runs,
               sync_target=args.sync_target, org=args.org, page_limit=args.page_limit, workers=args.workers,
               threads=args.threads, served_seconds=args.served_seconds, addresses=args.addresses,
               profile=args.profile)


if __name__ == "__main__":
    raise SystemExit(main())
