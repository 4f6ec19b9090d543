"""Sending events to endpoints: signed POSTs, retries with backoff, giving up, disabling.

At least once and unordered, as Stripe documents: a receiver deduplicates by event id. Each
attempt is claimed first (a conditional update that moves `next_attempt_at` past the attempt's
timeout), so two workers never send the same delivery at once, and a worker that dies leaves
it due again. A 2xx within `BILLING_WEBHOOK_TIMEOUT_SECONDS` is success; anything else is
retried after `BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS` (the last step repeating) until
`BILLING_WEBHOOK_RETRY_WINDOW_SECONDS` after the event, then given up. An endpoint whose
attempts have all failed for `BILLING_WEBHOOK_DISABLE_AFTER_SECONDS` is disabled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from billing_site import clock
from billing_site.events import outbound
from billing_site.events.endpoints import signing_secrets, webhook_endpoint_disable
from billing_site.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing_site.events.shapes import serialize_event
from billing_site.events.signing import signature_header

logger = logging.getLogger(__name__)

D = WebhookDelivery.Status
USER_AGENT = "UsageBilling-Webhooks/1.0 (Stripe-compatible; verify Stripe-Signature)"


@dataclass(frozen=True)
class Outgoing:
    """A prepared POST: everything the HTTP part needs, so it runs without the database."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class DeliveryRunSummary:
    webhooks_delivered: int = 0
    webhook_attempts_failed: int = 0
    webhook_deliveries_given_up: int = 0
    webhook_endpoints_disabled: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def retry_delay(attempt_count: int) -> dt.timedelta:
    """How long to wait after the `attempt_count`-th failed attempt."""
    schedule = settings.BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS
    return dt.timedelta(seconds=schedule[min(attempt_count, len(schedule)) - 1])


def _claim_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.BILLING_WEBHOOK_TIMEOUT_SECONDS + 60)


def deliveries_due(*, at: dt.datetime, limit: int) -> list[int]:
    """Pending deliveries whose attempt is due, to enabled endpoints, oldest first."""
    return list(
        WebhookDelivery.objects.filter(
            status=D.PENDING,
            next_attempt_at__lte=at,
            endpoint__status=WebhookEndpoint.Status.ENABLED,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _claim(delivery_id: int, at: dt.datetime) -> bool:
    return (
        WebhookDelivery.objects.filter(
            pk=delivery_id,
            status=D.PENDING,
            next_attempt_at__lte=at,
            endpoint__status=WebhookEndpoint.Status.ENABLED,
        ).update(next_attempt_at=at + _claim_lease())
        == 1
    )


def event_body(event: Event) -> bytes:
    """The JSON a webhook POSTs: the event as GET /v1/events/{id} shows it now."""
    pending = event.deliveries.filter(status=D.PENDING).count()
    payload = serialize_event(event, pending_webhooks=pending)
    return json.dumps(payload, indent=2, cls=DjangoJSONEncoder).encode()


def _prepare(delivery: WebhookDelivery, at: dt.datetime, body: bytes | None = None) -> Outgoing:
    """`body` is the event's `event_body`, when the caller already has it."""
    if body is None:
        body = event_body(delivery.event)
    # Real wall-clock time, not the billing clock: receivers compare it with their own clock
    # (the SDKs refuse signatures more than five minutes old).
    timestamp = int(time.time())
    return Outgoing(
        delivery_id=delivery.pk,
        url=delivery.endpoint.url,
        body=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": signature_header(
                body, signing_secrets(delivery.endpoint, at), timestamp
            ),
        },
    )


def _send(outgoing: Outgoing) -> outbound.Outcome:
    return outbound.post(outgoing.url, outgoing.body, outgoing.headers)


