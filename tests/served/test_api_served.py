"""The data-exchange API served for real (issue 20 item 6): gunicorn (several workers) on PostgreSQL,
and ``make run``'s server on SQLite, driven over HTTP with keys made in the served database.

* The access probe: a key of every demo organization (and of the largest of the scale set) pages
  through every list to the end and gets exactly the rows SPEC §1 gives its organization — the
  expected sets are computed here in SQL, not with ``workflows.visibility`` — then asks every item
  endpoint for other organizations' numbers and codes (404, the very body of a number that does not
  exist), and every endpoint its organization's kind may not have (403). Refused keys (revoked,
  expired, an organization not active, a wrong secret) get 401 everywhere.
* The contract: every operation of the published OpenAPI document (iterated, so a new endpoint is
  exercised without editing this file) answers its success, 401, 403, 404, 400 (a cursor of another
  query), 422 and 429 cases, each response valid against the document (openapi-core), each 4xx a
  problem+json with a Chinese ``detail``, none a 5xx.
* Across workers: a revoked key is refused at the very next request whichever worker answers; the
  per-key limit holds over both workers (the counter is in the database); each keyed call is one
  操作日志 row; a keyed call makes no session; pages stay whole while rows are inserted and changed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from sqlalchemy import insert, select

from models import ApiKey, AuditLog, Certificate
from models.org import OrgKind
from workflows.apikeys import SCOPES

PROBLEM = "application/problem+json"
CJK = re.compile(r"[\u4e00-\u9fff]")
DATA_SCOPES = ("certificates", "registrations", "batches")
# scope → (list path, item path, the record field an item is asked by, a number no row has)
COLLECTIONS = {
    "certificates": ("/api/v1/certificates", "/api/v1/certificates/{}", "number", "999999999999999"),
    "registrations": ("/api/v1/registered-persons", "/api/v1/registered-persons/{}", "registration_number",
                      "X00000000000"),
    "batches": ("/api/v1/batches", "/api/v1/batches/{}", "code", "JG999999999999999"),
}
THREADS = 6
EXTRA_FOREIGN = 1  # beyond one row of each other kind of organization: rows of anyone's
REVOKED, EXPIRED = "该接口密钥已吊销", "该接口密钥已过期"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- keys and calls --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    id: int
    token: str
    org_id: int
    scopes: tuple[str, ...]


def make_key(site, org_id: int, scopes, *, rate_limit: int = 100_000, expires_in=timedelta(days=365),
             revoked: bool = False, name: str = "served test") -> Key:
    """A key written straight into the served database, as 新建接口密钥 would (the secret's digest)."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = now_utc()
    scopes = tuple(code for code in SCOPES if code in scopes)
    with site.engine.begin() as conn:
        pk = conn.execute(insert(ApiKey.__table__).values(
            organization_id=org_id, name=name, key_id=key_id,
            secret_hash=hashlib.sha256(secret.encode()).hexdigest(), scopes=",".join(scopes), rate_limit=rate_limit,
            expires_at=now + expires_in, created_at=now, revoked_at=now if revoked else None)).inserted_primary_key[0]
    return Key(pk, f"csk_{key_id}_{secret}", org_id, scopes)


def allowed_scopes(kind: str) -> tuple[str, ...]:
    return tuple(code for code, (_, kinds) in SCOPES.items() if OrgKind(kind) in kinds)


class Api:
    """Calls over real sockets, one ``requests.Session`` per thread, run ``THREADS`` at a time."""

    def __init__(self, base: str):
        self.base = base
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def call(self, method: str, path: str, token: str | None = None, *, headers=None, fresh=False,
             **kw) -> requests.Response:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = requests.Session() if fresh else self._session()
        return client.request(method, self.base + path, headers=headers, timeout=120, allow_redirects=False, **kw)

    def get(self, path: str, token: str | None = None, **kw) -> requests.Response:
        return self.call("GET", path, token, **kw)

    def many(self, func, items) -> list:
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(func, items))


def is_problem(resp: requests.Response) -> bool:
    if resp.headers.get("Content-Type", "").split(";")[0].strip() != PROBLEM:
        return False
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == resp.status_code and bool(
        CJK.search(str(body.get("detail", ""))))


# -- what SPEC §1 gives an organization, in SQL ------------------------------------------------------------
@dataclass(frozen=True)
class Org:
    id: int
    code: str
    kind: str
    region: str | None

    @property
    def scopes(self) -> tuple[str, ...]:
        return allowed_scopes(self.kind)


