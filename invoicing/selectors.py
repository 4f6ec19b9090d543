"""Reads shared by the API, the admin and the portal: the upcoming invoice and late usage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import Q

from billing_site import clock
from billing_site.errors import BillingError
from credits.services import LineToCredit, plan_applications
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription
from invoicing.periods import Period
from invoicing.services.lines import PlannedLine, plan_period_close
from metering.store import BilledPeriod, LateUsageTotal
from metering.store import late_usage as late_usage_of_periods
from metering.validation import ACCEPTANCE_WINDOW_PAST

# The preview's lines are the planner's lines, with the credits finalization would apply.
PreviewLine = PlannedLine


@dataclass
class InvoicePreview:
    customer: Customer
    subscription: Subscription
    currency: str
    period: Period
    lines: list[PreviewLine] = field(default_factory=list)
    created: dt.datetime | None = None

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal

    @property
    def total_credits(self) -> int:
        return sum(line.credits_applied for line in self.lines)

    @property
    def amount_due(self) -> int:
        return self.total - self.total_credits


def invoice_preview(*, customer: Customer, subscription: Subscription) -> InvoicePreview:
    """The invoice the current period would produce if it ended now. Nothing is saved.

    Usage comes from the metering aggregation service (rollups), so this stays fast for a
    customer with millions of events in the period.
    """
    if subscription.customer_id != customer.pk:
        raise BillingError(
            f"Subscription {subscription.public_id} belongs to another customer.",
            param="subscription",
        )
    if subscription.status == Subscription.Status.CANCELED:
        raise BillingError(
            f"Subscription {subscription.public_id} is canceled: it has no upcoming invoice.",
            param="subscription",
            code=InvoicingErrorCode.SUBSCRIPTION_CANCELED,
        )
    now = customer.billing_now()
    current = subscription.current_period
    usage_end = min(max(now, current.start + dt.timedelta(seconds=1)), current.end)
    preview = InvoicePreview(
        customer=customer,
        subscription=subscription,
        currency=subscription.currency,
        period=current,
        created=now,
        lines=plan_period_close(subscription, usage_end=usage_end, preview=True),
    )
    _plan_credits(preview, now)
    return preview


def _plan_credits(preview: InvoicePreview, at: dt.datetime) -> None:
    """The credits finalization would apply, if the period ended now (nothing is written)."""
    plans = plan_applications(
        customer_id=preview.customer.pk,
        currency=preview.currency,
        lines=[
            LineToCredit(None, line.price.pk, line.amount, line.kind == "metered")
            for line in preview.lines
        ],
        at=at,
    )
    for plan in plans:
        line = preview.lines[plan.line_index]
        preview.lines[plan.line_index] = replace(
            line, credits_applied=line.credits_applied + plan.amount
        )


@dataclass(frozen=True)
class LateUsage:
    invoice: Invoice
    line: InvoiceLineItem
    late_quantity: Decimal
    late_events: int


def late_usage_lines(*, now: dt.datetime) -> dict[int, LateUsageTotal]:
    """Metered lines of finalized invoices that have late usage (stored, not billed): line id
    to the late events' quantity and count, the most recently finalized invoice first.

    Only lines whose periods ended within the 35-day acceptance window (or whose customer is on
    a test clock) can still receive events, so only those are asked about, all in one call to
    the event store.
    """
    lines = (
        InvoiceLineItem.objects.filter(
            Q(period_end__gte=now - ACCEPTANCE_WINDOW_PAST - dt.timedelta(days=1))
            | Q(invoice__customer__test_clock__isnull=False),
            kind=InvoiceLineItem.Kind.METERED,
            invoice__finalized_at__isnull=False,
            price__meter__isnull=False,
        )
        .order_by("-invoice__finalized_at", "pk")
        .values_list(
            "pk",
            "price__meter_id",
            "invoice__customer_id",
            "period_start",
            "period_end",
            "invoice__finalized_at",
        )
    )
    periods = [BilledPeriod(*line) for line in lines]
    found = late_usage_of_periods(periods=periods)
    return {period.key: found[period.key] for period in periods if period.key in found}


def late_usage(*, limit: int = 200) -> list[LateUsage]:
    """Late usage per invoice line, with its quantity and event count, in three queries."""
    found = late_usage_lines(now=clock.now())
    shown = list(found)[:limit]
    lines = InvoiceLineItem.objects.select_related("invoice__customer", "price__meter").in_bulk(
        shown
    )
    return [
        LateUsage(lines[pk].invoice, lines[pk], found[pk].quantity, found[pk].events)
        for pk in shown
    ]
