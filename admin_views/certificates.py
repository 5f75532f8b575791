"""证书管理 / 证书库 (003 §六.2, §七.2, §八.2) and 证书号段维护 (003 §八.5).

证书查看 (institutions, authorities) is read-only; the province's 证书库 is a
``WorkflowModelView`` over ``workflows.certificate.CERTIFICATE``: its list actions and detail
buttons (注销, 激活, 作废) come from that table. Both load every row through the base
view's visibility hook.
"""

from __future__ import annotations

from flask import g
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import aliased, joinedload

from admin_views.access import may_open
from admin_views.actions import WorkflowModelView
from admin_views.ecert import ElectronicZipMixin
from admin_views.listing import kept_for_organization
from admin_views.model_views import SecureModelView
from admin_views.printing import PrintMixin
from models import (
    ApplicationKind,
    Certificate,
    ChangeField,
    Level,
    NumberSegment,
    Occupation,
    Organization,
    Person,
    User,
    db,
)
from models.base import format_local
from models.certificate import CertificateStatus, PrintStatus
from models.org import ISSUING_KINDS, OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.business import certificate_history, check_may_apply
from workflows.certificate import CERTIFICATE, state_label
from workflows.printing import PRINT, business_print_clause
from workflows.privacy import mask_id_number
from workflows.search import MAX_TERM, TermKind, starts_with
from workflows.visibility import visible

MAX_ID = 2**31 - 1  # beyond any row id, and beyond what SQLite binds without overflowing


def _holder(view, context, model, name):
    """姓名/身份证号 in one cell; the list masks the number (issue 17), the details page has it in full."""
    return f"{model.person.name} {mask_id_number(model.person.id_number)}"


def _employer(view, context, model, name):
    return model.person.employer_display


def _level(view, context, model, name):
    return model.level.name if model.level else "-"


def _print_status(view, context, model, name):
    if model.print_status == PrintStatus.printed and model.printed_at:
        by = view.printed_by(model)
        return f"{model.print_status.label}（{format_local(model.printed_at)}{' ' + by if by else ''}）"
    return model.print_status.label


def _links(view, certificates):
    if not certificates:
        return "-"
    return Markup("、").join(
        Markup('<a href="{}" class="certificate-link">{}</a>').format(view.get_url(".details_view", id=c.id), c.number)
        for c in certificates
    )


def _replaces(view, context, model, name):
    return _links(view, view.related(Certificate.id == model.replaces_id) if model.replaces_id else [])


def _replaced_by(view, context, model, name):
    return _links(view, view.related(Certificate.replaces_id == model.id))


def _persons_where(*predicates):
    return Certificate.person_id.in_(select(Person.id).where(*predicates))


# -- filters (证书库: 发证机构, 职业(工种), 等级, 证书状态, 发证日期) ---------------------------------
# Every filter is a predicate on an indexed column of the certificate itself (ids, or a subquery
# for the issuer's name), so filtering never joins and never walks a million rows. A value of the
# wrong type (letters for an id or a date) fails ``clean`` with ValueError: Flask-Admin then
# drops the filter and flashes ``get_invalid_value_msg`` instead of failing.
class IdEqualFilter(sqla_filters.FilterEqual):
    """An id chosen from a select whose options are read per request (``load_options``)."""

    def __init__(self, column, name, url_key, load_options):
        super().__init__(column, name)
        self.url_key = url_key
        self.load_options = load_options

    def clean(self, value):
        ident = int(value)
        if not 0 < ident <= MAX_ID:
            raise ValueError(value)
        return ident

    def operation(self):
        return "等于"


class IssuerNameFilter(sqla_filters.BaseSQLAFilter):
    """发证机构 by the start of its name (an indexed prefix, not ``%…%``)."""

    url_key = "issuer_name"

    def __init__(self):
        super().__init__(Certificate.issuer_id, "发证机构")

    def clean(self, value):
        term = (value or "").strip().strip("%_")
        if not term or len(term) > MAX_TERM:
            raise ValueError(value)
        return term

    def apply(self, query, value, alias=None):
        names = select(Organization.id).where(starts_with(Organization.name, value))
        return query.filter(Certificate.issuer_id.in_(names))

    def operation(self):
        return "名称开头是"


class StatusFilter(sqla_filters.EnumEqualFilter):
    url_key = "status"

    def __init__(self):
        super().__init__(Certificate.status, "证书状态", options=[(s.value, s.label) for s in CertificateStatus])

    def clean(self, value):
        return CertificateStatus(value)  # ValueError, where Flask-Admin's enum filter raises KeyError (a 500)

    def operation(self):
        return "等于"


