"""The production server: `gunicorn -c billing_site/gunicorn.conf.py`.

Threaded workers (gthread): a client that sends its request slowly holds one thread, not a whole
process, so a few slow or stalled clients can't stall the API (with sync workers, 3 clients at
1 byte/s blocked all 3 processes). Put a buffering reverse proxy in front all the same (nginx,
see the README's "Running in production"): it reads each request completely before passing it on,
so slow clients never reach the app at all.

Each value can be set from the environment; the defaults suit a 2-core machine. Every thread may
hold a database connection, so WEB_CONCURRENCY x GUNICORN_THREADS must stay under PostgreSQL's
max_connections (with room for Celery and the admin).
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


wsgi_app = "billing_site.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1)
threads = _int("GUNICORN_THREADS", 8)

# A worker whose main loop is silent this long is killed and replaced; keep it in step with
# BILLING_STALE_REQUEST_SECONDS (settings), which assumes requests end within it.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections are closed after this long: they wait in the worker's poller, not
# in a thread, but each is still an open socket.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Requests are small (bodies at most BILLING_API_MAX_BODY_BYTES = 1 MB, checked by the app);
# header limits are gunicorn's defaults, stated here so they are reviewed with the rest.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Recycle workers now and then, staggered, so slow memory growth never needs a restart.
max_requests = _int("GUNICORN_MAX_REQUESTS", 10_000)
max_requests_jitter = max_requests // 10

# Only the local proxy may say the request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Portal-link tokens are in the path (/portal/enter/<token>/): this logger masks them in every
# access-log field, so enabling the access log (--access-logfile -) never writes one down.
logger_class = "billing_site.log_masking.GunicornLogger"
