"""系统管理 › 接口密钥 (issue 20): an organization's keys to the data-exchange API (``/api/v1``).

The province's administrator manages every organization's keys, an organization's administrator
its own (``workflows.apikeys.keys_clause``: any other key is a 404 on every URL). 新建 shows the token
once, on a page no cache keeps — the database holds only its SHA-256 digest; 吊销 takes effect at the
key's next call. The list shows each key's 最近调用 (one grouped query for the page), its details the
last calls themselves, from 操作日志.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import flash, g, make_response, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict
from wtforms import SelectMultipleField, StringField

from admin_views.access import client_ip, may_open, user_may_enter
from admin_views.actions import perform
from admin_views.forms import RowForm
from admin_views.model_views import SecureModelView
from models import ApiKey, db
from models.base import format_local, local_today, utcnow
from models.org import OrgKind
from workflows import FormErrors
from workflows.apikeys import (
    DEFAULT_RATE_LIMIT,
    MAX_RATE_LIMIT,
    MAX_VALID_DAYS,
    SCOPES,
    chooses_organization,
    create_key,
    key_organizations,
    keys_clause,
    last_calls,
    may_manage_keys,
    offered_scopes,
    recent_calls,
    revoke_key,
    scope_label,
    state_label,
    valid_through,
)
from workflows.search import TermKind, starts_with

CATEGORY = "系统管理"
RECENT_CALLS = 20
ONE_TIME_WARNING = "密钥只显示这一次，请立即复制保存；遗失后只能吊销并新建"


class ApiKeyForm(FlaskForm):
    """新建接口密钥: workflows.apikeys.create_key checks every field (Chinese messages, field by field)."""

    organization_id = StringField()
    name = StringField()
    scopes = SelectMultipleField(validate_choice=False)
    expires_on = StringField()
    rate_limit = StringField()


def masked(key: ApiKey) -> str:
    """密钥编号: the token's public part; the secret is never shown again."""
    return f"csk_{key.key_id}_…"


def _state(view, context, model, name):
    label = state_label(model)
    css = {"有效": "text-success", "已过期": "text-warning", "已吊销": "text-muted"}[label]
    return Markup('<span class="{}" data-state="{}">{}</span>').format(css, label, label)


def _last_call(view, context, model, name):
    kept = g.get("api_key_last_calls")  # {key id: time or None} of the list's page (ApiKeyView.get_list)
    if kept is None or model.id not in kept:  # the details page: its own key
        kept = g.api_key_last_calls = {**(kept or {}), **_last_calls([model.id])}
    at = kept[model.id]
    return format_local(at) if at is not None else "从未调用"


def _last_calls(ids) -> dict:
    found = last_calls(db.session, ids)
    return {ident: found.get(ident) for ident in ids}


_FORMATTERS = {
    "organization": lambda v, c, m, n: m.organization.name if m.organization else "-",
    "key_id": lambda v, c, m, n: Markup("<code>{}</code>").format(masked(m)),
    "scopes": lambda v, c, m, n: "、".join(scope_label(code) for code in m.scope_codes) or "-",
    "expires_at": lambda v, c, m, n: valid_through(m).isoformat(),
    "state": _state,
    "created_by": lambda v, c, m, n: m.created_by.name if m.created_by else "-",
    "revoked_by": lambda v, c, m, n: m.revoked_by.name if m.revoked_by else "-",
    "revoked_at": lambda v, c, m, n: format_local(m.revoked_at) if m.revoked_at else "-",
    "last_call": _last_call,
}


def _search(term: str):
    """密钥名称 (its beginning), or the key's 编号 — as typed, or a whole token pasted (csk_<编号>_…)."""
    lowered = term.lower()
    key_id = lowered.split("_")[1] if lowered.startswith("csk_") else lowered
    return [starts_with(ApiKey.name, term), ApiKey.key_id == key_id[:16]]