def _record(
    outgoing: Outgoing,
    outcome: outbound.Outcome,
    *,
    trigger: str,
    at: dt.datetime,
) -> WebhookAttempt:
    """Log the attempt and move the delivery on: done, retried later, or given up."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=outgoing.delivery_id)
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            trigger=trigger,
            attempted_at=at,
            url=outgoing.url,
            succeeded=outcome.succeeded,
            response_status=outcome.status,
            latency_ms=outcome.latency_ms,
            response_body=outcome.body.decode("utf-8", "replace").replace("\x00", "\ufffd"),
            response_truncated=outcome.truncated,
            error=outcome.error,
        )
        delivery.attempt_count += 1
        endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        if outcome.succeeded:
            delivery.status = D.SUCCEEDED
            delivery.delivered_at = at
            delivery.next_attempt_at = None
            endpoints.update(failing_since=None)
        elif trigger == WebhookAttempt.Trigger.AUTOMATIC:
            _schedule_retry(delivery, at)
            endpoints.filter(failing_since__isnull=True).update(failing_since=at)
        elif delivery.status == D.PENDING and delivery.next_attempt_at is None:
            # A test send's own delivery: nothing will retry it.
            delivery.status = D.FAILED
        delivery.save(update_fields=["status", "attempt_count", "delivered_at", "next_attempt_at"])
    return attempt


def _schedule_retry(delivery: WebhookDelivery, at: dt.datetime) -> None:
    retry_at = at + retry_delay(delivery.attempt_count)
    window = dt.timedelta(seconds=settings.BILLING_WEBHOOK_RETRY_WINDOW_SECONDS)
    if retry_at > delivery.created_at + window:
        delivery.status = D.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = retry_at


def webhook_deliveries_send_due(*, at: dt.datetime | None = None) -> DeliveryRunSummary:
    """Send every delivery due now (up to BILLING_WEBHOOK_MAX_PER_RUN), several at a time;
    then disable the endpoints that failed for too long. The periodic job without a broker."""
    at = at or clock.now()
    summary = DeliveryRunSummary()
    due = deliveries_due(at=at, limit=settings.BILLING_WEBHOOK_MAX_PER_RUN)
    claimed = [delivery_id for delivery_id in due if _claim(delivery_id, at)]
    deliveries = WebhookDelivery.objects.select_related("event", "endpoint").in_bulk(claimed)
    # One body per event, however many of its deliveries are in the batch: they are all still
    # pending, so each would count and serialize the same thing.
    bodies: dict[int, bytes] = {}
    outgoing = []
    for delivery_id in claimed:
        delivery = deliveries[delivery_id]
        if delivery.event_id not in bodies:
            bodies[delivery.event_id] = event_body(delivery.event)
        outgoing.append(_prepare(delivery, at, bodies[delivery.event_id]))
    if outgoing:
        # The POSTs wait on the network, not on the database: a hanging receiver costs one
        # timeout per batch, not one per delivery.
        workers = min(len(outgoing), settings.BILLING_WEBHOOK_CONCURRENCY)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_send, outgoing))
        for prepared, outcome in zip(outgoing, outcomes, strict=True):
            attempt = _record(prepared, outcome, trigger=WebhookAttempt.Trigger.AUTOMATIC, at=at)
            _count(summary, attempt)
    summary.webhook_endpoints_disabled = webhook_endpoints_disable_failing(at=at)
    return summary


def _count(summary: DeliveryRunSummary, attempt: WebhookAttempt) -> None:
    if attempt.succeeded:
        summary.webhooks_delivered += 1
        return
    summary.webhook_attempts_failed += 1
    if attempt.delivery.status == D.FAILED:
        summary.webhook_deliveries_given_up += 1


def webhook_delivery_attempt(
    *, delivery_id: int, at: dt.datetime | None = None
) -> WebhookAttempt | None:
    """One due delivery, if this worker wins its claim (the per-delivery Celery task)."""
    at = at or clock.now()
    if not _claim(delivery_id, at):
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    outgoing = _prepare(delivery, at)
    return _record(outgoing, _send(outgoing), trigger=WebhookAttempt.Trigger.AUTOMATIC, at=at)


def webhook_delivery_resend(
    *, delivery: WebhookDelivery, trigger: str = WebhookAttempt.Trigger.RESEND
) -> WebhookAttempt:
    """Send this delivery now, whatever its status or schedule (staff's Resend). Waits for the
    receiver, up to the timeout: it is one explicit request, not part of a billing run."""
    at = clock.now()
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery.pk)
    outgoing = _prepare(delivery, at)
    return _record(outgoing, _send(outgoing), trigger=trigger, at=at)


def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, event: Event) -> WebhookAttempt:
    """Send `event` to `endpoint` now, to try the receiver; logged like any attempt."""
    delivery, _ = WebhookDelivery.objects.get_or_create(
        event=event,
        endpoint=endpoint,
        defaults={"status": D.PENDING, "next_attempt_at": None, "created_at": clock.now()},
    )
    return webhook_delivery_resend(delivery=delivery, trigger=WebhookAttempt.Trigger.TEST)


def webhook_endpoints_disable_failing(*, at: dt.datetime | None = None) -> int:
    """Disable every enabled endpoint whose attempts have all failed since before the
    disable-after window; staff see them in the admin's attention list."""
    at = at or clock.now()
    cutoff = at - dt.timedelta(seconds=settings.BILLING_WEBHOOK_DISABLE_AFTER_SECONDS)
    disabled = 0
    failing = WebhookEndpoint.objects.filter(
        status=WebhookEndpoint.Status.ENABLED, failing_since__lte=cutoff
    )
    for endpoint_id in failing.values_list("pk", flat=True):
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
            if not endpoint.is_enabled or not endpoint.failing_since:
                continue
            if endpoint.failing_since > cutoff:
                continue
            webhook_endpoint_disable(
                endpoint=endpoint, reason=WebhookEndpoint.DisabledReason.FAILING
            )
        logger.warning(
            "Disabled webhook endpoint %s (%s): every attempt failed since %s",
            endpoint.public_id,
            endpoint.url,
            endpoint.failing_since,
        )
        disabled += 1
    return disabled