def expected(site, org: Org | None, scope: str) -> set:
    """The identifiers ``org`` sees (None: the whole province) — SPEC §1, written here independently."""
    kind = org.kind if org is not None else "province"
    o = org.id if org is not None else None
    if scope == "certificates":
        where = {"province": "TRUE", "authority": "c.authority_id = :o", "institution": "c.issuer_id = :o",
                 "direct_institution": "c.issuer_id = :o",
                 "enterprise": "c.person_id IN (SELECT id FROM person WHERE employer_id = :o)",
                 "school": "c.person_id IN (SELECT id FROM person WHERE employer_id = :o)"}[kind]
        sql = f"SELECT c.number FROM certificate c WHERE {where}"
    elif scope == "registrations":
        where = {"province": "TRUE", "ministry": "r.ministry_at IS NOT NULL", "enterprise": "r.enterprise_id = :o"}[kind]
        sql = f"SELECT r.registration_number FROM registration r WHERE r.status = 'approved' AND {where}"
    else:
        where = {"province": "TRUE", "authority": "b.authority_id = :o", "institution": "b.institution_id = :o",
                 "direct_institution": "b.institution_id = :o"}[kind]
        sql = f"SELECT b.code FROM batch b WHERE {where}"
    return {row[0] for row in site.rows(sql.replace("TRUE", "1 = 1"), o=o)}


def probed_orgs(site, wide: bool = True) -> list[Org]:
    """Every active demo organization (codes not SC…), every authority and 省直所, and the largest of
    the scale set: its three busiest institutions, the enterprises with most holders and registrations.
    Not ``wide``: the demo's own organizations but the province, and two cities (the SQLite run — its
    dialect is what differs; the rule and the data are PostgreSQL's run's, which keeps the test within
    the suite's time)."""
    if not wide:
        rows = site.rows("SELECT id, code, kind, region_code FROM organization WHERE status = 'active' AND "
                         "substr(code, 1, 2) <> 'SC' AND kind <> 'province' AND "
                         "(kind <> 'authority' OR region_code IN ('370100', '370200'))")
        return sorted({Org(*row) for row in rows}, key=lambda org: org.id)
    rows = site.rows("SELECT id, code, kind, region_code FROM organization WHERE status = 'active' AND "
                     "(substr(code, 1, 2) <> 'SC' OR kind IN ('province', 'ministry', 'authority', "
                     "'direct_institution', 'school'))")
    rows += site.rows("SELECT o.id, o.code, o.kind, o.region_code FROM organization o JOIN certificate c "
                      "ON c.issuer_id = o.id WHERE o.kind = 'institution' AND o.status = 'active' "
                      "GROUP BY o.id, o.code, o.kind, o.region_code ORDER BY count(*) DESC, o.id LIMIT 3")
    rows += site.rows("SELECT o.id, o.code, o.kind, o.region_code FROM organization o JOIN person p "
                      "ON p.employer_id = o.id JOIN certificate c ON c.person_id = p.id WHERE o.kind = 'enterprise' "
                      "AND o.status = 'active' GROUP BY o.id, o.code, o.kind, o.region_code "
                      "ORDER BY count(*) DESC, o.id LIMIT 3")
    rows += site.rows("SELECT o.id, o.code, o.kind, o.region_code FROM organization o JOIN registration r "
                      "ON r.enterprise_id = o.id WHERE r.status = 'approved' AND o.status = 'active' "
                      "GROUP BY o.id, o.code, o.kind, o.region_code ORDER BY count(*) DESC, o.id LIMIT 2")
    return sorted({Org(*row) for row in rows}, key=lambda org: org.id)


def foreign_sample(org: Org, sees: set, others: list[tuple[Org, set]], everything: set,
                   rng: random.Random) -> list:
    """Identifiers ``org`` must not see: one of each other kind of organization (of its own city when
    there is one), then one of anyone's."""
    picked, by_kind = [], {}
    for other, theirs in sorted(others, key=lambda pair: (pair[0].region != org.region, pair[0].id)):
        by_kind.setdefault(other.kind, []).append(theirs)
    for kind in sorted(by_kind):
        candidates = next((sorted(theirs - sees, key=str) for theirs in by_kind[kind] if theirs - sees), [])
        if candidates:
            picked.append(rng.choice(candidates))
    rest = sorted(everything - sees - set(picked), key=str)
    picked += rng.sample(rest, min(len(rest), EXTRA_FOREIGN))
    return picked


def page_through(api: Api, token: str, path: str, limit: int = 1000, **params) -> tuple[list[dict], list[str]]:
    """Every item of a list, following next_cursor to the end; and what went wrong on the way."""
    items, problems, cursor = [], [], None
    for _ in range(10_000):
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        resp = api.get(path, token, params=query)
        if resp.status_code != 200:
            problems.append(f"{path} {query}: {resp.status_code} {resp.text[:200]}")
            break
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    return items, problems


