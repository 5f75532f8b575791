"""The access matrix (SPEC §1, ARCHITECTURE "Tests"): every page × every demo account.

Nothing here names a view. Each demo account signs in and crawls the admin from ``/admin/``
(menus, tabs, details, edit, export, file and candidate links); what it reached is its
*reachable set*. Then every account asks for every other account's row-level URLs, and the
answer is compared with who may see that row — computed here, independently, from the
database and SPEC §1's words (organization tree, issuer, employer, holder), never through
``workflows.visibility``. POST endpoints come from the app's ``url_map`` and the forms the
crawl found, and are fired with other organizations' ids: the database must not move.

New views are covered as they appear: they are found by the crawl and the ``url_map``. A new
kind of row needs one line in ``Facts.may_see``; until then
``test_every_row_url_has_an_independent_rule`` names it.
"""

from __future__ import annotations

import html
import io
import re
import shutil
import sqlite3
import zipfile
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import pytest
from flask import url_for
from flask_admin.contrib.sqla import ModelView
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from admin_views.actions import WorkflowModelView
from app import create_app
from models import (
    AccountRequest,
    Anomaly,
    ApplicationItem,
    Attachment,
    AuditLog,
    Batch,
    Candidate,
    Certificate,
    CertificateApplication,
    EnterpriseChange,
    Level,
    Message,
    NumberSegment,
    Occupation,
    Organization,
    Person,
    Registration,
    TransitionLog,
    User,
    db,
)
from models.attachment import AttachmentKind
from models.base import utcnow
from models.org import OrgKind
from tests.conftest import Browser, _config
from workflows.validators import make_id_number

ACCOUNTS = ("province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
            "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry")
MAX_URLS = 260  # per account (the province has ~80 organization and user pages)
MAX_ROW_LINKS_PER_PAGE = 5  # details / edit / file / candidate links taken from one page, per endpoint
# Query parameters that only sort, page, search or say where to return: dropped from crawled URLs.
NOISE_PARAMS = {"url", "sort", "desc", "page", "page_size", "search", "cpage", "inline", "next", "_"}
# Row parameters of views that carry no ``model`` attribute (plain BaseViews): endpoint → model.
ID_MODEL_OVERRIDES = {"batch_create": Batch, "staff": User}
# ``<name>_id`` arguments whose model is not the table ``<name>``.
ARG_MODEL_OVERRIDES = {"item_id": ApplicationItem}
# Tables whose rows change on harmless requests (sign-in, downloads logged): not compared.
VOLATILE_TABLES = {"audit_log", "sms_code", "user_account", "user_permission", "user_session"}
GARBAGE_IDS = ("abc", "1 OR 1=1", "-1", "99999999", "", "1;DROP TABLE batch")
LOGIN_PATH = "/login"

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# --- the independent rule (SPEC §1) -------------------------------------------------------


