"""Which API request, if any, is making the current change: an event's `request` block.

The API's base view opens `api_request_scope` around each handler; admin actions, jobs and
billing runs have none, so their events say `request: {"id": null, ...}`, as Stripe's
automatic events do.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ApiRequest:
    id: str
    idempotency_key: str | None


_current: ContextVar[ApiRequest | None] = ContextVar("billing_api_request", default=None)


def new_request_id() -> str:
    return "req_" + "".join(secrets.choice(_ALPHABET) for _ in range(14))


def current_api_request() -> ApiRequest | None:
    return _current.get()


@contextlib.contextmanager
def api_request_scope(request) -> Iterator[ApiRequest]:
    """Mark the changes made inside as caused by this HTTP request; its id is kept on
    `request.request_id` (the API answers it in the `Request-Id` header)."""
    if not getattr(request, "request_id", None):
        request.request_id = new_request_id()
    key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    token = _current.set(ApiRequest(id=request.request_id, idempotency_key=key or None))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
