"""企业信息 (000 §二(一), 002 §3.1.5, 004 §3.7; SPEC §5.4): the enterprise's own page, its
修改企业信息 form and 变更申请 (企业名称变更 / 所属地市变更); 企业信息变更审核 for the city
authorities (调出市 / 调入市) and the province; 人员管理, the enterprise administrator's
second-level users.

The rules are in ``workflows.enterprise`` (人员管理: ``workflows.staff``); this module renders and
routes. Every row is loaded through ``workflows.visibility``: a foreign or forged id is a 404.
"""

from __future__ import annotations

from types import SimpleNamespace

from flask import abort, flash, make_response, redirect, request
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.menu import MenuLink
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload
from wtforms import PasswordField, StringField, TextAreaField

from admin_views.access import AccessMixin, client_ip, user_may_enter
from admin_views.actions import AttachmentFilesMixin, WorkflowModelView, perform, submit_form, transition_logs
from admin_views.forms import TypedForm
from admin_views.model_views import SecureModelView
from models import (
    Attachment,
    EnterpriseChange,
    EnterpriseChangeStatus,
    Organization,
    TransitionLog,
    User,
    db,
)
from models.org import OrgKind, OrgStatus
from models.user import Permission, Role
from workflows.accounts import LICENCE, QUALIFICATION
from workflows.engine import BulkResult, RowResult
from workflows.enterprise import (
    ENTERPRISE_CHANGE,
    city_authorities,
    editable_fields,
    has_certificates,
    open_change_of,
    registrations_in_progress,
    start_change,
    update_enterprise,
)
from workflows.organizations import city_names
from workflows.search import TermKind, starts_with
from workflows.staff import create_user, remove_user, reset_user_password, update_user
from workflows.visibility import NotFoundError, get_visible, visible

S = EnterpriseChangeStatus
ENTERPRISE = (OrgKind.enterprise,)
CATEGORY = "企业信息"
# the bulk 审核通过 / 审核不通过 of 企业信息变更审核: each reviewer's step of either kind, from the table
REJECTIONS = tuple(t.name for t in ENTERPRISE_CHANGE.transitions.values() if t.needs_reason)
APPROVALS = tuple(t.name for t in ENTERPRISE_CHANGE.transitions.values() if not t.needs_reason)
REJECT = SimpleNamespace(name="reject", label="审核不通过", reason_label="审核不通过原因")
BULK_GROUPS = {"approve": APPROVALS, REJECT.name: REJECTIONS}  # the list's two actions (not transitions)


# -- forms: the fields each page posts (workflows.enterprise and workflows.users judge them) --------
class EnterpriseForm(TypedForm):
    """修改企业信息: 企业名称 and 所属地市 are posted only while they may be edited here."""

    name = StringField()
    region_code = StringField()
    address = StringField()
    postcode = StringField()
    contact = StringField()
    phone = StringField()
    qualification_no = StringField()


class ChangeRequestForm(TypedForm):
    """变更申请: 想要变更的名称 or 想要变更的地市, and 申请说明."""

    new_name = StringField()
    new_region_code = StringField()
    explanation = TextAreaField()


class StaffForm(TypedForm):
    """人员管理's 新增 (every field) and 修改 (姓名, 手机号)."""

    name = StringField()
    username = StringField()
    phone = StringField()
    password = PasswordField()
    password2 = PasswordField()


def city_label(region_code: str | None, authority: Organization | None = None) -> str:
    """所属地市 as people say it (济南市); the authority's name when the city list is missing."""
    if not region_code:
        return "-"
    return city_names().get(region_code) or (authority.name if authority is not None else region_code)


def _changes_of(org: Organization) -> list[EnterpriseChange]:
    stmt = select(EnterpriseChange).options(joinedload(EnterpriseChange.from_authority),
                                            joinedload(EnterpriseChange.to_authority)) \
        .where(EnterpriseChange.enterprise_id == org.id).order_by(EnterpriseChange.id.desc())
    return list(db.session.scalars(visible(current_user, stmt, EnterpriseChange)))


