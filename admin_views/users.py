"""系统管理 › 用户管理 and 用户权限管理 (SPEC §1, §7; 003 §六.4, §七.4, §八.6).

The rows are the visible users (the one helper) narrowed to those this user manages
(``workflows.users.users_clause``: its own organization's with 用户管理, and with 机构管理 those of
the organizations it manages). 用户管理: 新增 (a one-time password shown once), 修改, 重置密码,
取消绑定手机号, 停用 / 启用. 用户权限管理: the same users, each with its permissions, granted and
withdrawn one by one within what the organization's kind allows. An enterprise manages its
second-level users in 人员管理 (``admin_views.enterprise.StaffView``, 002's screen) and their
permissions here.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, request
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectMultipleField, StringField

from admin_views.access import client_ip, may_open, user_may_enter
from admin_views.actions import perform
from admin_views.forms import values
from admin_views.model_views import SecureModelView
from models import Organization, User, db
from models.org import OrgKind
from models.user import PERMISSION_LABELS, Permission, Role
from workflows import FormErrors
from workflows.privacy import mask_phone
from workflows.search import TermKind, starts_with
from workflows.users import (
    allowed_permissions,
    create_user,
    manages_users_of,
    reach_clause,
    reset_password,
    role_choices,
    set_enabled,
    set_permissions,
    unbind_phone,
    update_user,
    users_clause,
)
from workflows.visibility import visible

CATEGORY = "系统管理"
# An enterprise's users are managed in 人员管理 (002 §3.1.5); everyone else's here.
STAFF_KINDS = (OrgKind.enterprise,)
ALL_KINDS = tuple(OrgKind)


class UserForm(FlaskForm):
    """新增 / 修改用户: workflows.users checks every field (the same checks as 人员管理's)."""

    organization_id = StringField()
    name = StringField()
    username = StringField()
    phone = StringField()
    role = StringField()


class PermissionsForm(FlaskForm):
    """配置权限: the codes ticked; workflows.users.set_permissions refuses any the kind does not allow."""

    permission = SelectMultipleField(validate_choice=False)


def _permissions(view, context, model, name):
    labels = [PERMISSION_LABELS[p] for p in Permission if p in model.permissions]
    return "、".join(labels) if labels else "无"


def _status(view, context, model, name):
    if model.is_enabled:
        return Markup('<span class="text-success">启用</span>')
    return Markup('<span class="text-muted">停用</span>')


_FORMATTERS = {
    "organization": lambda v, c, m, n: m.organization.name if m.organization else "-",
    "role": lambda v, c, m, n: m.role.label,
    "phone": lambda v, c, m, n: mask_phone(m.phone) or "未绑定",
    "is_enabled": _status,
    "permissions": _permissions,
}


class _UsersBase(SecureModelView):
    """The users this user manages, filtered by 机构 (``?org=<id>``) from the organization pages."""

    column_labels = {
        "name": "姓名", "username": "登录用户名", "organization": "所属机构", "role": "角色", "phone": "手机号",
        "is_enabled": "状态", "last_login_at": "最近登录时间", "created_at": "创建时间", "permissions": "权限",
        "must_change_password": "须修改密码",
    }
    column_formatters = _FORMATTERS  # the list: phones masked (issue 17)
    column_formatters_detail = {**_FORMATTERS, "phone": lambda v, c, m, n: m.phone or "未绑定"}
    column_sortable_list = ("created_at", "last_login_at")
    column_default_sort = ("id", False)
    search_hint = "姓名、登录用户名或手机号"
    search_rules = {
        TermKind.phone: lambda term: User.phone == term,
        TermKind.text: lambda term: [starts_with(User.name, term), User.username == term],
        TermKind.code: lambda term: User.username == term,
    }
    list_template = "users/list.html"

    def __init__(self, **kwargs):
        super().__init__(User, **kwargs)

    def is_accessible(self) -> bool:
        return user_may_enter(current_user, self.kinds) and (
            current_user.has(Permission.user_manage) or current_user.has(Permission.org_manage))

    def row_clause(self):
        """Only the users this user manages: any other user's details or forms are a 404."""
        return users_clause(current_user)

    def scope_query(self, query):
        org = self.org_filter()
        return query.where(User.organization_id == org.id) if org is not None else query

    def get_query(self):
        return super().get_query().options(joinedload(User.organization))

    def org_filter(self) -> Organization | None:
        """?org=<id>: one organization's users, when this user manages them (else ignored)."""
        return self.organization_arg("org", reach_clause(current_user))

    def target(self) -> User:
        return self.get_one(request.values.get("id"))


class UserView(_UsersBase):
    """用户管理: 新增, 修改, 重置密码, 取消绑定手机号, 停用 / 启用."""

    kinds = tuple(k for k in ALL_KINDS if k not in STAFF_KINDS)
    column_list = ("name", "username", "organization", "role", "phone", "is_enabled", "last_login_at")
    column_details_list = ("name", "username", "organization", "role", "phone", "is_enabled", "must_change_password",
                           "permissions", "last_login_at", "created_at")
    details_template = "users/details.html"
    can_create = True
    can_edit = True
    tabs = [
        ("enabled", "启用", lambda: User.is_enabled.is_(True)),
        ("disabled", "停用", lambda: User.is_enabled.is_(False)),
    ]

    def may_edit_row(self, row) -> bool:
        """One's own account is changed in 个人资料, not here."""
        return row.id != current_user.id

    def row_links(self, row):
        """操作 after 详情 · 修改: 重置密码/停用 (on the details page) and 权限."""
        if row.id == current_user.id:
            return []
        links = [("重置密码/停用", self.row_url(".details_view", row.id), "user-more")]
        if may_open("permission_manage"):
            links.append(("权限", self.row_url("permission_manage.permissions_view", row.id), "user-permissions"))
        return links

    def organizations(self) -> list[Organization]:
        """Where a new user may be created: the organizations this user manages users of."""
        stmt = select(Organization).where(reach_clause(current_user)).order_by(Organization.path, Organization.id)
        return [o for o in db.session.scalars(visible(current_user, stmt, Organization))
                if manages_users_of(current_user, o)]

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """新增用户: the one-time password is on this response only, never stored in clear."""
        orgs = self.organizations()
        if request.method == "POST":
            typed = values(UserForm())
            chosen = next((o for o in orgs if str(o.id) == typed["organization_id"]), None)

            def save():
                if chosen is None:
                    raise FormErrors({"organization_id": "请选择所属机构"})
                return create_user(db.session, current_user, chosen, typed, ip=client_ip())

            done = perform(save, unsaved="用户未保存，请按提示修改")
            if done:
                user, password = done.value
                flash(f"已新增用户 {user.username}（{user.name}）", "success")
                return self._one_time(user, password, "用户已新增")
            errors = done.errors
        else:
            errors, typed = {}, {"organization_id": request.args.get("org") or str(current_user.organization_id),
                                 "role": Role.operator.value}
        return self.render("users/form.html", target=None, orgs=orgs, errors=errors, values=typed,
                           roles=[Role.admin, Role.reviewer, Role.operator])

    def _one_time(self, user: User, password: str, title: str):
        response = make_response(self.render("users/password.html", target=user, password=password, title=title))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        target = self.target()
        if target.id == current_user.id:
            flash("请在「个人资料」「更换绑定手机」中修改自己的信息", "error")
            return redirect(self.get_url(".index_view"))

        typed, errors = None, {}
        if request.method == "POST":
            typed = values(UserForm())

            def save():
                changed = update_user(db.session, current_user, target, typed, ip=client_ip())
                return f"用户 {target.username} 已保存：{'、'.join(changed)}" if changed else "用户信息未改变"

            done = perform(save, unsaved="用户信息未保存，请按提示修改")
            if done:
                return redirect(get_redirect_target() or self.get_url(".details_view", id=target.id))
            errors = done.errors
        return self.render("users/form.html", target=target, orgs=[], errors=errors, values=typed,
                           roles=role_choices(target.organization.kind))

    def _post(self, fn, success: str):
        target = self.target()

        def change():
            fn(target)
            return success(target) if callable(success) else success.format(user=target)

        perform(change)
        return redirect(get_redirect_target() or self.get_url(".details_view", id=target.id))

    @expose("/reset/", methods=("POST",))
    def reset_view(self):
        """重置密码: a one-time password, shown once; the user must change it at the next sign-in."""
        target = self.target()
        done = perform(lambda: reset_password(db.session, current_user, target, ip=client_ip()))
        if not done:
            return redirect(self.get_url(".details_view", id=target.id))
        return self._one_time(target, done.value, "密码已重置")

    @expose("/unbind/", methods=("POST",))
    def unbind_view(self):
        return self._post(lambda u: unbind_phone(db.session, current_user, u, ip=client_ip()),
                          "已取消绑定用户 {user.username} 的手机号；绑定新手机号（修改）后该用户才能登录")

    @expose("/disable/", methods=("POST",))
    def disable_view(self):
        return self._post(lambda u: set_enabled(db.session, current_user, u, False, ip=client_ip()),
                          "已停用用户 {user.username}，该账号不能再登录")

    @expose("/enable/", methods=("POST",))
    def enable_view(self):
        return self._post(lambda u: set_enabled(db.session, current_user, u, True, ip=client_ip()),
                          lambda u: f"已启用用户 {u.username}" + ("" if u.phone else
                                                                 "；该用户未绑定手机号（原手机号已绑定其他账号），"
                                                                 "绑定新手机号（修改）后才能登录"))


class PermissionView(_UsersBase):
    """用户权限管理 (003 §六.4): each user's permissions; 配置权限 grants or withdraws single ones."""

    kinds = ALL_KINDS
    column_list = ("name", "username", "organization", "role", "permissions")
    column_details_list = ("name", "username", "organization", "role", "permissions")

    def row_clause(self):
        return super().row_clause() & User.is_enabled.is_(True)

    def row_links(self, row):
        """操作 after 详情: 配置权限 (not one's own)."""
        if row.id == current_user.id:
            return []
        return [("配置权限", self.row_url(".permissions_view", row.id), "user-permissions")]

    @expose("/permissions/", methods=("GET", "POST"))
    def permissions_view(self):
        target = self.target()
        if not target.is_enabled:
            abort(404)
        if request.method == "POST":
            codes = PermissionsForm().permission.data or []

            def save():
                result = set_permissions(db.session, current_user, target, codes, ip=client_ip())
                parts = []
                if result["granted"]:
                    parts.append("授予 " + "、".join(result["granted"]))
                if result["withdrawn"]:
                    parts.append("撤销 " + "、".join(result["withdrawn"]))
                return f"用户 {target.username} 的权限已保存：" + "；".join(parts) if parts else "权限未改变"

            if perform(save):
                return redirect(self.get_url(".permissions_view", id=target.id))
        return self.render("users/permissions.html", target=target, allowed=allowed_permissions(target.organization),
                           held=target.permissions, is_self=target.id == current_user.id)


def register(admin) -> None:
    admin.add_view(UserView(name="用户管理", category=CATEGORY, endpoint="user_manage"))
    admin.add_view(PermissionView(name="用户权限管理", category=CATEGORY, endpoint="permission_manage"))
