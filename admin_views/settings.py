"""设置 (003 §五; SPEC §7): 个人资料 with 更换绑定手机, 修改密码 (``auth.change_password``), 机构资料.

Reached from the user menu (click the name at the top right), not from the top menu; every
signed-in account, individuals included, has them. The rules are in ``workflows.profile``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import abort, current_app, flash, redirect, request, session
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from admin_views.access import AccessMixin, client_ip, user_may_enter
from admin_views.actions import perform
from admin_views.enterprise import city_label
from admin_views.forms import values
from models import db
from models.base import utcnow
from models.org import OrgKind
from models.user import Permission
from workflows import WorkflowError
from workflows.auth import SmsThrottled
from workflows.privacy import mask_phone
from workflows.profile import (
    ORG_FIELDS,
    change_phone,
    may_edit_org,
    start_phone_change,
    update_name,
    update_org_profile,
)
from workflows.sms import get_sender, shows_code
from workflows.validators import check_phone, mask_id_number

# The new number waiting for its SMS code, between 获取验证码 and 确定 (Flask session).
PHONE_PENDING = "settings_phone"
PENDING_MINUTES = 10


class NameForm(FlaskForm):
    """个人资料: workflows.profile.update_name checks the 姓名."""

    name = StringField()


class PhoneForm(FlaskForm):
    phone = StringField()


class CodeForm(FlaskForm):
    code = StringField()


class OrgProfileForm(FlaskForm):
    """机构资料: workflows.profile checks every field (``ORG_FIELDS``)."""

    contact = StringField()
    phone = StringField()
    address = StringField()
    postcode = StringField()


class _HiddenView(AccessMixin, BaseView):
    """Open to every signed-in account (individuals too); not an entry of the top menu."""

    individual = True

    def is_visible(self):
        return False


# -- 个人资料 ------------------------------------------------------------------------------------
class ProfileView(_HiddenView):
    """个人资料: 查看, 修改姓名, 更换绑定手机 (SMS code to the new number)."""

    def _page(self, **extra):
        user = current_user._get_current_object()
        person = user.person
        return {
            "user": user, "org": user.organization, "phone": mask_phone(user.phone) or "未绑定",
            "person": person, "id_number": mask_id_number(person.id_number) if person is not None else None,
            **extra,
        }

    @expose("/", methods=("GET", "POST"))
    def index(self):
        errors, value = {}, None
        if request.method == "POST":
            value = NameForm().name.data or ""

            def save():
                changed = update_name(db.session, current_user._get_current_object(), value, ip=client_ip())
                return "个人资料已保存" if changed else "个人资料未改变"

            done = perform(save, unsaved="个人资料未保存")
            if done:
                return redirect(self.get_url(".index"))
            errors = done.errors
        return self.render("settings/profile.html", errors=errors, value=value, **self._page())

    # -- 更换绑定手机 --------------------------------------------------------------------------
    def _pending(self) -> dict:
        data = session.get(PHONE_PENDING)
        if not isinstance(data, dict) or data.get("uid") != current_user.id:
            session.pop(PHONE_PENDING, None)
            return {}
        try:
            started = datetime.fromisoformat(data.get("at") or "")
        except (TypeError, ValueError):
            started = None
        if started is None or utcnow() - started > timedelta(minutes=PENDING_MINUTES):
            session.pop(PHONE_PENDING, None)
            return {}
        return data

    def _phone_page(self, typed=None):
        pending = self._pending()
        hint = pending.get("hint") if shows_code(current_app.config) else None
        return self.render("settings/phone.html", pending=pending, typed=typed, hint=hint,
                           new_phone=mask_phone(pending.get("phone")), **self._page())

    @expose("/phone/", methods=("GET", "POST"))
    def phone_view(self):
        """获取验证码: a code to the new number; the page then asks for it."""
        if request.method == "GET":
            return self._phone_page()
        typed = PhoneForm().phone.data or ""
        now = utcnow()
        user = current_user._get_current_object()
        previous = self._pending()
        sender = get_sender(current_app.config, current_app.instance_path)
        # not perform: a code sent a moment ago (SmsThrottled) still leads on to the page that asks for it
        try:
            phone, code = start_phone_change(db.session, user, typed, sender, now=now,
                                             ttl_minutes=current_app.config["SMS_CODE_TTL_MINUTES"],
                                             resend_seconds=current_app.config["SMS_RESEND_SECONDS"],
                                             before_send=db.session.commit)
        except SmsThrottled as exc:
            # A code went to this number less than a minute ago and still works: go on to enter it.
            db.session.rollback()
            flash(exc.message, "warning")
            phone = check_phone(typed)
            hint = previous.get("hint") if previous.get("phone") == phone else None
            session[PHONE_PENDING] = {"uid": user.id, "phone": phone, "at": now.isoformat(),
                                      **({"hint": hint} if hint else {})}
            return redirect(self.get_url(".phone_view"))
        except WorkflowError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return self._phone_page(typed)
        db.session.commit()
        pending = {"uid": user.id, "phone": phone, "at": now.isoformat()}
        if shows_code(current_app.config):
            pending["hint"] = code
        session[PHONE_PENDING] = pending
        flash(f"验证码已发送至 {mask_phone(phone)}", "success")
        return redirect(self.get_url(".phone_view"))

    @expose("/phone/confirm/", methods=("POST",))
    def phone_confirm_view(self):
        """确定: the code sent to the new number binds it; a wrong one leaves the phone as it was."""
        pending = self._pending()
        if not pending.get("phone"):
            flash("请先输入新手机号并获取验证码", "error")
            return redirect(self.get_url(".phone_view"))
        # not perform: a wrong code's attempt is committed with the refusal (SPEC §9: 5 attempts)
        try:
            phone = change_phone(db.session, current_user._get_current_object(), pending["phone"],
                                 CodeForm().code.data or "", now=utcnow(),
                                 max_attempts=current_app.config["SMS_CODE_MAX_ATTEMPTS"], ip=client_ip())
        except WorkflowError as exc:
            db.session.commit()  # the wrong attempt counts; nothing else was changed
            flash(exc.message, "error")
            return redirect(self.get_url(".phone_view"))
        db.session.commit()
        session.pop(PHONE_PENDING, None)
        flash(f"绑定手机已更换为 {mask_phone(phone)}", "success")
        return redirect(self.get_url(".index"))

    @expose("/phone/cancel/", methods=("POST",))
    def phone_cancel_view(self):
        if session.pop(PHONE_PENDING, None) is not None:
            flash("已取消更换绑定手机，原手机号不变", "info")
        else:
            flash("没有待验证的新手机号", "warning")
        return redirect(self.get_url(".phone_view"))


# -- 机构资料 ------------------------------------------------------------------------------------
class OrgProfileView(_HiddenView):
    """机构资料: the user's organization; its administrator edits the contact details.
    An enterprise edits them in 企业信息; an individual sees their person record."""

    def _page(self, **extra):
        user = current_user._get_current_object()
        org = user.organization
        person = user.person if org is None else None
        return {
            "org": org, "person": person,
            "id_number": mask_id_number(person.id_number) if person is not None else None,
            "region": city_label(org.region_code, org.parent) if org is not None else None,
            "may_edit": may_edit_org(user, org),
            "is_enterprise": org is not None and org.kind == OrgKind.enterprise,
            "enterprise_info": user_may_enter(user, (OrgKind.enterprise,), Permission.enterprise_manage),
            **extra,
        }

    @expose("/")
    def index(self):
        return self.render("settings/org_profile.html", **self._page())

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        user = current_user._get_current_object()
        org = user.organization
        if org is not None and org.kind == OrgKind.enterprise:
            flash("企业资料请在「企业信息」中查看和修改", "info")
            return redirect(self.get_url(".index"))
        if not may_edit_org(user, org):
            abort(403)
        errors, typed = {}, None
        if request.method == "POST":
            typed = values(OrgProfileForm())

            def save():
                changed = update_org_profile(db.session, user, org, typed, ip=client_ip())
                return f"机构资料已保存：修改了{'、'.join(changed)}" if changed else "机构资料未改变"

            done = perform(save, unsaved="机构资料未保存，请按提示修改")
            if done:
                return redirect(self.get_url(".index"))
            errors = done.errors
        return self.render("settings/org_edit.html", errors=errors, values=typed, fields=ORG_FIELDS,
                           **self._page())


def register(admin) -> None:
    admin.add_view(ProfileView(name="个人资料", endpoint="profile"))
    admin.add_view(OrgProfileView(name="机构资料", endpoint="org_profile"))