# -- 1. the access probe ----------------------------------------------------------------------------------
def access_probe(site, wide: bool = True) -> tuple[list[str], dict]:
    api = Api(site.base)
    orgs = probed_orgs(site, wide)
    keys = {org.id: make_key(site, org.id, org.scopes, name=f"probe {org.code}") for org in orgs}
    everything = {scope: expected(site, None, scope) for scope in DATA_SCOPES}
    sees = {(org.id, scope): expected(site, org, scope) for org in orgs for scope in org.scopes if scope in DATA_SCOPES}
    by_id = {org.id: org for org in orgs}
    failures: list[str] = []
    stats = {"orgs": len(orgs), "kinds": sorted({o.kind for o in orgs}), "rows": 0, "foreign": 0, "forbidden": 0}

    # every list, to its end: exactly the rows SPEC §1 gives the organization, each once
    def listing(task):
        org, scope = task
        items, problems = page_through(api, keys[org.id].token, COLLECTIONS[scope][0])
        return org, scope, [item[COLLECTIONS[scope][2]] for item in items], problems

    for org, scope, got, problems in api.many(listing, [(by_id[org_id], scope) for org_id, scope in sees]):
        want = sees[(org.id, scope)]
        failures += [f"{org.code} ({org.kind}) {scope}: {p}" for p in problems]
        stats["rows"] += len(got)
        extra, missing = set(got) - want, want - set(got)
        if extra:
            failures.append(f"LEAK {org.code} ({org.kind}) {scope} list: {len(extra)} rows outside its visibility, "
                            f"e.g. {sorted(extra, key=str)[:5]}")
        if missing:
            failures.append(f"{org.code} ({org.kind}) {scope} list: {len(missing)} visible rows never returned, "
                            f"e.g. {sorted(missing, key=str)[:5]}")
        if len(got) != len(set(got)):
            failures.append(f"{org.code} ({org.kind}) {scope} list: {len(got) - len(set(got))} rows returned twice")

    # items: its own (200), other organizations' (404, the body of a number that does not exist)
    rng = random.Random(20)
    checks = []
    for org in orgs:
        for scope in (s for s in org.scopes if s in DATA_SCOPES):
            own = sees[(org.id, scope)]
            others = [(other, sees[(other.id, scope)]) for other in orgs
                      if other.id != org.id and (other.id, scope) in sees and other.kind != "province"]
            foreign = foreign_sample(org, own, others, everything[scope], rng)
            stats["foreign"] += len(foreign)
            missing_id = COLLECTIONS[scope][3]
            checks.append((org, scope, missing_id, "missing"))
            checks += [(org, scope, ident, "foreign") for ident in foreign]
            checks += [(org, scope, ident, "own") for ident in sorted(own, key=str)[:2] if ident is not None]

    def item(task):
        org, scope, ident, what = task
        return task, api.get(COLLECTIONS[scope][1].format(ident), keys[org.id].token)

    answers = dict(api.many(item, checks))
    for (org, scope, ident, what), resp in answers.items():
        label = f"{org.code} ({org.kind}) {scope} {ident}"
        if what == "own":
            if resp.status_code != 200 or resp.json().get(COLLECTIONS[scope][2]) != ident:
                failures.append(f"{label}: its own row answered {resp.status_code} {resp.text[:200]}")
            continue
        nothing = answers[(org, scope, COLLECTIONS[scope][3], "missing")]
        if what == "missing":
            if resp.status_code != 404 or not is_problem(resp):
                failures.append(f"{label}: a number no row has answered {resp.status_code} {resp.text[:200]}")
        elif resp.status_code != 404 or resp.content != nothing.content or \
                resp.headers.get("Content-Type") != nothing.headers.get("Content-Type"):
            failures.append(f"LEAK {label}: another organization's row answered {resp.status_code} "
                            f"{resp.text[:200]!r}, not the 404 of a row that does not exist")

    # what the organization's kind may not have at all: 403 on the list and on any item, existing or not
    forbidden = []
    for org in orgs:
        for scope in DATA_SCOPES:
            if scope in org.scopes:
                continue
            real = sorted(everything[scope], key=str)[0]
            forbidden += [(org, scope, COLLECTIONS[scope][0]), (org, scope, COLLECTIONS[scope][1].format(real)),
                          (org, scope, COLLECTIONS[scope][1].format(COLLECTIONS[scope][3]))]

    def refused(task):
        org, scope, path = task
        return task, api.get(path, keys[org.id].token)

    bodies = {}
    for (org, scope, path), resp in api.many(refused, forbidden):
        stats["forbidden"] += 1
        if resp.status_code != 403 or not is_problem(resp) or "数据范围" not in resp.json()["detail"]:
            failures.append(f"LEAK {org.code} ({org.kind}) without {scope}: {path} answered {resp.status_code} "
                            f"{resp.text[:200]!r}")
        bodies.setdefault((org.id, scope), set()).add(resp.content)
    failures += [f"{org} {scope}: 403 answers differ between an existing and a missing row"
                 for (org, scope), seen in bodies.items() if len(seen) > 1]
    return failures, stats


