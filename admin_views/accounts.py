"""企业注册 / 个人注册 (SPEC §5.3; 000 §一, 001, 002 §3.1.1) and the city authority's 注册审核.

The public pages (no sign-in) turn ``workflows.accounts.register_enterprise`` /
``register_individual`` into forms: every field's message next to it, typed values kept. The
手机号绑定 code goes to the typed phone through the same sender, resend throttle and demo hint
as the sign-in page; ``/register/sms`` answers JSON for the page's script, and the 获取验证码
button also works without JavaScript (it posts the whole form, which comes back filled in).

``AccountReviewView`` is the authority's list of pending accounts (审核通过 / 审核不通过 with a
mandatory reason, generated from ``ACCOUNT``); the province sees every city's list read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, StringField

from admin_views.access import client_ip
from admin_views.actions import AttachmentFilesMixin, WorkflowModelView, transition_logs
from admin_views.forms import values
from models import (
    AccountKind,
    AccountRequest,
    AccountStatus,
    Attachment,
    Organization,
    Person,
    User,
    db,
)
from models.base import utcnow
from models.org import OrgKind
from models.user import Permission
from workflows import FormErrors, WorkflowError
from workflows import auth as rules
from workflows.accounts import ACCOUNT, LICENCE, QUALIFICATION, register_enterprise, register_individual
from workflows.enterprise import city_authorities
from workflows.organizations import city_names
from workflows.privacy import mask_id_number, mask_phone
from workflows.search import TermKind, starts_with
from workflows.sms import get_sender, shows_code
from workflows.validators import check_phone
from workflows.verification import hit
from workflows.visibility import visible

bp = Blueprint("accounts", __name__)

# Session keys: the phone a 手机号绑定 code went to (and its demo hint); the finished registration.
SMS_STATE = "register_sms"
DONE = "register_done"

# typed passwords are never sent back into the page
PASSWORD_FIELDS = ("password", "password2")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


# --- forms: workflows.enterprise checks every field (register_enterprise / register_individual) ---


class SmsForm(FlaskForm):
    """获取验证码: the phone to bind; ``form`` names the page to go back to without JavaScript."""

    phone = StringField()
    form = StringField()


class _RegisterForm(FlaskForm):
    name = StringField()
    region_code = StringField()
    username = StringField()
    phone = StringField()
    sms_code = StringField()
    password = StringField()
    password2 = StringField()
    send_sms = BooleanField()  # the 获取验证码 button posted the whole form


class EnterpriseForm(_RegisterForm):
    credit_code = StringField()
    address = StringField()
    postcode = StringField()
    contact = StringField()
    contact_phone = StringField()
    qualification_no = StringField()
    admin_name = StringField()
    licence = MultipleFileField()
    qualification = MultipleFileField()


class IndividualForm(_RegisterForm):
    id_number = StringField()


# --- cities -------------------------------------------------------------------------------


def city_name(authority: Organization | None) -> str:
    if authority is None:
        return "-"
    return city_names().get(authority.region_code) or authority.name


def _cities() -> list[tuple[str, str]]:
    """(region code, 济南市) of every city whose authority takes registrations."""
    return [(a.region_code, city_name(a)) for a in city_authorities(db.session)]


# --- 获取验证码 ---------------------------------------------------------------------------


@dataclass
class SmsResult:
    ok: bool
    status: int  # HTTP status of the JSON answer
    category: str
    message: str
    phone: str | None = None
    hint: str | None = None
    wait: int = 0


def _normal_phone(raw: str | None) -> str | None:
    try:
        return check_phone(raw)
    except ValueError:
        return None


def _hint_for(phone: str | None) -> str | None:
    """The demo hint of the last code sent from this browser, while the same phone is typed."""
    state = session.get(SMS_STATE)
    if not (shows_code(current_app.config) and isinstance(state, dict) and phone):
        return None
    return state.get("hint") if state.get("phone") == _normal_phone(phone) else None


def send_register_code(raw_phone: str | None) -> SmsResult:
    """手机号绑定: a code to the phone being bound (SPEC §9: once a minute, valid 5 minutes)."""
    if not (raw_phone or "").strip():
        return SmsResult(False, 400, "danger", "请填写手机号码")
    try:
        phone = check_phone(raw_phone)
    except ValueError as exc:
        return SmsResult(False, 400, "danger", str(exc))
    now = utcnow()
    resend = current_app.config["SMS_RESEND_SECONDS"]
    within = hit(db.session, f"register_sms:{client_ip()}", current_app.config["REGISTER_SMS_PER_CLIENT"],
                 current_app.config["REGISTER_SMS_CLIENT_WINDOW_SECONDS"], now)
    if not within:
        db.session.commit()
        return SmsResult(False, 429, "danger", "验证码发送次数过多，请稍后再试", phone)
    sender = get_sender(current_app.config, current_app.instance_path)
    ttl = current_app.config["SMS_CODE_TTL_MINUTES"]
    try:
        code = rules.issue_code(db.session, phone, rules.Purpose.REGISTER, sender, now=now, ttl_minutes=ttl,
                                resend_seconds=resend, before_send=db.session.commit)
    except rules.SmsThrottled as exc:
        db.session.commit()  # the client counter
        # the code sent a moment ago still works
        return SmsResult(False, 429, "warning", exc.message, phone, _hint_for(phone), resend)
    except WorkflowError as exc:
        db.session.commit()  # nothing of the code was stored: a failed send does not start the throttle
        return SmsResult(False, 502, "danger", exc.message, phone)
    db.session.commit()
    session[SMS_STATE] = {"phone": phone, "hint": code if shows_code(current_app.config) else None}
    return SmsResult(True, 200, "success", f"验证码已发送至 {mask_phone(phone)}，{ttl}分钟内有效", phone,
                     code if shows_code(current_app.config) else None, resend)


@bp.route("/register/sms", methods=["POST"])
def send_sms():
    """获取验证码 from the page's script (JSON), or from a plain form (back to the page)."""
    form = SmsForm()
    result = send_register_code(form.phone.data)
    wants_json = (request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"
                  or request.headers.get("X-Requested-With") == "XMLHttpRequest")
    if wants_json:
        return jsonify(ok=result.ok, message=result.message, hint=result.hint, wait=result.wait,
                       field=None if result.ok or result.status != 400 else "phone"), result.status
    flash(result.message, result.category)
    page = "accounts.register_individual" if form.form.data == "individual" else "accounts.register_enterprise"
    return redirect(url_for(page))


