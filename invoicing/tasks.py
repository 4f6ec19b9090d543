"""Celery tasks: thin wrappers that take ids, call one service and return."""

from __future__ import annotations

from celery import shared_task

from billing_site import clock
from invoicing.models import TestClock
from invoicing.services import test_clock_advance
from invoicing.services.billing_run import (
    billing_run,
    chunked,
    close_chunk,
    close_subscription_periods,
    due_draft_ids,
    due_subscription_ids,
    finalize_chunk,
    finalize_due_draft,
)
from invoicing.services.notices import invoice_notices_send


@shared_task
def billing_run_task(inline: bool = False) -> dict:
    """Every minute: close every ended period and finalize every draft past its grace period.

    Under beat, one task per chunk of due subscriptions and per chunk of due drafts
    (BILLING_RUN_CHUNK_SIZE; workers share the load); inline (`run_billing`), the same chunks
    in this process, failures collected.
    """
    if inline:
        summary = billing_run()
        return {
            "periods_closed": summary.periods_closed,
            "invoices_finalized": summary.invoices_finalized,
            "failures": summary.failures,
        }
    at = clock.now()
    subscriptions = due_subscription_ids(at=at)
    drafts = due_draft_ids(at=at)
    for chunk in chunked(subscriptions):
        close_chunk_task.delay(chunk)
    for chunk in chunked(drafts):
        finalize_chunk_task.delay(chunk)
    return {"subscriptions": len(subscriptions), "drafts": len(drafts)}


@shared_task
def close_chunk_task(subscription_ids: list[int]) -> int:
    return close_chunk(subscription_ids=subscription_ids, at=clock.now())


@shared_task
def finalize_chunk_task(invoice_ids: list[int]) -> int:
    return finalize_chunk(invoice_ids=invoice_ids, at=clock.now())


# One subscription or draft: kept so tasks queued before an upgrade still run.
@shared_task
def close_subscription_periods_task(subscription_id: int) -> int:
    return close_subscription_periods(subscription_id=subscription_id, at=clock.now())


@shared_task
def finalize_invoice_task(invoice_id: int) -> bool:
    return finalize_due_draft(invoice_id=invoice_id, at=clock.now())


@shared_task
def test_clock_advance_task(test_clock_id: int, frozen_time: int) -> str:
    test_clock = TestClock.objects.get(pk=test_clock_id)
    return test_clock_advance(
        test_clock=test_clock, frozen_time=clock.from_unix(frozen_time)
    ).status


@shared_task
def invoice_notices_task(inline: bool = False) -> dict:
    """Every minute: invoice.upcoming before renewals and invoice.overdue past due dates
    (real-clock customers; a test clock's customers get theirs as the clock advances)."""
    summary = invoice_notices_send(at=clock.now())
    return {
        "upcoming_invoice_notices": summary.upcoming,
        "overdue_invoice_notices": summary.overdue,
    }