@pytest.mark.parametrize("where", ["gunicorn_pg", "flask_sqlite"])
def test_every_organizations_key_sees_exactly_its_rows(request, where):
    site = request.getfixturevalue(where)
    started = time.monotonic()
    wide = where == "gunicorn_pg"
    failures, stats = access_probe(site, wide)
    leaks = [f for f in failures if f.startswith("LEAK")]
    assert not failures, (f"{len(leaks)} leaks, {len(failures)} failures on {where} ({stats}):\n"
                          + "\n".join((leaks + [f for f in failures if not f.startswith('LEAK')])[:60]))
    if wide:
        assert stats["orgs"] >= 50 and set(stats["kinds"]) == {k.value for k in OrgKind}, stats
        assert stats["rows"] > 40_000 and stats["foreign"] > 400 and stats["forbidden"] > 50, stats
    else:
        assert set(stats["kinds"]) == {k.value for k in OrgKind} - {"province"}, stats
        assert stats["rows"] > 1_000 and stats["foreign"] > 50 and stats["forbidden"] > 10, stats
    assert not site.served.server_errors(), "\n\n".join(site.served.server_errors()[:3])
    print(f"access probe on {where}: {stats}, {time.monotonic() - started:.1f} s")


def test_refused_keys_are_401_on_every_keyed_endpoint(gunicorn_pg):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    province = site.scalar("SELECT id FROM organization WHERE kind = 'province'")
    all_data = ("verify", *DATA_SCOPES)
    pending = site.scalar("SELECT id FROM organization WHERE status = 'pending' ORDER BY id")
    rejected = site.scalar("SELECT id FROM organization WHERE status = 'rejected' ORDER BY id")
    # an institution taken offline after its key was made (the one with fewest certificates: probed by no one)
    offline = site.scalar("SELECT o.id FROM organization o LEFT JOIN certificate c ON c.issuer_id = o.id "
                          "WHERE o.kind = 'institution' AND o.status = 'active' AND substr(o.code, 1, 2) = 'SC' "
                          "GROUP BY o.id ORDER BY count(c.id), o.id LIMIT 1")
    offline_key = make_key(site, offline, ("verify", "certificates", "batches"))
    site.execute("UPDATE organization SET status = 'offline' WHERE id = :i", i=offline)
    valid = make_key(site, province, all_data)
    refused = {
        "吊销": (make_key(site, province, all_data, revoked=True).token, REVOKED),
        "过期": (make_key(site, province, all_data, expires_in=timedelta(seconds=-1)).token, EXPIRED),
        "待审核机构": (make_key(site, pending, ("verify", "certificates")).token, "已下线"),
        "未通过机构": (make_key(site, rejected, ("verify", "certificates")).token, "已下线"),
        "已下线机构": (offline_key.token, "已下线"),
        "密钥不符": (valid.token[:-4] + ("AAAA" if not valid.token.endswith("AAAA") else "BBBB"), "接口密钥无效"),
        "格式不符": (valid.token.upper(), "接口密钥无效"),
        "未知密钥": (f"csk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}", "接口密钥无效"),
    }
    samples = {scope: sorted(expected(site, None, scope), key=str)[0] for scope in DATA_SCOPES}
    calls = []
    for scope, (listing, item, _, _) in COLLECTIONS.items():
        calls += [("GET", listing, None), ("GET", item.format(samples[scope]), None)]
    calls.append(("POST", "/api/v1/verify/bulk", {"items": [{"number": samples["certificates"], "name": "张三"}]}))
    tasks = [(why, token, message, method, path, body) for why, (token, message) in refused.items()
             for method, path, body in calls]
    tasks += [("无密钥", None, "缺少接口密钥", m, p, b) for m, p, b in calls]
    tasks += [("Basic", None, "缺少接口密钥", m, p, b) for m, p, b in calls]

    def send(task):
        why, token, message, method, path, body = task
        headers = {"Authorization": f"Basic {valid.token}"} if why == "Basic" else None
        return task, api.call(method, path, token, headers=headers, json=body)

    failures = []
    for (why, _, message, method, path, _), resp in api.many(send, tasks):
        if resp.status_code != 401 or not is_problem(resp) or message not in resp.json()["detail"] \
                or "Bearer" not in resp.headers.get("WWW-Authenticate", ""):
            failures.append(f"{why}: {method} {path} answered {resp.status_code} {resp.text[:200]!r}")
    assert not failures, "\n".join(failures)
    assert api.get("/api/v1/certificates", valid.token, params={"limit": 1}).status_code == 200


# -- 2. the contract ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def document(gunicorn_pg) -> dict:
    resp = requests.get(gunicorn_pg.base + "/api/v1/openapi.json", timeout=30)
    assert resp.status_code == 200 and resp.json()["openapi"].startswith("3.")
    return resp.json()


