"""Events about time passing, not about a write: `invoice.upcoming` and `invoice.overdue`.

`invoice.upcoming` is sent BILLING_INVOICE_UPCOMING_DAYS before a subscription renews (not for
one set to cancel at period end, nor for periods no longer than that, where the notice would
come before the period began), once per period; `invoice.overdue` once when an open invoice's
due date passes. "Once" is a unique key on the event (`dedupe_key`), claimed by inserting it.
Real-clock customers are checked by the periodic job; a test clock's customers at each step of
its advance (`next_notice_due` gives the advance those steps).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from billing_site import clock
from billing_site.clock import to_unix
from billing_site.events.recording import record_event, recorded_dedupe_keys
from invoicing.models import Invoice, Subscription, TestClock
from invoicing.selectors import invoice_preview


@dataclass
class NoticeSummary:
    upcoming: int = 0
    overdue: int = 0


def _upcoming_notice() -> dt.timedelta:
    return dt.timedelta(days=settings.BILLING_INVOICE_UPCOMING_DAYS)


def _overdue_lookback() -> dt.timedelta:
    # Only as far back as events are kept: past that, the key that says "sent" is purged.
    return dt.timedelta(days=settings.BILLING_EVENT_RETENTION_DAYS - 1)


def _on_clock(queryset, test_clock: TestClock | None, customer_path: str = "customer"):
    if test_clock is None:
        return queryset.filter(**{f"{customer_path}__test_clock__isnull": True})
    return queryset.filter(**{f"{customer_path}__test_clock": test_clock})


def _renewing(test_clock: TestClock | None):
    return _on_clock(
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, cancel_at_period_end=False),
        test_clock,
    )


def _notice_moment(subscription: Subscription) -> dt.datetime | None:
    moment = subscription.current_period_end - _upcoming_notice()
    return moment if moment > subscription.current_period_start else None


def invoice_notices_send(
    *, at: dt.datetime | None = None, test_clock: TestClock | None = None
) -> NoticeSummary:
    """Send the upcoming and overdue notices due at `at`, for real-clock customers or for one
    test clock's. Safe to run any number of times."""
    at = at or (test_clock.frozen_time if test_clock else clock.now())
    summary = NoticeSummary()
    subscriptions = list(
        _renewing(test_clock)
        .filter(current_period_end__gt=at, current_period_end__lte=at + _upcoming_notice())
        .select_related("customer__test_clock")
        .order_by("current_period_end", "pk")
    )
    keys = {
        subscription.pk: f"invoice.upcoming:{subscription.public_id}:"
        f"{to_unix(subscription.current_period_end)}"
        for subscription in subscriptions
        if (moment := _notice_moment(subscription)) is not None and moment <= at
    }
    sent = recorded_dedupe_keys(keys.values())
    for subscription in subscriptions:
        key = keys.get(subscription.pk)
        if key is None or key in sent:
            continue
        with transaction.atomic():
            preview = invoice_preview(customer=subscription.customer, subscription=subscription)
            summary.upcoming += (
                record_event("invoice.upcoming", preview, dedupe_key=key) is not None
            )
    overdue = list(
        _on_clock(
            Invoice.objects.filter(
                status=Invoice.Status.OPEN,
                due_date__lte=at,
                due_date__gt=at - _overdue_lookback(),
            ),
            test_clock,
        ).order_by("due_date", "pk")
    )
    keys = {invoice.pk: f"invoice.overdue:{invoice.public_id}" for invoice in overdue}
    sent = recorded_dedupe_keys(keys.values())
    for invoice in overdue:
        if keys[invoice.pk] in sent:
            continue
        with transaction.atomic():
            summary.overdue += (
                record_event("invoice.overdue", invoice, dedupe_key=keys[invoice.pk]) is not None
            )
    return summary


def next_notice_due(*, test_clock: TestClock, after: dt.datetime) -> dt.datetime | None:
    """The earliest notice moment of this clock's customers in (`after`, ...): a step for the
    clock's advance to stop at, so that jumping over it still sends the notice."""
    moments = [
        moment
        for subscription in _renewing(test_clock).only("current_period_start", "current_period_end")
        if (moment := _notice_moment(subscription)) is not None and moment > after
    ]
    due = (
        _on_clock(
            Invoice.objects.filter(status=Invoice.Status.OPEN, due_date__gt=after), test_clock
        )
        .order_by("due_date")
        .values_list("due_date", flat=True)
        .first()
    )
    if due is not None:
        moments.append(due)
    return min(moments, default=None)
