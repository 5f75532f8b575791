"""`flask seed scale --certificates N` (SPEC §12): a province-scale data set, bulk-loaded.

Beside whatever is there (the demo, or real data): the 16 city authorities (reused by region
code, the missing ones created), ``INSTITUTIONS_PER_CITY`` institutions under each and
``DIRECT_INSTITUTIONS`` 省直所 under the province, ``ENTERPRISES`` enterprises, one admin user
each; then N certificates issued by approved batches of 50–500 candidates, ~0.8 N holders,
certificate business (a few per cent of the certificates, every kind and state), practice
registrations, the transition logs of all of them, and the number segments the numbers came from.

Rows are generated as tuples with a seeded ``random.Random`` and written table by table in
foreign-key order with ids assigned here (above each table's current maximum): ``COPY … FROM
STDIN`` on PostgreSQL, ``executemany`` on SQLite. The certificates go in rounds of
``ROUND_CERTIFICATES``, one transaction each, so memory stays bounded and an interrupted run
leaves whole rounds behind.

Idempotent: every organization this creates has a code starting with ``SCALE_PREFIX`` ("SC"), and
the certificates they issued are counted first. A run asking for no more than are there does
nothing; one asking for more adds the difference (organizations, users and scopes only where
missing). Holders' ID numbers come from counters per district decoded from the persons already
there, batch codes continue each institution's day, certificate numbers continue each segment, so
a second run, the demo and later real issuing never meet a duplicate.
"""

from __future__ import annotations

import random
import time
from bisect import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from itertools import accumulate

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from models import Base
from models.base import local_today, utcnow
from models.org import NO_LEVEL_CODE, OrgKind
from models.user import Role, role_preset
from seed.reference import ensure_reference
from workflows.batch import BATCH
from workflows.business import BUSINESS
from workflows.certificate import CERTIFICATE
from workflows.printing import PRINT
from workflows.reference import load_cities
from workflows.registration import REGISTRATION, REGISTRATION_PREFIX, VALID_YEARS
from workflows.validators import id_check_char, make_credit_code

SCALE_PREFIX = "SC"
INSTITUTIONS_PER_CITY = 37
DIRECT_INSTITUTIONS = 8
ENTERPRISES = 5000
PERSONS_PER_CERTIFICATE = 0.8
ROUND_CERTIFICATES = 50_000
PASSWORD = "Demo@2026"  # the demo's: every scale account can sign in like the demo ones
BEIJING = timedelta(hours=8)  # stored timestamps are naive UTC; issue dates and codes are Beijing days

# Per certificate: certificate business (kind shares below), or the province's own 注销 / 作废.
P_APPLICATION = 0.025
P_PROVINCE_CANCEL = 0.004
P_PROVINCE_VOID = 0.002
APPLICATION_KINDS = (("change", 0.5), ("reissue", 0.25), ("cancel", 0.25))
# Per holder employed by a registered enterprise, born 1966 or later: a practice registration.
P_REGISTRATION = 0.085
DIRECT_SHARE = 0.04  # of the batches, issued by 省直所
OPEN_BATCH_SHARE = 0.03  # batches still in draft, under review or rejected, on top of the approved ones

# Relative size of each city (population, millions), for institutions' and enterprises' work.
CITY_WEIGHTS = {
    "370100": 9.4, "370200": 10.3, "370300": 4.7, "370400": 3.9, "370500": 2.2, "370600": 7.1, "370700": 9.4,
    "370800": 8.3, "370900": 5.4, "371000": 2.9, "371100": 3.0, "371300": 11.0, "371400": 5.6, "371500": 5.9,
    "371600": 3.9, "371700": 8.7,
}
# County-level codes the holders' ID numbers are drawn from: none is used by the demo or the tests
# (370102, 370103, 370105, 370112, 370181, 370202).
DISTRICT_SUFFIXES = ("21", "22", "23", "24", "25", "26", "27", "28", "82", "83", "84", "85", "86", "87")
BIRTH_FIRST = date(1958, 1, 1)
BIRTH_SPAN = (date(2001, 12, 31) - BIRTH_FIRST).days + 1  # 16,071 days, coprime with 7919
_DAY_STEP, _SEQ_STEP = 7919, 37
_DAY_STEP_INV = pow(_DAY_STEP, -1, BIRTH_SPAN)
_SEQ_STEP_INV = pow(_SEQ_STEP, -1, 500)
DISTRICT_CAPACITY = BIRTH_SPAN * 500
HISTORY_YEARS = 7  # certificates issued since 1 January, seven years ago

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤")
# As uneven as China's surnames (census shares, %): 王, 李 and 张 ~7% each, so a search by a
# surname alone meets ~55,000 persons at a million certificates; the rest taper to ~0.2%.
SURNAME_CUM = list(accumulate([7.1, 7.0, 6.7, 5.1, 4.6, 3.2, 2.5, 2.3, 2.1, 1.9, 1.6, 1.5, 1.4, 1.4, 1.3, 1.3, 1.2, 1.2,
                          1.2, 1.1] + [1.0 - 0.8 * k / (len(SURNAMES) - 21) for k in range(len(SURNAMES) - 20)]))
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文海红玉兰春林斌鹏飞辉波宁浩亮成俊峰龙云新利东庆永"
         "德福宝山生金荣立胜旭晨阳光民法长运振兴凯鑫宇博健彬帅坤")
BRANDS = ("鲁", "泰", "华", "恒", "鼎", "盛", "正", "宏", "安", "信", "诚", "达", "通", "远", "建", "海", "岳", "齐",
          "瑞", "丰", "昌", "隆", "兴", "旺", "德", "润", "宇", "晟", "嘉", "永", "祥", "和", "泽", "源", "峰", "骏")
ENTERPRISE_SUFFIXES = ("建设工程有限公司", "建筑安装工程有限公司", "建筑劳务有限公司", "市政工程有限公司", "建设集团有限公司",
                       "装饰工程有限公司", "钢结构工程有限公司", "防水工程有限公司", "路桥工程有限公司", "水利工程有限公司")
INSTITUTION_SUFFIXES = ("职业技能培训学校", "建筑职业培训中心", "建设职业技术学校培训部", "建筑技工学校", "建设培训中心")
SPECIALTY_WEIGHTS = {"01": 45, "08": 20, "10": 10, "02": 6, "06": 6, "05": 3, "07": 3, "09": 3, "03": 2, "04": 2}
LEVEL_WEIGHTS = {"5": 40, "4": 30, "3": 18, "2": 8, "1": 4, "0": 30}

