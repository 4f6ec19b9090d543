"""Test settings: local settings plus fast password hashing. DATABASE_URL picks the backend."""

from .local import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
# Tests run thousands of requests a second from one key and one address; the rate-limit tests
# turn the limits on for themselves (tests/api/test_hardening_rate_limits.py).
BILLING_API_RATE_LIMITS = {"default": "off", "ingest": "off"}
BILLING_API_INVALID_KEY_RATE_LIMIT = "off"
