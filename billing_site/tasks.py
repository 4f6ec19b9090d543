"""Celery tasks for the plumbing (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from billing_site import clock
from billing_site.events.delivery import (
    deliveries_due,
    webhook_deliveries_send_due,
    webhook_delivery_attempt,
    webhook_endpoints_disable_failing,
)
from billing_site.events.recording import broker_configured, events_purge, queue_deliveries
from billing_site.services import idempotency_keys_purge


@shared_task
def purge_idempotency_keys_task(inline: bool = False) -> dict:
    """Hourly: forget stored API responses past their replay window."""
    return {"idempotency_keys_purged": idempotency_keys_purge()}


@shared_task
def purge_events_task(inline: bool = False) -> dict:
    """Hourly: forget events (with their delivery log) past the retention period."""
    return {"events_purged": events_purge()}


@shared_task
def deliver_webhooks_task(inline: bool = False) -> dict:
    """Every 10 seconds: send the webhook deliveries that are due (new ones and retries), and
    disable endpoints that have failed for too long.

    With a broker, one task per due delivery (workers share them; new events queue their own
    at commit, so this catches retries and anything a lost task left behind). Inline
    (`run_billing`) or without a broker, sent from here, several at a time.
    """
    if inline or not broker_configured():
        return webhook_deliveries_send_due().as_dict()
    at = clock.now()
    due = deliveries_due(at=at, limit=10_000)
    queue_deliveries(due)  # as `record_event` queues them: deliver_webhook_task, by name
    return {
        "webhook_deliveries_queued": len(due),
        "webhook_endpoints_disabled": webhook_endpoints_disable_failing(at=at),
    }


@shared_task
def deliver_webhook_task(delivery_id: int) -> bool:
    """One delivery's due attempt (queued at commit by `record_event`, or by the job above).
    A delivery another worker already claimed is skipped."""
    attempt = webhook_delivery_attempt(delivery_id=delivery_id)
    return attempt is not None and attempt.succeeded
