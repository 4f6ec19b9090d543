"""Who is calling the API, and whether they may: API keys, rate limits and restricted keys.

`ApiView.dispatch` calls `authenticate_within_limits` first (a flood of wrong keys is refused
before any database work), then `refuse_without_permission` once it knows the method. Every
view class declares the resource a restricted key needs permission on, checked when the class
is defined (`check_resource_declared`).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest

from billing_site.api import rate_limits
from billing_site.api.errors import ApiError
from billing_site.client_ip import client_ip
from billing_site.errors import ErrorCode
from billing_site.key_permissions import READ, RESOURCES, WRITE
from billing_site.models import ApiKey
from billing_site.services import api_key_authenticate, hash_api_secret

if TYPE_CHECKING:
    from billing_site.api.base import ApiView


def authenticate(request: HttpRequest) -> ApiKey:
    """The key in the Authorization header (Bearer, or Basic with the key as the user name, as
    curl -u sends it), or a 401."""
    credential = _presented_secret(request)
    api_key = api_key_authenticate(secret=credential)
    if api_key is None:
        raise _invalid_key(credential)
    return api_key


def _presented_secret(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    credential = credential.strip()
    if not credential:
        raise ApiError(
            "You did not provide an API key. Send it in the Authorization header "
            "('Authorization: Bearer sk_...').",
            status=401,
        )
    return credential


def _invalid_key(credential: str) -> ApiError:
    return ApiError(
        f"Invalid API Key provided: {mask_secret(credential)}",
        status=401,
        code=ErrorCode.API_KEY_INVALID,
    )


class DeferredApiKey:
    """A key presented but not looked up yet, for an endpoint whose own single statement checks
    it (the v1 meter event: `metering.ingest.meter_event_record`), so the request costs one
    round trip. Nothing is cached: the statement reads the key table on every request.

    Until that statement has run, its permission check is the statement's (`allows` is True
    here), and its rate-limit counter is keyed by the secret's hash (`pk`), the only identity
    known before the look-up. An endpoint using it calls `deferred_key_refusal` for any error
    it answers before the key was checked, so a bad key is still refused first."""

    def __init__(self, secret: str):
        self.secret = secret
        self.secret_hash = hash_api_secret(secret)

    @property
    def pk(self) -> str:
        return f"sha256:{self.secret_hash}"

    def allows(self, resource: str, access: str) -> bool:
        return True

    def refused(self, request: HttpRequest) -> ApiError:
        """The 401 for this key once its statement found no live key (counted like any)."""
        _count_failed_key(request)
        return _invalid_key(self.secret)


def defer_authentication(request: HttpRequest) -> DeferredApiKey:
    """The presented key, to be checked later by the endpoint's statement (a 401 if none)."""
    return DeferredApiKey(_presented_secret(request))


def deferred_key_refusal(view: ApiView, request: HttpRequest) -> ApiError | None:
    """The answer a normal look-up gives a deferred key that was never checked: a 401 for an
    unknown or revoked key, a 403 for a restricted key without permission, else None."""
    try:
        request.api_key = authenticate(request)  # type: ignore[attr-defined]
    except ApiError as exc:
        _count_failed_key(request)
        return exc
    try:
        refuse_without_permission(view, request)
    except ApiError as exc:
        return exc
    return None


def _count_failed_key(request: HttpRequest) -> None:
    rate_limits.count_request(
        "invalid-key", client_ip(request), settings.BILLING_API_INVALID_KEY_RATE_LIMIT
    )


def mask_secret(secret: str) -> str:
    """A wrong key as Stripe quotes it (`sk_live********abcd`): at most the first 7 and last 4
    characters, and always at least 8 hidden, so no secret is ever echoed whole, however short."""
    hidden = min(len(secret), max(8, len(secret) - 11))
    shown = len(secret) - hidden
    tail = min(4, shown)
    # The stars stand for the hidden part, capped so a huge header isn't echoed at full length.
    return secret[: shown - tail] + "*" * min(hidden, 64) + secret[len(secret) - tail :]


def _rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        "Too many requests hit the API too quickly. We recommend an exponential backoff of "
        "your requests.",
        status=429,
        code=ErrorCode.RATE_LIMIT,
        headers={"Retry-After": str(retry_after)},
    )


def authenticate_within_limits(view: ApiView, request: HttpRequest) -> ApiKey | DeferredApiKey:
    """The key, after the client IP's failed attempts and then the key's own requests are
    checked against their limits. A flood of wrong keys is refused before any database work."""
    ip = client_ip(request)
    failures_limit = settings.BILLING_API_INVALID_KEY_RATE_LIMIT
    wait = rate_limits.already_over("invalid-key", ip, failures_limit)
    if wait:
        raise _rate_limited(wait)
    try:
        api_key = view.authenticate(request)
    except ApiError as exc:
        if exc.status == 401:
            _count_failed_key(request)
        raise
    group = view.rate_limit_group
    rate = settings.BILLING_API_RATE_LIMITS[group]
    wait = rate_limits.count_request(group, str(api_key.pk), rate)
    if wait:
        raise _rate_limited(wait)
    return api_key


def refuse_without_permission(view: ApiView, request: HttpRequest) -> None:
    """A restricted key (`rk_...`) may only do what its permissions grant: `read` on the view's
    resource for its read methods (GET, HEAD), `write` for the rest. Checked before anything is
    read or written (idempotency records included), so a refused request leaves no trace."""
    if view.resource is None:
        return
    access = READ if request.method in view.read_methods else WRITE
    api_key: ApiKey | DeferredApiKey = request.api_key  # type: ignore[attr-defined]
    if api_key.allows(view.resource, access):
        return
    # Stripe's answer to a restricted key without the permission: a 403 invalid_request_error
    # that names the permission which would let the request through.
    raise ApiError(
        f"The provided key '{api_key.secret_prefix}…' does not have the required permissions "
        f"for this endpoint. Having the '{view.resource}' {access} permission would allow this "
        "request to continue.",
        status=403,
    )


def check_resource_declared(view_class: type[ApiView]) -> None:
    """Every endpoint names the resource a restricted key needs permission on; a class that
    forgets (or misspells it) fails when it is defined, so the app doesn't start."""
    resource = getattr(view_class, "resource", "")
    if resource is None or resource in RESOURCES:
        return
    declared = f"declares resource = {resource!r}" if resource else "declares no resource"
    raise TypeError(
        f"{view_class.__module__}.{view_class.__qualname__} {declared}: every API view sets "
        f"`resource` to one of {', '.join(RESOURCES)} (billing_site/key_permissions.py; add a "
        "new one there), so restricted keys know which permission it needs."
    )