class Facts:
    """The rows of the database as plain tuples, and SPEC §1 read from them.

    Deliberately independent of ``workflows.visibility``: the authority of a batch or a
    certificate is found by walking the organization tree from the issuing institution, not
    from the denormalised ``authority_id`` columns the product filters on.
    """

    def __init__(self, session):
        q = session.execute
        self.orgs = {r.id: r for r in q(select(Organization.id, Organization.kind, Organization.parent_id,
                                               Organization.region_code))}
        self.users = {r.username: r for r in q(select(User.id, User.username, User.organization_id, User.person_id))}
        self.batches = {r.id: r for r in q(select(Batch.id, Batch.institution_id, Batch.code, Batch.name,
                                                  Batch.status))}
        self.certificates = {r.id: r for r in q(select(Certificate.id, Certificate.issuer_id, Certificate.person_id,
                                                       Certificate.number, Certificate.status))}
        self.persons = {r.id: r for r in q(select(Person.id, Person.employer_id, Person.id_number))}
        self.candidates = {r.id: r for r in q(select(Candidate.id, Candidate.batch_id, Candidate.id_number))}
        self.attachments = {r.id: r for r in q(select(Attachment.id, Attachment.owner_type, Attachment.owner_id,
                                                      Attachment.filename))}
        self.applications = {r.id: r for r in q(select(
            CertificateApplication.id, CertificateApplication.kind, CertificateApplication.status,
            CertificateApplication.applicant_org_id, CertificateApplication.person_id,
            CertificateApplication.reviewing_authority_id))}
        self.items = {r.id: r for r in q(select(ApplicationItem.id, ApplicationItem.application_id,
                                                ApplicationItem.certificate_id))}
        self.occupation_id = session.scalar(select(Occupation.id).where(Occupation.name == "砌筑工"))
        self.level_id = session.scalar(select(Level.id).where(Level.name == "初级工(五级)"))
        taken = {p.id_number for p in self.persons.values()} | {c.id_number for c in self.candidates.values()}
        self.fresh_id_number = next(n for seq in range(1, 999, 2)
                                    if (n := make_id_number("370102", date(1999, 9, 9), seq, "男")) not in taken)
        self.segments = {r.id: r for r in q(select(NumberSegment.id, NumberSegment.region_code))}
        self.messages = {r.id: r for r in q(select(Message.id, Message.user_id))}
        self.accounts = {r.id: r for r in q(select(AccountRequest.id, AccountRequest.authority_id,
                                                   AccountRequest.organization_id, AccountRequest.user_id,
                                                   AccountRequest.person_id))}
        self.changes = {r.id: r for r in q(select(EnterpriseChange.id, EnterpriseChange.enterprise_id,
                                                  EnterpriseChange.from_authority_id, EnterpriseChange.to_authority_id))}
        self.registrations = {r.id: r for r in q(select(Registration.id, Registration.enterprise_id,
                                                        Registration.person_id, Registration.status,
                                                        Registration.registration_number))}
        self.forwarded = set(session.scalars(select(TransitionLog.object_id).where(
            TransitionLog.object_type == "registration", TransitionLog.transition == "province_forward")))
        self.anomalies = {r.id: r for r in q(select(Anomaly.id, Anomaly.enterprise_id))}
        self.tables = {Batch: self.batches, Certificate: self.certificates, Candidate: self.candidates,
                       Attachment: self.attachments, Person: self.persons, Organization: self.orgs,
                       User: {u.id: u for u in self.users.values()}, NumberSegment: self.segments,
                       CertificateApplication: self.applications, ApplicationItem: self.items,
                       Message: self.messages, AccountRequest: self.accounts, EnterpriseChange: self.changes,
                       Registration: self.registrations, Anomaly: self.anomalies}
        self.certs_of_person = defaultdict(list)
        for cert in self.certificates.values():
            self.certs_of_person[cert.person_id].append(cert)
        self.rules = {
            Batch: self._batch, Certificate: self._certificate, Candidate: self._candidate,
            Attachment: self._attachment, Person: self._person, Organization: self._organization,
            User: self._user, NumberSegment: lambda who, ident: self.kind_of(who) == OrgKind.province,
            CertificateApplication: self._application,
            ApplicationItem: lambda who, ident: ident in self.items and self._application(
                who, self.items[ident].application_id),
            # 我的消息: a user's own, nobody else's (not even the province's)
            Message: lambda who, ident: ident in self.messages and self.messages[ident].user_id == self.users[who].id,
            AccountRequest: self._account, EnterpriseChange: self._change, Registration: self._registration,
            Anomaly: self._anomaly, AuditLog: self._audit,
        }
        self.session = session
        self.audits = {}

    def load_audits(self):
        """操作日志 rows as the crawls left them (sign-ins, exports), read before the database is
        put back: the crawls write the rows their pages then show."""
        self.audits = {r.id: r for r in self.session.execute(
            select(AuditLog.id, AuditLog.organization_id, AuditLog.user_id))}

    # who: a demo username
    def org_of(self, who):
        return self.users[who].organization_id

    def kind_of(self, who):
        org = self.org_of(who)
        return self.orgs[org].kind if org is not None else None

    def _descends(self, org_id, ancestor_id) -> bool:
        """``org_id`` is ``ancestor_id`` or below it in the tree."""
        seen = set()
        while org_id is not None and org_id not in seen:
            if org_id == ancestor_id:
                return True
            seen.add(org_id)
            org_id = self.orgs[org_id].parent_id
        return False

    def _under_authority(self, who, org_id) -> bool:
        return self.kind_of(who) == OrgKind.authority and self._descends(org_id, self.org_of(who))

    def _batch(self, who, ident):
        batch = self.batches.get(ident)
        if batch is None:
            return False
        return (self.kind_of(who) == OrgKind.province or self.org_of(who) == batch.institution_id
                or self._under_authority(who, batch.institution_id))

    def _certificate(self, who, ident):
        cert = self.certificates.get(ident)
        if cert is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        person = self.persons[cert.person_id]
        return (kind == OrgKind.province or org == cert.issuer_id or self._under_authority(who, cert.issuer_id)
                or (kind in (OrgKind.enterprise, OrgKind.school) and person.employer_id == org)
                or (org is None and self.users[who].person_id == cert.person_id))

    def _candidate(self, who, ident):
        candidate = self.candidates.get(ident)
        return candidate is not None and self._batch(who, candidate.batch_id)

    def _attachment(self, who, ident):
        attachment = self.attachments.get(ident)
        if attachment is None:
            return False
        owner = {"batch": Batch, "certificate": Certificate, "person": Person,
                 "organization": Organization, "application": CertificateApplication,
                 "account": AccountRequest, "enterprise_change": EnterpriseChange, "registration": Registration,
                 "anomaly": Anomaly}.get(attachment.owner_type)
        return self.rules[owner](who, attachment.owner_id) if owner else None

    def _application(self, who, ident):
        """证书业务 (SPEC §1 + §5.2): the province; the city authority that reviews it first (the
        institution's parent authority, or the authority of the (receiving) enterprise's city); the
        applicant organization; an enterprise or school for the holders it employs; the holder."""
        app = self.applications.get(ident)
        if app is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        if kind == OrgKind.province:
            return True
        if kind == OrgKind.authority:
            return app.reviewing_authority_id == org
        if kind in (OrgKind.institution, OrgKind.direct_institution):
            return app.applicant_org_id == org
        if kind in (OrgKind.enterprise, OrgKind.school):
            return app.applicant_org_id == org or self.persons[app.person_id].employer_id == org
        return org is None and self.users[who].person_id == app.person_id

    def _account(self, who, ident):
        """注册审核 (SPEC §5.3): the city authority it was filed with; the enterprise itself."""
        row = self.accounts.get(ident)
        if row is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        return (kind == OrgKind.province or (kind == OrgKind.authority and row.authority_id == org)
                or (org is not None and row.organization_id == org))

    def _change(self, who, ident):
        """企业信息变更 (SPEC §5.4): the enterprise; the 调出市 and 调入市 authorities."""
        row = self.changes.get(ident)
        if row is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        return (kind == OrgKind.province or row.enterprise_id == org
                or (kind == OrgKind.authority and org in (row.from_authority_id, row.to_authority_id)))

    def _registration(self, who, ident):
        """注册申报 (SPEC §1): the province; the ministry once the province forwarded it (found in
        the transition log, not the product's ministry_at column); the enterprise; the declarant."""
        row = self.registrations.get(ident)
        if row is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        if kind == OrgKind.province:
            return True
        if kind == OrgKind.ministry:
            return ident in self.forwarded
        if kind == OrgKind.enterprise:
            return row.enterprise_id == org
        return org is None and self.users[who].person_id == row.person_id

    def _audit(self, who, ident):
        """操作日志 (SPEC §8, 003 §四): the organization's users' rows and its descendants'; the
        province all; an individual their own. Read at the time of asking: the crawl itself writes
        rows (sign-ins, downloads) after these facts were taken: see ``load_audits``."""
        row = self.audits.get(ident)
        if row is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        if kind == OrgKind.province:
            return True
        if org is None:
            return row.user_id == self.users[who].id
        return row.organization_id is not None and self._descends(row.organization_id, org)

    def _anomaly(self, who, ident):
        row = self.anomalies.get(ident)
        return row is not None and (self.kind_of(who) == OrgKind.province or row.enterprise_id == self.org_of(who))

    def _person(self, who, ident):
        person = self.persons.get(ident)
        if person is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        certs = self.certs_of_person[ident]
        if kind == OrgKind.province:
            return True
        if kind == OrgKind.authority:
            employer = self.orgs.get(person.employer_id)
            return (any(self._under_authority(who, c.issuer_id) for c in certs)
                    or (employer is not None and employer.kind in (OrgKind.enterprise, OrgKind.school)
                        and employer.region_code == self.orgs[org].region_code))
        if kind in (OrgKind.institution, OrgKind.direct_institution):
            return any(c.issuer_id == org for c in certs)
        if kind in (OrgKind.enterprise, OrgKind.school):
            return person.employer_id == org
        return org is None and self.users[who].person_id == ident

    def _organization(self, who, ident):
        target = self.orgs.get(ident)
        if target is None:
            return False
        kind, org = self.kind_of(who), self.org_of(who)
        if kind == OrgKind.province:
            return True
        if kind == OrgKind.authority:
            return self._descends(ident, org) or (
                target.kind in (OrgKind.enterprise, OrgKind.school) and target.region_code == self.orgs[org].region_code)
        return org is not None and ident == org

    def _user(self, who, ident):
        target = next((u for u in self.users.values() if u.id == ident), None)
        if target is None:
            return False
        if target.organization_id is None or self.org_of(who) is None:
            return target.username == who
        return self._organization(who, target.organization_id)

    def may_see(self, who, model, ident):
        """True / False, or None when SPEC §1 has no rule here for ``model`` yet."""
        rule = self.rules.get(model)
        if rule is None:
            return None
        try:
            ident = int(ident)
        except (TypeError, ValueError):
            return False
        return rule(who, ident)

    def may_see_all(self, who, refs):
        answers = [self.may_see(who, model, ident) for model, ident in refs]
        if any(a is None for a in answers):
            return None
        return all(answers)

    # -- identifiers that must not appear on a page of someone who may not see their row
    def tokens(self):
        """{text: [(model, id), …]}: batch codes and names, certificate numbers, ID numbers, file names."""
        out = defaultdict(list)
        for b in self.batches.values():
            out[b.code].append((Batch, b.id))
            out[b.name].append((Batch, b.id))
        for c in self.certificates.values():
            out[c.number].append((Certificate, c.id))
        for p in self.persons.values():
            out[p.id_number].append((Person, p.id))
        for c in self.candidates.values():
            out[c.id_number].append((Candidate, c.id))
        for a in self.attachments.values():
            out[a.filename].append((Attachment, a.id))
        for r in self.registrations.values():
            if r.registration_number:
                out[r.registration_number].append((Registration, r.id))
            # a declaration shows its person's ID number to whoever may see the declaration
            # (the ministry, the enterprise it is declared with), not only to who sees the person
            out[self.persons[r.person_id].id_number].append((Registration, r.id))
        for a in self.accounts.values():  # 个人注册: the reviewing authority checks the ID number
            if a.person_id is not None:
                out[self.persons[a.person_id].id_number].append((AccountRequest, a.id))
        return out

    def hidden_tokens(self, who):
        visible, hidden = set(), set()
        for text, owners in self.tokens().items():
            (visible if any(self.may_see(who, m, i) for m, i in owners) else hidden).add(text)
        # a hidden text that is part of a visible one may legitimately appear
        return sorted(t for t in hidden if not any(t in v for v in visible))


def token_pattern(tokens):
    if not tokens:
        return None
    alternation = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return re.compile(f"(?<![0-9A-Za-z])(?:{alternation})(?![0-9A-Za-z])")


# --- the app, its views and its routes ----------------------------------------------------


def admin_views(app):
    return {view.endpoint: view for view in app.extensions["admin"][0]._views}


def models_by_table():
    return {mapper.class_.__tablename__: mapper.class_ for mapper in db.Model.registry.mappers}


def model_for(app, endpoint, arg):
    """The model a URL argument or form field names a row of (``id`` → the view's model,
    ``attachment_id`` → Attachment …), or None."""
    view = admin_views(app).get(endpoint.split(".")[0])
    if arg in ("id", "rowid", "list_form_pk"):
        if view is None:
            return None
        return ID_MODEL_OVERRIDES.get(view.endpoint) or getattr(view, "model", None)
    if arg in ARG_MODEL_OVERRIDES:
        return ARG_MODEL_OVERRIDES[arg]
    if arg.endswith("_id"):
        return models_by_table().get(arg[:-3])
    return None


