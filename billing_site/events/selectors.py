"""Reads the admin shares: endpoints that need attention, and what to send as a test."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from billing_site.events.models import Event, WebhookEndpoint


def failing_webhook_endpoints() -> QuerySet[WebhookEndpoint]:
    """For the dashboard's attention list: endpoints whose attempts are failing now, and those
    disabled because they failed for too long (longest failing first)."""
    return WebhookEndpoint.objects.filter(
        Q(status=WebhookEndpoint.Status.ENABLED, failing_since__isnull=False)
        | Q(
            status=WebhookEndpoint.Status.DISABLED,
            disabled_reason=WebhookEndpoint.DisabledReason.FAILING,
        )
    ).order_by("failing_since", "pk")


def latest_event_for(endpoint: WebhookEndpoint) -> Event | None:
    """The newest event this endpoint listens to: what "send a test event" sends."""
    events = Event.objects.order_by("-pk")
    if "*" not in endpoint.enabled_events:
        events = events.filter(type__in=endpoint.enabled_events)
    return events.first()
