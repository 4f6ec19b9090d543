"""Settings shared by every environment. Everything that differs comes from the environment."""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

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
]

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
    "idempotency-key-purge": {
        "task": "billing_site.tasks.purge_idempotency_keys_task",
        "schedule": 3600.0,
    },
}

# Billing. A period-end invoice stays a draft this long so late events still count.
BILLING_GRACE_PERIOD_MINUTES = env.int("BILLING_GRACE_PERIOD_MINUTES", default=60)
if not 0 <= BILLING_GRACE_PERIOD_MINUTES <= 72 * 60:
    raise ImproperlyConfigured(
        f"BILLING_GRACE_PERIOD_MINUTES must be between 0 and 4320 (72 hours), "
        f"got {BILLING_GRACE_PERIOD_MINUTES}."
    )
BILLING_INVOICE_NUMBER_PREFIX = env.str("BILLING_INVOICE_NUMBER_PREFIX", default="INV")

# Stripe-shaped API.
BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS = 24
BILLING_API_MAX_BODY_BYTES = 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
