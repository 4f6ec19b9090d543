"""Webhook endpoints: create, change, enable and disable, roll the secret, delete.

The API and the admin both call these; each rule and its message lives here once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from billing_site import clock
from billing_site.errors import BillingError, ErrorCode
from billing_site.events import outbound
from billing_site.events.models import WebhookEndpoint
from billing_site.events.signing import generate_secret
from billing_site.events.types import ALL_EVENTS, is_known_event_type
from billing_site.model_update import model_update

MAX_URL_LENGTH = 2048
MAX_ROLL_GRACE = dt.timedelta(hours=24)
S = WebhookEndpoint.Status


def clean_url(url: str | None) -> str:
    """A URL that may receive webhooks under the current settings (see `outbound`)."""
    url = (url or "").strip()
    if not url:
        raise BillingError(
            "Missing required param: url (where to send events).",
            param="url",
            code=ErrorCode.PARAMETER_MISSING,
        )
    if len(url) > MAX_URL_LENGTH:
        raise BillingError(f"url can be at most {MAX_URL_LENGTH} characters.", param="url")
    outbound.check_url(url)
    return url


def clean_enabled_events(events: Iterable[Any] | None) -> list[str]:
    """The event types to send, each known (or '*' for all), without repeats."""
    events = list(events or [])
    if not events:
        raise BillingError(
            "enabled_events must list at least one event type, or '*' for every event.",
            param="enabled_events",
            code=ErrorCode.PARAMETER_MISSING,
        )
    clean: list[str] = []
    for index, name in enumerate(events):
        if not isinstance(name, str) or not (name == ALL_EVENTS or is_known_event_type(name)):
            raise BillingError(
                f"Invalid enabled_events[{index}]: '{name}' is not an event type this server "
                "sends (see GET /v1/events for the types, or use '*' for every event).",
                param=f"enabled_events[{index}]",
            )
        if name not in clean:
            clean.append(name)
    return [ALL_EVENTS] if ALL_EVENTS in clean else clean


def _clean_api_version(api_version: str | None) -> str | None:
    if api_version and api_version != settings.BILLING_API_VERSION:
        raise BillingError(
            f"Invalid api_version '{api_version}': events are rendered in one version here, "
            f"{settings.BILLING_API_VERSION} (or leave api_version out).",
            param="api_version",
        )
    return api_version or None


@transaction.atomic
def webhook_endpoint_create(
    *,
    url: str,
    enabled_events: Iterable[Any],
    description: str = "",
    metadata: dict[str, str] | None = None,
    api_version: str | None = None,
) -> WebhookEndpoint:
    """A new enabled endpoint with a new signing secret (`endpoint.secret`: show it once)."""
    now = clock.now()
    return WebhookEndpoint.objects.create(
        url=clean_url(url),
        enabled_events=clean_enabled_events(enabled_events),
        description=(description or "").strip(),
        metadata=metadata or {},
        api_version=_clean_api_version(api_version),
        secret=generate_secret(),
        created_at=now,
        updated_at=now,
    )


ENDPOINT_MUTABLE_FIELDS = {"url", "enabled_events", "description", "metadata"}


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, disabled: bool | None = None, **changes: Any
) -> WebhookEndpoint:
    unexpected = set(changes) - ENDPOINT_MUTABLE_FIELDS
    if unexpected:
        raise BillingError(f"Webhook endpoints can't change {', '.join(sorted(unexpected))}.")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "url" in changes:
        changes["url"] = clean_url(changes["url"])
    if "enabled_events" in changes:
        changes["enabled_events"] = clean_enabled_events(changes["enabled_events"])
    if "description" in changes:
        changes["description"] = (changes["description"] or "").strip()
    if "metadata" in changes:
        changes["metadata"] = changes["metadata"] or {}
    endpoint, _ = model_update(instance=endpoint, fields=ENDPOINT_MUTABLE_FIELDS, data=changes)
    if disabled is True and endpoint.is_enabled:
        endpoint = webhook_endpoint_disable(endpoint=endpoint)
    elif disabled is False and not endpoint.is_enabled:
        endpoint = webhook_endpoint_enable(endpoint=endpoint)
    return endpoint


def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, reason: str = WebhookEndpoint.DisabledReason.MANUAL
) -> WebhookEndpoint:
    """Stop sending to it. Its pending deliveries wait (and still give up after the retry
    window); events recorded while it is disabled are not queued for it."""
    now = clock.now()
    endpoint.status = S.DISABLED
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    endpoint.save(update_fields=["status", "disabled_at", "disabled_reason", "updated_at"])
    return endpoint


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Send to it again; its failure streak starts over."""
    endpoint.status = S.ENABLED
    endpoint.disabled_at = None
    endpoint.disabled_reason = WebhookEndpoint.DisabledReason.NONE
    endpoint.failing_since = None
    endpoint.updated_at = clock.now()
    endpoint.save(
        update_fields=["status", "disabled_at", "disabled_reason", "failing_since", "updated_at"]
    )
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Gone with its deliveries and their attempt log, as in Stripe."""
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_roll_secret(
    *, endpoint: WebhookEndpoint, previous_valid_for: dt.timedelta = MAX_ROLL_GRACE
) -> str:
    """Give the endpoint a new secret and return it (show it once). The old one keeps signing
    alongside for `previous_valid_for` (at most 24 hours; zero drops it at once), so the
    receiver can switch without missing a delivery."""
    if not dt.timedelta(0) <= previous_valid_for <= MAX_ROLL_GRACE:
        raise BillingError(
            "The previous secret can stay valid for 0 to 24 hours.", param="previous_valid_for"
        )
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    now = clock.now()
    keep_previous = previous_valid_for > dt.timedelta(0)
    endpoint.previous_secret = endpoint.secret if keep_previous else ""
    endpoint.previous_secret_expires_at = now + previous_valid_for if keep_previous else None
    endpoint.secret = generate_secret()
    endpoint.updated_at = now
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return endpoint.secret


def signing_secrets(endpoint: WebhookEndpoint, at: dt.datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, then a rolled one still in
    its grace period."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > at:
        secrets.append(endpoint.previous_secret)
    return secrets
