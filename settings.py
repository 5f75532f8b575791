"""Configuration: defaults here, then environment overrides, then the test mapping.

Every value a deployment may change is read from the environment with the same name
(DATABASE_URL, SECRET_KEY, SMS_SHOW_CODE, …) so that gunicorn workers and the CLI agree.
"""

import os


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
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_REFRESH_EACH_REQUEST = True
    # SPEC §9: a session idle this long ends, on the server and in the browser — the session
    # cookie's lifetime is this value (app.CertOffice), not a setting of its own
    IDLE_TIMEOUT_MINUTES = 30

    # SPEC §9 sign-in rules
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_MINUTES = 15
    SMS_CODE_TTL_MINUTES = 5
    SMS_CODE_MAX_ATTEMPTS = 5
    SMS_RESEND_SECONDS = 60
    # Besides the once-a-minute throttle per phone: codes one client may request per window on the
    # public registration page, so it cannot be used to send messages to a long list of numbers.
    REGISTER_SMS_PER_CLIENT = 10
    REGISTER_SMS_CLIENT_WINDOW_SECONDS = 3600
    SMS_SENDER = "outbox"  # development sender: appends to instance/sms_outbox.log
    SMS_OUTBOX_PATH = None  # default <instance>/sms_outbox.log
    SMS_SHOW_CODE = True  # demo default: the code is shown on the page as well (development senders only)
    # SMS_SENDER = "tencent": Tencent Cloud SMS (workflows/sms.py). The keys come from the environment;
    # the template (模板) takes {1} the code and {2} the minutes it is valid.
    TENCENTCLOUD_SECRET_ID = None
    TENCENTCLOUD_SECRET_KEY = None
    SMS_TENCENT_SDK_APP_ID = None  # 短信 SdkAppId
    SMS_TENCENT_SIGN_NAME = None  # 签名, as approved
    SMS_TENCENT_TEMPLATE_ID = None  # 模板 ID, as approved
    SMS_TENCENT_REGION = "ap-guangzhou"
    SMS_TENCENT_ENDPOINT = "sms.tencentcloudapi.com"  # or http(s)://host:port (tests: a loopback server)
    # A sign-in waits for the send: each attempt has SMS_TIMEOUT_SECONDS, a gateway that did not
    # answer is tried SMS_RETRIES more times, a refusal never; at most 10 s in all.
    SMS_TIMEOUT_SECONDS = 3
    SMS_RETRIES = 1

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

    # Issue 19 电子证书: the department that signs them (its 统一社会信用代码, in every 证照标识), the
    # identifier's leading arc, and the signing key — a PKCS#12 file and its password. Unset, `make run`
    # (not tests) creates a demo CA and signing certificate under instance/ecert/, named as demo.
    ECERT_DEPARTMENT_CODE = "11370000MB00000015"
    ECERT_ID_PREFIX = "1.2.156.3005.2"
    ECERT_SIGNING_PKCS12 = None
    ECERT_SIGNING_PASSWORD = None
    # PEM file of further CA certificates an uploaded file's signature may chain to (a key rotated
    # out, so certificates signed before the rotation still check); the signing key's own CA always counts
    ECERT_TRUST_ROOTS = None
    ECERT_VERIFY_MAX_BYTES = 1024 * 1024  # an uploaded file on 证书查询 (ours are ~45 KB)
    ECERT_ZIP_MAX = 5_000  # electronic certificates in one .zip job
    # processes that draw and sign a .zip job's PDFs (the job worker spawns them; 1: in the worker itself)
    ECERT_JOB_PROCESSES = 2

    PROXY_COUNT = 0  # proxies in front of gunicorn whose X-Forwarded-For/-Proto are trusted

    # SPEC §5.2: Shandong's rule — exactly one field per 变更 application
    CHANGE_ONE_FIELD_PER_APPLICATION = True

    # SPEC §5.5 人员到期预警: registrations in force expiring within this many days
    EXPIRY_WARNING_DAYS = 90

    PAGE_SIZE = 20  # rows on a list page (admin_views.listing), unless a view sets its own
    EXPORT_MAX_ROWS = 200_000
    # Issue 16: an export of more rows than this runs as a job (我的导出, progress bar); smaller
    # ones are written inside the request (5,000 certificates: ~0.4 s)
    EXPORT_INLINE_MAX_ROWS = 5_000
    EXPORT_JOBS_PER_USER = 3  # jobs queued or running per user; the next 导出 is refused until one ends
    EXPORT_FILE_TTL_HOURS = 24  # a finished export can be downloaded this long, then its file is deleted
    # The job worker (`flask jobs worker`): a running job's worker writes a heartbeat every
    # JOB_BEAT_SECONDS; one silent for JOB_LEASE_SECONDS is presumed dead and its job queued again,
    # up to JOB_MAX_ATTEMPTS runs, then failed with a message
    JOB_LEASE_SECONDS = 60
    JOB_BEAT_SECONDS = 2.0
    JOB_MAX_ATTEMPTS = 2
    JOB_POLL_SECONDS = 1.0
    JOB_WORKER_NICE = 10  # the worker yields the CPU to the web workers serving pages
    FILTER_OPTIONS_SECONDS = 60  # a list's select filters (发证机构, 职业, 等级) are re-read after this
    HOME_FIGURES_SECONDS = 60  # 首页's 有效证书总数 and 近6个月发证数量 are recounted after this
    SERVER_TIMING = False  # Server-Timing: cpu;dur=… on every response (bench/served.py)
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
    "TENCENTCLOUD_SECRET_ID": str,
    "TENCENTCLOUD_SECRET_KEY": str,
    "SMS_TENCENT_SDK_APP_ID": str,
    "SMS_TENCENT_SIGN_NAME": str,
    "SMS_TENCENT_TEMPLATE_ID": str,
    "SMS_TENCENT_REGION": str,
    "SMS_TENCENT_ENDPOINT": str,
    "SMS_TIMEOUT_SECONDS": float,
    "SMS_RETRIES": int,
    "IDLE_TIMEOUT_MINUTES": int,
    "LOGIN_MAX_FAILURES": int,
    "LOGIN_LOCK_MINUTES": int,
    "PAGE_SIZE": int,
    "EXPORT_MAX_ROWS": int,
    "EXPORT_INLINE_MAX_ROWS": int,
    "EXPORT_JOBS_PER_USER": int,
    "EXPORT_FILE_TTL_HOURS": float,
    "JOB_LEASE_SECONDS": float,
    "JOB_BEAT_SECONDS": float,
    "JOB_MAX_ATTEMPTS": int,
    "JOB_POLL_SECONDS": float,
    "JOB_WORKER_NICE": int,
    "FILTER_OPTIONS_SECONDS": int,
    "HOME_FIGURES_SECONDS": int,
    "SERVER_TIMING": _bool,
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
    "ECERT_DEPARTMENT_CODE": str,
    "ECERT_ID_PREFIX": str,
    "ECERT_SIGNING_PKCS12": str,
    "ECERT_SIGNING_PASSWORD": str,
    "ECERT_TRUST_ROOTS": str,
    "ECERT_VERIFY_MAX_BYTES": int,
    "ECERT_ZIP_MAX": int,
    "ECERT_JOB_PROCESSES": int,
}


def from_environment(environ=os.environ) -> dict:
    """Values present in the environment, converted to their types."""
    out = {}
    for name, convert in ENV_OVERRIDES.items():
        if name in environ and environ[name] != "":
            out[name] = convert(environ[name])
    return out