# Every column written, per table; ``check_columns`` holds them against the models.
COLUMNS: dict[str, tuple[str, ...]] = {
    "organization": ("id", "code", "name", "kind", "parent_id", "path", "region_code", "status", "contact", "phone",
                     "address", "postcode", "credit_code", "qualification_no", "created_at", "version"),
    "scope_item": ("id", "organization_id", "occupation_id", "level_id"),
    "user_account": ("id", "username", "password_hash", "name", "phone", "organization_id", "person_id", "role",
                     "is_enabled", "account_status", "failed_logins", "locked_until", "must_change_password",
                     "last_login_at", "created_at", "version"),
    "user_permission": ("id", "user_id", "code"),
    "person": ("id", "name", "id_number", "birth_date", "gender", "phone", "employer_id", "employer_name",
               "last_employer_change_at", "created_at"),
    "batch": ("id", "code", "name", "institution_id", "authority_id", "status", "candidate_count", "reject_reason",
              "created_by_id", "created_at", "submitted_at", "reviewed_at", "updated_at", "version"),
    "certificate": ("id", "number", "person_id", "occupation_id", "level_id", "issuer_id", "authority_id", "batch_id",
                    "issue_date", "valid_until", "status", "print_status", "printed_at", "printed_by_id",
                    "endorsement_count", "replaces_id", "created_at", "version", "business_print_application_id",
                    "updated_at"),
    "candidate": ("id", "batch_id", "row_no", "name", "id_number", "gender", "birth_date", "phone", "employer_name",
                  "occupation_id", "level_id", "failed", "fail_note", "certificate_id"),
    "certificate_application": (
        "id", "kind", "status", "applicant_org_id", "applicant_user_id", "person_id", "reviewing_authority_id",
        "explanation", "change_fields", "old_name", "old_id_number", "old_employer_name", "new_name", "new_id_number",
        "new_employer_id", "new_employer_name", "recent_employer_change", "social_security_checked", "reject_reason",
        "created_at", "submitted_at", "reviewed_at", "version"),
    "application_item": ("id", "application_id", "certificate_id", "new_certificate_id"),
    "registration": ("id", "kind", "status", "person_id", "enterprise_id", "declared_by_id", "specialty",
                     "explanation", "pre_registration", "qualification_no", "withdraw_requested_at", "reason",
                     "registration_number", "valid_until", "superseded_by_id", "created_at", "reported_at",
                     "ministry_at", "decided_at", "version", "updated_at"),
    "transition_log": ("id", "object_type", "object_id", "transition", "label", "from_state", "to_state", "actor_id",
                       "organization_id", "reason", "created_at"),
    "number_segment": ("id", "year", "region_code", "occupation_code", "level_code", "seg_index", "position",
                       "created_at", "updated_at"),
}
# Foreign-key order: a row's parents are written before it (candidates after their certificates,
# certificates after the applications that put them on 业务打印).
ORDER = ("organization", "scope_item", "person", "user_account", "user_permission", "batch",
         "certificate_application", "certificate", "candidate", "application_item", "registration", "transition_log",
         "number_segment")


def check_columns() -> None:
    """Every column named exists, and every NOT NULL column without a server default is named."""
    for name, columns in COLUMNS.items():
        table = Base.metadata.tables[name]
        unknown = set(columns) - set(table.c.keys())
        missing = [c.name for c in table.c if c.name not in columns and not c.nullable and c.server_default is None]
        if unknown or missing:
            raise RuntimeError(f"seed scale: {name} columns out of date (unknown {sorted(unknown)}, missing {missing})")


def ts(value: datetime | None) -> str | None:
    """A timestamp as SQLAlchemy stores it on SQLite; PostgreSQL's COPY parses the same text."""
    return value.isoformat(" ", "microseconds") if value is not None else None


def day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def local_date(value: datetime) -> date:
    return (value + BEIJING).date()


def years_later(value: date, years: int) -> date:
    try:
        return value.replace(year=value.year + years)
    except ValueError:  # 29 February
        return value.replace(year=value.year + years, day=28)


# -- ID numbers -------------------------------------------------------------------------------------
def id_number_for(region6: str, k: int, male: bool) -> str:
    """The ``k``-th scale ID number of a district: a bijection onto (birth day, sequence code), so
    distinct ``k`` never give the same number, and ``district_index`` gives ``k`` back."""
    q, r = divmod(k, BIRTH_SPAN)
    birth = BIRTH_FIRST + timedelta(days=r * _DAY_STEP % BIRTH_SPAN)
    seq = (q * _SEQ_STEP + r * 13 + 11) % 500
    first17 = f"{region6}{birth:%Y%m%d}{2 * seq + (1 if male else 0):03d}"
    return first17 + id_check_char(first17)


def district_index(number: str) -> int | None:
    """``k`` of an ID number in the scheme of ``id_number_for``, or None when it is outside it."""
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        seq = int(number[14:17]) // 2
    except ValueError:
        return None
    offset = (birth - BIRTH_FIRST).days
    if not 0 <= offset < BIRTH_SPAN:
        return None
    r = offset * _DAY_STEP_INV % BIRTH_SPAN
    q = (seq - r * 13 - 11) * _SEQ_STEP_INV % 500
    return q * BIRTH_SPAN + r


# -- the writer --------------------------------------------------------------------------------------
class Writer:
    """Rows into tables on one connection: COPY on PostgreSQL, executemany on SQLite.

    Always inside the connection's transaction (begun here when needed): a raw cursor would
    otherwise run in autocommit on SQLite, and outside what ``Connection.commit`` commits."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dbapi = conn.connection.driver_connection
        self.postgres = conn.dialect.name == "postgresql"
        self.rows: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def insert(self, table: str, rows: list) -> None:
        if not rows:
            return
        if not self.conn.in_transaction():
            self.conn.begin()
        columns = COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in columns)
        started = time.perf_counter()
        if self.postgres:
            with self.dbapi.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor = self.dbapi.cursor()
            try:
                cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})', rows)
            finally:
                cursor.close()
        self.rows[table] += len(rows)
        self.seconds[table] += time.perf_counter() - started

    def scalar(self, sql: str, **params):
        return self.conn.execute(text(sql), params).scalar()

    def all(self, sql: str, **params) -> list:
        return self.conn.execute(text(sql), params).all()


class Ids:
    """The next id of each table, above what is there."""

    def __init__(self, writer: Writer):
        self.next_id = {t: (writer.scalar(f'SELECT max(id) FROM "{t}"') or 0) + 1 for t in COLUMNS}

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value


# -- organizations, pairs, holders, numbers ------------------------------------------------------------
class Pair:
    """An (occupation, level) pair with its codes and how often it is trained."""

    __slots__ = ("occupation_id", "occupation_code", "occupation_name", "level_id", "level_code", "weight", "key")

    def __init__(self, occupation: tuple, level: tuple | None, weight: float):
        self.occupation_id, self.occupation_code, self.occupation_name = occupation
        self.level_id, self.level_code = level if level else (None, NO_LEVEL_CODE)
        self.weight = weight
        self.key = (self.occupation_id, self.level_id)


class Org:
    __slots__ = ("id", "code", "name", "kind", "parent_id", "path", "region6", "qualification_no", "city", "region4",
                 "authority_id", "user_id", "scope", "scope_cum", "weight")

    def __init__(self, id, code, name, kind, parent_id, path, region6, qualification_no=None):
        self.id, self.code, self.name, self.kind, self.parent_id, self.path = id, code, name, kind, parent_id, path
        self.region6, self.qualification_no = region6, qualification_no
        self.city: City | None = None
        self.region4 = region6[:4]  # of the certificate numbers, for an issuer: its authority's
        self.authority_id: int | None = None
        self.user_id = 0
        self.scope: list[Pair] = []
        self.scope_cum: list[float] = []
        self.weight = 1.0


class City:
    def __init__(self, row: dict):
        self.region6 = row["region_code"]
        self.region4 = self.region6[:4]
        self.name = row["name"]
        self.short = self.name.removesuffix("市")
        self.authority_name = row["authority_name"]
        self.weight = CITY_WEIGHTS.get(self.region6, 3.0)
        self.authority: Org | None = None
        self.authority_user = 0
        self.institutions: list[Org] = []
        self.institutions_cum: list[float] = []
        self.enterprises: list[Org] = []
        self.districts = [self.region4 + s for s in DISTRICT_SUFFIXES]


class Holder:
    """A person being generated; the row is written at the end of the round, as the person ends up."""

    __slots__ = ("id", "name", "id_number", "birth", "gender", "phone", "employer", "employer_name", "changed_at",
                 "created_at", "held", "registered")

    def employer_text(self) -> str | None:
        """The employer as a template row names it: the enterprise's current name, or the free text."""
        return self.employer.name if self.employer is not None else self.employer_name

    def row(self) -> tuple:
        return (self.id, self.name, self.id_number, day(self.birth), self.gender, self.phone,
                self.employer.id if self.employer is not None else None, self.employer_name, ts(self.changed_at),
                ts(self.created_at))


