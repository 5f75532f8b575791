"""学员基本信息 (000 §二(二), 001 信息变更): the enterprise's 培训报名 → 学员基本信息（企业） — its
employees with their certificates; click 姓名 → 人员详细信息 → 变更申请 / 补办 — and the
individual's 我的基本信息 — their own person record, certificates and applications.

Both are the same page over ``Person``: rows through ``workflows.visibility`` (an enterprise sees
the persons it employs, an individual only themself), so another enterprise's employee or
another person is a 404 like a row that does not exist. 变更申请 and 补办 open the existing
certificate-business forms (申请业务, ``admin_views.business.ApplyView``): nothing is written here.
"""

from __future__ import annotations

from flask import abort, request, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from admin_views.access import may_open
from admin_views.ecert import DOWNLOAD_LABEL, ElectronicDownloadMixin, offered
from admin_views.model_views import SecureModelView
from models import ApplicationItem, ApplicationKind, Certificate, CertificateApplication, Person, db
from models.base import format_local
from models.certificate import CertificateStatus
from models.org import OrgKind
from workflows.business import may_move, offered_kinds
from workflows.privacy import mask_id_number, mask_phone
from workflows.search import TermKind, starts_with
from workflows.visibility import visible

CERTIFICATE_STATUS_CSS = {CertificateStatus.valid: "badge-success", CertificateStatus.cancelled: "badge-secondary",
                          CertificateStatus.voided: "badge-dark"}


def _name_link(view, context, model, name):
    """姓名 opens 人员详细信息 (000 §二(二): 点击人员"姓名"，进入人员详细信息)."""
    return Markup('<a class="person-name" href="{}">{}</a>').format(
        view.get_url(".details_view", id=model.id), model.name)


def _certificates(view, context, model, name):
    """The person's certificates, one a line: number, 职业(工种) and level, status."""
    lines = [Markup('<div class="text-nowrap">{} <span class="text-muted small">{}{}</span> '
                    '<span class="badge {}">{}</span></div>').format(
        c.number, c.occupation.name, f" {c.level.name}" if c.level else "", CERTIFICATE_STATUS_CSS.get(c.status, ""),
        c.status.label) for c in sorted(model.certificates, key=lambda c: c.number)]
    return Markup("").join(lines) if lines else Markup('<span class="text-muted">暂无证书</span>')


def _has_certificate(term):
    return Person.id.in_(select(Certificate.person_id).where(Certificate.number == term))


class PersonView(ElectronicDownloadMixin, SecureModelView):
    """学员基本信息: the persons this user sees; 人员详细信息 with their certificates and applications."""

    details_template = "person/details.html"
    own_record = False
    column_list = ("name", "id_number", "phone", "certificates")
    column_labels = {"name": "姓名", "id_number": "身份证号", "gender": "性别", "birth_date": "出生日期",
                     "phone": "手机号", "employer": "工作单位", "certificates": "证书",
                     "last_employer_change_at": "最近一次单位变更时间"}
    column_details_list = ("name", "id_number", "gender", "birth_date", "phone", "employer",
                           "last_employer_change_at")
    column_formatters = {"name": _name_link, "certificates": _certificates,  # numbers masked (issue 17 item 15)
                         "id_number": lambda v, c, m, n: mask_id_number(m.id_number),
                         "phone": lambda v, c, m, n: mask_phone(m.phone)}
    column_formatters_detail = {"employer": lambda v, c, m, n: m.employer_display or "-",
                                "last_employer_change_at": lambda v, c, m, n: format_local(m.last_employer_change_at)
                                if m.last_employer_change_at else "-"}
    column_sortable_list = ("name",)
    column_default_sort = ("id", True)
    search_hint = "姓名、身份证号或证书编号"
    search_rules = {
        TermKind.certificate_number: _has_certificate,
        TermKind.id_number: lambda term: Person.id_number == term,
        TermKind.text: lambda term: starts_with(Person.name, term),
    }

    def __init__(self, **kwargs):
        super().__init__(Person, **kwargs)

    def get_query(self):
        # every certificate of a person an enterprise, a school or the holder sees is visible to
        # them too (SPEC §1: "its employed persons and their certificates")
        return super().get_query().options(
            selectinload(Person.certificates).joinedload(Certificate.occupation),
            selectinload(Person.certificates).joinedload(Certificate.level))

    # -- 人员详细信息 -----------------------------------------------------------------------
    def person_certificates(self, person: Person) -> list[Certificate]:
        stmt = (select(Certificate).options(joinedload(Certificate.occupation), joinedload(Certificate.level),
                                            joinedload(Certificate.issuer))
                .where(Certificate.person_id == person.id).order_by(Certificate.issue_date.desc(), Certificate.id))
        return list(db.session.scalars(visible(current_user, stmt, Certificate)))

    def person_applications(self, person: Person) -> list[CertificateApplication]:
        """证书业务 of this holder the user sees, newest first: 当原用户中显示审批通过后，即变更完成 (001)."""
        stmt = (select(CertificateApplication)
                .options(selectinload(CertificateApplication.items).joinedload(ApplicationItem.certificate))
                .where(CertificateApplication.person_id == person.id).order_by(CertificateApplication.id.desc()))
        return list(db.session.scalars(visible(current_user, stmt, CertificateApplication)))

    def application_url(self, application: CertificateApplication) -> str | None:
        return url_for("application.details_view", id=application.id) if may_open("application") else None

    def certificate_links(self, certificate: Certificate) -> list[tuple[str, str, str]]:
        """下载电子证书 of a valid certificate (issue 19), then 变更申请 / 补办 as 申请业务 offers them
        to this user: a school only moves a student to an enterprise (000 §二(二).4)."""
        if certificate.status != CertificateStatus.valid:
            return []
        links = [(DOWNLOAD_LABEL, self.get_url(".ecert_view", certificate_id=certificate.id, url=request.full_path),
                  "ecert-download")] if offered(certificate) else []
        if not may_open("business_apply") or not may_move(current_user, certificate):
            return links
        words = {ApplicationKind.change: "变更申请", ApplicationKind.reissue: "补办"}
        return links + [(words[kind], url_for(f"business_apply.{kind.value}_view", certificate_id=certificate.id),
                         f"apply-{kind.value}") for kind in offered_kinds(current_user) if kind in words]


class StudentView(PersonView):
    """培训报名 → 学员基本信息（企业）: the persons the enterprise (or school) employs."""

    kinds = (OrgKind.enterprise, OrgKind.school)


class MyInfoView(PersonView):
    """我的基本信息: an individual's own person record (000 §二(二)(2), 001)."""

    kinds = ()
    individual = True
    can_view_details = True

    own_record = True  # the page is the one record: no 列表 / 详情 tabs

    @expose("/")
    def index_view(self):
        """我的基本信息 opens the individual's own record (000 §二(二)(2)); ``details/?id=`` of any
        other person is a 404 through visibility."""
        if not current_user.person_id:
            abort(404)
        return self.render(self.details_template, model=self.get_one(current_user.person_id),
                           details_columns=self._details_columns, get_value=self.get_detail_value,
                           return_url=self.get_url(".index_view"))


def register(admin) -> None:
    admin.add_view(StudentView(name="学员基本信息（企业）", category="培训报名", endpoint="student"))
    admin.add_view(MyInfoView(name="我的基本信息", endpoint="my_info"))
