"""Settings shared by every environment. Everything that differs comes from the environment."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from billing_site.api.rate_limits import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "djmoney",
    "django_celery_beat",
    "billing_site",
    "catalog",
    "metering",
    "credits",
    "invoicing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

# Admin logins: django-axes counts failed attempts for each username from each client IP; after
# AXES_FAILURE_LIMIT of them that pair is refused (even with the right password) for the
# cool-off. Keying on the pair, not the username alone, means a stranger can't lock staff out.
# Unlock early with `manage.py axes_reset_username NAME` or in the admin (Axes > Access attempts).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("ADMIN_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "billing_site.client_ip.client_ip"
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are still logged
# Reverse proxies in front of the app that append to X-Forwarded-For (1 behind nginx alone); the
# client IP for rate limits and login lockouts is read from there (billing_site/client_ip.py).
BILLING_TRUSTED_PROXY_COUNT = env.int("BILLING_TRUSTED_PROXY_COUNT", default=0)

# One shared cache (Redis) when CACHE_URL or REDIS_URL is set, e.g. redis://127.0.0.1:6379/1;
# otherwise each process has its own local-memory cache.
CACHE_URL = env.str("CACHE_URL", default="") or env.str("REDIS_URL", default="")
CACHES = {
    "default": env.cache_url_config(CACHE_URL)
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A slow or unreachable Redis must not hold requests up: after this the rate limits let
    # the request through (and log it) rather than wait.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("socket_connect_timeout", 0.5)
    CACHES["default"]["OPTIONS"].setdefault("socket_timeout", 0.5)

ROOT_URLCONF = "billing_site.urls"
WSGI_APPLICATION = "billing_site.wsgi.application"

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
    },
]

# SQLite in the project directory is the embedded default: one command runs the app with no servers.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if not DATABASES["default"].get("ENGINE"):
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL this project knows: '{DATABASE_URL.split('@')[-1]}'. "
        "Use postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3."
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue up instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Where meter events are stored and usage is read (metering.store.EVENT_STORES): "postgresql"
# (one prepared statement per batch, partitioned events), "orm" (any database Django supports)
# or "clickhouse" (events in ClickHouse; README "ClickHouse event store").
METER_EVENT_STORES = ("postgresql", "orm", "clickhouse")
_ON_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
METER_EVENT_STORE = env.str("METER_EVENT_STORE", default="") or (
    "postgresql" if _ON_POSTGRESQL else "orm"
)
if METER_EVENT_STORE not in METER_EVENT_STORES:
    raise ImproperlyConfigured(
        f"METER_EVENT_STORE must be one of {', '.join(METER_EVENT_STORES)} "
        f"(or unset to follow the database), got '{METER_EVENT_STORE}'."
    )
if METER_EVENT_STORE == "postgresql" and not _ON_POSTGRESQL:
    raise ImproperlyConfigured(
        "METER_EVENT_STORE=postgresql needs a PostgreSQL database, but DATABASE_URL points to "
        f"{DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; use METER_EVENT_STORE=orm or "
        "unset it."
    )
# The ClickHouse event store: clickhouse://user:password@host:8123/database (a server, over HTTP)
# or chdb:///absolute/directory (the engine embedded in this process: development and tests).
CLICKHOUSE_URL = env.str("CLICKHOUSE_URL", default="")
# A cluster's name (remote_servers): the DDL then runs ON CLUSTER, with Distributed tables
# sharded by customer. Empty: one server.
CLICKHOUSE_CLUSTER = env.str("CLICKHOUSE_CLUSTER", default="")
# Events (and their rollups) are dropped this many days after their timestamp; 0 keeps them.
CLICKHOUSE_EVENT_RETENTION_DAYS = env.int("CLICKHOUSE_EVENT_RETENTION_DAYS", default=760)
if METER_EVENT_STORE == "clickhouse":
    import importlib.util

    # The package each URL scheme needs (the optional group `clickhouse` installs both).
    _CLICKHOUSE_SCHEMES = {
        "clickhouse": "clickhouse_connect",
        "clickhouses": "clickhouse_connect",
        "chdb": "chdb",
    }
    _scheme = CLICKHOUSE_URL.split("://", 1)[0] if "://" in CLICKHOUSE_URL else ""
    if _scheme not in _CLICKHOUSE_SCHEMES:
        raise ImproperlyConfigured(
            "METER_EVENT_STORE=clickhouse needs CLICKHOUSE_URL=clickhouse://user:password@host:"
            "8123/database (a server) or chdb:///absolute/directory (embedded), got "
            f"'{CLICKHOUSE_URL.split('@')[-1]}'."
        )
    if importlib.util.find_spec(_CLICKHOUSE_SCHEMES[_scheme]) is None:
        raise ImproperlyConfigured(
            f"METER_EVENT_STORE=clickhouse with a {_scheme}:// URL needs the "
            f"{_CLICKHOUSE_SCHEMES[_scheme]} package: pip install -e '.[clickhouse]'"
        )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "billing_site" / "static"]

LOGIN_URL = "admin:login"

# Celery. With no broker configured the tasks run eagerly in-process (see README "Running the
# billing cycle"), so the local default never silently skips work.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The one place schedules are defined; django-celery-beat copies them into the database, where
# staff can see and edit them in the admin.
# It is also the one list of due work: `manage.py run_billing` runs exactly these, in this order
# (billing_site/jobs.py). Each task lives in its app's tasks.py.
CELERY_BEAT_SCHEDULE: dict = {
    "meter-event-maintenance": {
        "task": "metering.tasks.meter_event_maintenance_task",
        "schedule": 24 * 3600.0,
    },
    "credit-grant-expiry": {"task": "credits.tasks.expire_credit_grants_task", "schedule": 60.0},
    "billing-run": {"task": "invoicing.tasks.billing_run_task", "schedule": 60.0},
    "invoice-notices": {"task": "invoicing.tasks.invoice_notices_task", "schedule": 60.0},
    "idempotency-key-purge": {
        "task": "billing_site.tasks.purge_idempotency_keys_task",
        "schedule": 3600.0,
    },
    "event-purge": {"task": "billing_site.tasks.purge_events_task", "schedule": 3600.0},
    # Last, so one `run_billing` pass also sends the events the jobs above recorded.
    "webhook-delivery": {"task": "billing_site.tasks.deliver_webhooks_task", "schedule": 10.0},
}

# Billing. A period-end invoice stays a draft this long so late events still count.
BILLING_GRACE_PERIOD_MINUTES = env.int("BILLING_GRACE_PERIOD_MINUTES", default=60)
if not 0 <= BILLING_GRACE_PERIOD_MINUTES <= 72 * 60:
    raise ImproperlyConfigured(
        f"BILLING_GRACE_PERIOD_MINUTES must be between 0 and 4320 (72 hours), "
        f"got {BILLING_GRACE_PERIOD_MINUTES}."
    )
BILLING_INVOICE_NUMBER_PREFIX = env.str("BILLING_INVOICE_NUMBER_PREFIX", default="INV")
# Subscriptions (or drafts) the billing run closes (or finalizes) per transaction.
BILLING_RUN_CHUNK_SIZE = env.int("BILLING_RUN_CHUNK_SIZE", default=500)
if BILLING_RUN_CHUNK_SIZE < 1:
    raise ImproperlyConfigured(
        f"BILLING_RUN_CHUNK_SIZE must be at least 1, got {BILLING_RUN_CHUNK_SIZE}."
    )

# The seller, as `GET /v1/account` and the invoice PDFs show it.
BILLING_ACCOUNT_ID = env.str("BILLING_ACCOUNT_ID", default="acct_1UsageBillingBackOffice")
BILLING_SELLER_NAME = env.str("BILLING_SELLER_NAME", default="Usage Billing")
BILLING_SELLER_EMAIL = env.str("BILLING_SELLER_EMAIL", default="")
BILLING_SELLER_COUNTRY = env.str("BILLING_SELLER_COUNTRY", default="US").upper()
BILLING_DEFAULT_CURRENCY = env.str("BILLING_DEFAULT_CURRENCY", default="usd").lower()
if not re.fullmatch(r"acct_[A-Za-z0-9]+", BILLING_ACCOUNT_ID):
    raise ImproperlyConfigured(
        "BILLING_ACCOUNT_ID must be acct_ followed by letters and digits, "
        f"got {BILLING_ACCOUNT_ID!r}."
    )
if not re.fullmatch(r"[A-Z]{2}", BILLING_SELLER_COUNTRY):
    raise ImproperlyConfigured(
        f"BILLING_SELLER_COUNTRY must be a two-letter ISO country code (US, FR, ...), "
        f"got {BILLING_SELLER_COUNTRY!r}."
    )
if not re.fullmatch(r"[a-z]{3}", BILLING_DEFAULT_CURRENCY):
    raise ImproperlyConfigured(
        f"BILLING_DEFAULT_CURRENCY must be a three-letter ISO currency code (usd, eur, ...), "
        f"got {BILLING_DEFAULT_CURRENCY!r}."
    )

# Events and webhooks (billing_site/events/). Events are kept this many days (Stripe: 30), and
# `invoice.upcoming` is sent this many days before a subscription renews (Stripe's default: 3).
BILLING_API_VERSION = "2026-10-28.endive"  # the shape events are rendered in: the official SDK's
BILLING_EVENT_RETENTION_DAYS = env.int("BILLING_EVENT_RETENTION_DAYS", default=30)
BILLING_INVOICE_UPCOMING_DAYS = env.int("BILLING_INVOICE_UPCOMING_DAYS", default=3)
# A delivery succeeds on a 2xx within the timeout; otherwise it is retried after each step of
# the schedule in turn (the last one repeating) until the retry window after the event ends.
BILLING_WEBHOOK_TIMEOUT_SECONDS = env.float("BILLING_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS = [
    float(step)
    for step in env.list(
        "BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS",
        default=["60", "300", "1800", "3600", "7200", "14400", "28800", "43200"],
    )
]
BILLING_WEBHOOK_RETRY_WINDOW_SECONDS = env.float(
    "BILLING_WEBHOOK_RETRY_WINDOW_SECONDS", default=3 * 24 * 3600
)
# An endpoint whose attempts have all failed this long is disabled (and listed for staff).
BILLING_WEBHOOK_DISABLE_AFTER_SECONDS = env.float(
    "BILLING_WEBHOOK_DISABLE_AFTER_SECONDS", default=3 * 24 * 3600
)
# Outbound requests (billing_site/events/outbound.py): HTTPS to public addresses only, unless
# private addresses are allowed (on-premise receivers); local settings also allow plain HTTP and
# loopback. Link-local and metadata addresses are never allowed.
BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool(
    "BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False
)
BILLING_WEBHOOK_ALLOW_LOCAL_URLS = env.bool("BILLING_WEBHOOK_ALLOW_LOCAL_URLS", default=False)
BILLING_WEBHOOK_RESPONSE_READ_BYTES = 64 * 1024
# Without a broker, the delivery job sends at most this many per run, this many at a time.
BILLING_WEBHOOK_MAX_PER_RUN = env.int("BILLING_WEBHOOK_MAX_PER_RUN", default=500)
BILLING_WEBHOOK_CONCURRENCY = env.int("BILLING_WEBHOOK_CONCURRENCY", default=8)
if (
    not BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS
    or min(BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS) < 0
    or BILLING_WEBHOOK_TIMEOUT_SECONDS <= 0
    or BILLING_WEBHOOK_CONCURRENCY < 1
):
    raise ImproperlyConfigured(
        "Webhook settings: BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS needs at least one step of "
        "0 s or more, BILLING_WEBHOOK_TIMEOUT_SECONDS must be positive and "
        "BILLING_WEBHOOK_CONCURRENCY at least 1."
    )

# Stripe-shaped API.
BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS = 24
# A request or test-clock advance still "in progress" this long after it started died with its
# worker (the server's request timeout is 30 s; see billing_site/gunicorn.conf.py): a retry takes
# it over instead of waiting for the 24-hour replay window to pass.
BILLING_STALE_REQUEST_SECONDS = env.int("BILLING_STALE_REQUEST_SECONDS", default=90)
BILLING_API_MAX_BODY_BYTES = 1024 * 1024
# Requests per API key, by endpoint group, written N/s, N/m or N/h ("off" for none). Over the
# limit the API answers 429 with code `rate_limit` and Retry-After. Counted in CACHES["default"]:
# shared by every process only when CACHE_URL points at Redis (billing_site/api/rate_limits.py).
BILLING_API_RATE_LIMITS = {
    "default": env.str("BILLING_API_RATE_LIMIT", default="100/s"),
    # Meter events and the v2 event stream: high-volume ingestion gets more room.
    "ingest": env.str("BILLING_API_INGEST_RATE_LIMIT", default="1000/s"),
}
# Failed authentications (missing, unknown or revoked key) per client IP; once over, the IP's
# requests are refused before any key lookup until the window ends.
BILLING_API_INVALID_KEY_RATE_LIMIT = env.str("BILLING_API_INVALID_KEY_RATE_LIMIT", default="30/m")
BILLING_API_RATE_LIMIT_CACHE = "default"
for _name, _rate in [
    *BILLING_API_RATE_LIMITS.items(),
    ("invalid_key", BILLING_API_INVALID_KEY_RATE_LIMIT),
]:
    try:
        parse_rate(_rate)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"API rate limit '{_name}': {_exc}") from None

# Portal-link tokens are credentials: the request log and runserver's access log print request
# paths, so both mask them (billing_site/log_masking.py; gunicorn's access log: gunicorn.conf.py).
# django.server is Django's own runserver logger, restated here because configuring a logger
# replaces its handlers.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_portal_tokens": {"()": "billing_site.log_masking.MaskPortalTokens"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "loggers": {
        "django.request": {"filters": ["mask_portal_tokens"]},
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["mask_portal_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