class Numbers:
    """Number segments (SPEC §4) walked as ``workflows.numbering`` walks them — index 1..9, the
    first with room — continuing from the positions in the database, and written back."""

    def __init__(self, rows):
        self.positions: dict[tuple, list[int]] = {}
        self.ids: dict[tuple, int] = {}
        self.touched: set[tuple] = set()
        for seg_id, year, region, occupation, level, index, position in rows:
            key = (year, region, occupation, level)
            self.positions.setdefault(key, [0] * 10)[index] = position
            self.ids[(key, index)] = seg_id

    def take(self, year: int, region4: str, pair: Pair) -> str:
        key = (year, region4, pair.occupation_code, pair.level_code)
        positions = self.positions.get(key)
        if positions is None:
            positions = self.positions[key] = [0] * 10
        for index in range(1, 10):
            if positions[index] < 9999:
                positions[index] += 1
                self.touched.add((key, index))
                return f"{year % 100:02d}{region4}{pair.occupation_code}{pair.level_code}{index}{positions[index]:04d}"
        raise RuntimeError(f"seed scale: the number segments of {key} are full")

    def flush(self, writer: Writer, ids: Ids, now: datetime) -> None:
        new, changed = [], []
        for key, index in sorted(self.touched):
            position = self.positions[key][index]
            seg_id = self.ids.get((key, index))
            if seg_id is None:
                seg_id = self.ids[(key, index)] = ids.take("number_segment")
                new.append((seg_id, key[0], key[1], key[2], key[3], index, position, ts(now), ts(now)))
            else:
                changed.append({"id": seg_id, "position": position, "at": ts(now)})
        writer.insert("number_segment", new)
        if changed:
            started = time.perf_counter()
            writer.conn.execute(text("UPDATE number_segment SET position = :position, updated_at = :at "
                                     "WHERE id = :id AND position < :position"), changed)
            writer.seconds["number_segment"] += time.perf_counter() - started
            writer.rows["number_segment (updated)"] += len(changed)
        self.touched.clear()


