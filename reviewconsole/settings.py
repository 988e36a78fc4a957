"""Settings for Review Console, driven entirely by environment variables.

DATABASE_URL   default: SQLite file ./db.sqlite3 (WAL); postgres://… uses psycopg 3
REDIS_URL      if set, django-q2 uses Redis as its broker and Django's cache lives there; otherwise the ORM
               broker and a per-process cache
TASKS_SYNC=1   django-q2 runs tasks inline (tests, debugging)
SECRET_KEY, DEBUG, ALLOWED_HOSTS, PUBLIC_URL
Production (README, "Production"): STATIC_MANIFEST, TRUST_X_FORWARDED_PROTO, SECURE_HSTS_SECONDS, BIND,
WEB_CONCURRENCY, WORKERS, WORKER_HEARTBEAT_SECONDS, METRICS_TOKEN, METRICS_WINDOW_SECONDS, LOG_FORMAT
"""

import json
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def _env_positive_int(name: str, default: int, *, zero_allowed: bool = False) -> int:
    """A whole number above zero (or zero) from the environment; anything else stops start-up naming the variable."""
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < (0 if zero_allowed else 1):
        expected = "zero or a whole number above it" if zero_allowed else "a whole number above zero"
        raise ImproperlyConfigured(f"{name} must be {expected}, not {raw!r}")
    return value


def _env_flag(name: str, default: bool = False) -> bool:
    """A yes/no switch; a value that is neither stops start-up, rather than quietly meaning "no"."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {raw!r}")


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default); anything else stops start-up naming the variable."""
    raw = os.environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _public_url(raw: str) -> tuple[str, str]:
    """(origin, host name) of PUBLIC_URL, which must be an http(s) address with a host."""
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(f"PUBLIC_URL must be an http:// or https:// address with a host, not {raw!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.hostname


DEBUG = _env_bool("DEBUG")
# Sessions, CSRF tokens and password-reset links are signed with it: a key anyone can read in the source
# would let them forge a login. Only debugging on one's own machine may do without one.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string, the same for the web server and every "
            "worker, e.g. export SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))'). "
            "`make run` keeps one in var/secret-key; DEBUG=1 uses a development key."
        )
    SECRET_KEY = "dev-only-review-console-key"  # noqa: S105 (DEBUG only, never a deployment)

# Where links in notifications point, and the address people use: its host is always allowed, and its origin
# trusted for CSRF (a form posted through a proxy whose Host differs); an https address marks the cookies Secure.
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000")
PUBLIC_ORIGIN, _public_host = _public_url(PUBLIC_URL)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
if _public_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_public_host)
CSRF_TRUSTED_ORIGINS = [PUBLIC_ORIGIN]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_q",
    "ninja",
    "axes",
    "reviewconsole.engine",
    "reviewconsole.reviews",
    "reviewconsole.autonomy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the web process (gunicorn has no static handler), before sessions and logins.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "reviewconsole.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before any view reads a parameter: a NUL character in the URL, query or form gets a 400.
    "reviewconsole.inputs.UnsafeInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # What a view logs carries the run or item id its URL names (LOG_FORMAT=json shows them as fields).
    "reviewconsole.logs.LogIdsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "reviewconsole.security.HtmxLoginRedirectMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during authentication into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reviewconsole.urls"
WSGI_APPLICATION = "reviewconsole.wsgi.application"
ASGI_APPLICATION = "reviewconsole.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]