class DateFromFilter(sqla_filters.DateGreaterFilter):
    url_key = "issued_from"

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= value)

    def operation(self):
        return "不早于"


class DateToFilter(sqla_filters.DateSmallerFilter):
    url_key = "issued_to"

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) <= value)

    def operation(self):
        return "不晚于"


class DateRangeFilter(sqla_filters.DateBetweenFilter):
    url_key = "issued_between"

    def operation(self):
        return "介于"


def _issuer_options():
    """Issuing organizations this user may see (the province: all; an authority: its own)."""
    stmt = select(Organization.id, Organization.name).where(Organization.kind.in_(ISSUING_KINDS))
    return db.session.execute(visible(current_user, stmt, Organization).order_by(Organization.code)).all()


def _occupation_options():
    return db.session.execute(select(Occupation.id, Occupation.name).order_by(Occupation.code)).all()


def _level_options():
    return db.session.execute(select(Level.id, Level.name).order_by(Level.code)).all()


def filter_options(load) -> list[tuple[str, str]]:
    """A select filter's options, read through visibility and kept for FILTER_OPTIONS_SECONDS:
    every list page offers them, few open them, and a new institution or occupation appears
    within that time (issue 16 "Served": three queries less per page)."""
    return kept_for_organization(("filter options", load), "FILTER_OPTIONS_SECONDS",
                                 lambda: [(str(value), label) for value, label in load()])


def certificate_filters() -> list:
    """New instances per view: a filter keeps per-view state once bound."""
    return [
        IdEqualFilter(Certificate.issuer_id, "发证机构", "issuer", _issuer_options),
        IssuerNameFilter(),
        IdEqualFilter(Certificate.occupation_id, "职业(工种)", "occupation", _occupation_options),
        IdEqualFilter(Certificate.level_id, "等级", "level", _level_options),
        StatusFilter(),
        DateRangeFilter(Certificate.issue_date, "发证日期"),
        DateFromFilter(Certificate.issue_date, "发证日期"),
        DateToFilter(Certificate.issue_date, "发证日期"),
    ]


class ReadableFilters:
    """Flask-Admin filters with readable URL keys (``url_key``: ?flt_status=…), select options read
    per request (``load_options``) and a Chinese message for a value that does not parse."""

    def get_filter_arg(self, index, flt):
        return getattr(flt, "url_key", None) or super().get_filter_arg(index, flt)

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()  # copies: filling them in touches no shared state
        for items in (groups or {}).values():
            for item in items:
                load = getattr(self._filters[item["index"]], "load_options", None)
                if load is not None:
                    item["options"] = filter_options(load)
        return groups

    def get_invalid_value_msg(self, value, filter):
        return f"筛选条件「{filter.name}」的值「{str(value)[:MAX_TERM]}」无效，已忽略"


