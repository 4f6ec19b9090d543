"""Endpoints and attempts in words, for the admin's pages, messages and log entries."""

from __future__ import annotations

from billing_site.admin_kit import utc_label
from billing_site.events.models import WebhookAttempt, WebhookEndpoint
from billing_site.events.types import ALL_EVENTS


def events_label(endpoint: WebhookEndpoint) -> str:
    """ "All events", or how many types it listens to."""
    if ALL_EVENTS in endpoint.enabled_events:
        return "All events"
    count = len(endpoint.enabled_events)
    return f"{count} event{'' if count == 1 else 's'}"


def status_label(endpoint: WebhookEndpoint) -> str:
    """ "Enabled", or "Disabled since ...: why"."""
    if endpoint.is_enabled:
        return "Enabled"
    since = (
        f" since {utc_label(endpoint.disabled_at, seconds=False)}" if endpoint.disabled_at else ""
    )
    if endpoint.disabled_reason:
        return f"Disabled{since}: {endpoint.get_disabled_reason_display().lower()}"
    return f"Disabled{since}"


def attempt_outcome(attempt: WebhookAttempt) -> str:
    """What the receiver answered: "HTTP 200 in 35 ms", or "failed after 12 ms: HTTP 500: the
    receiver did not answer 2xx" (the attempt's error says what went wrong, status included)."""
    took = f"{attempt.latency_ms} ms" if attempt.latency_ms is not None else ""
    if attempt.succeeded:
        return f"HTTP {attempt.response_status}" + (f" in {took}" if took else "")
    error = attempt.error.rstrip(".") or f"HTTP {attempt.response_status}"
    return f"failed after {took}: {error}" if took else f"failed: {error}"
