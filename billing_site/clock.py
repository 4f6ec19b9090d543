"""The one clock of the billing code.

Billing code asks `clock.now()` instead of `timezone.now()`, so tests (and later Stripe-style test
clocks) can move time without patching Django.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar

from django.utils import timezone

_frozen_at: ContextVar[dt.datetime | None] = ContextVar("billing_clock_frozen_at", default=None)


def now() -> dt.datetime:
    frozen = _frozen_at.get()
    return frozen if frozen is not None else timezone.now()


@contextlib.contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[None]:
    if timezone.is_naive(moment):
        raise ValueError("The billing clock only accepts aware datetimes (UTC).")
    token = _frozen_at.set(moment)
    try:
        yield
    finally:
        _frozen_at.reset(token)


def to_unix(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def from_unix(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