def cumulative(weights: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for weight in weights:
        total += weight
        out.append(total)
    return out


def pick(rng: random.Random, items: list, cum: list[float]):
    return items[bisect(cum, rng.random() * cum[-1])]


# -- the builder -------------------------------------------------------------------------------------
class ScaleBuilder:
    """One run: ``setup`` (organizations, scopes, users), ``load_state`` (segments, batch codes, ID
    counters), then ``run`` (the certificates and everything that hangs off them, in rounds)."""

    def __init__(self, conn: Connection, seed: int, echo: Callable[[str], None]):
        self.conn = conn
        self.seed = seed
        self.echo = echo
        self.w = Writer(conn)
        self.now = utcnow()
        self.today = local_today()
        self.buf: dict[str, list] = defaultdict(list)
        self.made = self.persons_made = 0

    # -- small helpers ------------------------------------------------------------------------------
    def flush(self) -> None:
        for table in ORDER:
            rows = self.buf.pop(table, None)
            if rows:
                self.w.insert(table, rows)

    def log(self, object_type: str, object_id: int, workflow, name: str, from_state: str, to_state: str,
            actor: int | None, org: int | None, at: datetime, reason: str | None = None) -> None:
        self.buf["transition_log"].append((self.ids.take("transition_log"), object_type, object_id, name,
                                           workflow.transition(name).label, from_state, to_state, actor, org, reason,
                                           ts(at)))

    @staticmethod
    def person_name(rng: random.Random) -> str:
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        return pick(rng, SURNAMES, SURNAME_CUM) + given

    @staticmethod
    def phone(rng: random.Random) -> str:
        return f"1{rng.choice('3578')}{rng.randrange(10 ** 9):09d}"

    def account_phone(self, user_id: int, rng: random.Random) -> str:
        """An account's bound phone: one per account (issue 17: a partial unique index), drawn from the
        user id in 199xxxxxxxx, which neither the demo's numbers nor ``phone`` use; ``rng`` moves on as
        ``phone`` would, so the rest of the data is what it was."""
        self.phone(rng)
        return f"199{user_id:08d}"

    # -- setup: organizations, scopes, users ----------------------------------------------------------
    def setup(self) -> None:
        w = self.w
        self.ids = Ids(w)
        rng = random.Random(f"{self.seed}:organizations")
        self.password_hash = generate_password_hash(PASSWORD)
        levels = w.all("SELECT id, code FROM level ORDER BY code DESC")
        self.pairs: dict[tuple, Pair] = {}
        for oid, code, name, has_levels in w.all("SELECT id, code, name, has_levels FROM occupation ORDER BY code"):
            popularity = 3.0 if code < "100" else 1.0  # trades outnumber site posts
            for level in (levels if has_levels else [None]):
                pair = Pair((oid, code, name), level, popularity * LEVEL_WEIGHTS[level[1] if level else NO_LEVEL_CODE])
                self.pairs[pair.key] = pair
        every_pair = list(self.pairs.values())
        scopes: dict[int, list[Pair]] = defaultdict(list)
        for org_id, occupation_id, level_id in w.all("SELECT organization_id, occupation_id, level_id FROM scope_item"):
            if (occupation_id, level_id) in self.pairs:
                scopes[org_id].append(self.pairs[(occupation_id, level_id)])
        self.usernames = dict(w.all("SELECT username, id FROM user_account"))
        credit_codes = {c for (c,) in w.all("SELECT credit_code FROM organization WHERE credit_code IS NOT NULL")}
        orgs = {row[1]: Org(*row) for row in w.all(
            "SELECT id, code, name, kind, parent_id, path, region_code, qualification_no FROM organization ORDER BY id")}
        self.by_id = {org.id: org for org in orgs.values()}
        names = {org.name for org in orgs.values()}
        first_of = {}
        for org in orgs.values():
            first_of.setdefault(org.kind, org)
        founded = datetime(2015, 6, 1, 2, 0)

        cities = load_cities()
        province_row = cities[0]
        self.province = first_of.get("province") or self.new_org(
            orgs, "SD" + province_row["region_code"], province_row["authority_name"], OrgKind.province, None,
            province_row["region_code"], founded, scope=every_pair)
        self.ministry = first_of.get("ministry") or self.new_org(
            orgs, "MOHURD", "住房和城乡建设部执业资格注册中心", OrgKind.ministry, None, "100000", founded)
        self.province_user = self.staff_user("sc_province", "省厅证书审核员", self.province, Role.reviewer, rng)
        self.ministry_user = self.staff_user("sc_ministry", "部注册中心审核员", self.ministry, Role.reviewer, rng)
        province_scope = scopes.get(self.province.id) or every_pair

        authorities = {}
        for org in orgs.values():
            if org.kind == "authority" and org.parent_id == self.province.id:
                authorities.setdefault(org.region6, org)
        self.cities: list[City] = []
        for row in cities[1:]:
            city = City(row)
            city.authority = authorities.get(city.region6) or self.new_org(
                orgs, "SD" + city.region6, city.authority_name, OrgKind.authority, self.province, city.region6,
                founded, scope=every_pair, contact=f"{city.name}证书窗口")
            city.authority_user = self.staff_user(f"sc_auth_{city.region6}", f"{city.short}证书审核管理员",
                                                  city.authority, Role.admin, rng)
            self.cities.append(city)

        for city in self.cities:
            allowed = scopes.get(city.authority.id) or city.authority.scope or every_pair
            for j in range(1, INSTITUTIONS_PER_CITY + 1):
                code = f"{SCALE_PREFIX}JG{city.region4}{j:02d}"
                inst = orgs.get(code) or self.new_org(
                    orgs, code, self.unique_name(rng, names, city.short, INSTITUTION_SUFFIXES), OrgKind.institution,
                    city.authority, city.region6, founded + timedelta(days=rng.randrange(900)),
                    scope=self.pick_scope(rng, allowed, 8, 20), contact=self.person_name(rng) + "老师",
                    phone=self.phone(rng), address=f"{city.name}{rng.choice(BRANDS)}{rng.choice('东西南北')}路{j}号")
                self.issuer(inst, city, scopes, rng)
                city.institutions.append(inst)
            city.institutions_cum = cumulative(i.weight for i in city.institutions)
        self.direct: list[Org] = []
        for j in range(1, DIRECT_INSTITUTIONS + 1):
            code = f"{SCALE_PREFIX}SZ{j:04d}"
            inst = orgs.get(code) or self.new_org(
                orgs, code, self.unique_name(rng, names, "山东省", ("建设职业技能鉴定站", "建筑工程技术培训中心")),
                OrgKind.direct_institution, self.province, self.province.region6, founded,
                scope=self.pick_scope(rng, province_scope, 15, 30), contact=self.person_name(rng) + "老师",
                phone=self.phone(rng))
            self.issuer(inst, None, scopes, rng)
            self.direct.append(inst)

        total = sum(c.weight for c in self.cities)
        for city in self.cities:
            for k in range(1, max(1, round(ENTERPRISES * city.weight / total)) + 1):
                code = f"{SCALE_PREFIX}QY{city.region4}{k:04d}"
                ent = orgs.get(code)
                if ent is None:
                    credit = make_credit_code(f"91{city.region6}MAX{k:05d}{rng.choice('ABCDEFGH')}")
                    if credit in credit_codes:
                        raise RuntimeError(f"seed scale: credit code {credit} is taken")
                    ent = self.new_org(
                        orgs, code, self.unique_name(rng, names, city.short, ENTERPRISE_SUFFIXES), OrgKind.enterprise,
                        city.authority, city.region6, founded + timedelta(days=rng.randrange(1200)),
                        credit_code=credit,
                        qualification_no=f"D3{city.region4}{k:05d}" if rng.random() < 0.97 else None,
                        contact=rng.choice(SURNAMES) + "经理", phone=self.phone(rng),
                        address=f"{city.name}{rng.choice(BRANDS)}{rng.choice('东西南北')}路{k}号")
                ent.city = city
                ent.authority_id = ent.parent_id
                ent.user_id = self.staff_user(f"sc_{code[2:].lower()}", ent.name[:10] + "管理员", ent, Role.admin, rng)
                city.enterprises.append(ent)
        self.city_cum = cumulative(c.weight for c in self.cities)
        self.flush()

    def issuer(self, inst: Org, city: City | None, scopes: dict, rng: random.Random) -> None:
        """What an institution issues with: its city, its authority, the region of its numbers, its scope."""
        inst.city = city
        parent = self.by_id.get(inst.parent_id) or (city.authority if city is not None else self.province)
        inst.authority_id = parent.id if city is not None else None
        inst.region4 = parent.region6[:4]  # workflows.numbering.region_for
        inst.scope = scopes.get(inst.id) or inst.scope
        if not inst.scope:
            raise RuntimeError(f"seed scale: {inst.code} has no 职业(工种)范围")
        inst.scope_cum = cumulative(p.weight for p in inst.scope)
        inst.weight = rng.lognormvariate(0, 0.6)  # a few big institutions, many small ones
        inst.user_id = self.staff_user(f"sc_{inst.code[2:].lower()}", inst.name[:10] + "管理员", inst, Role.admin, rng)

    @staticmethod
    def pick_scope(rng: random.Random, allowed: list[Pair], low: int, high: int) -> list[Pair]:
        pool, chosen = list(allowed), []
        for _ in range(min(len(pool), rng.randint(low, high))):
            choice = rng.choices(pool, weights=[p.weight for p in pool])[0]
            pool.remove(choice)
            chosen.append(choice)
        return sorted(chosen, key=lambda p: (p.occupation_code, p.level_code))

    @staticmethod
    def unique_name(rng: random.Random, taken: set[str], place: str, suffixes) -> str:
        for attempt in range(1, 10_000):
            middle = rng.choice(BRANDS) + rng.choice(BRANDS) + (str(attempt) if attempt > 40 else "")
            name = place + middle + rng.choice(suffixes)
            if name not in taken:
                taken.add(name)
                return name
        raise RuntimeError("seed scale: no free organization name")

    def new_org(self, orgs: dict, code: str, name: str, kind: OrgKind, parent: Org | None, region6: str,
                created_at: datetime, *, scope=(), contact=None, phone=None, address=None, credit_code=None,
                qualification_no=None) -> Org:
        org_id = self.ids.take("organization")
        path = (parent.path if parent is not None else "/") + f"{org_id}/"
        org = Org(org_id, code, name, kind.value, parent.id if parent is not None else None, path, region6,
                  qualification_no)
        org.scope = list(scope)
        self.buf["organization"].append((org_id, code, name, kind.value, org.parent_id, path, region6, "active",
                                         contact, phone, address, None, credit_code, qualification_no,
                                         ts(created_at), 1))
        for pair in org.scope:
            self.buf["scope_item"].append((self.ids.take("scope_item"), org_id, pair.occupation_id, pair.level_id))
        orgs[code] = org
        self.by_id[org_id] = org
        return org

    def staff_user(self, username: str, name: str, org: Org, role: Role, rng: random.Random) -> int:
        """The id of user ``username`` of ``org``: the one there, or a new one with the role's preset."""
        if username in self.usernames:
            return self.usernames[username]
        user_id = self.ids.take("user_account")
        self.buf["user_account"].append((user_id, username, self.password_hash, name, self.account_phone(user_id, rng),
                                         org.id, None,
                                         role.value, True, "active", 0, None, False, None, ts(self.now), 1))
        for code in sorted(role_preset(OrgKind(org.kind), role)):
            self.buf["user_permission"].append((self.ids.take("user_permission"), user_id, code.value))
        self.usernames[username] = user_id
        return user_id

    # -- what is there already --------------------------------------------------------------------------
    def existing_certificates(self) -> int:
        return self.w.scalar(
            "SELECT count(*) FROM certificate c JOIN organization o ON o.id = c.issuer_id WHERE o.code LIKE :p",
            p=SCALE_PREFIX + "%") or 0

    def load_state(self) -> None:
        w = self.w
        self.numbers = Numbers(w.all("SELECT id, year, region_code, occupation_code, level_code, seg_index, position "
                                     "FROM number_segment"))
        # batch codes are institution + day + 001…: each day goes on where it stopped (next_batch_code counts them)
        self.batch_codes: dict[str, int] = defaultdict(int)
        for (code,) in w.all("SELECT b.code FROM batch b JOIN organization o ON o.id = b.institution_id "
                             "WHERE o.code LIKE :p", p=SCALE_PREFIX + "%"):
            self.batch_codes[code[:-3]] += 1
        # per district, the next k past every ID number there that the scheme could have produced
        self.district_next: dict[str, int] = {}
        for city in self.cities:
            self.district_next.update((d, 0) for d in city.districts)
            for low, high in ((city.region4 + "21", city.region4 + "29"), (city.region4 + "82", city.region4 + "88")):
                for (number,) in w.all("SELECT id_number FROM person WHERE id_number >= :low AND id_number < :high",
                                       low=low, high=high):
                    k = district_index(number)
                    if k is not None and number[:6] in self.district_next:
                        self.district_next[number[:6]] = max(self.district_next[number[:6]], k + 1)

    # -- the certificates --------------------------------------------------------------------------------
    def run(self, count: int, rng: random.Random) -> None:
        """``count`` more certificates from approved batches spread over the last years, in rounds."""
        first = date(self.today.year - HISTORY_YEARS, 1, 1)
        span = (self.today - first).days - 30
        expected = max(1, count // 200)
        self.count = count
        self.slots = 0  # holders asked for
        self.pools: dict[str, list[Holder]] = defaultdict(list)
        self.batch_no: dict[tuple, int] = defaultdict(int)
        started = time.perf_counter()
        batches = rounds = round_start = 0
        while self.made < count:
            when = first + timedelta(days=int(span * min(1.0, batches / expected) ** 0.8) + rng.randint(-10, 10))
            when = min(max(when, first), self.today - timedelta(days=20))
            created = datetime(when.year, when.month, when.day) + timedelta(seconds=rng.randrange(36_000))
            size = int(50 + 450 * rng.random() ** 2.2)
            self.approved_batch(rng, self.pick_institution(rng), created, min(size, count - self.made))
            batches += 1
            if self.made >= count:
                self.open_batches(rng, max(1, round(batches * OPEN_BATCH_SHARE)))
            if self.made - round_start >= ROUND_CERTIFICATES or self.made >= count:
                rounds += 1
                round_start = self.made
                self.end_round()
                self.echo(f"  第{rounds}轮：证书 {self.made:,}，持证人 {self.persons_made:,}，"
                          f"累计 {time.perf_counter() - started:.1f} 秒")

    def end_round(self) -> None:
        self.buf["person"] = [p.row() for pool in self.pools.values() for p in pool]
        # a registration's superseded_by_id names a row written before it
        self.buf["registration"].sort(key=lambda r: r[14] is not None)
        self.numbers.flush(self.w, self.ids, self.now)
        self.flush()
        self.commit()
        self.pools.clear()

    def pick_institution(self, rng: random.Random) -> Org:
        if rng.random() < DIRECT_SHARE:
            return rng.choice(self.direct)
        city = pick(rng, self.cities, self.city_cum)
        return pick(rng, city.institutions, city.institutions_cum)

    @staticmethod
    def batch_pairs(rng: random.Random, inst: Org) -> list[Pair]:
        pairs = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            pair = pick(rng, inst.scope, inst.scope_cum)
            if pair not in pairs:
                pairs.append(pair)
        return pairs

    def new_batch(self, inst: Org, created: datetime, pairs: list[Pair], status: str, candidates: int,
                  submitted: datetime | None, reviewed: datetime | None, reason: str | None, steps: int) -> int:
        batch_id = self.ids.take("batch")
        local = local_date(created)
        prefix = f"{inst.code}{local:%y%m%d}"
        self.batch_codes[prefix] += 1
        self.batch_no[(inst.id, local.year)] += 1
        trades = "、".join(dict.fromkeys(p.occupation_name for p in pairs))
        self.buf["batch"].append((
            batch_id, f"{prefix}{self.batch_codes[prefix]:03d}",
            f"{local.year}年第{self.batch_no[(inst.id, local.year)]}期{trades}培训", inst.id, inst.authority_id, status,
            candidates, reason, inst.user_id, ts(created), ts(submitted), ts(reviewed),
            ts(reviewed or submitted or created), 1 + steps))
        return batch_id

    @staticmethod
    def review_times(rng: random.Random, created: datetime, inst: Org):
        submitted = created + timedelta(seconds=rng.randrange(3600, 5 * 86400))
        by_authority = submitted + timedelta(seconds=rng.randrange(3600, 7 * 86400)) if inst.authority_id else None
        by_province = (by_authority or submitted) + timedelta(seconds=rng.randrange(3600, 7 * 86400))
        return submitted, by_authority, by_province

    def batch_logs(self, batch_id: int, inst: Org, submitted, by_authority, by_province, end: str,
                   reason: str | None = None) -> None:
        """提交审核, then the authority's and the province's steps, up to ``end``: approved,
        rejected_authority, rejected_province, or the review state the batch waits in."""
        first = "authority_review" if inst.authority_id else "province_review"
        self.log("batch", batch_id, BATCH, "submit", "draft", first, inst.user_id, inst.id, submitted)
        if inst.authority_id and end != "authority_review":
            if end == "rejected_authority":
                self.log("batch", batch_id, BATCH, "authority_reject", "authority_review", "rejected",
                         inst.city.authority_user, inst.authority_id, by_authority, reason)
                return
            self.log("batch", batch_id, BATCH, "authority_approve", "authority_review", "province_review",
                     inst.city.authority_user, inst.authority_id, by_authority)
        if end == "approved":
            self.log("batch", batch_id, BATCH, "province_approve", "province_review", "approved", self.province_user,
                     self.province.id, by_province)
        elif end == "rejected_province":
            self.log("batch", batch_id, BATCH, "province_reject", "province_review", "rejected", self.province_user,
                     self.province.id, by_province, reason)

    def approved_batch(self, rng: random.Random, inst: Org, created: datetime, size: int) -> None:
        pairs = self.batch_pairs(rng, inst)
        submitted, by_authority, approved = self.review_times(rng, created, inst)
        issued = local_date(approved)
        rows = []
        for i in range(size):
            pair = pairs[i % len(pairs)] if rng.random() < 0.8 else pairs[0]
            rows.append((i + 2, self.holder(rng, inst, pair, approved), pair))
        batch_id = self.new_batch(inst, created, pairs, "approved", size, submitted, approved, None,
                                  3 if inst.authority_id else 2)
        self.batch_logs(batch_id, inst, submitted, by_authority, approved, "approved")
        numbers = {}
        # issue_certificates numbers one occupation/level group after the other
        for row_no, _, pair in sorted(rows, key=lambda r: (r[2].occupation_id, r[2].level_id or 0, r[0])):
            numbers[row_no] = self.numbers.take(issued.year, inst.region4, pair)
        recent = (self.now - approved).days <= 30
        for row_no, person, pair in rows:
            cert_id = self.ids.take("certificate")
            printed_at = None
            if rng.random() < (0.5 if recent else 0.95):
                printed_at = approved + timedelta(seconds=rng.randrange(3600, 20 * 86400))
                printed_at = printed_at if printed_at < self.now else None
            cert = [cert_id, numbers[row_no], person.id, pair.occupation_id, pair.level_id, inst.id, inst.authority_id,
                    batch_id, day(issued), None, "valid", "printed" if printed_at else "unprinted", ts(printed_at),
                    inst.user_id if printed_at else None, 0, None, ts(approved), 1, None, ts(printed_at or approved)]
            self.buf["certificate"].append(cert)
            self.buf["candidate"].append((
                self.ids.take("candidate"), batch_id, row_no, person.name, person.id_number, person.gender,
                day(person.birth), person.phone, person.employer_text(), pair.occupation_id, pair.level_id, False,
                None, cert_id))
            self.made += 1
            # a reissue adds a certificate: only while the rest of the batch still fits in the count
            self.events(rng, cert, person, inst, pair, approved, self.made + (size + 1 - row_no) < self.count)

    def holder(self, rng: random.Random, inst: Org, pair: Pair, approved: datetime) -> Holder:
        """A holder for a certificate of ``pair``: someone of this round and city who lacks it (until
        there are ``PERSONS_PER_CERTIFICATE`` holders per certificate), or a new person."""
        city = inst.city or pick(rng, self.cities, self.city_cum)
        pool = self.pools[city.region6]
        self.slots += 1
        if pool and self.persons_made >= PERSONS_PER_CERTIFICATE * self.slots:
            for _ in range(3):
                person = pool[rng.randrange(len(pool))]
                if pair.key not in person.held:
                    person.held.add(pair.key)
                    return person
        district = rng.choice(city.districts)
        k = self.district_next[district]
        if k >= DISTRICT_CAPACITY:
            raise RuntimeError(f"seed scale: district {district} has no ID numbers left")
        self.district_next[district] = k + 1
        male = rng.random() < 0.85
        person = Holder()
        person.id = self.ids.take("person")
        person.id_number = id_number_for(district, k, male)
        person.birth = date(int(person.id_number[6:10]), int(person.id_number[10:12]), int(person.id_number[12:14]))
        person.gender = "男" if male else "女"
        person.name = self.person_name(rng)
        person.phone = self.phone(rng)
        u = rng.random()
        person.employer, person.employer_name = None, None
        if u < 0.7:
            person.employer = rng.choice(city.enterprises)
            person.employer_name = person.employer.name
        elif u < 0.85:
            person.employer_name = city.short + rng.choice(BRANDS) + rng.choice(BRANDS) + "建筑劳务队"
        person.changed_at = None
        person.created_at = approved  # issue_certificates creates holders on approval
        person.held = {pair.key}
        person.registered = False
        pool.append(person)
        self.persons_made += 1
        if person.employer is not None and person.birth.year >= 1966 and rng.random() < P_REGISTRATION:
            self.registration(rng, person)
        return person

    # -- after issue: certificate business, the province's 注销 / 作废 -----------------------------------
    def events(self, rng: random.Random, cert: list, person: Holder, inst: Org, pair: Pair, issued_at: datetime,
               reissue_fits: bool) -> None:
        u = rng.random()
        if u >= P_APPLICATION + P_PROVINCE_CANCEL + P_PROVINCE_VOID:
            return
        at = issued_at + timedelta(seconds=rng.randrange(15 * 86400, 1000 * 86400))
        if at > self.now - timedelta(days=2):
            return
        if u < P_APPLICATION:
            kind = rng.choices([k for k, _ in APPLICATION_KINDS], [w for _, w in APPLICATION_KINDS])[0]
            if kind == "reissue" and not reissue_fits:
                kind = "cancel"
            self.application(rng, kind, cert, person, inst, pair, at)
        elif u < P_APPLICATION + P_PROVINCE_CANCEL:
            cert[10], cert[17], cert[19] = "cancelled", cert[17] + 1, ts(at)
            self.log("certificate", cert[0], CERTIFICATE, "cancel", "valid", "cancelled", self.province_user,
                     self.province.id, at, rng.choice(("持证人申请注销", "持证人已离开建筑行业", None)))
        else:
            cert[10], cert[17], cert[19] = "voided", cert[17] + 1, ts(at)
            self.log("certificate", cert[0], CERTIFICATE, "void", "valid", "voided", self.province_user,
                     self.province.id, at, "证书信息录入错误，予以作废")

    def application(self, rng: random.Random, kind: str, cert: list, person: Holder, inst: Org, pair: Pair,
                    created: datetime) -> None:
        """One 证书业务 application for ``cert``, filed by its issuer or the holder's enterprise, walked
        through BUSINESS as far as the present allows; the approval's effects applied."""
        by_enterprise = person.employer is not None and rng.random() < 0.35
        applicant = person.employer if by_enterprise else inst
        authority = applicant.authority_id
        reviewer = (applicant.city.authority_user if applicant.city is not None else None)
        app_id = self.ids.take("certificate_application")
        old_name = person.name
        old_employer = person.employer_text() or ""
        fields = new_name = new_employer = None
        explanation = {"reissue": "证书不慎遗失，申请补办", "cancel": "持证人申请注销证书"}.get(kind)
        if kind == "change":
            movable = person.employer is not None and not person.registered and len(person.employer.city.enterprises) > 1
            if movable and rng.random() < 0.4:
                fields, explanation = "employer", "持证人工作单位变更"
                new_employer = person.employer
                while new_employer is person.employer:
                    new_employer = rng.choice(person.employer.city.enterprises)
            else:
                fields, explanation = "name", "持证人姓名变更"
                new_name = old_name
                while new_name == old_name:
                    new_name = self.person_name(rng)
        u = rng.random()
        end = "draft" if u < 0.03 else "authority_reject" if u < 0.055 else "province_reject" if u < 0.08 \
            else "province_approve"
        if end == "authority_reject" and authority is None:
            end = "province_reject"
        plan = []
        if end != "draft":
            plan = ["submit"] + (["authority_reject" if end == "authority_reject" else "authority_approve"]
                                 if authority is not None else [])
            plan += [] if end == "authority_reject" else [end]
        state, at = "draft", created
        submitted = reviewed = reason = None
        recent = checked = False
        steps = 0
        for name in plan:
            at += timedelta(seconds=rng.randrange(600, 2 * 86400) if name == "submit" else rng.randrange(3600, 864_000))
            if at > self.now:
                break
            target = BUSINESS.transition(name).target
            if name == "submit":
                to_state = "pending_authority" if authority is not None else "pending_province"
                actor, org = applicant.user_id, applicant.id
                submitted = at
                # 000 §二(二).3: a second employer change within 3 months needs 已核验社保缴纳条件
                recent = fields == "employer" and person.changed_at is not None and \
                    at - person.changed_at < timedelta(days=91)
            elif name.startswith("authority"):
                to_state, actor, org = target.value, reviewer, authority
            else:
                to_state, actor, org = target.value, self.province_user, self.province.id
            why = "申请表信息不完整，请补充后重新申请" if name.endswith("reject") else None
            if why or name == "province_approve":
                reviewed, reason = at, why
            checked = checked or (recent and name.endswith("approve"))
            self.log("application", app_id, BUSINESS, name, state, to_state, actor, org, at, why)
            state, steps = to_state, steps + 1
        new_cert_id = None
        if state == "approved":
            new_cert_id = self.approve(app_id, kind, fields, new_name, new_employer, cert, person, inst, pair,
                                       reviewed, explanation)
        self.buf["certificate_application"].append((
            app_id, kind, state, applicant.id, applicant.user_id, person.id, authority, explanation, fields, old_name,
            person.id_number, old_employer, new_name, None, new_employer.id if new_employer else None,
            new_employer.name if new_employer else None, recent, checked, reason, ts(created), ts(submitted),
            ts(reviewed), 1 + steps))
        self.buf["application_item"].append((self.ids.take("application_item"), app_id, cert[0], new_cert_id))

    def approve(self, app_id: int, kind: str, fields: str | None, new_name: str | None, new_employer: Org | None,
                cert: list, person: Holder, inst: Org, pair: Pair, at: datetime, explanation: str) -> int | None:
        """Province approval's effects (workflows.business._apply); the new certificate's id for a 补办."""
        province = (self.province_user, self.province.id)
        if kind == "change":
            cert[14] += 1  # 签注
            cert[17], cert[19] = cert[17] + 1, ts(at)
            if fields == "name":
                person.name = new_name
                cert[18] = app_id  # 业务打印 lists it
                if cert[11] == "printed":  # the paper shows the old name: back to 待打印
                    cert[11], cert[12], cert[13] = "unprinted", None, None
                    self.log("certificate", cert[0], PRINT, "needs_reprint", "printed", "unprinted", *province, at,
                             f"姓名变更为{new_name}")
            else:
                person.employer, person.employer_name, person.changed_at = new_employer, None, at
            return None
        if kind == "cancel":
            cert[10], cert[17], cert[19] = "cancelled", cert[17] + 1, ts(at)
            self.log("certificate", cert[0], CERTIFICATE, "cancel_by_application", "valid", "cancelled", *province, at,
                     explanation)
            return None
        issued = local_date(at)
        new_id = self.ids.take("certificate")
        number = self.numbers.take(issued.year, inst.region4, pair)
        printed_at = at + timedelta(days=3) if (self.now - at).days > 30 else None
        self.buf["certificate"].append([
            new_id, number, person.id, pair.occupation_id, pair.level_id, inst.id, inst.authority_id, cert[7],
            day(issued), None, "valid", "printed" if printed_at else "unprinted", ts(printed_at),
            inst.user_id if printed_at else None, 0, cert[0], ts(at), 1, app_id, ts(printed_at or at)])
        self.made += 1
        cert[10], cert[17], cert[19] = "voided", cert[17] + 1, ts(at)
        self.log("certificate", cert[0], CERTIFICATE, "void_for_reissue", "valid", "voided", *province, at,
                 f"补办，新证书编号 {number}")
        return new_id

    # -- practice registration ------------------------------------------------------------------------------
    def registration(self, rng: random.Random, person: Holder) -> None:
        """The holder's individual account and initial registration at their enterprise; when that
        nears its end, often a renewal that supersedes it."""
        created = person.created_at + timedelta(seconds=rng.randrange(10 * 86400, 700 * 86400))
        username = f"scp_{person.id}"
        if created > self.now - timedelta(days=1) or username in self.usernames:
            return
        person.registered = True
        user_id = self.ids.take("user_account")
        self.buf["user_account"].append((
            user_id, username, self.password_hash, person.name, f"199{user_id:08d}", None, person.id,
            Role.individual.value, True, "active", 0, None, False, None, ts(created - timedelta(days=1)), 1))
        specialty = rng.choices(list(SPECIALTY_WEIGHTS), list(SPECIALTY_WEIGHTS.values()))[0]
        initial = self.declaration(rng, person, user_id, "initial", specialty, created)
        if initial[2] != "approved":
            return
        valid_until = date.fromisoformat(initial[13])
        if valid_until > self.today + timedelta(days=90) or rng.random() >= 0.7:
            return
        renewed = datetime(valid_until.year, valid_until.month, valid_until.day) - timedelta(
            days=rng.randint(20, 80), seconds=rng.randrange(36_000))
        if renewed > self.now - timedelta(days=1):
            return
        renewal = self.declaration(rng, person, user_id, "renewal", specialty, renewed)
        if renewal[2] == "approved":
            initial[14], initial[20] = renewal[0], renewal[20]  # superseded when the renewal was approved

    def declaration(self, rng: random.Random, person: Holder, user_id: int, kind: str, specialty: str,
                    created: datetime) -> list:
        enterprise = person.employer
        u = rng.random()
        if enterprise.qualification_no is None:  # 预注册: reported, waits at the province for 补正资质
            plan = ["report"] if u < 0.6 else []
        elif u < 0.83:
            plan = ["report", "province_accept", "province_forward", "ministry_accept", "ministry_approve"]
        elif u < 0.86:
            plan = ["report", "province_accept", "province_reject"]
        elif u < 0.88:
            plan = ["report", "province_accept", "province_forward", "ministry_accept", "ministry_reject"]
        elif u < 0.92:
            plan = ["return"]
        elif u < 0.94:
            plan = ["report", "request_withdraw", "consent_withdraw"]
        elif u < 0.97:
            plan = []  # never reported
        else:
            plan = ["report", "province_accept"]  # waiting for the province's review
        reg_id = self.ids.take("registration")
        state, at, steps = "unreported", created, 0
        reported = ministry = decided = withdraw = reason = number = valid_until = None
        for name in plan:
            at += timedelta(seconds=rng.randrange(3600, 12 * 86400))
            if at > self.now:
                break
            target = REGISTRATION.transition(name).target
            to_state = state if callable(target) else target.value
            if name in ("report", "return", "consent_withdraw"):
                actor, org = enterprise.user_id, enterprise.id
            elif name == "request_withdraw":
                actor, org = user_id, None
            elif name.startswith("province"):
                actor, org = self.province_user, self.province.id
            else:
                actor, org = self.ministry_user, self.ministry.id
            why = REGISTRATION_REASONS.get(name)
            self.log("registration", reg_id, REGISTRATION, name, state, to_state, actor, org, at, why)
            state, steps = to_state, steps + 1
            if name == "report":
                reported = at
            elif name == "province_forward":
                ministry = at
            elif name == "request_withdraw":
                withdraw = at
            elif why:
                reason, decided = why, at
            elif name == "ministry_approve":
                decided = at
                approved_on = local_date(at)
                number = f"{REGISTRATION_PREFIX}{specialty}{approved_on.year}{reg_id:06d}"
                valid_until = years_later(approved_on, VALID_YEARS)
        row = [reg_id, kind, state, person.id, enterprise.id, user_id, specialty,
               "申请初始注册" if kind == "initial" else "注册有效期即将届满",
               reported is not None and enterprise.qualification_no is None,
               enterprise.qualification_no if reported is not None else None, ts(withdraw), reason, number,
               day(valid_until), None, ts(created), ts(reported), ts(ministry), ts(decided), 1 + steps,
               ts(decided or ministry or reported or created)]
        self.buf["registration"].append(row)
        return row

    # -- batches not approved yet -----------------------------------------------------------------------------
    def open_batches(self, rng: random.Random, count: int) -> None:
        """Recent batches in draft, under review or rejected; their candidates are holders of this
        round training for a pair they lack (no certificates, no new persons)."""
        for _ in range(count):
            inst = self.pick_institution(rng)
            pool = self.pools.get((inst.city or self.cities[0]).region6) or []
            pairs = self.batch_pairs(rng, inst)
            rows = []
            for person in rng.sample(pool, min(len(pool), rng.randint(20, 120))):
                missing = [p for p in pairs if p.key not in person.held]
                if missing:
                    rows.append((person, missing[0]))
            if not rows:
                continue
            created = self.now - timedelta(days=rng.randint(3, 40), seconds=rng.randrange(36_000))
            submitted, by_authority, by_province = self.review_times(rng, created, inst)
            end = rng.choice(("draft", "authority_review", "province_review", "rejected_authority",
                              "rejected_province"))
            if inst.authority_id is None and end in ("authority_review", "rejected_authority"):
                end = "province_review"
            last = {"draft": created, "authority_review": submitted, "province_review": by_authority or submitted,
                    "rejected_authority": by_authority, "rejected_province": by_province}[end]
            if last > self.now:
                end = "draft"
            status = "rejected" if end.startswith("rejected") else end
            two = inst.authority_id is not None
            steps = {"draft": 0, "authority_review": 1, "province_review": 2 if two else 1, "rejected_authority": 2,
                     "rejected_province": 3 if two else 2}[end]
            reason = "资料不全，请补充培训记录" if status == "rejected" else None
            batch_id = self.new_batch(inst, created, pairs, status, len(rows), submitted if end != "draft" else None,
                                      last if status == "rejected" else None, reason, steps)
            if end != "draft":
                self.batch_logs(batch_id, inst, submitted, by_authority, by_province, end, reason)
            for row_no, (person, pair) in enumerate(rows, start=2):
                self.buf["candidate"].append((
                    self.ids.take("candidate"), batch_id, row_no, person.name, person.id_number, person.gender,
                    day(person.birth), person.phone, person.employer_text(), pair.occupation_id, pair.level_id, False,
                    None, None))

    # -- committing ----------------------------------------------------------------------------------------
    def commit(self) -> None:
        """Commit, then on PostgreSQL move each id sequence to its table's maximum, so the app's next
        insert follows what is committed (also when a later round fails)."""
        self.conn.commit()
        if self.w.postgres:
            for table in COLUMNS:
                self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                       f"GREATEST((SELECT COALESCE(max(id), 0) FROM \"{table}\"), 1))"))
            self.conn.commit()


