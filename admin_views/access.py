"""Who may open what: the client's address for the log, the menu and URL rule, and the view mixin
that applies it (SPEC §1 for rows is ``workflows.visibility``; this is the rule for screens)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin.helpers import get_redirect_target
from flask_login import current_user


def client_ip() -> str | None:
    """The address for the operation log. Behind a proxy, set PROXY_COUNT so ProxyFix (app.py)
    rewrites remote_addr from the proxy's header; a client's own X-Forwarded-For is never trusted."""
    return request.remote_addr


def user_may_enter(user, kinds=None, permission=None, individual=False) -> bool:
    """Menu and URL access: signed in, password current, right kind of organization, permission."""
    user = user._get_current_object() if hasattr(user, "_get_current_object") else user  # the proxy once
    if not getattr(user, "is_authenticated", False) or user.must_change_password:
        return False
    if user.organization is None:
        return individual
    if kinds is not None and user.organization.kind not in kinds:
        return False
    return permission is None or user.has(permission)


# -- Flask-Admin adapter (checked against Flask-Admin 2.2.1) --------------------------------------
# ``Admin`` keeps its registered views in the private ``_views`` list and has no public way to
# look one up by endpoint (``menu()`` holds only the views that are in the menu).
def registered_view(endpoint: str, app=None):
    """The view registered under ``endpoint`` (in ``app``, or the current one), or None."""
    admin = (app or current_app).extensions["admin"][0]
    return next((v for v in admin._views if getattr(v, "endpoint", None) == endpoint), None)


def may_open(endpoint: str) -> bool:
    """The current user may open the view registered as ``endpoint`` (links to other screens
    are shown only when they would open). Asked once per request (a list's rows ask it for each row)."""
    memo = getattr(request, "_may_open", None) if request else None
    if memo is not None and endpoint in memo:
        return memo[endpoint]
    view = registered_view(endpoint)
    answer = view is not None and view.is_accessible()
    if request:
        if memo is None:
            memo = request._may_open = {}
        memo[endpoint] = answer
    return answer


class AccessMixin:
    """Who may open a view: ``kinds`` of organization, a ``permission``, individuals or not."""

    kinds = None
    permission = None
    individual = False

    def is_accessible(self) -> bool:
        return user_may_enter(current_user, self.kinds, self.permission, self.individual)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)


def refuse(view):
    """An operation this user may not run on ``view`` (a bulk action, 新建, 修改, 删除): said in
    Chinese, never a silent bounce (SPEC §5), and back to where the user was."""
    flash("无权执行该操作", "error")
    return redirect(get_redirect_target() or view.get_url(".index_view"))
