"""Reads the admin and the API share: endpoints that need attention, what to send as a test,
and events by how their deliveries went."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Exists, OuterRef, Q, QuerySet

from billing_site.events.models import Event, WebhookDelivery, WebhookEndpoint

D = WebhookDelivery.Status


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


def _any_delivery(condition: Q) -> Exists:
    return Exists(WebhookDelivery.objects.filter(condition, event=OuterRef("pk")))


def event_delivery_success(delivered: bool) -> Exists:
    """Stripe's `delivery_success` filter of GET /v1/events: false lists events still pending,
    or given up, at some endpoint; true the others (an event no endpoint listened to counts as
    delivered)."""
    undelivered = _any_delivery(~Q(status=D.SUCCEEDED))
    return ~undelivered if delivered else undelivered


# The admin's finer delivery filter on the event list: label, and the condition on events.
EVENT_DELIVERY_STATES: dict[str, tuple[str, Callable[[], Q | Exists]]] = {
    "failed": (
        # Given up, or retrying after a failed attempt: what staff look into.
        "Has failed deliveries",
        lambda: _any_delivery(~Q(status=D.SUCCEEDED) & Q(attempt_count__gt=0)),
    ),
    "pending": ("Pending (not delivered yet)", lambda: _any_delivery(Q(status=D.PENDING))),
    "delivered": (
        "All delivered",
        lambda: _any_delivery(Q()) & ~_any_delivery(~Q(status=D.SUCCEEDED)),
    ),
    "none": ("Sent to no endpoint", lambda: ~_any_delivery(Q())),
}


def events_by_delivery_state(events: QuerySet[Event], state: str) -> QuerySet[Event]:
    """`events` whose deliveries are in `state`, a key of EVENT_DELIVERY_STATES."""
    _, condition = EVENT_DELIVERY_STATES[state]
    return events.filter(condition())
