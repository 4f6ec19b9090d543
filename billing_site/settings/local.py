"""Local development on the embedded SQLite default. Never use in production."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str(
    "SECRET_KEY", default="insecure-local-development-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
# Webhooks to a receiver on this machine (http://127.0.0.1:PORT/...) are fine here.
BILLING_WEBHOOK_ALLOW_LOCAL_URLS = env.bool("BILLING_WEBHOOK_ALLOW_LOCAL_URLS", default=True)
