"""Stripe's `Idempotency-Key` (https://docs.stripe.com/api/idempotent_requests) for POSTs.

The first request with a key runs and its answer is saved, per API key, for
`BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS`; a retry with the same parameters gets that answer back
(`Idempotent-Replayed: true`). The same key on another endpoint or with other parameters is an
`idempotency_error`, and so is a retry while the first request still runs (409), unless that one
died with its worker (`BILLING_STALE_REQUEST_SECONDS`): the retry then takes the key over.

As Stripe documents, a request whose parameters failed validation saves no result: it wrote
nothing, so the key is let go and a corrected retry with the same key runs. A refusal of what
the request would do to existing objects (voiding a draft) is saved and replayed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse

from billing_site import clock
from billing_site.api.errors import ApiError
from billing_site.api.params import find_unstorable_text
from billing_site.errors import ErrorCode
from billing_site.models import IdempotencyKey

# Runs the request; its argument is called inside the request's transaction once the handler
# succeeded (with the status and body), so the answer is saved with what the request wrote.
Call = Callable[[Callable[[int, dict[str, Any]], None] | None], tuple[int, dict[str, Any]]]


def _fingerprint(request: HttpRequest, data: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "params": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def run_idempotently(
    request: HttpRequest, key: str, data: dict[str, Any], call: Call
) -> JsonResponse:
    """Run `call` once per (API key, Idempotency-Key): a retry gets the saved answer."""
    if len(key) > 255:
        raise ApiError("Idempotency-Key must be at most 255 characters.", param="Idempotency-Key")
    # Checked before anything runs: the key is stored, and echoed in a response header.
    if find_unstorable_text(key, "Idempotency-Key") or _CONTROL_CHARACTERS.search(key):
        raise ApiError(
            "Idempotency-Key can't contain control characters (such as NUL or a line break) "
            "or unpaired surrogates.",
            param="Idempotency-Key",
        )
    api_key = request.api_key
    fingerprint = _fingerprint(request, data)
    now = clock.now()
    ttl = dt.timedelta(hours=settings.BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyKey.objects.filter(api_key=api_key, key=key, created_at__lt=now - ttl).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
                api_key=api_key,
                key=key,
                request_method=request.method,
                request_path=request.path[:255],
                request_fingerprint=fingerprint,
                created_at=now,
            )
    except IntegrityError:
        record = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
        if record is None:  # the first request failed validation meanwhile and let the key go
            return run_idempotently(request, key, data, call)
        if record.request_fingerprint != fingerprint:
            raise _key_reused(record, request, key) from None
        if record.response_status is None and not _take_over_if_stale(record, now):
            raise ApiError(
                "There is currently another in-progress request using this Idempotency-Key. "
                "Retry this request after it finishes.",
                status=409,
                type="idempotency_error",
                code=ErrorCode.IDEMPOTENCY_KEY_IN_USE,
            ) from None
        if record.response_status is not None:
            response = JsonResponse(record.response_body, status=record.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
    saved = lost = False
    # The record as this request owns it: a retry that took it over (this request looked dead)
    # changed `created_at`, and from then on this request must neither save nor release it.
    owned = IdempotencyKey.objects.filter(
        pk=record.pk, created_at=record.created_at, response_status__isnull=True
    )

    def save_response(status: int, body: dict[str, Any]) -> None:
        nonlocal saved, lost
        if owned.update(response_status=status, response_body=body) != 1:
            # Raised inside the handler's transaction, so what this request wrote rolls back:
            # the retry that took the key over applies the request, once.
            lost = True
            raise _taken_over()
        saved = True

    try:
        # The response is saved in the handler's own transaction: a worker killed in between
        # leaves either both (replayed) or neither (the record stays in progress, and a retry
        # takes it over once stale without applying the request twice).
        status, body = call(save_response)
    except Exception:
        # Nothing was committed by the handler, so a retry must be able to run it again.
        owned.delete()
        raise
    if lost:
        pass  # the retry that took the key over answers for it
    elif not saved and _failed_validation(status, body):
        # As Stripe documents: a request whose parameters failed validation saves no result
        # (it wrote nothing), so a corrected retry with the same key runs.
        owned.delete()
    elif not saved:  # a refusal after validation (it wrote nothing): saved and replayed
        owned.update(response_status=status, response_body=body)
    response = JsonResponse(body, status=status)
    response["Idempotency-Key"] = key
    return response


# Refusals of what the request says rather than of what it would do to existing objects.
_VALIDATION_CODES = frozenset(
    {
        ErrorCode.PARAMETER_INVALID,
        ErrorCode.PARAMETER_MISSING,
        ErrorCode.PARAMETER_UNKNOWN,
        ErrorCode.PARAMETER_IMMUTABLE,
        ErrorCode.RESOURCE_MISSING,
    }
)


def _failed_validation(status: int, body: dict[str, Any]) -> bool:
    """A 4xx that names a parameter (or an unknown object): the request never got to run."""
    error = body.get("error") if 400 <= status < 500 else None
    if not isinstance(error, dict):
        return False
    return bool(error.get("param")) or error.get("code") in _VALIDATION_CODES


def _key_reused(record: IdempotencyKey, request: HttpRequest, key: str) -> ApiError:
    first = f"{record.request_method} {record.request_path}"
    if first != f"{request.method} {request.path[:255]}":
        message = (
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{first}' vs '{request.method} {request.path}'). Try using a key "
            f"other than '{key}' if you meant to execute a different request."
        )
    else:
        message = (
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request."
        )
    return ApiError(message, type="idempotency_error", code=ErrorCode.IDEMPOTENCY_KEY_IN_USE)


def _take_over_if_stale(record: IdempotencyKey, now: dt.datetime) -> bool:
    """A request still "in progress" past the staleness window died with its worker: the retry
    takes the record over (once: a conditional update, so two retries can't both win)."""
    stale_before = now - dt.timedelta(seconds=settings.BILLING_STALE_REQUEST_SECONDS)
    if record.created_at >= stale_before:
        return False
    taken = IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, created_at=record.created_at
    ).update(created_at=now)
    if taken == 1:
        record.created_at = now
    return taken == 1


def _taken_over() -> ApiError:
    return ApiError(
        "This request took too long and a retry with the same Idempotency-Key took it over; "
        "nothing was applied by this request. The retry's answer is the request's.",
        status=409,
        type="idempotency_error",
        code=ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    )