def _images_of(org_id: int) -> dict[str, list[Attachment]]:
    stmt = select(Attachment).where(Attachment.owner_type == "organization", Attachment.owner_id == org_id,
                                    Attachment.purpose.in_((LICENCE, QUALIFICATION))).order_by(Attachment.id)
    rows = db.session.scalars(visible(current_user, stmt, Attachment)).all()
    return {purpose: [a for a in rows if a.purpose == purpose] for purpose in (LICENCE, QUALIFICATION)}


# -- 企业信息 ------------------------------------------------------------------------------------
class EnterpriseInfoView(AccessMixin, AttachmentFilesMixin, BaseView):
    """企业信息: 查看 (with the 证明材料, click to enlarge), 修改企业信息, 变更申请 and its list."""

    kinds = ENTERPRISE
    permission = Permission.enterprise_manage

    def _org(self) -> Organization:
        try:
            return get_visible(db.session, current_user, Organization, current_user.organization_id)
        except NotFoundError:
            abort(404)

    def _page(self, org: Organization, **extra):
        changes = _changes_of(org)
        return {
            "org": org, "city": city_label(org.region_code, org.parent), "org_images": _images_of(org.id),
            "changes": changes, "latest": changes[0] if changes else None, "open_change": open_change_of(db.session, org),
            "certified": has_certificates(db.session, org), "busy": registrations_in_progress(db.session, org),
            "LICENCE": LICENCE, "QUALIFICATION": QUALIFICATION, "city_label": city_label, **extra,
        }

    @expose("/")
    def index(self):
        org = self._org()
        return self.render("enterprise/info.html", **self._page(org))

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """修改企业信息: the direct fields; 企业名称/所属地市 too while the enterprise has no certificates."""
        org = self._org()
        form = EnterpriseForm()

        def save():
            changed = update_enterprise(db.session, current_user, org, form.typed(), ip=client_ip())
            return f"企业信息已保存：修改了{'、'.join(changed)}" if changed else "企业信息未改变"

        saved, errors, values = submit_form(save, "企业信息未保存，请按提示修改")
        if saved:
            return redirect(self.get_url(".index"))
        if values is not None:
            org = self._org()
        fields = editable_fields(db.session, org)
        return self.render("enterprise/edit.html", errors=errors, values=values, fields=fields,
                           cities=city_authorities(db.session), **self._page(org))

    @expose("/change/", methods=("GET", "POST"))
    def change_view(self):
        """变更申请 (图5, 图6): 想要变更的名称 or 想要变更的地市, the other left empty."""
        org = self._org()
        form = ChangeRequestForm()
        values = None
        if form.is_submitted():
            values = form.typed()

            def change():
                change = start_change(db.session, current_user, org, values)
                return f"{change.kind.label}申请已提交，等待{change.from_authority.name}审核"

            if perform(change):
                return redirect(self.get_url(".index"))
            org = self._org()
        cities = [c for c in city_authorities(db.session) if c.region_code != org.region_code]
        return self.render("enterprise/change.html", values=values, cities=cities, **self._page(org))


# -- 企业信息变更审核 --------------------------------------------------------------------------------
def changes_awaiting(user) -> list[int]:
    """The changes whose next step is ``user``'s, as the engine answers it row by row: an authority
    sees a city change both as 调出市 and 调入市, and waits only where the step is its own. Few rows
    are ever pending, so they are read and asked (待审核, and 首页's count)."""
    states = ENTERPRISE_CHANGE.awaiting(user, *APPROVALS)
    if not states:
        return []
    rows = db.session.scalars(visible(user, select(EnterpriseChange).where(EnterpriseChange.status.in_(states)),
                                      EnterpriseChange))
    return [row.id for row in rows if any(t.name in APPROVALS for t in ENTERPRISE_CHANGE.available(user, row))]


def _waiting_for_me():
    """待审核: the rows whose next step is this reviewer's."""
    return EnterpriseChange.id.in_(changes_awaiting(current_user))


def _reviewed_by_me():
    """已审核: the rows this reviewer's organization has approved or rejected."""
    return EnterpriseChange.id.in_(select(TransitionLog.object_id).where(
        TransitionLog.object_type == ENTERPRISE_CHANGE.object_type,
        TransitionLog.organization_id == current_user.organization_id))


def _enterprise_name(view, context, model, name):
    return model.enterprise.name if model.enterprise is not None else model.old_name


