"""Django settings for Anshim.

Everything deploy-specific comes from the environment so the same code runs the embedded
SQLite default (`make run`) and PostgreSQL in production (`DATABASE_URL=postgres://...`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Runtime data (SQLite file, key ring, snapshots) lives outside the package.
DATA_DIR = Path(os.environ.get("ANSHIM_DATA_DIR", Path.cwd() / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)

DEBUG = os.environ.get("ANSHIM_DEBUG", "0") == "1"
# The development default. In production mode (DEBUG off, not ANSHIM_DEMO=1) the server, the
# worker and the scheduler refuse to start with it (anshim.security.startup).
ANSHIM_INSECURE_SECRET_KEY = "insecure-development-key-change-me-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("ANSHIM_SECRET_KEY", ANSHIM_INSECURE_SECRET_KEY)
# `make run`: a local demo may use the development defaults even where DEBUG is off.
ANSHIM_DEMO = os.environ.get("ANSHIM_DEMO", "0") == "1"
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ANSHIM_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_tasks_db",
    # django-ninja's own static files: /api/v1/docs serves Swagger UI from our origin (the CSP
    # allows nothing else); without the app it would load it from a CDN.
    "ninja",
    "anshim.config",
    "anshim.security",
    "anshim.cases",
    "anshim.experts",
    "anshim.erasure",
    "anshim.exchange",
    "anshim.portal",
    "anshim.prevention",
    "anshim.reports",
]

MIDDLEWARE = [
    # Outermost: a request that met a busy database answers 503 + Retry-After, never a 500.
    "anshim.security.contention.DatabaseBusyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "anshim.security.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Control characters in any text input: a 422 naming the field, on every database.
    "anshim.security.textinput.ControlCharacterMiddleware",
    "anshim.security.middleware.SameOriginNullOriginMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "anshim.security.middleware.ClientAddressMiddleware",
    "anshim.security.refusals.RefusalAuditMiddleware",  # every 403 is audited
    # Axes must be last: it turns lockouts into responses.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "anshim.config.urls"
WSGI_APPLICATION = "anshim.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_SQLITE_PATH = DATA_DIR / "anshim.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{_SQLITE_PATH}"),
        # Seconds a server process keeps its PostgreSQL connection (0 = one per request).
        conn_max_age=int(os.environ.get("ANSHIM_DB_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the task worker read while the other writes;
    # IMMEDIATE transactions avoid "database is locked" upgrades under concurrent writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ------------------------------------------------------------------------
AUTH_USER_MODEL = "security.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Django's full set, at least 12 characters, and no common word or role name with digits
# around it (`counselor2024`): the passwords a sprayer tries first.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "anshim.security.passwords.DecoratedWordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "staff:login"
LOGIN_REDIRECT_URL = "cases:list"
LOGOUT_REDIRECT_URL = "staff:login"

# Failed staff logins: lock the username+address pair after 5 failures for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("ANSHIM_AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Password spraying (one password tried on many usernames): an address is refused for the same
# cool-off after this many failures across all usernames (anshim.security.services).
ANSHIM_LOGIN_ADDRESS_FAILURE_LIMIT = int(
    os.environ.get("ANSHIM_LOGIN_ADDRESS_FAILURE_LIMIT", "10"))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "staff/locked_out.html"
AXES_VERBOSE = False
# Axes counts failures per client address as the trusted proxy hop says, like the audit log.
AXES_CLIENT_IP_CALLABLE = "anshim.security.middleware.client_address"

# Sessions expire after 30 minutes without activity and always when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("ANSHIM_SESSION_SECONDS", "1800"))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
_HTTPS = os.environ.get("ANSHIM_HTTPS", "0") == "1"
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
# Reverse proxies in front of the server (nginx: 1). Each appends the address it saw to
# X-Forwarded-For; the client address is the entry the nearest trusted proxy wrote
# (anshim.security.middleware.client_address). 0: the connection's peer is the client.
# ANSHIM_TRUSTED_PROXY=1 is the older spelling of one proxy.
ANSHIM_TRUSTED_PROXIES = int(os.environ.get(
    "ANSHIM_TRUSTED_PROXIES", "1" if os.environ.get("ANSHIM_TRUSTED_PROXY") == "1" else "0"))
# Optional: the proxies' own addresses or networks; forwarded headers from any other peer are
# ignored (a request that bypassed the proxy cannot claim an address).
ANSHIM_TRUSTED_PROXY_NETWORKS = [
    n.strip() for n in os.environ.get("ANSHIM_TRUSTED_PROXY_NETWORKS", "").split(",") if n.strip()
]
if _HTTPS:
    # TLS ends at the proxy, which must set (not pass through) this header: nginx's
    # `proxy_set_header X-Forwarded-Proto $scheme`. Without it request.is_secure() is False,
    # and CSRF's origin check refuses every POST from https://.
    _PROXY_SSL_HEADER = os.environ.get("ANSHIM_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    if _PROXY_SSL_HEADER:
        SECURE_PROXY_SSL_HEADER = (
            "HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")
# Origins a POST may come from besides the request's own host (a proxy that rewrites Host, a
# non-default port). By default every allowed host over the scheme in use.
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("ANSHIM_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
] or [
    "https://" + (f"*{h}" if h.startswith(".") else h)
    for h in ALLOWED_HOSTS if _HTTPS and h != "*"
]
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Staff must confirm a TOTP code; tests and the demo may relax this explicitly.
ANSHIM_REQUIRE_OTP = os.environ.get("ANSHIM_REQUIRE_OTP", "1") == "1"
OTP_TOTP_ISSUER = "Anshim"
# The center's response target for a victim's portal message: the inbox marks a message that
# has waited longer without a reply as overdue.
ANSHIM_PORTAL_RESPONSE_HOURS = float(os.environ.get("ANSHIM_PORTAL_RESPONSE_HOURS", "24"))
# The center as takedown notices name it: its name (Korean; English for notices in other
# languages), phone number and signature block, and the address notices are sent from.
ANSHIM_CENTER_NAME = os.environ.get("ANSHIM_CENTER_NAME", "안심 원스톱 지원센터")
ANSHIM_CENTER_NAME_EN = os.environ.get("ANSHIM_CENTER_NAME_EN", "Anshim one-stop support center")
ANSHIM_CENTER_PHONE = os.environ.get("ANSHIM_CENTER_PHONE", "")
ANSHIM_CENTER_SIGNATURE = os.environ.get("ANSHIM_CENTER_SIGNATURE", "")
ANSHIM_TAKEDOWN_FROM_EMAIL = os.environ.get("ANSHIM_TAKEDOWN_FROM_EMAIL", "")
# Retention: once the victim withdraws consent to keep case data, the case data is to be
# deleted within this many days (the counselor's follow-up task and the case page's banner).
ANSHIM_WITHDRAWN_DATA_DELETE_DAYS = int(os.environ.get("ANSHIM_WITHDRAWN_DATA_DELETE_DAYS", "30"))
# The case workflow (anshim.cases.workflow, docs/cases.md): None is the center's default
# (new -> triaged -> in support -> erasure ongoing -> closing -> closed, reopenable). A dict
# replaces its "transitions", "implied" or "reopen_to"; the environment variable takes the same
# dict as JSON. Checked at start: an unusable graph stops the server with what is wrong.
ANSHIM_CASE_WORKFLOW = json.loads(os.environ.get("ANSHIM_CASE_WORKFLOW") or "null")
# The address staff and experts reach Anshim at: every link in an e-mail is absolute from it
# (an e-mail has no page to be relative to). Set it to the public https address in production.
ANSHIM_SITE_URL = os.environ.get("ANSHIM_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The center's HTTP SMS gateway (anshim.portal.sms): unset, portal access is never texted.
ANSHIM_SMS_GATEWAY_URL = os.environ.get("ANSHIM_SMS_GATEWAY_URL", "")
ANSHIM_SMS_GATEWAY_TOKEN = os.environ.get("ANSHIM_SMS_GATEWAY_TOKEN", "")
# Four eyes on takedown notices: whoever drafted or last edited a notice cannot approve it.
ANSHIM_TAKEDOWN_SECOND_APPROVER = os.environ.get("ANSHIM_TAKEDOWN_SECOND_APPROVER", "1") == "1"

# --- Encryption at rest --------------------------------------------------------------------
# Key ring: ANSHIM_KEYS (comma-separated "id:base64key", newest first) or a key file.
ANSHIM_KEY_FILE = Path(os.environ.get("ANSHIM_KEY_FILE", DATA_DIR / "keyring.json"))

# Ed25519 key that signs evidence packages for police and courts (created on first use, 0600).
ANSHIM_EVIDENCE_KEY_FILE = Path(
    os.environ.get("ANSHIM_EVIDENCE_KEY_FILE", DATA_DIR / "evidence-ed25519.pem"))
# The HMAC key of the audit chain: outside the database, beside the key ring by default
# (ANSHIM_AUDIT_KEY, base64, overrides the file).
ANSHIM_AUDIT_KEY_FILE = Path(
    os.environ.get("ANSHIM_AUDIT_KEY_FILE", ANSHIM_KEY_FILE.parent / "audit-hmac.key"))
# Signed heads of the audit chain, one JSON line each (append-only; `anshim periodic` adds one
# when the head moved), and who else receives each anchor by mail (comma-separated).
ANSHIM_AUDIT_ANCHOR_FILE = Path(
    os.environ.get("ANSHIM_AUDIT_ANCHOR_FILE", DATA_DIR / "audit-anchors.jsonl"))
ANSHIM_AUDIT_ANCHOR_MAIL_TO = [
    a.strip() for a in os.environ.get("ANSHIM_AUDIT_ANCHOR_MAIL_TO", "").split(",") if a.strip()]
# Seconds a bank matcher may answer from its index before polling the change log again
# (withdrawn hits are re-checked against the database on every query regardless).
ANSHIM_MATCHER_POLL_SECONDS = float(os.environ.get("ANSHIM_MATCHER_POLL_SECONDS", "0"))
# Where the worker builds the matcher's memory-mapped snapshot (issue 15: built once by the
# periodic erasure tick, mapped by every web and worker process, which replay only the change
# log after it). Unset: every process reads the banks from the database instead.
ANSHIM_MATCH_SNAPSHOT_DIR = (Path(os.environ["ANSHIM_MATCH_SNAPSHOT_DIR"])
                             if os.environ.get("ANSHIM_MATCH_SNAPSHOT_DIR") else None)
# Processes fingerprinting the media of a scheduled scan (default: one per core; 1 = a thread
# inside the crawl process, no extra process to start).
ANSHIM_SCAN_WORKERS = int(os.environ.get("ANSHIM_SCAN_WORKERS", str(os.cpu_count() or 1)))

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = os.environ.get("ANSHIM_TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Background tasks ----------------------------------------------------------------------
# A database-backed queue: no extra server is needed; `anshim db_worker` runs the jobs.
TASKS = {"default": {"BACKEND": os.environ.get(
    "ANSHIM_TASK_BACKEND", "django_tasks_db.DatabaseBackend")}}

# --- Mail ----------------------------------------------------------------------------------
_EMAIL_BACKEND = os.environ.get(
    "ANSHIM_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
_SMTP_OPTIONS: dict[str, object] = {
    "host": os.environ.get("ANSHIM_SMTP_HOST", "127.0.0.1"),
    "port": int(os.environ.get("ANSHIM_SMTP_PORT", "25")),
    "username": os.environ.get("ANSHIM_SMTP_USER", ""),
    "password": os.environ.get("ANSHIM_SMTP_PASSWORD", ""),
    "use_tls": os.environ.get("ANSHIM_SMTP_TLS", "0") == "1",
    "timeout": 30,
}
MAILERS = {
    "default": {
        "BACKEND": _EMAIL_BACKEND,
        "OPTIONS": _SMTP_OPTIONS if _EMAIL_BACKEND.endswith("smtp.EmailBackend") else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("ANSHIM_FROM_EMAIL", "anshim@localhost")

# --- Logging: never log request bodies (they may contain personal data) ---------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ANSHIM_LOG_LEVEL", "WARNING")},
}

NINJA_PAGINATION_PER_PAGE = 100
