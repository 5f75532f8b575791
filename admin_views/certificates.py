"""证书管理 / 证书库 (003 §六.2, §七.2, §八.2) and 证书号段维护 (003 §八.5)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from admin_views.base import SecureModelView
from models import Certificate, Level, NumberSegment, Occupation, Person, TransitionLog, db
from models.org import OrgKind
from models.user import Permission
from workflows.search import TermKind, prefix_pattern


def _holder(view, context, model, name):
    return f"{model.person.name} {model.person.id_number}"


def _employer(view, context, model, name):
    return model.person.employer_display


def _level(view, context, model, name):
    return model.level.name if model.level else "-"


def _persons_where(*predicates):
    return Certificate.person_id.in_(select(Person.id).where(*predicates))


class CertificateView(SecureModelView):
    """Certificates the user may see (SPEC §1): issued by the institution, by the authority's
    institutions, or all for the province (证书库)."""

    details_template = "certificate/details.html"
    column_list = ("number", "holder", "employer", "occupation", "level", "issuer", "issue_date", "status",
                   "print_status")
    column_details_list = ("number", "holder", "employer", "occupation", "level", "issuer", "batch", "issue_date",
                           "valid_until", "status", "print_status", "endorsement_count", "replaces")
    column_labels = {
        "number": "证书编号", "holder": "姓名/身份证号", "employer": "工作单位", "occupation": "职业(工种)",
        "level": "等级", "issuer": "发证机构", "issue_date": "发证日期", "status": "证书状态",
        "print_status": "打印状态", "batch": "批次", "valid_until": "有效期至", "endorsement_count": "签注次数",
        "replaces": "补办前证书",
    }
    column_formatters = {"holder": _holder, "employer": _employer, "level": _level}
    column_formatters_detail = column_formatters
    column_sortable_list = ("number", "issue_date")
    column_default_sort = ("id", True)
    search_hint = "证书编号、身份证号或姓名"
    search_rules = {
        TermKind.certificate_number: lambda term: Certificate.number == term,
        TermKind.id_number: lambda term: _persons_where(Person.id_number == term),
        TermKind.phone: lambda term: _persons_where(Person.phone == term),
        TermKind.code: lambda term: Certificate.number.like(prefix_pattern(term), escape="\\"),
        TermKind.text: lambda term: _persons_where(Person.name.like(prefix_pattern(term), escape="\\")),
    }

    export_filename = "证书"
    export_columns = [
        ("证书编号", lambda c: c.number, True),
        ("姓名", lambda c: c.person.name, True),
        ("身份证号", lambda c: c.person.id_number, True),
        ("工作单位", lambda c: c.person.employer_display, True),
        ("职业(工种)", lambda c: c.occupation.name, True),
        ("等级", lambda c: c.level.name if c.level else "", True),
        ("发证机构", lambda c: c.issuer.name, True),
        ("发证日期", lambda c: c.issue_date, False),
        ("证书状态", lambda c: c.status.label, True),
        ("打印状态", lambda c: c.print_status.label, True),
    ]

    def __init__(self, *, kinds, **kwargs):
        self.kinds = kinds
        self.permission = Permission.certificate_view if kinds != "individual" else None
        super().__init__(Certificate, **kwargs)

    def get_query(self):
        return super().get_query().options(
            joinedload(Certificate.person).joinedload(Person.employer),
            joinedload(Certificate.occupation), joinedload(Certificate.level), joinedload(Certificate.issuer),
        )

    def business_log(self, certificate):
        """业务日志: every transition recorded against this certificate."""
        return db.session.scalars(
            select(TransitionLog).options(joinedload(TransitionLog.actor))
            .where(TransitionLog.object_type == "certificate", TransitionLog.object_id == certificate.id)
            .order_by(TransitionLog.id)
        ).all()


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
        occupations = dict(db.session.execute(select(Occupation.code, Occupation.name)).all())
        levels = dict(db.session.execute(select(Level.code, Level.name)).all())
        return occupations, levels


def register(admin) -> None:
    issuers_and_reviewers = (OrgKind.institution, OrgKind.direct_institution, OrgKind.authority)
    admin.add_view(CertificateView(kinds=issuers_and_reviewers, name="证书查看", category="证书管理",
                                   endpoint="certificate"))
    admin.add_view(CertificateView(kinds=(OrgKind.province,), name="证书库", category="证书管理",
                                   endpoint="certificate_library"))
    admin.add_view(SegmentView(name="证书号段维护", endpoint="segment"))