def _reason(view, context, model, name):
    if model.reject_reason and model.status == S.rejected:
        return Markup('<span class="reason-red">{}</span>').format(model.reject_reason)
    return "-"


def _city(attr_code, attr_org):
    def fmt(view, context, model, name):
        return city_label(getattr(model, attr_code), getattr(model, attr_org))

    return fmt


def _by_enterprise(*predicates):
    return EnterpriseChange.enterprise_id.in_(select(Organization.id).where(*predicates))


class EnterpriseChangeReviewView(AttachmentFilesMixin, WorkflowModelView):
    """企业信息变更审核: 企业名称变更 (主管部门 → 省厅) and 所属地市变更 (调出市 → 调入市)."""

    workflow = ENTERPRISE_CHANGE
    kinds = (OrgKind.authority, OrgKind.province)
    details_template = "enterprise/change_details.html"
    column_list = ("enterprise_name", "kind", "content", "status", "created_at", "reviewed_at", "reject_reason")
    column_details_list = ("enterprise_name", "credit_code", "kind", "old_name", "new_name", "old_city", "new_city",
                           "explanation", "applicant_user", "status", "created_at", "reviewed_at", "reject_reason")
    column_labels = {
        "enterprise_name": "企业名称", "credit_code": "统一社会信用代码", "kind": "类型", "content": "变更内容",
        "status": "状态", "created_at": "申请时间", "reviewed_at": "审核时间", "reject_reason": "审核不通过原因",
        "old_name": "现在企业名称", "new_name": "想要变更的名称", "old_city": "现在所属地市",
        "new_city": "想要变更的地市", "explanation": "申请说明", "applicant_user": "申请人",
    }
    column_formatters = {
        "enterprise_name": _enterprise_name,
        "credit_code": lambda v, c, m, n: m.enterprise.credit_code or "-",
        "content": lambda v, c, m, n: m.content,
        "reject_reason": _reason,
        "old_city": _city("old_region_code", "from_authority"),
        "new_city": lambda v, c, m, n: city_label(m.new_region_code, m.to_authority) if m.new_region_code else "-",
        "new_name": lambda v, c, m, n: m.new_name or "-",
        "applicant_user": lambda v, c, m, n: m.applicant_user.name if m.applicant_user else "-",
    }
    column_formatters_detail = column_formatters
    column_sortable_list = ("created_at", "reviewed_at")
    column_default_sort = ("id", True)
    search_hint = "企业名称或统一社会信用代码"
    search_rules = {
        TermKind.code: lambda term: _by_enterprise(Organization.credit_code == term),
        TermKind.text: lambda term: or_(
            _by_enterprise(starts_with(Organization.name, term)),
            starts_with(EnterpriseChange.old_name, term)),
    }
    tabs = [
        ("pending", "待审核", _waiting_for_me),
        ("reviewed", "已审核", _reviewed_by_me),
        ("all", "全部", None),
    ]

    def __init__(self, **kwargs):
        super().__init__(EnterpriseChange, **kwargs)

    def is_accessible(self):
        # 主管部门: 企业信息管理; 省厅: 机构管理 (the permissions ENTERPRISE_CHANGE asks of each)
        return (user_may_enter(current_user, (OrgKind.authority,), Permission.enterprise_manage)
                or user_may_enter(current_user, (OrgKind.province,), Permission.org_manage))

    def get_query(self):
        return super().get_query().options(joinedload(EnterpriseChange.enterprise),
                                           joinedload(EnterpriseChange.from_authority),
                                           joinedload(EnterpriseChange.to_authority))

    # -- bulk 审核通过 / 审核不通过: each row gets the step that is this reviewer's in its state -------
    def init_actions(self):
        SecureModelView.init_actions(self)  # not one action per transition: two, as the manuals say

    def is_action_allowed(self, name):
        if name in BULK_GROUPS:
            return any(t.name in BULK_GROUPS[name] for t in self.offered_transitions())
        return super().is_action_allowed(name)

    @action("approve", "审核通过", "确定审核通过所选的变更申请？")
    def action_approve(self, ids):
        self._fire_group(APPROVALS, ids, None, "审核通过")

    @action("reject", "审核不通过")
    def action_reject(self, ids):
        return self.ask_more(ids, ".reason_view", transition=REJECT.name)

    def _pick(self, group, obj) -> str:
        """This reviewer's transition of ``group`` for the row now; else one that tells why not."""
        for t in self.workflow.available(current_user, obj):
            if t.name in group and t.manual:
                return t.name
        offered = [t for t in self.offered_transitions() if t.name in group]
        for t in offered:
            if obj.status in t.sources:
                return t.name
        return offered[0].name if offered else group[0]

    def _fire_group(self, group, ids, reason, label):
        rows = self.load_rows(ids)

        def fire_each() -> BulkResult:
            result = BulkResult()
            for raw in ids:
                obj = rows.get(raw)
                if obj is None:
                    result.rows.append(RowResult(raw, f"#{raw}", False, NotFoundError().message))
                    continue
                outcome = self.workflow.fire_many(db.session, current_user, {raw: obj}, [raw],
                                                  self._pick(group, obj), reason)
                result.rows.extend(outcome.rows)
            return result

        done = perform(fire_each)  # each row's refusal is in the result; a stale commit is said by perform
        if not done:
            return
        result = done.value
        category = "success" if not result.failed else ("warning" if result.succeeded else "error")
        flash(f"{label}：{result.summary()}", category)

    def reason_transition(self, name):
        """审核不通过 spans this reviewer's rejection steps: one reason form for all of them."""
        if name == REJECT.name:
            return REJECT if self.is_action_allowed(REJECT.name) else None
        return super().reason_transition(name)

    def fire_with_reason(self, name, ids, reason) -> None:
        if name == REJECT.name:
            self._fire_group(REJECTIONS, ids, reason, REJECT.label)
        else:
            super().fire_with_reason(name, ids, reason)

    # -- the detail page ---------------------------------------------------------------------
    def change_page(self, change: EnterpriseChange) -> dict:
        logs = transition_logs(ENTERPRISE_CHANGE.object_type, change.id)
        return {"logs": logs, "org_images": _images_of(change.enterprise_id), "LICENCE": LICENCE,
                "QUALIFICATION": QUALIFICATION}