class CertificateColumns(ElectronicZipMixin, ReadableFilters):
    """What both certificate views show and how they search and filter: declarations only; every
    one offers 下载电子证书 on a valid row and 下载电子证书(压缩包) of a selection (issue 19)."""

    details_template = "certificate/details.html"
    optional_reason = True  # 注销 / 作废 … may say why even where the table does not require it
    column_list = ("number", "holder", "employer", "occupation", "level", "issuer", "issue_date", "status",
                   "print_status")
    column_details_list = ("number", "status", "person_name", "id_number", "employer", "occupation", "level",
                           "issuer", "batch", "issue_date", "valid_until", "print_status", "endorsement_count",
                           "replaces", "replaced_by")
    column_labels = {
        "number": "证书编号", "holder": "姓名/身份证号", "employer": "工作单位", "occupation": "职业(工种)",
        "level": "等级", "issuer": "发证机构", "issue_date": "发证日期", "status": "证书状态",
        "print_status": "打印状态", "batch": "批次", "valid_until": "有效期至", "endorsement_count": "签注次数",
        "replaces": "补办前证书", "replaced_by": "补办后证书", "person_name": "姓名", "id_number": "身份证号",
    }
    column_formatters = {"holder": _holder, "employer": _employer, "level": _level, "print_status": _print_status}
    column_formatters_detail = {
        **column_formatters,
        "person_name": lambda v, c, m, n: m.person.name,
        "id_number": lambda v, c, m, n: m.person.id_number,
        "valid_until": lambda v, c, m, n: m.valid_until or "-",
        "replaces": _replaces,
        "replaced_by": _replaced_by,
    }
    column_sortable_list = ("number", "issue_date")
    column_default_sort = ("id", True)
    search_hint = "证书编号、身份证号或姓名"
    search_rules = {
        TermKind.certificate_number: lambda term: Certificate.number == term,
        TermKind.id_number: lambda term: _persons_where(Person.id_number == term),
        TermKind.phone: lambda term: _persons_where(Person.phone == term),
        TermKind.code: lambda term: starts_with(Certificate.number, term),
        TermKind.text: lambda term: _persons_where(starts_with(Person.name, term)),
    }

    export_filename = "证书"
    export_columns = [
        ("证书编号", lambda r: r.number, True),
        ("姓名", lambda r: r.person_name, True),
        ("身份证号", lambda r: r.id_number, True),
        ("工作单位", lambda r: r.employer, True),
        ("职业(工种)", lambda r: r.occupation, True),
        ("等级", lambda r: r.level or "", True),
        ("发证机构", lambda r: r.issuer, True),
        ("发证日期", lambda r: r.issue_date, False),
        ("证书状态", lambda r: r.status.label, True),
        ("打印状态", lambda r: r.print_status.label, True),
    ]

    def export_query(self, query):
        """Plain rows of the ten exported columns (100,000 certificates: 11.2 → ~7 s). Aliased
        joins, so they never meet a join the list made for its own search or sort; the employer
        is the current one, as Person.employer_display shows it (SPEC §3)."""
        person, employer, occupation, level, issuer = (aliased(Person), aliased(Organization),
                                                      aliased(Occupation), aliased(Level), aliased(Organization))
        return (query.with_entities(
                    Certificate.number, person.name.label("person_name"), person.id_number,
                    func.coalesce(employer.name, person.employer_name, "").label("employer"),
                    occupation.name.label("occupation"), level.name.label("level"), issuer.name.label("issuer"),
                    Certificate.issue_date, Certificate.status, Certificate.print_status)
                .join(person, person.id == Certificate.person_id)
                .outerjoin(employer, employer.id == person.employer_id)
                .join(occupation, occupation.id == Certificate.occupation_id)
                .outerjoin(level, level.id == Certificate.level_id)
                .join(issuer, issuer.id == Certificate.issuer_id))

    def __init__(self, *, kinds, **kwargs):
        self.kinds = kinds
        self.permission = Permission.certificate_view
        self.column_filters = certificate_filters()
        super().__init__(Certificate, **kwargs)

    def get_query(self):
        return super().get_query().options(
            joinedload(Certificate.person).joinedload(Person.employer),
            joinedload(Certificate.occupation), joinedload(Certificate.level), joinedload(Certificate.issuer),
        )

    # -- the details page ------------------------------------------------------------------------
    def related(self, *predicates) -> list:
        """Certificates linked by a reissue, through visibility: a link never names a hidden row."""
        return self.visible_query().filter(*predicates).order_by(Certificate.id).all()

    def get_list(self, *args, **kwargs):
        count, data = super().get_list(*args, **kwargs)
        if isinstance(data, list):  # the page's printers in one query, not one per account (打印状态)
            self._load_printers(c.printed_by_id for c in data)
        return count, data

    @staticmethod
    def _load_printers(ids) -> dict[int, str]:
        names = g.setdefault("printer_names", {})
        missing = {i for i in ids if i is not None} - names.keys()
        if missing:
            names.update(db.session.execute(select(User.id, User.name).where(User.id.in_(missing))).all())
        return names

    def printed_by(self, certificate) -> str:
        if certificate.printed_by_id is None:
            return ""
        return self._load_printers([certificate.printed_by_id]).get(certificate.printed_by_id, "")

    def business_log(self, certificate):
        """业务日志: the certificate's transitions and its applications' review steps, oldest first."""
        return certificate_history(db.session, current_user, certificate)

    @staticmethod
    def state_label(value) -> str:
        return state_label(value)


class CertificateView(CertificateColumns, PrintMixin, WorkflowModelView):
    """证书查看 (003 §六.2, §七.2): certificates the institution issued, or the authority's
    institutions issued (SPEC §1). Institutions print them (打印证书) and set print status by
    hand (标记已打印 / 标记未打印, from ``PRINT``); authorities only read."""

    workflow = PRINT
    details_label = "查看详情"  # 003 §六.2: 查看详情 注销 变更

    def row_links(self, row):
        """打印证书, then 注销 / 变更 (申请业务's forms) where this user may file them for the row now."""
        links = super().row_links(row)
        if may_open("business_apply"):
            for kind, label in ((ApplicationKind.cancel, "注销"), (ApplicationKind.change, "变更")):
                try:
                    check_may_apply(current_user, row, kind)
                except WorkflowError:
                    continue
                links.append((label, self.row_url(f"business_apply.{kind.value}_view", row.id, param="certificate_id"),
                              f"apply-{kind.value}"))
        return links


def _business(view, context, model, name):
    application = view.business(model)
    if application is None:
        return "-"
    return application.kind.label