def operations(document: dict):
    """(path, method, operation, its parameters) of every operation the document publishes."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation, [*item.get("parameters", []), *operation.get("parameters", [])]


def scope_of(operation: dict) -> str | None:
    """The scope a keyed operation needs, read from its documented 403 (「…」数据范围)."""
    described = operation["responses"].get("403", {}).get("description", "")
    found = [code for code, (label, _) in SCOPES.items() if f"「{label}」" in described]
    return found[0] if len(found) == 1 else None


class Contract:
    """Every response checked against the document, and the rules every answer of the API keeps."""

    def __init__(self, document: dict):
        self.document = document
        self.spec = OpenAPI.from_dict(document, config=Config(extra_media_type_deserializers={PROBLEM: json.loads}))
        self.failures: list[str] = []
        self.seen: dict[tuple[str, str], set[int]] = {}
        self.lock = threading.Lock()

    def check(self, label: str, template: str, resp: requests.Response, want, *,
              documented: bool = True) -> requests.Response:
        """``documented``: the status is one the operation lists (else its ``default`` must describe it)."""
        wanted = want if isinstance(want, tuple | set | frozenset) else (want,)
        method = resp.request.method.lower()
        problems = []
        if resp.status_code not in wanted:
            problems.append(f"expected {sorted(wanted)}")
        if resp.status_code >= 500:
            problems.append("a server error")
        if 400 <= resp.status_code < 500 and not is_problem(resp):
            problems.append("not a problem+json with a Chinese detail")
        elif 400 <= resp.status_code < 500 and not all(CJK.search(text) for text in leaves(resp.json().get("errors"))):
            problems.append("an error of its errors is not in Chinese")
        if documented and str(resp.status_code) not in self.document["paths"][template][method]["responses"]:
            problems.append("status not documented for this operation")
        try:
            self.spec.validate_response(RequestsOpenAPIRequest(resp.request), RequestsOpenAPIResponse(resp))
        except Exception as exc:  # noqa: BLE001 - every kind of mismatch is reported, with its cause
            cause = getattr(exc, "__cause__", None)
            problems.append(f"invalid against the document: {exc!r} {cause!r}"[:600])
        with self.lock:
            self.seen.setdefault((method.upper(), template), set()).add(resp.status_code)
            if problems:
                self.failures.append(f"{label}: {resp.request.method} {resp.request.url[:200]} → {resp.status_code} "
                                     f"{resp.text[:200]!r}: {'; '.join(problems)}")
        return resp


def leaves(errors) -> list[str]:
    """The messages of a problem's ``errors`` (nested by location and field)."""
    if isinstance(errors, dict):
        return [text for value in errors.values() for text in leaves(value)]
    if isinstance(errors, list):
        return [text for value in errors for text in leaves(value)]
    return [str(errors)] if errors is not None else []


def window() -> int:
    return int(time.time()) // 60