# -- 企业列表 ------------------------------------------------------------------------------------
def _enterprise_and_code(view, context, model, name):
    return Markup('{}<br><span class="text-muted small">{}</span>').format(model.name, model.credit_code or "-")


class CityEnterpriseView(SecureModelView):
    """企业管理 › 企业列表: the enterprises and schools (虚拟企业) of the authority's city — those it
    sees (SPEC §1), so an enterprise moved here by a 所属地市变更 is listed at once; the province
    sees every city's. Read only: the enterprise keeps its own 企业信息."""

    kinds = (OrgKind.authority, OrgKind.province)
    column_list = ("name", "kind", "region_code", "contact", "phone", "status", "created_at")
    column_details_list = ("name", "credit_code", "kind", "region_code", "parent", "qualification_no", "contact",
                           "phone", "address", "postcode", "status", "created_at")
    column_labels = {
        "name": "企业名称", "credit_code": "统一社会信用代码", "kind": "类型", "region_code": "所属地市",
        "parent": "主管部门", "qualification_no": "资质证书编号", "contact": "联系人", "phone": "联系电话",
        "address": "通讯地址", "postcode": "邮政编码", "status": "状态", "created_at": "注册时间",
    }
    column_formatters = {
        "name": _enterprise_and_code,
        "kind": lambda v, c, m, n: "企业" if m.kind == OrgKind.enterprise else "学校(虚拟企业)",
        "region_code": lambda v, c, m, n: city_label(m.region_code, m.parent),
        "parent": lambda v, c, m, n: m.parent.name if m.parent is not None else "-",
    }
    column_formatters_detail = {**column_formatters, "name": lambda v, c, m, n: m.name}
    column_sortable_list = ("created_at",)
    column_default_sort = ("id", True)
    search_hint = "企业名称或统一社会信用代码"
    search_rules = {
        TermKind.code: lambda term: Organization.credit_code == term,
        TermKind.text: lambda term: starts_with(Organization.name, term),
    }
    tabs = [
        ("all", "全部", None),
        ("active", "启用", lambda: Organization.status == OrgStatus.active),
        ("pending", "待审核", lambda: Organization.status == OrgStatus.pending),
        ("offline", "下线", lambda: Organization.status == OrgStatus.offline),
    ]

    def __init__(self, **kwargs):
        super().__init__(Organization, **kwargs)

    def row_clause(self):
        """Enterprises and schools only: the authority's own organization and institutions are a 404 here."""
        return Organization.kind.in_((OrgKind.enterprise, OrgKind.school))

    def get_query(self):
        return super().get_query().options(joinedload(Organization.parent))