def _content(view, context, model, name):
    """What the applicant filled in (003 §六.3 也可查看发起业务时上传、填写的信息)."""
    application = view.business(model)
    if application is None:
        return "-"
    if application.kind == ApplicationKind.reissue:
        text = f"遗失补办，原证书编号 {model.replaces.number if model.replaces is not None else ''}"
    elif ChangeField.name in application.fields:
        text = f"姓名由「{application.old_name}」变更为「{application.new_name}」"
    else:
        text = "变更"
    if application.explanation:
        text += f"；申请说明：{application.explanation}"
    return text


def _approved_at(view, context, model, name):
    application = view.business(model)
    return format_local(application.reviewed_at) if application is not None and application.reviewed_at else "-"


class BusinessPrintView(CertificateColumns, PrintMixin, WorkflowModelView):
    """业务打印 (003 §六.3): approved name changes and reissues of the institution's certificates."""

    workflow = PRINT
    details_template = "certificate/details.html"
    column_list = ("number", "holder", "business", "content", "approved_at", "occupation", "print_status")
    column_labels = {**CertificateColumns.column_labels, "business": "业务类型", "content": "业务内容",
                     "approved_at": "审核通过时间"}
    column_formatters = {**CertificateColumns.column_formatters, "business": _business, "content": _content,
                         "approved_at": _approved_at}
    tabs = [
        ("unprinted", "待打印", lambda: Certificate.print_status == PrintStatus.unprinted),
        ("printed", "已打印", lambda: Certificate.print_status == PrintStatus.printed),
    ]
    export_columns: list = []

    def __init__(self, **kwargs):
        super().__init__(kinds=tuple(ISSUING_KINDS), **kwargs)
        self.permission = Permission.certificate_print

    def scope_query(self, query):
        return query.where(business_print_clause())

    def get_query(self):
        return super().get_query().options(joinedload(Certificate.business_print_application),
                                           joinedload(Certificate.replaces))  # a reissue's 原证书编号

    @staticmethod
    def business(certificate):
        """The approved application that put a row on 业务打印."""
        return certificate.business_print_application




class CertificateLibraryView(CertificateColumns, WorkflowModelView):
    """证书库 (003 §八.2): every certificate; 注销, 激活 and 作废 from ``CERTIFICATE``."""

    workflow = CERTIFICATE


def _segment_occupation(view, context, model, name):
    return view.names()[0].get(model.occupation_code, model.occupation_code)


def _segment_level(view, context, model, name):
    return view.names()[1].get(model.level_code, "无等级")


def _segment_position(view, context, model, name):
    return f"{model.position:04d}"


class SegmentView(SecureModelView):
    """证书号段维护: only segments that have issued numbers (003 §八.5)."""

    kinds = (OrgKind.province,)
    permission = Permission.segment_manage
    can_view_details = False
    column_display_actions = False  # a number segment is only read
    column_list = ("year", "occupation_code", "level_code", "region_code", "prefix", "range", "position")
    column_labels = {"year": "年份", "occupation_code": "职业(工种)", "level_code": "等级", "region_code": "地区代码",
                     "prefix": "证书代码", "range": "证书号段范围", "position": "当前号段"}
    column_formatters = {"occupation_code": _segment_occupation, "level_code": _segment_level,
                         "position": _segment_position, "range": lambda v, c, m, n: m.range_label,
                         "prefix": lambda v, c, m, n: m.prefix}
    column_sortable_list = ("year", "region_code", "occupation_code", "position")
    column_default_sort = [("year", True), ("region_code", False), ("occupation_code", False)]
    column_filters = ("year", "region_code")

    def __init__(self, **kwargs):
        super().__init__(NumberSegment, **kwargs)

    def scope_query(self, query):
        return query.where(NumberSegment.position > 0)

    def names(self):
        """Occupation and level names by code, read once per request (not once per row)."""
        if "segment_names" not in g:
            g.segment_names = (dict(db.session.execute(select(Occupation.code, Occupation.name)).all()),
                               dict(db.session.execute(select(Level.code, Level.name)).all()))
        return g.segment_names


def register(admin) -> None:
    issuers_and_reviewers = (OrgKind.institution, OrgKind.direct_institution, OrgKind.authority)
    admin.add_view(CertificateView(kinds=issuers_and_reviewers, name="证书查看", category="证书管理",
                                   endpoint="certificate"))
    admin.add_view(CertificateLibraryView(kinds=(OrgKind.province,), name="证书库", category="证书管理",
                                          endpoint="certificate_library"))
    admin.add_view(SegmentView(name="证书号段维护", endpoint="segment"))
