"""Request limits for the API: per API key and endpoint group, and failed keys per client IP.

Limits are settings, written "N/s", "N/m" or "N/h" ("off" disables one): see
`BILLING_API_RATE_LIMITS` and `BILLING_API_INVALID_KEY_RATE_LIMIT`. Each is a fixed-window counter
in Django's cache: one counter per key and window (for "100/s", each wall-clock second), raised
with the cache's atomic increment. Without `CACHE_URL` the cache is per process, so each server
process has its own allowance; with Redis configured, every process shares one count.

Why not django-ratelimit: its core is this same counter, but the limit here must apply after the
API key is known (inside `ApiView.dispatch`, not as a view decorator), answer in Stripe's error
shape, and read per-group rates from settings; and its system checks refuse the local-memory
cache that the embedded default runs on. Forty lines of our own were simpler than adapting it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

_RATE = re.compile(r"(\d{1,9})/([smh])")
_WINDOW_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int


@lru_cache(maxsize=32)
def parse_rate(text: str) -> Rate | None:
    """`"100/s"` -> Rate(100, 1); `""` or `"off"` -> None (no limit)."""
    text = text.strip().lower()
    if text in ("", "off"):
        return None
    match = _RATE.fullmatch(text)
    if match is None or int(match[1]) < 1:
        raise ValueError(f"A rate limit is written N/s, N/m, N/h or off (got '{text}').")
    return Rate(int(match[1]), _WINDOW_SECONDS[match[2]])


# Wall time, not the billing clock: limits are about real load, even under a test clock.
_wall_time = time.time


def _window(scope: str, ident: str, rate: Rate) -> tuple[str, int]:
    """The counter's cache key for the current window, and the seconds until the window ends."""
    now = _wall_time()
    index = int(now // rate.window_seconds)
    retry_after = max(1, math.ceil((index + 1) * rate.window_seconds - now))
    return f"billing:rate:{scope}:{ident}:{rate.window_seconds}:{index}", retry_after


def _cache():
    return caches[settings.BILLING_API_RATE_LIMIT_CACHE]


def count_request(scope: str, ident: str, rate_text: str) -> int | None:
    """Count one request; return the seconds to wait if it is over the limit, else None."""
    rate = parse_rate(rate_text)
    if rate is None:
        return None
    key, retry_after = _window(scope, ident, rate)
    cache = _cache()
    try:
        try:
            count = cache.incr(key)
        except ValueError:  # the window's first request (or its key just expired)
            count = 1 if cache.add(key, 1, timeout=rate.window_seconds + 1) else cache.incr(key)
    except Exception:
        # An unreachable cache must not take the API down with it: serve unlimited, loudly.
        logger.warning("Rate limit cache unavailable; request not counted.", exc_info=True)
        return None
    return retry_after if count > rate.limit else None


def already_over(scope: str, ident: str, rate_text: str) -> int | None:
    """Like `count_request` without counting: for events counted only when they happen (a
    failed authentication), checked before the work they would cost."""
    rate = parse_rate(rate_text)
    if rate is None:
        return None
    key, retry_after = _window(scope, ident, rate)
    try:
        count = _cache().get(key, 0)
    except Exception:
        logger.warning("Rate limit cache unavailable; request not checked.", exc_info=True)
        return None
    return retry_after if count >= rate.limit else None