# -- 人员管理 ------------------------------------------------------------------------------------
class StaffView(AccessMixin, BaseView):
    """人员管理 (002 §3.1.5): 新增, 修改并重置密码, 删除 — only the administrator named at 企业注册."""

    kinds = ENTERPRISE
    permission = Permission.user_manage

    def is_accessible(self):
        return super().is_accessible() and current_user.role == Role.admin

    def _users(self) -> list[User]:
        stmt = select(User).where(User.organization_id == current_user.organization_id, User.is_enabled.is_(True)) \
            .order_by(User.id)
        return list(db.session.scalars(visible(current_user, stmt, User)))

    def _target(self) -> User:
        """The user of the form's ``id``: visible, of this organization, not 删除; else 404."""
        try:
            target = get_visible(db.session, current_user, User, request.values.get("id"))
        except NotFoundError:
            abort(404)
        if target.organization_id != current_user.organization_id or not target.is_enabled:
            abort(404)
        return target

    @expose("/")
    def index(self):
        return self.render("enterprise/staff_list.html", users=self._users())

    def _form_page(self, target, save, saved: str, unsaved: str):
        """新增 / 修改: POST saves through ``save``; refusals come back on the form, field by field."""
        done, errors, values = submit_form(lambda: saved.format(user=save()), unsaved)
        if done:
            return redirect(self.get_url(".index"))
        return self.render("enterprise/staff_form.html", errors=errors, values=values, target=target)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        form = StaffForm()
        return self._form_page(None, lambda: create_user(db.session, current_user, form.typed(), ip=client_ip()),
                               "已新增用户 {user.username}（{user.name}）", "用户未保存，请按提示修改")

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """修改并重置密码: 姓名 and 手机号 here; 重置密码 is the page's second button."""
        target = self._target()
        if target.id == current_user.id:
            flash("不能在人员管理中修改自己，请使用「修改密码」", "error")
            return redirect(self.get_url(".index"))

        form = StaffForm()

        def save():
            update_user(db.session, current_user, target, form.typed(), ip=client_ip())
            return target

        return self._form_page(target, save, "用户 {user.username} 的信息已保存", "用户信息未保存，请按提示修改")

    @expose("/reset/", methods=("POST",))
    def reset_view(self):
        """重置密码: the one-time password is on this response only (never stored in clear)."""
        target = self._target()
        # nothing to flash: the page below shows the new password, once
        done = perform(lambda: reset_user_password(db.session, current_user, target, ip=client_ip()), "")
        if not done:
            return redirect(self.get_url(".index"))
        response = make_response(self.render("enterprise/staff_password.html", target=target,
                                                  password=done.value))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        target = self._target()
        perform(lambda: remove_user(db.session, current_user, target, ip=client_ip()),
                f"已删除用户 {target.username}（{target.name}），该账号不能再登录")
        return redirect(self.get_url(".index"))


class EnterpriseMenuLink(MenuLink):
    """修改密码 beside 企业信息 and 人员管理 (002 §3.1.5); everyone also has it in the user menu."""

    def is_accessible(self):
        return user_may_enter(current_user, ENTERPRISE)


def register(admin) -> None:
    admin.add_view(EnterpriseInfoView(name="企业信息", category=CATEGORY, endpoint="enterprise_info"))
    admin.add_view(StaffView(name="人员管理", category=CATEGORY, endpoint="staff"))
    admin.add_link(EnterpriseMenuLink(name="修改密码", endpoint="auth.change_password", category=CATEGORY))
    admin.add_view(CityEnterpriseView(name="企业列表", category="企业管理", endpoint="city_enterprise"))
    admin.add_view(EnterpriseChangeReviewView(name="企业信息变更审核", category="企业管理",
                                              endpoint="enterprise_change_review"))