class ApiKeyView(SecureModelView):
    """接口密钥: 列表, 新建 (the token shown once), 详情 (with the key's recent calls), 吊销."""

    column_list = ("name", "organization", "key_id", "scopes", "rate_limit", "expires_at", "state", "created_by",
                   "created_at", "last_call")
    column_details_list = ("name", "organization", "key_id", "scopes", "rate_limit", "expires_at", "state",
                           "created_by", "created_at", "revoked_at", "revoked_by", "last_call")
    column_labels = {
        "name": "密钥名称", "organization": "所属机构", "key_id": "密钥编号", "scopes": "数据范围",
        "rate_limit": "每分钟调用上限", "expires_at": "有效期至", "state": "状态", "created_by": "创建人",
        "created_at": "创建时间", "revoked_at": "吊销时间", "revoked_by": "吊销人", "last_call": "最近调用",
    }
    column_formatters = _FORMATTERS
    column_formatters_detail = _FORMATTERS
    column_sortable_list = ("created_at",)
    column_default_sort = ("id", True)
    search_hint = "密钥名称或密钥编号"
    search_rules = {kind: _search for kind in TermKind if kind != TermKind.empty}
    list_template = "api_keys/list.html"
    details_template = "api_keys/details.html"
    can_create = True
    tabs = [
        ("all", "全部", None),
        ("active", "有效", lambda: (ApiKey.revoked_at.is_(None)) & (ApiKey.expires_at > utcnow())),
        ("expired", "已过期", lambda: (ApiKey.revoked_at.is_(None)) & (ApiKey.expires_at <= utcnow())),
        ("revoked", "已吊销", lambda: ApiKey.revoked_at.is_not(None)),
    ]

    def __init__(self, **kwargs):
        super().__init__(ApiKey, **kwargs)

    def is_accessible(self) -> bool:
        """An administrator with 用户管理 (the province's, or an organization's for its own keys)."""
        return user_may_enter(current_user) and may_manage_keys(current_user)

    def row_clause(self):
        """Only the keys this user manages: any other key's details or revocation is a 404."""
        return keys_clause(current_user)

    def get_query(self):
        return super().get_query().options(joinedload(ApiKey.organization), joinedload(ApiKey.created_by))

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """The page's keys, and their 最近调用 in one grouped query (not one per row)."""
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters, execute=execute,
                                       page_size=page_size)
        if execute:
            rows = list(rows)
            g.api_key_last_calls = _last_calls([row.id for row in rows])
        return count, rows

    def row_links(self, row):
        """吊销 is on the details page (a confirmed POST): the row's button leads there."""
        if row.revoked_at is not None:
            return []
        return [("吊销", self.row_url(".details_view", row.id) + "#key-revoke", "row-danger key-revoke")]

    # -- 新建 ----------------------------------------------------------------------------------------
    def scope_choices(self) -> list[tuple[str, str, str]]:
        """(code, 中文, which kinds of organization may have it) of the scopes offered on the form."""
        return [(code, SCOPES[code][0], "、".join(k.label for k in OrgKind if k in SCOPES[code][1]))
                for code in offered_scopes(current_user)]

    @staticmethod
    def default_expiry(today: date) -> date:
        try:
            return today.replace(year=today.year + 1)
        except ValueError:  # 29 February
            return today + timedelta(days=365)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """新建接口密钥: the token is on this response only (no-store), never stored in clear."""
        orgs = key_organizations(db.session, current_user)
        today = local_today()
        if request.method == "POST":
            form = ApiKeyForm()
            typed = MultiDict([(name, form[name].data or "") for name in
                               ("organization_id", "name", "expires_on", "rate_limit")])
            for code in form.scopes.data or []:
                typed.add("scopes", code)
            chosen = next((o for o in orgs if str(o.id) == typed["organization_id"].strip()), None)

            def save():
                if chosen is None:
                    raise FormErrors({"organization_id": "请选择所属机构"})
                return create_key(db.session, current_user, chosen, typed, today=today, ip=client_ip())

            done = perform(save, unsaved="接口密钥未保存，请按提示修改")
            if done:
                key, token = done.value
                flash(f"已新建接口密钥「{key.name}」（{key.organization.name}）", "success")
                response = make_response(self.render("api_keys/created.html", key=key, token=token,
                                                     warning=ONE_TIME_WARNING, masked=masked(key),
                                                     scope_names=_FORMATTERS["scopes"](self, None, key, "scopes"),
                                                     valid_on=valid_through(key).isoformat(),
                                                     docs_url=url_for("api-docs.openapi_swagger_ui")))
                response.headers["Cache-Control"] = "no-store"
                return response
            errors = done.errors
        else:
            errors = {}
            typed = MultiDict({"organization_id": request.args.get("org") or str(current_user.organization_id),
                               "expires_on": self.default_expiry(today).isoformat(),
                               "rate_limit": str(DEFAULT_RATE_LIMIT)})
        return self.render("api_keys/form.html", orgs=orgs, errors=errors, values=typed,
                           fixed_org=None if chooses_organization(current_user) else current_user.organization,
                           scopes=self.scope_choices(), chosen_scopes=typed.getlist("scopes"),
                           min_day=(today + timedelta(days=1)).isoformat(),
                           max_day=(today + timedelta(days=MAX_VALID_DAYS)).isoformat(),
                           max_rate=MAX_RATE_LIMIT)

    # -- 详情 and 吊销 -----------------------------------------------------------------------------------
    def recent_calls(self, key: ApiKey) -> list:
        return recent_calls(db.session, key, RECENT_CALLS)

    def log_url(self, key: ApiKey) -> str | None:
        """The key's calls in 操作日志 (类型 接口调用, 用户 「接口密钥 <编号>」), when this user may open it."""
        if not may_open("audit_log"):
            return None
        return url_for("audit_log.index_view", kind="api", user=f"接口密钥 {key.key_id}")

    @expose("/revoke/", methods=("POST",))
    def revoke_view(self):
        """吊销: from the next call on, the API answers 401 「该接口密钥已吊销」."""
        key = self.get_one(RowForm().id.data)
        perform(lambda: revoke_key(db.session, current_user, key, ip=client_ip()),
                f"已吊销接口密钥「{key.name}」（{masked(key)}），使用该密钥的调用将被拒绝")
        return redirect(self.get_url(".details_view", id=key.id))


def register(admin) -> None:
    admin.add_view(ApiKeyView(name="接口密钥", category=CATEGORY, endpoint="api_key"))