def is_id_arg(name) -> bool:
    return name in ("id", "rowid", "list_form_pk") or name.endswith("_id")


def post_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if "POST" in r.methods and r.endpoint != "static"
                   and not r.endpoint.endswith(".static")), key=lambda r: r.rule)


def fill_rule(rule, ident: str) -> str:
    """A URL of ``rule`` with every argument set to ``ident`` (``export_type`` to xlsx)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "xlsx" if m.group(1) == "export_type" else ident, rule.rule)


def snapshot(path):
    """Every non-volatile table as row tuples, read straight from the SQLite file (fast, and
    outside the app's sessions)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        state = {}
        for table in db.metadata.sorted_tables:
            if table.name not in VOLATILE_TABLES:
                state[table.name] = conn.execute(f'SELECT * FROM "{table.name}" ORDER BY 1').fetchall()
        return state
    finally:
        conn.close()


def diff(before, after):
    out = []
    for name in before:
        if before[name] != after.get(name):
            added = set(after.get(name, [])) - set(before[name])
            removed = set(before[name]) - set(after.get(name, []))
            out.append(f"{name}: +{sorted(added, key=str)[:3]} -{sorted(removed, key=str)[:3]}")
    return out


# --- crawling -----------------------------------------------------------------------------

TAG_RE = re.compile(r"<[^>]*>")
HREF_RE = re.compile(r'(?:href|src)="([^"]*)"')
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
ATTR_RE = re.compile(r'([a-zA-Z_:-]+)="([^"]*)"')
INPUT_RE = re.compile(r"<(?:input|textarea|select|button)\b([^>]*)>", re.I)
ACTION_RE = re.compile(r'data-model-action="([^"]+)"')  # Flask-Admin's bulk actions (admin/actions.html)
FILE = object()  # an <input type="file"> seen in a form


@dataclass
class Page:
    url: str
    endpoint: str
    status: int
    refs: tuple = ()  # ((model, id), …) the rows this URL shows
    unresolved: tuple = ()  # "endpoint:arg" that name a row of an unknown model
    names: tuple = ()  # the URL argument of each ref ("id", "candidate_id", "attachment_id" …)
    text: str = ""


@dataclass
class Crawl:
    who: str
    pages: dict = field(default_factory=dict)  # url → Page
    forms: list = field(default_factory=list)  # (endpoint, {field: [values]}) of POST forms seen
    actions: dict = field(default_factory=lambda: defaultdict(set))  # action endpoint → {names}

    @property
    def reachable(self):
        return [p for p in self.pages.values() if p.status == 200]


def body_text(resp) -> str:
    mimetype = resp.mimetype or ""
    data = resp.get_data()
    if mimetype.startswith("text/") or mimetype in ("application/json", "application/xml"):
        return data.decode("utf-8", "replace")
    if data[:2] == b"PK":  # xlsx / docx: the XML parts
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if n.endswith(".xml"))
        except zipfile.BadZipFile:
            return ""
    return ""


class Router:
    def __init__(self, app):
        self.app = app
        self.adapter = app.url_map.bind("localhost")

    def resolve(self, href, base="/admin/"):
        """(endpoint, canonical URL, refs, unresolved, names) of an in-admin GET link, or None."""
        href = html.unescape(href.strip())
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:", "data:")):
            return None
        parts = urlsplit(urljoin("http://localhost" + base, href))
        if parts.netloc != "localhost" or not parts.path.startswith("/admin"):
            return None
        path = parts.path
        try:
            endpoint, args = self.adapter.match(path, method="GET")
        except RequestRedirect as exc:
            path = urlsplit(exc.new_url).path
            try:
                endpoint, args = self.adapter.match(path, method="GET")
            except HTTPException:
                return None
        except HTTPException:
            return None
        if endpoint.endswith("static") or endpoint.startswith("auth."):
            return None
        query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k not in NOISE_PARAMS and not k.startswith("flt"))
        if endpoint.endswith(".index_view"):
            query = [(k, v) for k, v in query if k == "tab"]
        url = path + ("?" + urlencode(query) if query else "")
        refs, unresolved, names = [], [], []
        for name, value in list(args.items()) + query:
            if is_id_arg(name):
                model = model_for(self.app, endpoint, name)
                if model is None:
                    unresolved.append(f"{endpoint}:{name}")
                else:
                    refs.append((model, value))
                    names.append(name)
        return endpoint, url, tuple(refs), tuple(unresolved), tuple(names)


def sign_in(app, who) -> Browser:
    return Browser(app.test_client(), app).login(who)


def crawl(browser, who) -> Crawl:
    router = Router(browser.app)
    result = Crawl(who)
    queue = deque([("/admin/", "admin.index", (), (), ())])
    queued = {"/admin/"}
    while queue and len(result.pages) < MAX_URLS:
        url, endpoint, refs, unresolved, names = queue.popleft()
        resp = browser.get(url)
        text = body_text(resp)
        result.pages[url] = Page(url, endpoint, resp.status_code, refs, unresolved, names, text)
        if resp.status_code != 200 or not (resp.mimetype or "").startswith("text/html"):
            continue
        per_endpoint = defaultdict(int)
        for href in HREF_RE.findall(text):
            found = router.resolve(href, base=url)
            if found is None or found[1] in queued:
                continue
            link_endpoint, link_url, link_refs, link_unresolved, link_names = found
            if link_refs or link_unresolved:
                per_endpoint[link_endpoint] += 1
                if per_endpoint[link_endpoint] > MAX_ROW_LINKS_PER_PAGE:
                    continue
            queued.add(link_url)
            queue.append((link_url, link_endpoint, link_refs, link_unresolved, link_names))
        for attrs, inner in FORM_RE.findall(text):
            attr = dict(ATTR_RE.findall(attrs))
            if attr.get("method", "get").lower() != "post":
                continue
            target = urlsplit(urljoin("http://localhost" + url, html.unescape(attr.get("action", "")))).path
            try:
                form_endpoint, _ = router.adapter.match(target, method="POST")
            except HTTPException:
                continue
            fields = defaultdict(list)
            for input_attrs in INPUT_RE.findall(inner):
                ia = dict(ATTR_RE.findall(input_attrs))
                if ia.get("name") and ia["name"] != "csrf_token":
                    value = FILE if ia.get("type") == "file" else html.unescape(ia.get("value", ""))
                    fields[ia["name"]].append(value)
            result.forms.append((form_endpoint, dict(fields)))
            if ACTION_RE.search(text) and form_endpoint.endswith(".action_view"):
                result.actions[form_endpoint].update(ACTION_RE.findall(text))
    return result


# --- the module's world: one database with attachments, crawled once ----------------------


class Site:
    """A module-scoped app on a private copy of the demo, restorable between tests."""

    def __init__(self, template, folder):
        self.template = template
        self.path = folder / "site.db"
        shutil.copyfile(template, self.path)
        self.app = create_app(_config(self.path, folder))
        self.browsers = {}

    def browser(self, who) -> Browser:
        if who not in self.browsers:
            self.browsers[who] = sign_in(self.app, who)
        return self.browsers[who]

    def restore(self):
        """Put the database file back as it was; the signed-in sessions are carried over (their
        server-side rows, issue 16), so the browsers stay signed in: the users are the same."""
        db.session.remove()
        db.engine.dispose()
        conn = sqlite3.connect(self.path)
        try:
            sessions = conn.execute("SELECT * FROM user_session").fetchall()
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)
        conn = sqlite3.connect(self.path)
        try:
            if sessions:
                marks = ",".join("?" * len(sessions[0]))
                conn.executemany(f"INSERT INTO user_session VALUES ({marks})", sessions)
            conn.commit()
        finally:
            conn.close()


