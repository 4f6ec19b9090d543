"""The billing run: close every due period and finalize every draft past its grace period.

The work goes in chunks (BILLING_RUN_CHUNK_SIZE subscriptions or drafts, one transaction each,
set-based: `billing_chunks.py`). A chunk that fails is rolled back and its subscriptions or
drafts are retried one at a time, each in its own transaction, so one failure never blocks the
rest; a failure is recorded as a BillingRunFailure for staff and retried next run. Every step is
idempotent (row locks, SKIP LOCKED, status checks), so any number of workers can run at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from billing_site import clock
from credits.services import credit_grants_expire_due
from invoicing.models import BillingRunFailure, Invoice, Subscription, TestClock
from invoicing.services.billing_chunks import invoices_finalize_chunk, subscriptions_close_chunk
from invoicing.services.invoices import invoice_finalize
from invoicing.services.subscriptions import BILLING_RUN, subscription_close_period

logger = logging.getLogger(__name__)


@dataclass
class BillingRunSummary:
    periods_closed: int = 0
    invoices_finalized: int = 0
    grants_expired: int = 0
    failures: list[str] = field(default_factory=list)


def due_subscription_ids(*, at: dt.datetime, test_clock: TestClock | None = None) -> list[int]:
    subscriptions = Subscription.objects.filter(
        status=Subscription.Status.ACTIVE, current_period_end__lte=at
    )
    subscriptions = (
        subscriptions.filter(customer__test_clock=test_clock)
        if test_clock
        else subscriptions.filter(customer__test_clock__isnull=True)
    )
    return list(subscriptions.order_by("current_period_end", "pk").values_list("pk", flat=True))


def due_draft_ids(*, at: dt.datetime, test_clock: TestClock | None = None) -> list[int]:
    drafts = Invoice.objects.filter(status=Invoice.Status.DRAFT, finalize_after__lte=at)
    drafts = (
        drafts.filter(customer__test_clock=test_clock)
        if test_clock
        else drafts.filter(customer__test_clock__isnull=True)
    )
    return list(drafts.order_by("finalize_after", "pk").values_list("pk", flat=True))


def close_subscription_periods(*, subscription_id: int, at: dt.datetime) -> int:
    """Close every ended period of one subscription (several if the run was late)."""
    closed = 0
    try:
        while subscription_close_period(subscription=Subscription(pk=subscription_id), at=at):
            closed += 1
    except Exception as exc:
        _record_failure(subscription_id, "close period", exc, at)
        raise
    return closed


def finalize_due_draft(*, invoice_id: int, at: dt.datetime) -> bool:
    invoice = Invoice.objects.select_related("customer__test_clock").get(pk=invoice_id)
    try:
        with transaction.atomic():
            # Claim under the row lock: another worker may have finalized it since we looked.
            # (or held it for review).
            locked = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
            if locked is None or locked.status != Invoice.Status.DRAFT or not locked.finalize_after:
                return False
            # Usage past the amount limits holds the draft for review instead (not a failure).
            invoice = invoice_finalize(
                invoice=invoice, actor=BILLING_RUN, at=at, hold_over_limit=True
            )
    except Exception as exc:
        if invoice.subscription_id:
            _record_failure(invoice.subscription_id, "finalize invoice", exc, at)
        raise
    return invoice.status != Invoice.Status.DRAFT


def _record_failure(subscription_id: int, step: str, exc: Exception, at: dt.datetime) -> None:
    logger.exception("Billing run failed: %s for subscription %s", step, subscription_id)
    BillingRunFailure.objects.create(
        subscription_id=subscription_id,
        step=step,
        error=f"{type(exc).__name__}: {exc}"[:5000],
        created_at=at,
    )


def chunked(ids: list[int], size: int | None = None) -> list[list[int]]:
    size = size or settings.BILLING_RUN_CHUNK_SIZE
    return [ids[first : first + size] for first in range(0, len(ids), size)]


def close_chunk(*, subscription_ids: list[int], at: dt.datetime, summary=None) -> int:
    """Close a chunk's periods set-based; if the chunk fails, one subscription at a time (a
    subscription that fails alone is recorded as a failure and skipped)."""
    return _chunk_or_one_at_a_time(
        subscription_ids,
        lambda ids: subscriptions_close_chunk(subscription_ids=ids, at=at),
        lambda pk: close_subscription_periods(subscription_id=pk, at=at),
        what="subscription",
        summary=summary,
    )


def finalize_chunk(*, invoice_ids: list[int], at: dt.datetime, summary=None) -> int:
    """Finalize a chunk of drafts set-based; if the chunk fails, one draft at a time."""
    return _chunk_or_one_at_a_time(
        invoice_ids,
        lambda ids: invoices_finalize_chunk(invoice_ids=ids, at=at),
        lambda pk: finalize_due_draft(invoice_id=pk, at=at),
        what="invoice",
        summary=summary,
    )


def _chunk_or_one_at_a_time(
    ids: list[int],
    whole: Callable[[list[int]], int],
    one: Callable[[int], int],
    *,
    what: str,
    summary: BillingRunSummary | None,
) -> int:
    try:
        return whole(ids)
    except Exception:
        logger.exception("Billing run: a chunk of %ss failed; going one at a time", what)
    done = 0
    for pk in ids:
        try:
            done += one(pk)
        except Exception as exc:
            if summary is not None:
                summary.failures.append(f"{what} {pk}: {exc}")
    return done


def billing_run(
    *,
    at: dt.datetime | None = None,
    test_clock: TestClock | None = None,
    chunk_size: int | None = None,
):
    """Run every due step up to `at` (real-clock customers, or one test clock's customers)."""
    at = at or (test_clock.frozen_time if test_clock else clock.now())
    summary = BillingRunSummary()
    for chunk in chunked(due_subscription_ids(at=at, test_clock=test_clock), chunk_size):
        summary.periods_closed += close_chunk(subscription_ids=chunk, at=at, summary=summary)
    for chunk in chunked(due_draft_ids(at=at, test_clock=test_clock), chunk_size):
        summary.invoices_finalized += finalize_chunk(invoice_ids=chunk, at=at, summary=summary)
    summary.grants_expired = credit_grants_expire_due(
        at=at,
        customer_filter=(
            Q(customer__test_clock=test_clock)
            if test_clock
            else Q(customer__test_clock__isnull=True)
        ),
    )
    return summary
