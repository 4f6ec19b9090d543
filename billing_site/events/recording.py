"""`record_event`: the one way a state change becomes an event (a transactional outbox).

Services call it right after they write the change, inside the change's transaction: the event
row and one delivery row per enabled endpoint that listens for its type commit or roll back with
the change. Nothing leaves the process before commit. After commit, with a broker, one Celery
task per delivery is queued; without one (the embedded default) nothing is sent from the request
or the billing run that made the change: the periodic delivery job (`billing_site.tasks`,
also run by `manage.py run_billing`) sends what is due. A slow receiver slows neither.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import Signal

from billing_site import clock
from billing_site.celery import app as celery_app
from billing_site.db import values_bound_on_server
from billing_site.events.context import current_api_request
from billing_site.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing_site.events.objects import serialize_object, serialize_objects
from billing_site.events.types import is_known_event_type

logger = logging.getLogger(__name__)

DELIVER_TASK = "billing_site.tasks.deliver_webhook_task"

# Sent once the transaction that recorded `event` has committed (sender=Event, event=...).
# Other side effects of a change (email, say) connect here, not to the services.
event_committed = Signal()


def snapshot(obj: Any) -> dict[str, Any]:
    """The object as the API serializes it now: take it before a change, for `record_update`."""
    return serialize_object(obj)


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's previous_attributes: the former value of each top-level field that changed
    (a changed nested object or list is given whole)."""
    previous = {key: value for key, value in before.items() if after.get(key) != value}
    previous.update({key: None for key in after if key not in before})
    return previous


def record_update(event_type: str, obj: Any, before: dict[str, Any]) -> Event | None:
    """Record a `*.updated`-style event for `obj`, whose `snapshot` before the change was
    `before`. Nothing is recorded when no serialized field changed."""
    after = serialize_object(obj)
    previous = changed_attributes(before, after)
    if not previous:
        return None
    return record_event(event_type, data_object=after, previous_attributes=previous)


def record_event(
    event_type: str,
    obj: Any = None,
    *,
    data_object: dict[str, Any] | None = None,
    previous_attributes: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Event | None:
    """Record that `event_type` happened to `obj` (or to the already serialized `data_object`,
    for an object that is about to be deleted).

    With `dedupe_key`, the event is recorded at most once per key (the unique key is the claim):
    None is returned when it already was.
    """
    _check_type(event_type)
    if data_object is None:
        data_object = serialize_object(obj)
    now = clock.now()
    event = _new_event(event_type, data_object, previous_attributes, dedupe_key, now)
    try:
        # Joins the caller's transaction; a savepoint only where a lost claim must not abort it.
        with transaction.atomic(savepoint=dedupe_key is not None):
            event.save(force_insert=True)
            deliveries = _create_deliveries([event], now)
    except IntegrityError:
        if dedupe_key is not None and Event.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    _after_commit([event], deliveries)
    return event


# One event to record in bulk: (type, the serialized object, previous_attributes or None).
PendingEvent = tuple[str, dict[str, Any], dict[str, Any] | None]


def record_events(pending: Sequence[PendingEvent]) -> list[Event]:
    """`record_event` for many events at once (the billing run's chunks): the rows in one
    INSERT and their deliveries in one more, in the caller's transaction, in this order."""
    if not pending:
        return []
    now = clock.now()
    with values_bound_on_server():
        events = Event.objects.bulk_create(
            _new_event(event_type, data_object, previous, None, now)
            for event_type, data_object, previous in pending
        )
        deliveries = _create_deliveries(events, now)
    _after_commit(events, deliveries)
    return events


def record_updates(event_type: str, objs: Sequence[Any], befores: Sequence[dict]) -> list[Event]:
    """`record_update` for many objects of one class, `befores` their snapshots in order
    (`serialize_objects` before the change)."""
    pending: list[PendingEvent] = []
    for before, after in zip(befores, serialize_objects(objs), strict=True):
        previous = changed_attributes(before, after)
        if previous:
            pending.append((event_type, after, previous))
    return record_events(pending)


def _new_event(
    event_type: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None,
    dedupe_key: str | None,
    now: dt.datetime,
) -> Event:
    _check_type(event_type)
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    api_request = current_api_request()
    return Event(
        type=event_type,
        api_version=settings.BILLING_API_VERSION,
        data=data,
        object_id=str(data_object.get("id") or "")[:64],
        request_id=api_request.id if api_request else None,
        request_idempotency_key=api_request.idempotency_key if api_request else None,
        dedupe_key=dedupe_key,
        created_at=now,
    )


def _check_type(event_type: str) -> None:
    if not is_known_event_type(event_type):
        raise ValueError(f"Unknown event type {event_type!r}: add it to events/types.py.")


def _after_commit(events: list[Event], deliveries: list[WebhookDelivery]) -> None:
    if deliveries and broker_configured():
        transaction.on_commit(partial(queue_deliveries, [d.pk for d in deliveries]), robust=True)
    if event_committed.has_listeners():
        for event in events:
            transaction.on_commit(
                partial(event_committed.send_robust, sender=Event, event=event), robust=True
            )


def recorded_dedupe_keys(keys: Iterable[str]) -> set[str]:
    """Which of these once-only keys already have their event."""
    return set(Event.objects.filter(dedupe_key__in=list(keys)).values_list("dedupe_key", flat=True))


def _create_deliveries(events: list[Event], now: dt.datetime) -> list[WebhookDelivery]:
    endpoints = list(
        WebhookEndpoint.objects.filter(status=WebhookEndpoint.Status.ENABLED).only(
            "pk", "enabled_events"
        )
    )
    if not endpoints:
        return []
    return WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now)
        for event in events
        for endpoint in endpoints
        if endpoint.listens_to(event.type)
    )


def broker_configured() -> bool:
    """Whether tasks go to a broker's workers (CELERY_BROKER_URL set), not run in-process."""
    return not celery_app.conf.task_always_eager


def queue_deliveries(delivery_ids: list[int]) -> None:
    """One task per delivery, by name (services don't import tasks). A broker that is down
    loses nothing: the deliveries stay pending and the periodic job sends them."""
    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_TASK, args=(delivery_id,))
        except Exception:
            logger.warning("Could not queue webhook delivery %s", delivery_id, exc_info=True)
            return


def events_purge(*, at: dt.datetime | None = None) -> int:
    """Forget events older than BILLING_EVENT_RETENTION_DAYS (30, as Stripe keeps them), with
    their deliveries and attempts; in batches, so no statement holds many rows at once."""
    at = at or clock.now()
    cutoff = at - dt.timedelta(days=settings.BILLING_EVENT_RETENTION_DAYS)
    purged = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:1000]
        )
        if not ids:
            return purged
        with transaction.atomic():
            WebhookAttempt.objects.filter(delivery__event_id__in=ids).delete()
            WebhookDelivery.objects.filter(event_id__in=ids).delete()
            Event.objects.filter(pk__in=ids).delete()
        purged += len(ids)