def _with_attachments(demo_template, folder):
    """The demo plus one image and one document on every batch, so crawls find /file/ links."""
    path = folder / "access-template.db"
    shutil.copyfile(demo_template, path)
    app = create_app(_config(path, folder))
    with app.app_context():
        for batch in db.session.scalars(select(Batch).order_by(Batch.id)):
            for kind, name, ctype, data in ((AttachmentKind.image, f"资料{batch.id:04d}图片.png", "image/png", PNG),
                                            (AttachmentKind.document, f"资料{batch.id:04d}文档.pdf",
                                             "application/pdf", PDF)):
                db.session.add(Attachment(owner_type="batch", owner_id=batch.id, kind=kind, filename=name,
                                          content_type=ctype, size=len(data), sha256="0" * 64, data=data,
                                          created_at=utcnow()))
        _reissue_draft(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return path


def _reissue_draft(session):
    """A 补办 draft of inst_jinan holding two lost certificates with a third one left to choose,
    so the crawl finds the 选择遗失证书 / 移除 forms of an application page."""
    from tests.factories import issued_certificates
    from workflows.business import add_lost_certificate, start_reissue

    applicant = session.scalar(select(User).where(User.username == "inst_jinan"))
    certs = issued_certificates(session, "inst_jinan", [("砌筑工", "初级工(五级)"), ("电工", "初级工(五级)"),
                                                         ("焊工", "中级工(四级)")])
    app = start_reissue(session, applicant, "证书遗失（越权测试）", certs[0])
    add_lost_certificate(session, applicant, app, certs[1])


@dataclass
class World:
    site: Site
    facts: Facts
    crawls: dict

    patterns: dict = field(default_factory=dict)

    @property
    def app(self):
        return self.site.app

    def hidden_pattern(self, who):
        """A regex of the identifiers ``who`` may not see (None when there are none)."""
        if who not in self.patterns:
            self.patterns[who] = token_pattern(self.facts.hidden_tokens(who))
        return self.patterns[who]


@pytest.fixture(scope="module")
def world(demo_template, tmp_path_factory):
    folder = tmp_path_factory.mktemp("access")
    template = _with_attachments(demo_template, folder)
    site = Site(template, folder)
    with site.app.app_context():
        facts = Facts(db.session)
        crawls = {}
        for who in ACCOUNTS:
            crawls[who] = crawl(site.browser(who), who)
        facts.load_audits()
        site.restore()
        yield World(site, facts, crawls)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def fresh(world):
    """The module's site with its database put back after the test (for tests that POST)."""
    yield world
    world.site.restore()


def row_urls(world):
    """{url: Page} of every row-level URL any account reached, with the accounts that reached it."""
    urls, owners = {}, defaultdict(set)
    for who, result in world.crawls.items():
        for page in result.reachable:
            if page.refs or page.unresolved:
                urls[page.url] = page
                owners[page.url].add(who)
    return urls, owners


def is_refusal(resp) -> bool:
    return resp.status_code in (403, 404)


# --- 1. the crawl itself ------------------------------------------------------------------


def test_crawl_reaches_what_the_demo_holds(world):
    """The crawl has teeth: the demo's journeys are found (menus, tabs, details, files, candidates)."""
    reach = {who: {p.endpoint for p in world.crawls[who].reachable} for who in ACCOUNTS}
    counts = {who: len(world.crawls[who].reachable) for who in ACCOUNTS}
    print("\nreachable URLs per account:", counts, "total", sum(counts.values()))
    for who in ACCOUNTS:
        assert "admin.index" in reach[who], who
    for who in ("inst_jinan", "inst_qingdao", "direct_inst"):
        assert {"batch.index_view", "batch.details_view", "batch.file_view", "batch_create.index",
                "batch_create.template_view"} <= reach[who], (who, reach[who])
    assert "batch.candidate_edit_view" in reach["inst_jinan"]
    for who in ("jinan", "qingdao", "province"):
        assert {"batch_review.index_view", "batch_review.details_view", "batch_review.file_view"} <= reach[who]
    assert "certificate_library.details_view" in reach["province"]
    assert "certificate.details_view" in reach["jinan"]
    # 证书业务: applicants' 已申请业务 with their images, reviewers' lists, the province's 业务总览
    for who in ("inst_jinan", "enterprise"):
        assert {"business_apply.index_view", "business_apply.change_view", "application.details_view",
                "application.file_view"} <= reach[who], (who, reach[who])
    for who in ("jinan", "province"):
        assert {f"review_{kind}.{page}" for kind in ("change", "reissue", "cancel")
                for page in ("details_view", "file_view")} <= reach[who], (who, reach[who])
    assert {"business_overview.details_view", "business_overview.file_view"} <= reach["province"]
    forms = {endpoint for endpoint, _ in world.crawls["inst_jinan"].forms}
    assert {"application.images_view", "application.lost_add_view", "application.lost_remove_view"} <= forms, forms
    # issue 4: accounts, enterprise information, declarations, registered persons, 申辩
    assert {"account_review.details_view", "account_review.file_view",
            "enterprise_change_review.index_view"} <= reach["jinan"], reach["jinan"]
    assert {"enterprise_info.index", "enterprise_info.file_view", "staff.index", "staff.edit_view", "registration_manage.details_view",
            "registered.index_view", "expiring.index_view",
            "appeal.details_view"} <= reach["enterprise"], reach["enterprise"]
    # 导出 is a POST form (issue 16: a large export queues a job in the user's name)
    assert "registered.export_xlsx_view" in {endpoint for endpoint, _ in world.crawls["enterprise"].forms}
    assert {"registration_review.details_view", "appeal_review.details_view",
            "enterprise_change_review.details_view"} <= reach["province"], reach["province"]
    assert "registration_review.details_view" in reach["ministry"]
    assert "declaration.index_view" in reach["person"]
    # issue 5: 主管部门管理 / 单位管理 with their 职业(工种)范围, 用户管理 and 用户权限管理
    assert {"authority_manage.index_view", "authority_manage.details_view", "authority_manage.scope_view",
            "institution_manage.details_view", "user_manage.details_view",
            "permission_manage.permissions_view"} <= reach["province"], reach["province"]
    assert {"institution_manage.details_view", "user_manage.index_view"} <= reach["jinan"], reach["jinan"]
    tabs = {p.url for p in world.crawls["inst_jinan"].reachable if p.endpoint == "batch.index_view"}
    assert len(tabs) >= 4, tabs


def test_every_row_url_has_an_independent_rule(world):
    """A row-level URL whose row kind has no SPEC §1 rule in ``Facts`` is untested: name it here."""
    unknown = set()
    for result in world.crawls.values():
        for page in result.reachable:
            unknown.update(page.unresolved)
            unknown.update(f"{page.endpoint}:{m.__name__}" for m, _ in page.refs if m not in world.facts.rules)
    assert not unknown, f"add the model of these URL arguments to ID_MODEL_OVERRIDES / Facts.rules: {sorted(unknown)}"


@pytest.mark.parametrize("who", ACCOUNTS)
def test_own_pages_show_only_own_rows(world, who):
    """Every row the account reached by following its own links is one SPEC §1 lets it see,
    and no page it can open names a batch, certificate, ID number or file outside its visibility."""
    facts = world.facts
    pattern = world.hidden_pattern(who)
    problems = []
    for page in world.crawls[who].reachable:
        if page.refs and facts.may_see_all(who, page.refs) is False:
            problems.append(f"{page.url}: opens a row {who} may not see {page.refs}")
        if pattern is not None:
            leaked = sorted(set(pattern.findall(page.text)))
            if leaked:
                problems.append(f"{page.url}: shows {leaked[:5]}")
    assert not problems, "\n".join(problems)


# --- 2. other accounts' rows ----------------------------------------------------------------


@pytest.mark.parametrize("who", ACCOUNTS)
def test_other_accounts_row_urls(world, who):
    """Every row-level URL another account reached is 403/404 for ``who`` unless SPEC §1 lets
    ``who`` see the row; never a 500, never a page naming rows ``who`` may not see."""
    facts = world.facts
    browser = world.site.browser(who)
    pattern = world.hidden_pattern(who)
    urls, owners = row_urls(world)
    problems, checked = [], 0
    for url, page in sorted(urls.items()):
        if who in owners[url]:
            continue
        allowed = facts.may_see_all(who, page.refs)
        if allowed is None:
            continue  # reported by test_every_row_url_has_an_independent_rule
        resp = browser.get(url)
        checked += 1
        if resp.status_code >= 500:
            problems.append(f"{url}: {resp.status_code}")
        elif not allowed and not is_refusal(resp):
            problems.append(f"{url} (reached by {sorted(owners[url])}): {resp.status_code}, expected 403/404")
        elif pattern is not None and pattern.search(body_text(resp)):
            problems.append(f"{url}: shows {sorted(set(pattern.findall(body_text(resp))))[:5]}")
    print(f"\n{who}: {checked} foreign row URLs checked")
    assert not problems, "\n".join(problems)


def row_url_templates(world):
    """One crawled URL per (endpoint, row arguments): the shapes of every row-level URL."""
    templates = {}
    for result in world.crawls.values():
        for page in result.reachable:
            if page.refs and not page.unresolved:
                templates.setdefault((page.endpoint, page.names), page)
    return templates


def every_row_url(world, page):
    """``page``'s URL for every row of its most specific model in the database, the other
    arguments following the row (a candidate's batch, an attachment's owner)."""
    facts = world.facts
    order = (Candidate, Attachment, Certificate, Batch, Person)
    ranked = sorted(range(len(page.refs)), key=lambda i: order.index(page.refs[i][0])
                    if page.refs[i][0] in order else len(order))
    primary_model = page.refs[ranked[0]][0]
    router = Router(world.app)
    for ident, row in sorted(_rows_of(facts, primary_model).items()):
        values, refs = {}, []
        for (model, _), name in zip(page.refs, page.names, strict=True):
            if model is primary_model:
                value = ident
            elif model is Batch and primary_model is Candidate:
                value = row.batch_id
            elif model is Batch and primary_model is Attachment and row.owner_type == "batch":
                value = row.owner_id
            else:
                break
            values[name] = value
            refs.append((model, value))
        else:
            yield router.adapter.build(page.endpoint, values), tuple(refs)


@pytest.mark.parametrize("who", ACCOUNTS)
def test_every_row_through_every_row_url(world, who):
    """The full matrix: each row-level URL shape the crawl found, for every row of its kind in
    the database, opened by ``who`` — 403/404 unless SPEC §1 lets ``who`` see the row (and the
    same answer as for a row that does not exist), never a 500, never a page naming rows
    ``who`` may not see. Catches rows no list ever linked to."""
    facts = world.facts
    browser = world.site.browser(who)
    pattern = world.hidden_pattern(who)
    problems, sent = [], 0
    router = Router(world.app)
    for _key, page in sorted(row_url_templates(world).items(), key=lambda kv: kv[0][0]):
        absent = browser.get(router.adapter.build(page.endpoint, dict.fromkeys(page.names, ABSENT_ID))).status_code
        for url, refs in every_row_url(world, page):
            allowed = facts.may_see_all(who, refs)
            resp = browser.get(url)
            sent += 1
            text = body_text(resp)
            if resp.status_code >= 500:
                problems.append(f"{url}: {resp.status_code}")
            elif allowed is False and not is_refusal(resp):
                problems.append(f"{url}: {resp.status_code} for a row {who} may not see, expected 403/404")
            elif allowed is False and resp.status_code != absent:
                problems.append(f"{url}: {resp.status_code}, but {absent} for a row that does not exist")
            elif pattern is not None and pattern.search(text):
                problems.append(f"{url}: shows {sorted(set(pattern.findall(text)))[:5]}")
    print(f"\n{who}: {sent} row URLs")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("who", ACCOUNTS)
def test_list_pages_closed_to_other_kinds(world, who):
    """Every list page of the admin (from the registered views, not the menus) is 200 for an
    account whose pages link there and 403 for every other: a page the menus hide from an
    account must not open for it either."""
    browser = world.site.browser(who)
    reached = {p.endpoint for p in world.crawls[who].reachable}
    problems = []
    for endpoint, view in admin_views(world.app).items():
        if endpoint == "admin":
            continue
        index = "index_view" if isinstance(view, ModelView) else "index"
        with world.app.test_request_context():
            url = url_for(f"{endpoint}.{index}")
        resp = browser.get(url)
        expected = 200 if f"{endpoint}.{index}" in reached else 403
        if resp.status_code != expected:
            problems.append(f"{url}: {resp.status_code}, expected {expected}")
    assert not problems, "\n".join(problems)


# SPEC §1 by kind, spelled out: pages an organization kind may never open (a spot check of
# the generic test above, so a menu that wrongly shows a page cannot make it pass).
FORBIDDEN = {
    "inst_jinan": ("/admin/segment/", "/admin/batch_review/", "/admin/certificate_library/"),
    "direct_inst": ("/admin/segment/", "/admin/batch_review/", "/admin/certificate_library/"),
    "jinan": ("/admin/segment/", "/admin/batch/", "/admin/batch-create/", "/admin/certificate_library/"),
    "jinan_reviewer": ("/admin/segment/", "/admin/batch/", "/admin/batch-create/"),
    "enterprise": ("/admin/segment/", "/admin/batch/", "/admin/batch_review/", "/admin/batch-create/",
                   "/admin/certificate_library/"),
    "school": ("/admin/segment/", "/admin/batch/", "/admin/batch_review/", "/admin/certificate_library/"),
    "person": ("/admin/segment/", "/admin/batch/", "/admin/batch_review/", "/admin/certificate_library/",
               "/admin/batch-create/"),
    "ministry": ("/admin/segment/", "/admin/batch/", "/admin/batch_review/", "/admin/certificate_library/",
                 "/admin/certificate/"),
    "province": ("/admin/batch/", "/admin/batch-create/"),
}


@pytest.mark.parametrize("who", sorted(FORBIDDEN))
def test_pages_forbidden_by_kind(world, who):
    browser = world.site.browser(who)
    codes = {url: browser.get(url).status_code for url in FORBIDDEN[who]}
    assert set(codes.values()) == {403}, codes


def test_search_for_foreign_identifiers(world):
    """Searching a list (or its export) for another organization's batch code, certificate
    number or ID number finds nothing: search narrows the visible rows, it never widens them.

    Accounts with no searchable list, or that see every row, have nothing to probe; at least
    the institutions and authorities of the demo always do.
    """
    facts = world.facts
    problems, probed, exports_probed = [], set(), set()
    for who in ACCOUNTS:
        pattern = world.hidden_pattern(who)
        lists = {}  # list pages and their exports: everything that takes ?search=
        for page in world.crawls[who].reachable:
            if page.endpoint.endswith(".index_view") or "export" in page.endpoint:
                lists.setdefault(page.endpoint, page.url.split("?")[0])
        # 导出 is a POST form beside the list (issue 16): the list's URL + export.xlsx
        exports = {endpoint for endpoint, _ in world.crawls[who].forms if endpoint.endswith(".export_xlsx_view")}
        exported = {lists[f"{e.rsplit('.', 1)[0]}.index_view"] + "export.xlsx"
                    for e in exports if f"{e.rsplit('.', 1)[0]}.index_view" in lists}
        if pattern is None or not lists:
            continue
        probed.add(who)
        if exported:
            exports_probed.add(who)
        hidden = set(facts.hidden_tokens(who))
        probes = [b.code for b in facts.batches.values() if b.code in hidden][:2]
        probes += [c.number for c in facts.certificates.values() if c.number in hidden][:2]
        probes += [p.id_number for p in facts.persons.values() if p.id_number in hidden][:2]
        browser = world.site.browser(who)
        for url in sorted(set(lists.values()) | exported):
            for term in probes:
                target = url + "?" + urlencode({"search": term})
                resp = browser.post(target) if url in exported else browser.get(target)
                shown = TAG_RE.sub(" ", body_text(resp))  # the search box repeats the term in its value
                leaked = sorted(set(pattern.findall(shown)))
                if resp.status_code != 200 or leaked:
                    problems.append(f"{who} {url}?search={term}: {resp.status_code} {leaked[:5]}")
    assert {"inst_jinan", "inst_qingdao", "jinan", "qingdao", "direct_inst"} <= probed, probed
    assert {"inst_jinan", "jinan"} <= exports_probed, exports_probed
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("who", ACCOUNTS)
def test_uncrawled_get_routes_with_row_ids(world, who):
    """GET routes no page links to (the reason form of a transition, the upload step of a new
    batch, ajax lookups …) opened with ids of rows ``who`` may not see: refused or empty of
    those rows; with rows it may see: never a 500."""
    crawled = {p.endpoint for result in world.crawls.values() for p in result.pages.values()}
    browser = world.site.browser(who)
    pattern = world.hidden_pattern(who)
    problems, sent = [], 0
    for rule in world.app.url_map.iter_rules():
        if (not rule.rule.startswith("/admin") or "GET" not in rule.methods or rule.endpoint in crawled
                or "static" in rule.endpoint):
            continue
        view = admin_views(world.app).get(rule.endpoint.split(".")[0])
        model = model_for(world.app, rule.endpoint, "id")
        transitions = [None]
        if isinstance(view, WorkflowModelView):
            transitions = [name for name, t in view.workflow.transitions.items() if t.needs_reason]
        for mine in (False, True):
            for ident in sample_rows(world, who, model, mine=mine, limit=2):
                for transition in transitions:
                    url = fill_rule(rule, str(ident))
                    query = {"id": ident, **({"transition": transition} if transition else {})}
                    resp = browser.get(url + "?" + urlencode(query))
                    sent += 1
                    text = body_text(resp)
                    if resp.status_code >= 500:
                        problems.append(f"{url}?{urlencode(query)}: {resp.status_code}")
                    elif not mine and resp.status_code == 200 and rule.arguments:
                        problems.append(f"{url}: 200 for a row {who} may not see")
                    elif pattern is not None and pattern.search(text):
                        problems.append(f"{url}?{urlencode(query)}: shows {sorted(set(pattern.findall(text)))[:5]}")
    print(f"\n{who}: {sent} uncrawled GETs")
    assert not problems, "\n".join(problems)


# 首页 cards (label → rows the card counts, as predicates on Facts): counts obey SPEC §1 too.
HOME_CARDS = {
    "有效证书总数": lambda f, who: sum(1 for c in f.certificates.values()
                                 if c.status.value == "valid" and f.may_see(who, Certificate, c.id)),
    "待提交批次": lambda f, who: _count_batches(f, who, "draft"),
    "审核不通过批次": lambda f, who: _count_batches(f, who, "rejected"),
    "待审核批次": lambda f, who: _count_batches(
        f, who, "province_review" if f.kind_of(who) == OrgKind.province else "authority_review"),
    "待审核变更业务": lambda f, who: _count_applications(f, who, "change"),
    "待审核补办业务": lambda f, who: _count_applications(f, who, "reissue"),
    "待审核注销业务": lambda f, who: _count_applications(f, who, "cancel"),
}
CARD_RE = re.compile(r'<div class="text-muted">([^<]+)</div>\s*<div class="h3 mb-0">(\d+)</div>')


def _count_applications(facts, who, kind):
    """证书业务 waiting for this reviewer (SPEC §5.2): the city authority first, then the province."""
    state = "pending_province" if facts.kind_of(who) == OrgKind.province else "pending_authority"
    return sum(1 for a in facts.applications.values() if a.kind.value == kind and a.status.value == state
               and facts.may_see(who, CertificateApplication, a.id))


def _count_batches(facts, who, state):
    return sum(1 for b in facts.batches.values() if b.status.value == state and facts.may_see(who, Batch, b.id))


@pytest.mark.parametrize("who", ACCOUNTS)
def test_home_counts_only_visible_rows(world, who):
    """The 首页 numbers count the rows SPEC §1 lets the account see, no more."""
    home = world.crawls[who].pages["/admin/"].text
    cards = dict(CARD_RE.findall(home))
    assert cards or "card-body" not in home, "the 首页 cards changed shape: update CARD_RE"
    wrong = {label: (int(value), HOME_CARDS[label](world.facts, who)) for label, value in cards.items()
             if label in HOME_CARDS and int(value) != HOME_CARDS[label](world.facts, who)}
    assert not wrong, f"(shown, visible) per card: {wrong}"


def test_anonymous_requests_redirect_to_login(world):
    """Every URL any account reached, and every GET route of the admin, sends a visitor to
    /login (302) and shows nothing of the database."""
    client = world.app.test_client()
    urls = {p.url for result in world.crawls.values() for p in result.pages.values()}
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and "GET" in rule.methods and "static" not in rule.endpoint:
            urls.add(fill_rule(rule, "1"))
    pattern = token_pattern(list(world.facts.tokens()))
    problems = []
    for url in sorted(urls):
        resp = client.get(url)
        location = resp.headers.get("Location", "")
        if resp.status_code != 302 or urlsplit(location).path != LOGIN_PATH:
            problems.append(f"{url}: {resp.status_code} → {location!r}")
        elif pattern.search(resp.get_data(as_text=True)):
            problems.append(f"{url}: the redirect names rows")
    print(f"\nanonymous: {len(urls)} URLs")
    assert not problems, "\n".join(problems)


def test_anonymous_posts_change_nothing(fresh):
    """A visitor with a valid CSRF token (from /login) posting to every admin POST route is
    sent to /login and nothing in the database moves."""
    world = fresh
    browser = Browser(world.app.test_client(), world.app)
    before = snapshot(world.site.path)
    problems = []
    for rule in admin_post_rules(world.app):
        for label, url, form in probes_for(world, "province", rule, mine=True):
            resp = browser.post(url, form)
            if resp.status_code != 302 or urlsplit(resp.headers.get("Location", "")).path != LOGIN_PATH:
                problems.append(f"POST {url} [{label}]: {resp.status_code} → {resp.headers.get('Location')}")
    changed = diff(before, snapshot(world.site.path))
    assert not problems and not changed, "\n".join(problems + changed)


# --- 3. POSTs with other organizations' ids -------------------------------------------------


def admin_post_rules(app):
    return [rule for rule in post_rules(app) if rule.rule.startswith("/admin")]


def _rows_of(facts, model):
    return facts.tables.get(model, {})


def _state_of(facts, model, ident):
    """What makes two rows different for a probe: the batch state and owner behind the row."""
    row = _rows_of(facts, model)[ident]
    if model is Candidate:
        row = facts.batches[row.batch_id]
    elif model is Attachment and row.owner_type == "batch":
        row = facts.batches[row.owner_id]
    elif model is Attachment and row.owner_type == "application":
        row = facts.applications[row.owner_id]
    elif model is ApplicationItem:
        row = facts.applications[row.application_id]
    owner = next((getattr(row, name) for name in ("institution_id", "issuer_id", "organization_id", "employer_id",
                                                  "applicant_org_id", "kind", "region_code")
                  if hasattr(row, name)), None)
    return getattr(row, "status", None), owner


def sample_rows(world, who, model, *, mine=False, states=None, limit=3):
    """Ids of ``model`` rows ``who`` may not see (or, ``mine``, may see), one per state and
    owner, in states ``states`` when given."""
    facts = world.facts
    picked, seen = [], set()
    for ident in sorted(_rows_of(facts, model)):
        if bool(facts.may_see(who, model, ident)) != mine:
            continue
        key = _state_of(facts, model, ident)
        if key in seen or (states is not None and key[0] not in states):
            continue
        seen.add(key)
        picked.append(ident)
    return picked[:limit]


def _form_fields(world, endpoint):
    """The fields the crawl saw posted to ``endpoint`` (first value of each), or, for a route
    no page posts to, the row arguments its crawled GET URLs carried (a form step reached by
    ``?certificate_id=``), else just the row ``id``."""
    fields, seen = {}, False
    for result in world.crawls.values():
        for form_endpoint, form in result.forms:
            if form_endpoint == endpoint:
                seen = True
                for name, values in form.items():
                    fields.setdefault(name, values[0] if values else "")
    if seen:
        return fields
    got = {name: "" for result in world.crawls.values() for page in result.reachable
           if page.endpoint == endpoint for name in page.names}
    return got or {"id": ""}


def _good_values(world):
    """Values that would be accepted if the row were the actor's: the probe must fail on the
    row, not on the data."""
    facts = world.facts
    return {"name": "越权测试名称", "reason": "越权测试原因", "note": "越权测试说明", "failed": "1",
            "explanation": "越权测试申请说明",
            "id_number": facts.fresh_id_number, "occupation_id": str(facts.occupation_id),
            "level_id": str(facts.level_id), "phone": "", "employer_name": "", "next": ""}


ERROR_ALERT = "alert-danger"
ABSENT_ID = "99999999"
EVIL_URL = "https://evil.example/phish"
TRANSITION_ENDPOINTS = (".action_view", ".transition_view", ".reason_view")


ROW_FIELDS = ("id", "rowid", "list_form_pk")  # the route's own row, under Flask-Admin's various names


def probes_for(world, who, rule, *, mine=False):
    """(label, url, form) POSTs to one route: each row field in turn set to a row ``who`` may
    not see (or, ``mine``, may see), the others consistent with it; on workflow routes, once
    per transition with rows in that transition's source states. A route of a view ``who``
    cannot open at all gets one probe per field (Flask-Admin refuses the whole view)."""
    facts = world.facts
    endpoint = rule.endpoint
    view = admin_views(world.app).get(endpoint.split(".")[0])
    fields = _form_fields(world, endpoint)
    fields.update({k: v for k, v in _good_values(world).items() if k in fields or k in ("name", "reason", "note")})
    names = {name for name in fields if is_id_arg(name)} | set(rule.arguments)
    if names & set(ROW_FIELDS) or endpoint.endswith(".action_view"):
        names = (names - set(ROW_FIELDS)) | {"id"}
    workflow = view.workflow.transitions if isinstance(view, WorkflowModelView) else {}
    if endpoint.endswith(".action_view"):
        # the list's bulk actions: the ones its dropdown offered anyone, Flask-Admin's own
        # delete, and one per workflow transition
        offered = set().union(*(result.actions.get(endpoint, set()) for result in world.crawls.values()))
        transitions = {name: None for name in sorted(offered | {"delete"}) if not name.startswith("wf_")}
        transitions.update({f"wf_{name}": t.sources for name, t in workflow.items()})
    elif workflow and (endpoint.endswith(TRANSITION_ENDPOINTS) or "transition" in fields):
        transitions = {name: t.sources for name, t in workflow.items()}
    else:
        transitions = {None: None}
    closed = view is not None and not any(
        p.endpoint.startswith(view.endpoint + ".") for p in world.crawls[who].reachable)
    out = []
    for name in sorted(names):
        model = model_for(world.app, endpoint, name)
        if model is None or model not in facts.rules:
            continue  # occupation_id, level_id, export_type …: not a row of SPEC §1
        probes = [(transition, ident) for transition, sources in transitions.items()
                  for ident in sample_rows(world, who, model, mine=mine, states=sources,
                                           limit=3 if transition is None else 1)]
        for transition, ident in probes[:1] if closed else probes:
            form = {k: v for k, v in fields.items() if not is_id_arg(k) or k in ("occupation_id", "level_id")}
            form[name] = str(ident)
            if name == "id":
                form.update({key: str(ident) for key in ROW_FIELDS})
            if model is Candidate:  # with its own batch: only visibility can stop it
                form["id"] = str(facts.candidates[ident].batch_id)
            if model is Attachment:
                form["id"] = str(facts.attachments[ident].owner_id)
            if model is ApplicationItem:  # with its own application: only visibility can stop it
                form["id"] = str(facts.items[ident].application_id)
            if "url" in form:
                form["url"] = EVIL_URL  # where to go back to: never off-site
            if endpoint.endswith(".action_view"):
                form.update(action=transition, transition=transition.removeprefix("wf_"))
            elif transition:
                form.update(transition=transition, action=f"wf_{transition}", version="")
            for key, value in list(form.items()):
                if value is FILE:
                    form[key] = (io.BytesIO(PNG), "probe.png")
            url = rule.rule
            for arg in rule.arguments:
                value = "xlsx" if arg == "export_type" else (form.get(arg) or str(ident))
                url = re.sub(rf"<(?:\w+:)?{arg}>", value, url)
            out.append((f"{name}={ident}" + (f" {transition}" if transition else ""), url, form))
    return out


def absent_twin(rule, form):
    """The same request about a row that does not exist: every row field set to ABSENT_ID."""
    twin = {k: (ABSENT_ID if is_id_arg(k) and k not in ("occupation_id", "level_id") else v)
            for k, v in form.items()}
    for key, value in twin.items():
        if isinstance(value, tuple):
            twin[key] = (io.BytesIO(PNG), "probe.png")
    return fill_rule(rule, ABSENT_ID), twin


def _check_post(world, who, url, form, before, problems, label):
    """POST as ``who``; a refusal (403/404, 400, a redirect or the form again with an error),
    no success message, no hidden row named in the answer, and the database unchanged."""
    browser = world.site.browser(who)
    form = {k: (str(v) if isinstance(v, int) else v) for k, v in form.items()}
    with browser.client.session_transaction() as sess:
        sess.pop("_flashes", None)  # messages left over from earlier pages are not this answer's
    resp = browser.post(url, form)
    text = body_text(resp)
    flashes = []
    if resp.status_code in (302, 303):
        if urlsplit(resp.headers.get("Location", "")).netloc not in ("", "localhost"):
            problems.append(f"POST {url} [{label}]: redirects off-site to {resp.headers['Location']}")
        with browser.client.session_transaction() as sess:
            flashes = sess.pop("_flashes", [])
        if any(category == "success" for category, _ in flashes):
            problems.append(f"POST {url} [{label}]: reported success {flashes}")
        if not flashes:  # SPEC §5: every refusal says why, in Chinese
            problems.append(f"POST {url} [{label}]: refused without a message")
        text = " ".join(message for _, message in flashes)
    elif resp.status_code == 200 and ERROR_ALERT in text:
        pass  # a form shown again with the refusal above it
    elif resp.status_code not in (400, 403, 404):
        problems.append(f"POST {url} [{label}]: {resp.status_code}")
    pattern = world.hidden_pattern(who)
    if pattern is not None and pattern.search(text):
        problems.append(f"POST {url} [{label}]: the answer names {sorted(set(pattern.findall(text)))[:5]}")
    after = snapshot(world.site.path)
    changed = diff(before, after)
    if changed:
        problems.append(f"POST {url} [{label}] changed the database: {changed}")
    answer = (resp.status_code, tuple(sorted((c, re.sub(r"\d+", "#", m)) for c, m in flashes)))
    return after, answer


@pytest.mark.parametrize("who", ACCOUNTS)
def test_posts_with_foreign_ids_change_nothing(fresh, who):
    """``who`` posts to every POST route of the admin (bulk actions, transitions, reasons,
    candidate mark / edit / delete, attach, attachment delete, rename, Flask-Admin's own edit /
    delete / ajax update …) with ids of rows it may not see: refused, and the database does
    not move."""
    world = fresh
    before = snapshot(world.site.path)
    problems, sent = [], 0
    for rule in admin_post_rules(world.app):
        for label, url, form in probes_for(world, who, rule):
            twin_url, twin_form = absent_twin(rule, form)
            before, answer = _check_post(world, who, url, form, before, problems, label)
            before, absent = _check_post(world, who, twin_url, twin_form, before, problems, "absent twin")
            if answer != absent:  # SPEC §1: a row outside visibility behaves exactly like a missing one
                problems.append(f"POST {url} [{label}] answers {answer}, a missing row {absent}")
            sent += 2
    print(f"\n{who}: {sent} foreign-id POSTs (with their absent twins)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("who", ["inst_jinan", "province"])
def test_garbage_ids_are_refused(fresh, who):
    """Non-numeric, negative, huge and injected ids on every row URL and POST route:
    302/400/403/404, never a 500, nothing changed."""
    world = fresh
    browser = world.site.browser(who)
    before = snapshot(world.site.path)
    problems = []
    samples = {p.endpoint: p.url for result in world.crawls.values() for p in result.reachable if p.refs}
    for url in sorted(samples.values()):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        for bad in GARBAGE_IDS:
            if query:
                target = parts.path + "?" + urlencode([(k, bad if is_id_arg(k) else v) for k, v in query])
            else:
                target = re.sub(r"/\d+(?=/|$)", "/" + quote(bad, safe=""), parts.path)
            resp = browser.get(target)
            if resp.status_code not in (302, 400, 403, 404):
                problems.append(f"GET {target}: {resp.status_code}")
    for rule in admin_post_rules(world.app):
        fields = _form_fields(world, rule.endpoint)
        if rule.arguments or not any(is_id_arg(k) for k in fields):
            continue
        for bad in GARBAGE_IDS:
            form = {k: (bad if is_id_arg(k) else v) for k, v in fields.items() if v is not FILE}
            form.update(action="wf_submit", transition="submit", rowid=bad, id=bad)
            before, _ = _check_post(world, who, rule.rule, form, before, problems, f"id={bad!r}")
    assert not problems, "\n".join(problems)


# Seeing a batch is not owning it (SPEC §5.1's "who" column): (account, what, batch owner, state).
NOT_ENTITLED = [
    ("province", "rename", "inst_jinan", "draft"),
    ("province", "submit", "inst_jinan", "draft"),
    ("province", "delete", "inst_jinan", "draft"),
    ("province", "candidate_delete", "inst_jinan", "draft"),
    ("province", "candidate_add", "inst_jinan", "draft"),
    ("province", "attachment_delete", "inst_jinan", "draft"),
    ("province", "authority_approve", "inst_jinan", "authority_review"),
    ("province_reviewer", "candidate_edit", "inst_jinan", "rejected"),
    ("jinan", "rename", "inst_jinan", "rejected"),
    ("jinan", "reopen", "inst_jinan", "rejected"),
    ("jinan", "candidate_delete", "inst_jinan", "draft"),
    ("jinan", "candidate_edit", "inst_jinan", "draft"),
    ("jinan", "attachment_delete", "inst_jinan", "draft"),
    ("jinan", "attach", "inst_jinan", "draft"),
    ("jinan", "province_approve", "inst_jinan", "province_review"),
    ("jinan", "province_reject", "inst_jinan", "province_review"),
    ("jinan", "candidate_mark", "inst_jinan", "province_review"),
    ("jinan_reviewer", "delete", "inst_jinan", "draft"),
    ("inst_jinan", "authority_approve", "inst_jinan", "authority_review"),
    ("inst_jinan", "authority_reject", "inst_jinan", "authority_review"),
    ("inst_jinan", "candidate_mark", "inst_jinan", "authority_review"),
    ("inst_jinan", "province_approve", "inst_jinan", "province_review"),
    ("inst_jinan", "rename", "inst_jinan", "authority_review"),
    ("inst_jinan", "candidate_delete", "inst_jinan", "approved"),
    ("inst_jinan", "candidate_edit", "inst_jinan", "province_review"),
    ("inst_jinan", "attach", "inst_jinan", "approved"),
    ("inst_jinan", "attachment_delete", "inst_jinan", "province_review"),
    ("inst_jinan", "delete", "inst_jinan", "rejected"),
    ("direct_inst", "province_approve", "direct_inst", "province_review"),
    ("inst_qingdao", "authority_approve", "inst_qingdao", "authority_review"),
]


# The same requests on rows of another organization (SPEC §1: they behave as if absent).
FOREIGN = [
    ("inst_qingdao", "submit", "inst_jinan", "draft"),
    ("inst_qingdao", "delete", "inst_jinan", "draft"),
    ("direct_inst", "submit", "inst_jinan", "draft"),
    ("jinan", "authority_approve", "inst_qingdao", "authority_review"),
    ("jinan", "authority_reject", "inst_qingdao", "authority_review"),
    ("jinan_reviewer", "candidate_mark", "inst_qingdao", "authority_review"),
    ("qingdao", "authority_approve", "inst_jinan", "authority_review"),
    ("inst_jinan", "candidate_delete", "inst_qingdao", "draft"),
    ("inst_jinan", "candidate_edit", "inst_qingdao", "draft"),
    ("inst_jinan", "candidate_add", "inst_qingdao", "draft"),
    ("inst_jinan", "attachment_delete", "inst_qingdao", "draft"),
    ("inst_jinan", "attach", "inst_qingdao", "rejected"),
    ("inst_jinan", "rename", "inst_qingdao", "draft"),
    ("inst_jinan", "reopen", "inst_qingdao", "rejected"),
    ("inst_qingdao", "rename", "direct_inst", "province_review"),
    ("enterprise", "rename", "inst_jinan", "draft"),
    ("school", "candidate_delete", "inst_jinan", "draft"),
    ("person", "delete", "inst_jinan", "draft"),
    ("ministry", "province_approve", "direct_inst", "province_review"),
]


def _not_entitled_requests(world, what, batch_id):
    facts = world.facts
    candidate = min(i for i, c in facts.candidates.items() if c.batch_id == batch_id)
    attachment = min(i for i, a in facts.attachments.items() if a.owner_type == "batch" and a.owner_id == batch_id)
    good = _good_values(world)
    out = []
    for base in ("/admin/batch", "/admin/batch_review"):
        if what == "rename":
            out.append((f"{base}/rename/", {"id": batch_id, "name": good["name"]}))
        elif what == "candidate_delete":
            out.append((f"{base}/candidate/delete/", {"candidate_id": candidate}))
        elif what == "candidate_mark":
            out.append((f"{base}/candidate/mark/", {"candidate_id": candidate, "failed": "1", "note": good["note"]}))
        elif what in ("candidate_edit", "candidate_add"):
            form = {"id": batch_id, **{k: good[k] for k in ("name", "id_number", "occupation_id", "level_id")}}
            if what == "candidate_edit":
                form["candidate_id"] = candidate
            out.append((f"{base}/candidate/edit/", form))
        elif what == "attachment_delete":
            out.append((f"{base}/attachment/delete/", {"attachment_id": attachment}))
        elif what == "attach":
            out.append((f"{base}/attach/", {"id": batch_id, "files": (io.BytesIO(PNG), "probe.png")}))
        else:
            out.append((f"{base}/transition/", {"id": batch_id, "transition": what, "reason": good["reason"]}))
            out.append((f"{base}/action/", {"action": f"wf_{what}", "rowid": batch_id}))
            out.append((f"{base}/reason/", {"transition": what, "id": batch_id, "reason": good["reason"]}))
    return out


SCENARIOS = [(*case, True) for case in NOT_ENTITLED] + [(*case, False) for case in FOREIGN]


@pytest.mark.parametrize(("who", "what", "owner", "state", "visible"), SCENARIOS,
                         ids=[f"{w}-{x}-on-{o}-{s}" for w, x, o, s, _ in SCENARIOS])
def test_named_posts_change_nothing(fresh, who, what, owner, state, visible):
    """The cases spelled out: seeing a batch is not owning it (a reviewer cannot edit an
    institution's draft, an institution cannot approve its own batch, nobody edits outside
    待提交 / 审核不通过), and another organization's batch, candidate or file cannot be
    touched at all — each through both batch views (transition, bulk action, reason form,
    rename, candidate mark / edit / add / delete, attach, attachment delete)."""
    world = fresh
    facts = world.facts
    org = facts.org_of(owner)
    batch_id = min(i for i, b in facts.batches.items() if b.institution_id == org and b.status.value == state)
    assert facts.may_see(who, Batch, batch_id) == visible, "the scenario's premise about SPEC §1 is wrong"
    before = snapshot(world.site.path)
    problems = []
    for url, form in _not_entitled_requests(world, what, batch_id):
        before, _ = _check_post(world, who, url, form, before, problems, what)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("who", "url", "form"), [
    ("inst_jinan", "/admin/batch/rename/", {"name": "自己改名"}),
    ("inst_jinan", "/admin/batch/candidate/delete/", {}),
    ("inst_jinan", "/admin/batch/action/", {"action": "wf_delete"}),
])
def test_the_probes_have_teeth(fresh, who, url, form):
    """Control: the same requests on the owner's own draft do change the database, so the
    "nothing changed" checks above would notice a hole."""
    world = fresh
    facts = world.facts
    org = facts.org_of(who)
    batch_id = min(i for i, b in facts.batches.items() if b.institution_id == org and b.status.value == "draft")
    candidate = min(i for i, c in facts.candidates.items() if c.batch_id == batch_id)
    before = snapshot(world.site.path)
    form = {"id": str(batch_id), "rowid": str(batch_id), "candidate_id": str(candidate), **form}
    resp = world.site.browser(who).post(url, form)
    assert resp.status_code == 302
    assert diff(before, snapshot(world.site.path))