# --- the registration pages --------------------------------------------------------------


def _files(field) -> list[tuple[str, bytes]]:
    return [(f.filename or "", f.read()) for f in field.data or ()]


def _register_page(kind: AccountKind):
    enterprise = kind == AccountKind.enterprise
    form = EnterpriseForm() if enterprise else IndividualForm()
    template = "accounts/register_enterprise.html" if enterprise else "accounts/register_individual.html"
    data = values(form)  # every field "" on a GET
    errors: dict[str, str] = {}
    reselect = False  # files were chosen but the page came back: the browser does not keep them
    if request.method == "GET":
        state = session.get(SMS_STATE)
        if isinstance(state, dict) and state.get("phone"):
            data["phone"] = state["phone"]  # back from a plain 获取验证码 post
    else:
        licences = _files(form.licence) if enterprise else []
        qualifications = _files(form.qualification) if enterprise else []
        reselect = any(content for _, content in licences + qualifications)
        if form.send_sms.data:
            result = send_register_code(data["phone"])
            if result.status == 400:
                errors["phone"] = result.message
            else:
                flash(result.message, result.category)
                data["phone"] = result.phone or data["phone"]
        else:
            # not perform: a wrong code's attempt count is committed with the refusal, and a
            # concurrent double submit (IntegrityError) has a message of its own
            try:
                attempts = current_app.config["SMS_CODE_MAX_ATTEMPTS"]
                if enterprise:
                    account = register_enterprise(db.session, data, licences, qualifications, now=utcnow(),
                                                  ip=client_ip(), max_attempts=attempts)
                else:
                    account = register_individual(db.session, data, now=utcnow(), ip=client_ip(),
                                                  max_attempts=attempts)
                db.session.commit()
            except FormErrors as exc:
                # Nothing was added, except a wrong code's attempt count (SPEC §9: 5 attempts).
                db.session.commit()
                errors = exc.errors
                flash("注册信息有误，请按提示修改后重新提交", "danger")
            except IntegrityError:
                # the same login name or credit code submitted twice at the same moment
                db.session.rollback()
                flash("该登录用户名或证件号码已被注册，请勿重复提交", "danger")
            else:
                session.pop(SMS_STATE, None)
                session[DONE] = {"kind": kind.value, "name": account.applicant_name,
                                 "username": account.user.username, "authority": account.authority.name}
                return redirect(url_for("accounts.registered"))
    shown = {name: value for name, value in data.items() if name not in PASSWORD_FIELDS}
    return render_template(template, values=shown, errors=errors, cities=_cities(), reselect=reselect,
                           hint=_hint_for(shown.get("phone")), kind=kind.value,
                           resend_seconds=current_app.config["SMS_RESEND_SECONDS"])


@bp.route("/register/enterprise", methods=["GET", "POST"], endpoint="register_enterprise")
def enterprise_page():
    return _register_page(AccountKind.enterprise)


@bp.route("/register/individual", methods=["GET", "POST"], endpoint="register_individual")
def individual_page():
    return _register_page(AccountKind.individual)


@bp.route("/register/done")
def registered():
    """000 图3: 注册成功 — the account waits for the city authority before it may sign in."""
    done = session.get(DONE)
    if not isinstance(done, dict):
        return redirect(url_for("auth.login"))
    return render_template("accounts/registered.html", done=done)


# --- 注册审核 ------------------------------------------------------------------------------

S = AccountStatus


