"""Configuration: defaults here, then environment overrides, then the test mapping.

Every value a deployment may change is read from the environment with the same name
(DATABASE_URL, SECRET_KEY, SMS_SHOW_CODE, …) so that gunicorn workers and the CLI agree.
"""

import os
from datetime import timedelta


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Defaults:
    SECRET_KEY = "dev-only-change-me"
    # SQLite file under instance/ unless DATABASE_URL says otherwise (filled in by create_app).
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session (30 min idle)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(minutes=30)  # SPEC §9: 30 minutes idle
    SESSION_REFRESH_EACH_REQUEST = True
    IDLE_TIMEOUT_MINUTES = 30

    # SPEC §9 sign-in rules
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_MINUTES = 15
    SMS_CODE_TTL_MINUTES = 5
    SMS_CODE_MAX_ATTEMPTS = 5
    SMS_RESEND_SECONDS = 60
    SMS_SENDER = "outbox"  # development sender: appends to instance/sms_outbox.log
    SMS_OUTBOX_PATH = None  # default <instance>/sms_outbox.log
    SMS_SHOW_CODE = True  # demo default: the code is shown on the page as well

    # SPEC §11 Excel limits
    UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    IMPORT_MAX_ROWS = 10_000
    MAX_CONTENT_LENGTH = 60 * 1024 * 1024  # a whole attachment form; each file is checked on its own

    # SPEC §5.1 batch attachments
    BATCH_MAX_DOCUMENTS = 2
    BATCH_MAX_IMAGES = 20
    ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024

    # SPEC §10 证书查询: lookups (form and QR code) per client IP per fixed window of seconds
    VERIFY_RATE_LIMIT = 10
    VERIFY_RATE_WINDOW = 60
    # Signs the QR codes printed on certificates; falls back to SECRET_KEY. Set it on its own so
    # that rotating SECRET_KEY does not break the codes on years of printed paper.
    VERIFY_TOKEN_SECRET = None
    # Public address printed in the QR code (e.g. https://zscx.example.gov.cn) when the back
    # office is reached under another host name; unset: the host of the printing request.
    VERIFY_PUBLIC_URL = None

    PROXY_COUNT = 0  # proxies in front of gunicorn whose X-Forwarded-For/-Proto are trusted

    # SPEC §5.2: Shandong's rule — exactly one field per 变更 application
    CHANGE_ONE_FIELD_PER_APPLICATION = True

    # SPEC §5.5 人员到期预警: registrations in force expiring within this many days
    EXPIRY_WARNING_DAYS = 90

    PAGE_SIZE = 20
    EXPORT_MAX_ROWS = 200_000
    # A list counts its rows up to this many, then says 「10,000+」: never a count of the whole table
    LIST_COUNT_LIMIT = 10_000
    # A search finds someone: it reads up to this many matches, then says 「1,000+」 (narrow it) —
    # a surname alone matches ~70,000 certificates at province scale
    SEARCH_COUNT_LIMIT = 1_000
    LIST_MAX_PAGE = 5_000  # deeper than this: narrow the search (OFFSET never walks the whole table)


ENV_OVERRIDES = {
    "SECRET_KEY": str,
    "DATABASE_URL": str,
    "SMS_SHOW_CODE": _bool,
    "SMS_SENDER": str,
    "SMS_OUTBOX_PATH": str,
    "SMS_CODE_TTL_MINUTES": int,
    "SMS_CODE_MAX_ATTEMPTS": int,
    "SMS_RESEND_SECONDS": int,
    "IDLE_TIMEOUT_MINUTES": int,
    "LOGIN_MAX_FAILURES": int,
    "LOGIN_LOCK_MINUTES": int,
    "PAGE_SIZE": int,
    "EXPORT_MAX_ROWS": int,
    "LIST_COUNT_LIMIT": int,
    "SEARCH_COUNT_LIMIT": int,
    "LIST_MAX_PAGE": int,
    "SESSION_COOKIE_SECURE": _bool,
    "PROXY_COUNT": int,
    "CHANGE_ONE_FIELD_PER_APPLICATION": _bool,
    "EXPIRY_WARNING_DAYS": int,
    "VERIFY_RATE_LIMIT": int,
    "VERIFY_RATE_WINDOW": int,
    "VERIFY_TOKEN_SECRET": str,
    "VERIFY_PUBLIC_URL": str,
}


def from_environment(environ=os.environ) -> dict:
    """Values present in the environment, converted to their types."""
    out = {}
    for name, convert in ENV_OVERRIDES.items():
        if name in environ and environ[name] != "":
            out[name] = convert(environ[name])
    return out
