"""系统管理 › 主管部门管理 / 省直所管理 / 单位管理 (SPEC §7; 003 §七.4, §八.6) and 职业(工种)范围.

One view class, registered once per kind of organization it manages: the province has 主管部门管理,
省直所管理 and 单位管理 (every city's institutions, or one authority's from its row); an authority
has 单位管理 for its own institutions. The rows are the visible organizations narrowed to those the
user manages (``workflows.organizations.managed_clause``); 下线 / 上线 are the ``ORGANIZATION``
workflow's transitions (bulk on the list, buttons on the details page, in the 审核日志); 新建, 修改
and 删除 are forms over ``workflows.organizations``; 职业(工种)范围 of a row is assigned here, and an
organization's own (narrowing only) from the user menu (``OwnScopeView``).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectMultipleField, StringField

from admin_views.access import AccessMixin, client_ip, may_open
from admin_views.actions import WorkflowModelView, perform, transition_logs
from admin_views.forms import RowForm, values
from models import Organization, db
from models.org import OrgKind, OrgStatus
from models.user import Permission
from workflows.organizations import (
    FIELDS,
    ORGANIZATION,
    city_names,
    create_organization,
    delete_organization,
    free_cities,
    managed_clause,
    parent_choices,
    update_organization,
)
from workflows.scope import (
    SCOPED_KINDS,
    assignable_pairs,
    every_pair,
    may_set_scope,
    parse_pairs,
    scope_pairs,
    set_scope,
)
from workflows.search import TermKind, starts_with
from workflows.users import manages_users_of

CATEGORY = "系统管理"


class OrganizationForm(FlaskForm):
    """新建 / 修改: workflows.organizations checks every field (``FIELDS``, 所属地市, 上级机构)."""

    name = StringField()
    contact = StringField()
    phone = StringField()
    address = StringField()
    postcode = StringField()
    region_code = StringField()
    parent_id = StringField()


class ScopeForm(FlaskForm):
    """职业(工种)范围: the ticked ``occupation:level`` pairs; workflows.scope parses and bounds them."""

    pair = SelectMultipleField(validate_choice=False)


def _city(org: Organization) -> str:
    return city_names().get(org.region_code) or org.region_code


def _name_and_code(view, context, model, name):
    return Markup('{}<br><span class="text-muted small">{}</span>').format(model.name, model.code)


_FORMATTERS = {
    "name": _name_and_code,
    "kind": lambda v, c, m, n: m.kind.label,
    "parent": lambda v, c, m, n: m.parent.name if m.parent is not None else "-",
    "region_code": lambda v, c, m, n: _city(m),
}


class OrganizationView(WorkflowModelView):
    """The organizations of ``managed_kind`` this user manages: list, 新建, 修改, 删除, 下线/上线, 范围."""

    workflow = ORGANIZATION
    permission = Permission.org_manage
    can_create = True
    can_edit = True
    can_delete = True
    # Flask-Admin's bulk 删除 would bypass delete_organization's check of what the row holds
    action_disallowed_list = ["delete"]
    column_list = ("name", "kind", "parent", "region_code", "status", "created_at")
    column_details_list = ("name", "code", "kind", "parent", "region_code", "status", "contact", "phone",
                           "address", "postcode", "created_at")
    column_labels = {
        "name": "机构名称/编号", "code": "机构编号", "kind": "机构类型", "parent": "上级机构", "region_code": "所属地市",
        "status": "状态", "contact": "联系人", "phone": "联系电话", "address": "通讯地址", "postcode": "邮政编码",
        "created_at": "创建时间",
    }
    column_formatters = _FORMATTERS
    column_formatters_detail = {key: f for key, f in _FORMATTERS.items() if key != "name"}
    column_sortable_list = ("created_at",)
    column_default_sort = ("id", False)
    details_template = "organization/details.html"
    list_template = "organization/list.html"
    search_hint = "机构名称或机构编号"
    search_rules = {
        TermKind.text: lambda term: [starts_with(Organization.name, term),
                                     Organization.code == term],
    }
    tabs = [
        ("all", "全部", None),
        ("active", "启用", lambda: Organization.status == OrgStatus.active),
        ("offline", "下线", lambda: Organization.status == OrgStatus.offline),
    ]

    def __init__(self, managed_kind: OrgKind, kinds, **kwargs):
        self.managed_kind = managed_kind
        self.kinds = kinds
        super().__init__(Organization, **kwargs)

    @property
    def label(self) -> str:
        return self.managed_kind.label

    def row_clause(self):
        """Only the organizations this user manages: details, forms, actions and 删除 of any other
        organization are a 404, like one that does not exist."""
        return managed_clause(current_user, self.managed_kind)

    def scope_query(self, query):
        parent = self._parent_filter()
        return query.where(Organization.parent_id == parent.id) if parent is not None else query

    def get_query(self):
        return super().get_query().options(joinedload(Organization.parent))

    def _parent_filter(self) -> Organization | None:
        """单位管理?parent=<authority>: one authority's institutions (the province's 下级机构 link)."""
        if self.managed_kind != OrgKind.institution:
            return None
        return self.organization_arg("parent", Organization.kind == OrgKind.authority)

    def _parents(self) -> list[Organization]:
        return parent_choices(db.session, current_user, self.managed_kind)

    def list_intro(self) -> dict:
        return {"parent": self._parent_filter()}

    # -- 新建 / 修改 ------------------------------------------------------------------------------
    def _form(self, org, errors, values):
        show_city = self.managed_kind == OrgKind.authority and org is None
        return self.render("organization/form.html", org=org, errors=errors, values=values, fields=FIELDS,
                           show_city=show_city, cities=free_cities(db.session) if show_city else [], parents=self._parents() if org is None else [],
                           kind_label=self.label, return_url=get_redirect_target() or self.get_url(".index_view"))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        if request.method != "POST":
            return self._form(None, {}, {"parent_id": request.args.get("parent", "")})
        typed = values(OrganizationForm())

        def save():
            return create_organization(db.session, current_user, self.managed_kind, typed, ip=client_ip())

        done = perform(save, unsaved=f"{self.label}未保存，请按提示修改")
        if done:
            org = done.value
            flash(f"已新建{self.label}：{org.name}（编号 {org.code}）；请为其配置职业(工种)范围并新增管理员", "success")
            return redirect(self.get_url(".details_view", id=org.id))
        return self._form(None, done.errors, typed)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        org = self.get_one(request.values.get("id"))
        if request.method != "POST":
            return self._form(org, {}, None)
        typed = values(OrganizationForm())

        def save():
            changed = update_organization(db.session, current_user, org, typed, ip=client_ip())
            return f"已保存：{'、'.join(changed)}" if changed else "机构信息未改变"

        done = perform(save, unsaved="机构信息未保存，请按提示修改")
        if done:
            return redirect(get_redirect_target() or self.get_url(".details_view", id=org.id))
        return self._form(org, done.errors, typed)

    def delete_model(self, model):
        """删除 (the list's delete form): refused, with what the organization holds, unless empty."""
        return perform(lambda: delete_organization(db.session, current_user, model, ip=client_ip())).ok

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        org = self.get_one(RowForm().id.data)
        name = org.name
        if self.delete_model(org):
            flash(f"已删除{self.label}：{name}", "success")
        return redirect(get_redirect_target() or self.get_url(".index_view"))

    def row_links(self, row):
        """操作 after 详情 · 修改 · 下线/上线 · 删除: 职业(工种)范围 · 用户 · 下级机构 (the details page's
        buttons; 下线/上线 and 删除 ask there and in the list)."""
        links = []
        if may_set_scope(current_user, row):
            links.append(("职业(工种)范围", self.row_url(".scope_view", row.id), "org-scope"))
        if may_open("user_manage") and manages_users_of(current_user, row):
            links.append(("用户", self.row_url("user_manage.index_view", row.id, param="org"), "org-users"))
        if row.kind == OrgKind.authority and may_open("institution_manage"):
            links.append(("下级机构", self.row_url("institution_manage.index_view", row.id, param="parent"),
                          "org-children"))
        return links

    # -- the details page -------------------------------------------------------------------------
    def row_buttons(self, obj) -> list:
        buttons = [("org-edit-button", "修改", self.get_url(".edit_view", id=obj.id))]
        if may_set_scope(current_user, obj):
            buttons.append(("org-scope-button", "职业(工种)范围", self.get_url(".scope_view", id=obj.id)))
        if manages_users_of(current_user, obj) and may_open("user_manage"):
            buttons.append(("org-users-button", "用户管理", url_for("user_manage.index_view", org=obj.id)))
            buttons.append(("org-new-user-button", "新增用户", url_for("user_manage.create_view", org=obj.id)))
        if obj.kind == OrgKind.authority and may_open("institution_manage"):
            buttons.append(("org-children-button", "下级机构", url_for("institution_manage.index_view", parent=obj.id)))
        return buttons

    def organization_page(self, org) -> dict:
        """上线/下线记录. A log older than the organization is about a deleted one whose id SQLite
        gave out again (PostgreSQL never reuses ids); it is not this organization's."""
        logs = transition_logs(ORGANIZATION.object_type, org.id)
        return {"logs": [row for row in logs if row.created_at >= org.created_at]}

    # -- 职业(工种)范围 of a managed organization -------------------------------------------------------
    @expose("/scope/", methods=("GET", "POST"))
    def scope_view(self):
        org = self.get_one(request.values.get("id"))
        if not may_set_scope(current_user, org):
            abort(404)
        return scope_page(self, org, back=self.get_url(".details_view", id=org.id))


def scope_page(view, org: Organization, *, back: str):
    """The 职业(工种)范围 matrix of ``org``: what it holds checked, what may be added enabled; the POST
    saves through ``workflows.scope.set_scope`` (subset of the parent's, cascade on removal)."""
    if request.method == "POST":
        pairs = ScopeForm().pair.data or []
        done = perform(lambda: set_scope(db.session, current_user, org, parse_pairs(pairs), ip=client_ip()))
        if done:
            flash(*_scope_saved(org, done.value))
            return redirect(request.full_path)
    own = org.id == current_user.organization_id
    held = scope_pairs(db.session, org)
    offered = held if own else assignable_pairs(db.session, org)
    rows, levels = _matrix(held, offered)
    note = None
    if org.kind == OrgKind.province:
        note = "省厅包含所有的职业(工种)、等级，不可删除"
    elif own:
        note = "本机构可取消勾选以缩小职业(工种)范围；新增须由上级机构配置"
    else:
        parent = org.parent.name if org.parent is not None else "上级机构"
        note = f"只能在{parent}的职业(工种)范围内配置；取消勾选的项同时从其下级机构删除"
    return view.render("organization/scope.html", org=org, rows=rows, levels=levels, note=note, back=back,
                       read_only=org.kind == OrgKind.province, held_count=len(held))


def _scope_saved(org: Organization, result: dict) -> tuple[str, str]:
    """What saving the 职业(工种)范围 did, and the message's category."""
    if not (result["added"] or result["removed"]):
        return "职业(工种)范围未改变", "info"
    parts = [f"新增 {len(result['added'])} 项"] if result["added"] else []
    if result["removed"]:
        parts.append(f"删除 {len(result['removed'])} 项")
    text = f"{org.name}的职业(工种)范围已保存：" + "，".join(parts)
    if result["descendants"]:
        text += "；下级机构同时删除：" + "；".join(
            f"{name}（{'、'.join(pairs)}）" for name, pairs in result["descendants"].items())
    return text, "success"


def _matrix(held, offered):
    """Rows of the scope table: (occupation, [(value, checked, enabled) per level or the one cell])."""
    from models import Level

    levels = list(db.session.scalars(select(Level).order_by(Level.code.desc())))  # 初级工(五级) first
    rows = {}
    for occupation, level in every_pair(db.session):
        pair = (occupation.id, level.id if level is not None else None)
        cell = {"value": f"{pair[0]}:{pair[1] if pair[1] is not None else ''}", "checked": pair in held,
                "enabled": pair in offered or pair in held, "level": level}
        rows.setdefault(occupation, []).append(cell)
    ordered = []
    for occupation, cells in rows.items():
        if occupation.has_levels:
            by_level = {c["level"].id: c for c in cells}
            ordered.append((occupation, [by_level[lv.id] for lv in levels]))
        else:
            ordered.append((occupation, cells))
    return ordered, levels


class OwnScopeView(AccessMixin, BaseView):
    """设置 › 职业(工种)范围 (003 §五): the organization narrows its own; the province's is read-only."""

    kinds = SCOPED_KINDS
    permission = Permission.scope_manage

    def is_visible(self):
        return False

    @expose("/", methods=("GET", "POST"))
    def index(self):
        org = current_user.organization
        if request.values.get("id", str(org.id)) != str(org.id):
            abort(404)  # always the user's own organization: any other id is a forged one
        return scope_page(self, org, back=url_for("admin.index"))


def register(admin) -> None:
    province = (OrgKind.province,)
    admin.add_view(OrganizationView(OrgKind.authority, province, name="主管部门管理", category=CATEGORY,
                                    endpoint="authority_manage"))
    admin.add_view(OrganizationView(OrgKind.direct_institution, province, name="省直所管理", category=CATEGORY,
                                    endpoint="direct_institution_manage"))
    admin.add_view(OrganizationView(OrgKind.institution, (OrgKind.province, OrgKind.authority), name="单位管理",
                                    category=CATEGORY, endpoint="institution_manage"))
    admin.add_view(OwnScopeView(name="职业(工种)范围", endpoint="own_scope"))