REGISTRATION_REASONS = {"return": "劳动合同扫描件不清晰，请补充后重新申报", "province_reject": "社保缴纳记录与聘用企业不一致",
                        "ministry_reject": "继续教育学时不足，不予注册"}


def _sqlite_pragmas(conn: Connection, load: bool) -> None:
    """SQLite during the load: no fsync, a big page cache, no per-row foreign-key lookups (the ids are
    assigned here; the tests run PRAGMA foreign_key_check). Then back to what app.py sets."""
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.driver_connection
    pragmas = ("synchronous=OFF", "foreign_keys=OFF", "cache_size=-400000") if load else (
        "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-2000")
    for pragma in pragmas:
        raw.execute(f"PRAGMA {pragma}")


def count_rows(conn: Connection) -> dict[str, int]:
    """Rows per table written here, all of them (not only the scale data's)."""
    return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in ORDER}


def build_scale(engine: Engine, certificates: int = 1_000_000, *, seed: int = 7,
                echo: Callable[[str], None] = print) -> dict:
    """Bring the scale data set up to ``certificates`` certificates; what was done, and the time.

    Works on a connection of its own: on SQLite no other connection may hold a transaction open
    meanwhile (the app begins them IMMEDIATE), so commit or close the caller's session first.
    """
    check_columns()
    started = time.perf_counter()
    with Session(engine) as session:  # occupations and levels, as the demo makes them
        ensure_reference(session)
        session.commit()
    with engine.connect() as conn:
        _sqlite_pragmas(conn, load=True)
        builder = ScaleBuilder(conn, seed, echo)
        try:
            there = builder.existing_certificates()
            conn.commit()
            if there >= certificates:
                echo(f"规模数据已存在：{there:,} 张证书（要求 {certificates:,} 张），未做改动。")
                return {"status": "present", "certificates": there, "added": {}, "seconds": time.perf_counter() - started}
            echo(f"规模数据：已有 {there:,} 张证书，新增 {certificates - there:,} 张。")
            builder.setup()
            builder.commit()
            echo(f"  机构、范围与用户：{time.perf_counter() - started:.1f} 秒")
            builder.load_state()
            builder.run(certificates - there, random.Random(f"{seed}:{there}"))
            totals = count_rows(conn)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            _sqlite_pragmas(conn, load=False)
    if engine.dialect.name == "postgresql":
        # fresh statistics for the planner, and the visibility map that lets counts and deep pages
        # read the indexes alone; autovacuum would get there, minutes later
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            vacuum_started = time.perf_counter()
            conn.exec_driver_sql("VACUUM (ANALYZE)")
            echo(f"  VACUUM (ANALYZE)：{time.perf_counter() - vacuum_started:.1f} 秒")
    elapsed = time.perf_counter() - started
    added = dict(builder.w.rows)
    echo("新增行数（写入耗时）：")
    for table, rows in added.items():
        echo(f"  {table:<26}{rows:>12,}  {builder.w.seconds.get(table, 0.0):7.1f} 秒")
    echo("各表现有行数：" + "，".join(f"{table} {rows:,}" for table, rows in totals.items()))
    echo(f"合计 {elapsed:.1f} 秒，其中写入 {sum(builder.w.seconds.values()):.1f} 秒。")
    return {"status": "topped up" if there else "created", "certificates": there + builder.made, "added": added,
            "totals": totals, "seconds": elapsed}