def _code(request_: AccountRequest, masked: bool = False) -> str:
    """统一社会信用代码 of an enterprise, the 身份证号 of an individual: in full on the details page (the
    reviewer checks it), masked in the list (issue 17: privacy by display)."""
    if request_.organization is not None:
        return request_.organization.credit_code or "-"
    if request_.person is None:
        return "-"
    return mask_id_number(request_.person.id_number) if masked else request_.person.id_number


def _reason(view, context, model, name):
    if model.reject_reason and model.status == S.rejected:
        return Markup('<span class="reason-red">{}</span>').format(model.reject_reason)
    return "-"


_FORMATTERS = {
    "kind": lambda v, c, m, n: m.kind.label,
    "applicant": lambda v, c, m, n: m.applicant_name,
    "code": lambda v, c, m, n: _code(m),
    "city": lambda v, c, m, n: city_name(m.authority),
    "username": lambda v, c, m, n: m.user.username,
    "admin_name": lambda v, c, m, n: m.user.name,
    "phone": lambda v, c, m, n: m.user.phone or "-",
    "reject_reason": _reason,
}
# the list shows the individual's 身份证号 and the bound phone masked; the details page in full
_LIST_FORMATTERS = {
    **_FORMATTERS,
    "code": lambda v, c, m, n: _code(m, masked=True),
    "phone": lambda v, c, m, n: mask_phone(m.user.phone) or "-",
}


def _by_organization(*predicates):
    return AccountRequest.organization_id.in_(select(Organization.id).where(*predicates))


def _by_person(*predicates):
    return AccountRequest.person_id.in_(select(Person.id).where(*predicates))


def _by_user(*predicates):
    return AccountRequest.user_id.in_(select(User.id).where(*predicates))


class AccountReviewView(AttachmentFilesMixin, WorkflowModelView):
    """注册审核: the authority reviews the accounts registered in its city; the province reads."""

    workflow = ACCOUNT
    kinds = (OrgKind.authority, OrgKind.province)
    details_template = "accounts/details.html"
    column_list = ("kind", "applicant", "code", "city", "username", "phone", "created_at", "status",
                   "reject_reason")
    column_details_list = ("kind", "applicant", "code", "city", "admin_name", "username", "phone", "created_at",
                           "reviewed_at", "status", "reject_reason")
    column_labels = {
        "kind": "类型", "applicant": "名称/姓名", "code": "统一社会信用代码/身份证号", "city": "所属地市",
        "username": "登录用户名", "admin_name": "管理员姓名", "phone": "手机号", "created_at": "申请时间",
        "reviewed_at": "审核时间", "status": "状态", "reject_reason": "审核不通过原因",
    }
    column_formatters = _LIST_FORMATTERS
    column_formatters_detail = _FORMATTERS
    column_sortable_list = ("created_at", "reviewed_at")
    column_default_sort = ("id", True)
    tabs = [
        ("pending", "待审核", lambda: AccountRequest.status == S.pending),
        ("reviewed", "已审核", lambda: AccountRequest.status.in_((S.active, S.rejected))),
    ]
    search_hint = "企业名称、姓名、统一社会信用代码、身份证号或手机号"
    search_rules = {
        TermKind.id_number: lambda term: or_(_by_person(Person.id_number == term),
                                             _by_organization(Organization.credit_code == term)),
        TermKind.code: lambda term: or_(_by_organization(Organization.credit_code == term),
                                        _by_user(User.username == term)),
        TermKind.certificate_number: lambda term: _by_user(User.username == term),
        TermKind.phone: lambda term: _by_user(User.phone == term),
        TermKind.text: lambda term: or_(
            _by_organization(starts_with(Organization.name, term)),
            _by_person(starts_with(Person.name, term)),
            _by_user(User.username == term)),
    }

    def __init__(self, **kwargs):
        super().__init__(AccountRequest, **kwargs)

    def is_accessible(self) -> bool:
        """The province reads every city's list; an authority needs 企业信息管理 to review."""
        if not super().is_accessible():
            return False
        return current_user.kind == OrgKind.province or current_user.has(Permission.enterprise_manage)

    def get_query(self):
        return super().get_query().options(
            joinedload(AccountRequest.organization), joinedload(AccountRequest.user),
            joinedload(AccountRequest.person), joinedload(AccountRequest.authority))

    # -- the detail page ---------------------------------------------------------------------
    def account_page(self, account: AccountRequest) -> dict:
        images = []
        if account.organization_id is not None:
            stmt = select(Attachment).where(
                Attachment.owner_type == "organization", Attachment.owner_id == account.organization_id,
                Attachment.purpose.in_((LICENCE, QUALIFICATION))).order_by(Attachment.id)
            images = db.session.scalars(visible(current_user, stmt, Attachment)).all()
        logs = transition_logs(ACCOUNT.object_type, account.id)
        return {"licences": [a for a in images if a.purpose == LICENCE],
                "qualifications": [a for a in images if a.purpose == QUALIFICATION],
                "logs": logs, "city": city_name(account.authority)}


def register(admin) -> None:
    """Adds this module's views to the admin."""
    admin.add_view(AccountReviewView(name="注册审核", category="企业管理", endpoint="account_review"))