def test_every_operation_of_the_document_keeps_its_contract(gunicorn_pg, document):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    contract = Contract(document)
    province = site.scalar("SELECT id FROM organization WHERE kind = 'province'")
    full = make_key(site, province, SCOPES)
    other_full = make_key(site, province, SCOPES)
    cert = site.rows("SELECT c.number, p.name FROM certificate c JOIN person p ON p.id = c.person_id "
                     "WHERE c.status = 'valid' ORDER BY c.id LIMIT 1")[0]
    identifier = site.scalar("SELECT e.identifier FROM electronic_certificate e JOIN certificate c "
                             "ON c.id = e.certificate_id WHERE e.ended_at IS NULL AND c.status = 'valid' ORDER BY e.id")
    samples = {COLLECTIONS[s][2]: sorted(expected(site, None, s), key=str)[0] for s in DATA_SCOPES}
    samples |= {"number": cert.number, "name": cert.name, "identifier": identifier}
    # per scope, a narrow organization and a row it does not see (the foreign id of a 404)
    narrow = {}
    for scope, kind in (("certificates", "institution"), ("batches", "institution"), ("registrations", "enterprise")):
        org = Org(*site.rows("SELECT id, code, kind, region_code FROM organization WHERE kind = :k AND "
                             "status = 'active' ORDER BY id", k=kind)[0])
        foreign = sorted(expected(site, None, scope) - expected(site, org, scope), key=str)[0]
        narrow[scope] = (make_key(site, org.id, org.scopes), foreign)
    bodies = {"/api/v1/verify/bulk": {"items": [{"number": cert.number, "name": cert.name},
                                                {"number": "999999999999999", "name": "张三"}]}}
    covered = []

    for template, method, operation, parameters in operations(document):
        keyed = bool(operation.get("security"))
        scope = scope_of(operation) if keyed else None
        path_params = [p["name"] for p in parameters if p["in"] == "path"]
        query_params = {p["name"]: p for p in parameters if p["in"] == "query"}
        missing = [name for name in path_params + [n for n, p in query_params.items() if p.get("required")]
                   if name not in samples]
        assert not missing, f"{method.upper()} {template}: no sample for {missing} — add one to this test"
        assert "requestBody" not in operation or template in bodies, f"{template}: add a request body sample"
        assert not keyed or scope, f"{template}: its 403 names no scope"
        path = template
        for name in path_params:
            path = path.replace("{" + name + "}", requests.utils.quote(str(samples[name]), safe=""))
        required = {n: samples[n] for n, p in query_params.items() if p.get("required")}
        body = bodies.get(template)
        token = full.token if keyed else None
        label = f"{method.upper()} {template}"
        covered.append(label)

        def call(path=path, params=None, json_body=body, token=token, headers=None, method=method, required=required,
                 **kw):
            return api.call(method.upper(), path, token, params={**required, **(params or {})}, json=json_body,
                            headers=headers, **kw)

        check = contract.check
        # success
        ok = check(f"{label} success", template, call(), 200)
        if "items" in (ok.json() if ok.status_code == 200 else {}) and "next_cursor" in ok.json():
            assert ok.json()["items"], f"{label}: the province sees no rows"
        # keys
        if keyed:
            check(f"{label} without a key", template, call(token=None), 401)
            check(f"{label} a malformed key", template, call(token="csk_nothing"), 401)
            check(f"{label} an unknown key", template,
                  call(token=f"csk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"), 401)
            check(f"{label} Basic", template, call(token=None, headers={"Authorization": f"Basic {full.token}"}), 401)
            lacking = make_key(site, province, [s for s in SCOPES if s != scope])
            check(f"{label} without 「{scope}」", template, call(token=lacking.token), 403)
            nothing = make_key(site, province, [])
            check(f"{label} a key with no scope", template, call(token=nothing.token), 403)
        # path parameters: another organization's row, a row that does not exist, hostile values
        if path_params:
            if keyed and scope in narrow:
                key, foreign = narrow[scope]
                theirs = check(f"{label} foreign id", template,
                               call(path=template.replace("{" + path_params[0] + "}", requests.utils.quote(
                                   str(foreign), safe="")), token=key.token), 404)
                none = check(f"{label} missing id", template, call(
                    path=template.replace("{" + path_params[0] + "}", COLLECTIONS[scope][3]), token=key.token), 404)
                if theirs.content != none.content:
                    contract.failures.append(f"{label}: a foreign row's 404 differs from a missing row's")
            for hostile in ("x" * 300, "%E4%B8%AD%E6%96%87", "..%2F..%2Fetc", "1%20OR%201%3D1", "%EF%BC%91"):
                check(f"{label} hostile {hostile[:10]}", template,
                      call(path=template.replace("{" + path_params[0] + "}", hostile)), 404)
            # a NUL byte: refused (PostgreSQL cannot hold one) — as a problem, like every error of the API
            check(f"{label} NUL in the path", template, call(path=template.replace("{" + path_params[0] + "}", "a%00b")),
                  (400, 404), documented=False)
        # query parameters
        if query_params or method == "get":
            unknown = check(f"{label} unknown parameter", template, call(params={"unknown": "1"}),
                            422 if query_params else (200, 422))
            if not query_params and unknown.status_code == 200:
                contract.seen.setdefault(("IGNORED-UNKNOWN", template), set()).add(200)
        for name, param in query_params.items():
            if param.get("schema", {}).get("type") == "string":
                check(f"{label} NUL in {name}", template, call(params={name: "a\x00b"}), (400, 422),
                      documented=False)
        if "limit" in query_params:
            for bad in ("1000000000", "abc", "0", "-1", "10.5", "", "1e3"):
                check(f"{label} limit={bad}", template, call(params={"limit": bad}), 422)
            check(f"{label} limit=1000", template, call(params={"limit": 1000}), 200)
        if "updated_since" in query_params:
            for bad in ("garbage", "2026-13-45", "2026-02-30T00:00:00", "2026-01-01T25:00:00", "2026/01/01",
                        "2026-1-1"):
                check(f"{label} updated_since={bad}", template, call(params={"updated_since": bad}), 422)
            for good in ("2020-01-01T00:00:00+08:00", "2020-01-01T00:00:00", "2020-01-01T00:00:00Z", "20200101"):
                check(f"{label} updated_since={good}", template, call(params={"updated_since": good}), 200)
            # the ends of the calendar: Beijing's 0001-01-01 00:00 is before UTC's first day
            for edge in ("0001-01-01T00:00:00", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00"):
                check(f"{label} updated_since={edge}", template, call(params={"updated_since": edge}), (200, 422))
            future = check(f"{label} updated_since in the future", template,
                           call(params={"updated_since": "2099-01-01T00:00:00+08:00"}), 200)
            assert future.json() == {"items": [], "next_cursor": None}, future.text[:300]
        if "cursor" in query_params:
            first = check(f"{label} first page", template, call(params={"limit": 1}), 200).json()
            cursor = first["next_cursor"]
            assert cursor, f"{label}: one row a page and no next page"
            check(f"{label} its own cursor", template, call(params={"limit": 1, "cursor": cursor}), 200)
            check(f"{label} another limit", template, call(params={"limit": 5, "cursor": cursor}), 200)
            check(f"{label} cursor of another key", template, call(params={"cursor": cursor}, token=other_full.token),
                  400)
            check(f"{label} cursor of another updated_since", template,
                  call(params={"cursor": cursor, "updated_since": "2020-01-01T00:00:00+08:00"}), 400)
            for other, _, _, other_params in operations(document):
                if other != template and any(p["name"] == "cursor" for p in other_params):
                    check(f"{label} cursor of {other}", template, call(path=other, params={"cursor": cursor}), 400)
                    check(f"{other} cursor of {label}", other, call(path=other, params={"cursor": cursor}), 400)
            for forged in (cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "garbage", "a" * 501,
                           cursor + "."):
                check(f"{label} forged cursor", template, call(params={"cursor": forged}),
                      422 if len(forged) > 500 else 400)
        # request bodies
        if body is not None:
            item = body["items"][0]
            for why, bad in (("1001 items", {"items": [item] * 1001}), ("no items", {"items": []}),
                             ("items not a list", {"items": "x"}), ("missing items", {}),
                             ("numbers not strings", {"items": [{"number": 263701001510001, "name": 1}]}),
                             ("an item without name", {"items": [{"number": item["number"]}]}),
                             ("an unknown field", {"items": [item], "more": 1}),
                             ("an unknown item field", {"items": [{**item, "id_number": "x"}]}),
                             ("a null item", {"items": [None]}), ("NUL", {"items": [{**item, "name": "a\x00"}]}),
                             ("a list", [item])):
                check(f"{label} {why}", template, call(json_body=bad), 422)
            check(f"{label} 1000 items", template, call(json_body={"items": [item] * 1000}), 200)
            check(f"{label} not JSON", template, call(json_body=None, data="{not json",
                                                      headers={"Content-Type": "application/json"}), (400, 422),
                  documented=False)
        # the key's limit: three calls, the third refused — each on a fresh connection (any worker)
        if keyed:
            for _attempt in range(3):
                limited, start = make_key(site, province, SCOPES, rate_limit=2), window()
                answers = [call(token=limited.token, fresh=True) for _ in range(3)]
                if window() == start:
                    break
            for n, resp in enumerate(answers):
                check(f"{label} rate limit 2, call {n + 1}", template, resp, 429 if n == 2 else 200)
            if answers[2].status_code == 429:
                assert 1 <= int(answers[2].headers["Retry-After"]) <= 60

    # the limit over both workers at once: exactly two of eight concurrent calls get through
    for _attempt in range(3):
        limited, start = make_key(site, province, SCOPES, rate_limit=2), window()
        codes = sorted(r.status_code for r in api.many(
            lambda _, token=limited.token: api.call("GET", "/api/v1/batches", token, fresh=True), range(8)))
        if window() == start:
            break
    assert codes == [200] * 2 + [429] * 6, codes

    assert len(covered) == sum(1 for _ in operations(document)) >= 9, covered
    assert not contract.failures, f"{len(contract.failures)} contract failures:\n" + "\n".join(contract.failures[:60])
    for (method, template), statuses in sorted(contract.seen.items()):
        print(method, template, sorted(statuses))
    assert not site.served.server_errors(), "\n\n".join(site.served.server_errors()[:3])


# -- 3. revocation across workers, 操作日志 --------------------------------------------------------------------
def test_a_revoked_key_is_refused_at_the_next_request_whichever_worker_answers(gunicorn_pg):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    assert len(site.served.web_worker_pids()) >= 2
    province = site.scalar("SELECT id FROM organization WHERE kind = 'province'")
    key = make_key(site, province, SCOPES)
    before = [api.get("/api/v1/batches", key.token, params={"limit": 1}, fresh=True).status_code for _ in range(10)]
    assert before == [200] * 10
    site.execute("UPDATE api_key SET revoked_at = :now WHERE id = :i", now=now_utc(), i=key.id)
    after = [api.get("/api/v1/batches", key.token, params={"limit": 1}, fresh=True) for _ in range(10)]
    assert [r.status_code for r in after] == [401] * 10
    assert all(r.json()["detail"] == REVOKED and is_problem(r) for r in after)


def test_each_keyed_call_is_one_operation_log_row_with_its_row_count(gunicorn_pg):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    inst = site.scalar("SELECT id FROM organization WHERE code = 'JG370101'")
    key = make_key(site, inst, ("verify", "certificates", "batches"))
    own = sorted(expected(site, Org(inst, "JG370101", "institution", None), "certificates"))
    foreign = sorted(expected(site, None, "certificates") - set(own))[0]
    calls = [
        ("GET", "/api/v1/certificates", {"limit": 3}, None, 200, 3),
        ("GET", "/api/v1/certificates", {"limit": 1000}, None, 200, len(own)),
        ("GET", f"/api/v1/certificates/{own[0]}", None, None, 200, 1),
        ("GET", f"/api/v1/certificates/{foreign}", None, None, 404, 0),
        ("GET", "/api/v1/registered-persons", None, None, 403, 0),
        ("GET", "/api/v1/certificates", {"limit": "abc"}, None, 422, 0),
        ("POST", "/api/v1/verify/bulk", None, {"items": [{"number": own[0], "name": "不是他"}]}, 200, 0),
    ]
    for method, path, params, body, status, _rows in calls:
        resp = api.call(method, path, key.token, params=params, json=body, fresh=True)
        assert resp.status_code == status, (path, resp.status_code, resp.text[:300])
        if status == 200 and method == "GET" and "items" in resp.json():
            assert len(resp.json()["items"]) == _rows
    table = AuditLog.__table__
    with site.engine.connect() as conn:
        logged = conn.execute(select(table.c.kind, table.c.object_type, table.c.detail)
                              .where(table.c.object_type == "api_key", table.c.object_id == key.id)
                              .order_by(table.c.id)).all()
    assert len(logged) == len(calls), logged
    for (method, path, _params, _body, status, rows), row in zip(calls, logged, strict=True):
        detail = row.detail if isinstance(row.detail, dict) else json.loads(row.detail)
        assert row.kind == "api"
        assert (detail["method"], detail["endpoint"], detail["status"], detail["rows"]) == (method, path, status, rows)
        assert detail["key"] == key.token.split("_")[1]


# -- 4. no session --------------------------------------------------------------------------------------
def test_a_keyed_call_sets_no_cookie_and_makes_no_session(gunicorn_pg):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    province = site.scalar("SELECT id FROM organization WHERE kind = 'province'")
    key = make_key(site, province, SCOPES)
    sessions = site.scalar("SELECT count(*) FROM user_session")
    number = sorted(expected(site, None, "certificates"))[0]
    answers = [api.get("/api/v1/certificates", key.token, params={"limit": 2}, fresh=True),
               api.get(f"/api/v1/certificates/{number}", key.token, fresh=True),
               api.get("/api/v1/certificates/999999999999999", key.token, fresh=True),
               api.get("/api/v1/certificates", None, fresh=True),
               api.call("POST", "/api/v1/verify/bulk", key.token, json={"items": [{"number": number, "name": "x"}]},
                        fresh=True)]
    assert [r.status_code for r in answers] == [200, 200, 404, 401, 200]
    for resp in answers:
        assert "Set-Cookie" not in resp.headers, (resp.request.url, resp.headers)
        assert resp.headers.get("Cache-Control") == "no-store"
    assert site.scalar("SELECT count(*) FROM user_session") == sessions


# -- 5. pages stay whole while rows change -------------------------------------------------------------------
def test_pages_skip_nothing_while_rows_are_inserted_and_changed(gunicorn_pg):
    site, api = gunicorn_pg, Api(gunicorn_pg.base)
    issuer = site.scalar("SELECT issuer_id FROM certificate GROUP BY issuer_id HAVING count(*) BETWEEN 12 AND 400 "
                         "ORDER BY count(*) DESC, issuer_id LIMIT 1")
    key = make_key(site, issuer, ("certificates",))
    original = {row[0] for row in site.rows("SELECT number FROM certificate WHERE issuer_id = :i", i=issuer)}
    seen, cursor, pages, changed, inserted, moved = [], None, 0, None, None, None
    while True:
        resp = api.get("/api/v1/certificates", key.token, params={"limit": 2} | ({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.text[:300]
        body = resp.json()
        seen += [item["number"] for item in body["items"]]
        pages += 1
        if pages == 3:  # halfway: another connection changes a row already read, one not read yet, adds one
            latest = site.scalar("SELECT max(updated_at) FROM certificate")
            later = (latest if isinstance(latest, datetime) else datetime.fromisoformat(str(latest)))
            changed, moved = seen[0], sorted(original - set(seen))[0]
            site.execute("UPDATE certificate SET updated_at = :t WHERE number = :n", t=later + timedelta(seconds=1),
                         n=changed)
            site.execute("UPDATE certificate SET updated_at = :t WHERE number = :n", t=later + timedelta(seconds=2),
                         n=moved)
            inserted = insert_certificate_like(site, changed, later + timedelta(seconds=3))
        cursor = body["next_cursor"]
        if not cursor:
            break
    counts = {number: seen.count(number) for number in set(seen)}
    skipped = original - set(seen)
    assert not skipped, f"skipped while paging: {sorted(skipped)}"
    assert counts[changed] == 2 and seen[-3:] == [changed, moved, inserted], seen[-5:]
    assert all(count == 1 for number, count in counts.items() if number != changed), counts
    assert set(seen) == original | {inserted}


def insert_certificate_like(site, number: str, updated_at: datetime) -> str:
    """A new certificate row of the same issuer, copied from ``number`` with a number of its own."""
    columns = [c.name for c in Certificate.__table__.columns if c.name not in ("id", "number", "updated_at",
                                                                                "replaces_id")]
    new = "2" + number[1:-6] + f"{random.randrange(10**6):06d}"
    while site.scalar("SELECT count(*) FROM certificate WHERE number = :n", n=new):
        new = "2" + number[1:-6] + f"{random.randrange(10**6):06d}"
    names = ", ".join(columns)
    site.execute(f"INSERT INTO certificate (number, updated_at, {names}) "  # noqa: S608 - the model's own columns
                 f"SELECT :new, :t, {names} FROM certificate WHERE number = :n", new=new, t=updated_at, n=number)
    return new