def _database_config(url: str) -> dict:
    config = dj_database_url.parse(url, conn_health_checks=True)
    sqlite = config["ENGINE"] == "django.db.backends.sqlite3"
    # A server's connections are not kept by default: a threaded server (runserver) serves each request in a
    # new thread, and a connection kept past the request stays open on the server with a thread that is gone;
    # the pool below reuses them instead. A SQLite connection is only a file handle in the process, and a
    # worker that reopened it for every task would spend about 40% more per run (bench/engine.py).
    config["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60" if sqlite else "0"))
    pool_max_size = int(os.environ.get("DB_POOL_MAX_SIZE", "10"))
    if config["ENGINE"] == "django.db.backends.postgresql" and pool_max_size > 0:
        # Opening a PostgreSQL connection costs more than most queries, and workers touch the database many
        # times per run: each process (web server, each worker) keeps a pool, which also caps its connections.
        # Every request or task hands its connection back, which pooling requires (CONN_MAX_AGE=0).
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(os.environ.get("DB_POOL_MIN_SIZE", "1")),
            "max_size": pool_max_size,
            # A request waits this long for a free connection before failing.
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "30")),
        }
    if sqlite:
        # Web and workers share one file: WAL lets readers proceed during a
        # write, IMMEDIATE takes the write lock up front so two writers queue on
        # the busy timeout instead of failing with "database is locked".
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not Django's in-memory default, so worker processes started
        # by the tests share the test database; one per test session.
        config["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}
    return config


DATABASES = {"default": _database_config(os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Covering indexes (`include=`) serve PostgreSQL; SQLite builds them without the extra columns, which is all
# a single-machine database needs, so its warning about that is noise.
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username and address is refused before its password is checked.
    "reviewconsole.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# `manage.py serve` turns this on: collectstatic writes hashed, compressed copies into STATIC_ROOT and pages link
# to them, so browsers may cache them for ever. Off (tests, `make run`), files are served as they are in static/,
# which needs no collectstatic first.
STATIC_MANIFEST = _env_flag("STATIC_MANIFEST")
# Without the manifest, WhiteNoise finds files where runserver does, so STATIC_ROOT need not exist.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST


def _documents_storage() -> dict[str, object]:
    """Where uploaded originals (an invoice's PDF) and their page images are kept: a directory by default, any
    Django storage backend (object storage, say) by `DOCUMENTS_STORAGE` and its JSON `DOCUMENTS_STORAGE_OPTIONS`."""
    backend = os.environ.get("DOCUMENTS_STORAGE", "").strip() or "django.core.files.storage.FileSystemStorage"
    raw = os.environ.get("DOCUMENTS_STORAGE_OPTIONS", "").strip()
    try:
        options = json.loads(raw) if raw else {"location": str(BASE_DIR / "var" / "documents")}
    except ValueError as error:
        raise ImproperlyConfigured(f"DOCUMENTS_STORAGE_OPTIONS must be a JSON object: {error}") from None
    if not isinstance(options, dict):
        raise ImproperlyConfigured('DOCUMENTS_STORAGE_OPTIONS must be a JSON object, like {"location": "/srv/docs"}')
    return {"BACKEND": backend, "OPTIONS": options}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    "documents": _documents_storage(),
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from the page, not the cookie.
X_FRAME_OPTIONS = "DENY"

HTTPS = PUBLIC_ORIGIN.startswith("https://")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# With https, HSTS makes browsers refuse plain http to this site for this many seconds (a year unless set;
# SECURE_HSTS_SECONDS=0 turns it off, e.g. while trying https out). Without https it would do nothing.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if HTTPS else "0"))
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured(f"SECURE_HSTS_SECONDS must be 0 or more, not {SECURE_HSTS_SECONDS}")
# Behind a proxy that ends TLS, Django sees plain http unless it may trust the proxy's X-Forwarded-Proto; only
# set that when the proxy always sets (or strips) the header, or a client could claim https for itself.
TRUST_X_FORWARDED_PROTO = _env_flag("TRUST_X_FORWARDED_PROTO")
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Failed logins (login page and admin), counted by django-axes in the database per username and client
# address: a guesser is stopped without letting anyone lock a user out from elsewhere. A success clears
# them; `manage.py axes_reset` unlocks everyone at once (axes_reset_username / axes_reset_ip for one).
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_COOLOFF_SECONDS = int(os.environ.get("LOGIN_COOLOFF_SECONDS", "900"))
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "reviewconsole.security.login_locked_out"
# Failed API bearer tokens per client address before that address's tokens are refused for the cool-off.
# Counted in the cache, which is shared by every process when REDIS_URL is set.
API_TOKEN_FAILURE_LIMIT = int(os.environ.get("API_TOKEN_FAILURE_LIMIT", "20"))

# Task queue. Tasks are idempotent (django-q2 delivers at least once); retry is
# longer than timeout so a slow task is never handed to a second worker while
# the first still runs it.
TASK_TIMEOUT_SECONDS = int(os.environ.get("TASK_TIMEOUT_SECONDS", "600"))
REDIS_URL = os.environ.get("REDIS_URL", "")
# The cache holds counters that must hold across processes (failed API tokens): with Redis, every web
# process shares them; without, each process counts for itself.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
Q_WORKERS = int(os.environ.get("Q_WORKERS", "1"))
Q_CLUSTER = {
    "name": "reviewconsole",
    "workers": Q_WORKERS,
    # Tasks a cluster takes off the queue ahead of its workers (django-q2's default, one per worker by
    # default): a resume waits behind these, and a cluster killed with them loses them until the sweeper
    # queues their runs again. Fewer (Q_WORKERS) cost the ORM broker throughput in bench/engine.py.
    "queue_limit": Q_WORKERS**2,
    "timeout": TASK_TIMEOUT_SECONDS,
    "retry": TASK_TIMEOUT_SECONDS + 60,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "sync": _env_bool("TASKS_SYNC"),
    # Runs record their own results; storing every successful task would cost
    # a write and a trim per task. Failures are still stored.
    "save_limit": -1,
    "poll": float(os.environ.get("Q_POLL_SECONDS", "0.1")),
    "label": "Task queue",
}
# Each serves a second queue first: resumes after a decision go ahead of new runs (engine/brokers.py).
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    Q_CLUSTER["broker_class"] = "reviewconsole.engine.brokers.Redis"
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "reviewconsole.engine.brokers.ORM"

# A run whose worker stopped renewing its lease for this long is reclaimed by
# the sweeper (every worker runs it twice a lease) and continued from its last
# checkpoint; a queued run whose task no worker took up for this long is queued again.
RUN_LEASE_SECONDS = int(os.environ.get("RUN_LEASE_SECONDS", "60"))
# Attempts at one stretch of a run (from its start, a retry or a resume to its next pause or end) whose
# worker stopped without finishing (killed, or past TASK_TIMEOUT_SECONDS): after this many it fails.
RUN_MAX_ATTEMPTS = int(os.environ.get("RUN_MAX_ATTEMPTS", "3"))

# Finished runs older than this many days lose their inputs, state, output and uploaded files (decisions,
# verdicts and statistics stay); 0 keeps everything for ever. See engine.services.runs_purge_expired.
RETENTION_DAYS = _env_positive_int("RETENTION_DAYS", 0, zero_allowed=True)

DEMO_LLM_DELAY_MS = int(os.environ.get("DEMO_LLM_DELAY_MS", "0"))
# The rolling evidence window of the autonomy statistics ("the last N days").
AUTONOMY_WINDOW_DAYS = _env_positive_int("AUTONOMY_WINDOW_DAYS", 30)

# A worker counts as alive for /readyz while its heartbeat (written every half lease) is younger than this.
WORKER_HEARTBEAT_SECONDS = _env_positive_int("WORKER_HEARTBEAT_SECONDS", 2 * RUN_LEASE_SECONDS)
# /metrics answers only a request bearing this token; unset, it is not there at all (404).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Histograms and decision counts cover what finished in this many seconds before a scrape.
METRICS_WINDOW_SECONDS = _env_positive_int("METRICS_WINDOW_SECONDS", 3600)

# `manage.py serve`: the address gunicorn binds, its web processes, and the qcluster processes beside it.
BIND = os.environ.get("BIND", "127.0.0.1:8000")
WEB_CONCURRENCY = _env_positive_int("WEB_CONCURRENCY", 2)
WORKERS = _env_positive_int("WORKERS", 1)

# `json`: one JSON object per line, for a log collector; `text`: lines for a person at a terminal.
LOG_FORMAT = _env_choice("LOG_FORMAT", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The run and review item a line was logged for (reviewconsole/logs.py), on every line that has them.
    "filters": {"ids": {"()": "reviewconsole.logs.ContextIdsFilter"}},
    "formatters": {
        "text": {"format": "%(message)s%(ids)s"},
        "json": {"()": "reviewconsole.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["ids"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"reviewconsole": {"level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True}},
}

# Modules whose import registers flows (comma-separated in the environment).
FLOW_MODULES = [m.strip() for m in os.environ.get("FLOW_MODULES", "flows").split(",") if m.strip()]

# New review items: a signed webhook and/or email (see reviews/notifications.py).
REVIEW_WEBHOOK_URL = os.environ.get("REVIEW_WEBHOOK_URL", "")
REVIEW_WEBHOOK_SECRET = os.environ.get("REVIEW_WEBHOOK_SECRET", "")
REVIEW_NOTIFY_EMAILS = [a.strip() for a in os.environ.get("REVIEW_NOTIFY_EMAILS", "").split(",") if a.strip()]
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "review-console@localhost")
# An approval given sooner than this many seconds after the reviewer opened the item is marked "fast": too quick
# to have been a check of the output (see README, "Reviewer reliability").
FAST_APPROVAL_SECONDS = _env_positive_int("FAST_APPROVAL_SECONDS", 5)


def _undo_seconds() -> int:
    """UNDO_SECONDS: 0 (undo off) to 60; without workers (TASKS_SYNC=1) only 0, and 0 by default there."""
    raw = os.environ.get("UNDO_SECONDS", "").strip() or ("0" if Q_CLUSTER["sync"] else "10")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 60:
        raise ImproperlyConfigured(f"UNDO_SECONDS must be a whole number from 0 (undo off) to 60, not {raw!r}")
    if value and Q_CLUSTER["sync"]:
        # A held-back resume is released by a worker's heartbeat once the window ends; inline tasks have none.
        raise ImproperlyConfigured("UNDO_SECONDS must be 0 with TASKS_SYNC=1: no worker would resume the flow later")
    return value


# For this many seconds after a decision its reviewer can undo it: the flow's resume is held back meanwhile
# (see `reviews.services.review_item_undo`).
UNDO_SECONDS = _undo_seconds()
