"""Reads shared by the API, the admin and the portal: the upcoming invoice and late usage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from billing_site import clock
from billing_site.errors import BillingError
from catalog.models import Price
from credits.services import LineToCredit, plan_applications
from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription
from invoicing.periods import Period, next_period
from invoicing.services.invoices import customer_now, metered_quantity, rate_line
from metering.ingest import ACCEPTANCE_WINDOW_PAST
from metering.models import MeterEvent


@dataclass(frozen=True)
class PreviewLine:
    kind: str
    description: str
    price: Price
    quantity: Decimal
    amount: int
    unrounded_amount: Decimal
    tier_breakdown: list[dict[str, Any]]
    period: Period
    subscription_item_public_id: str
    credits_applied: int = 0


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
            code="subscription_canceled",
        )
    now = customer_now(customer)
    current = Period(subscription.current_period_start, subscription.current_period_end)
    usage_end = min(max(now, current.start + dt.timedelta(seconds=1)), current.end)
    following = next_period(
        current,
        subscription.billing_cycle_anchor,
        subscription.interval,
        subscription.interval_count,
    )
    preview = InvoicePreview(
        customer=customer,
        subscription=subscription,
        currency=subscription.currency,
        period=current,
        created=now,
    )
    items = subscription.items.select_related("price__product", "price__meter").prefetch_related(
        "price__tiers"
    )
    for item in items:
        name = item.price.nickname or item.price.product.name
        if item.price.is_metered:
            quantity = metered_quantity(
                price=item.price, customer=customer, start=current.start, end=usage_end
            )
            kind, period, description = "metered", current, f"{name}: usage so far"
        elif subscription.cancel_at_period_end:
            continue
        else:
            quantity, kind, period = Decimal(item.quantity), "licensed", following
            description = f"{item.quantity} x {name} (next period)"
        rated = rate_line(item.price, quantity)
        preview.lines.append(
            PreviewLine(
                kind=kind,
                description=description,
                price=item.price,
                quantity=rated.quantity,
                amount=rated.amount,
                unrounded_amount=rated.unrounded_amount,
                tier_breakdown=rated.tier_breakdown,
                period=period,
                subscription_item_public_id=item.public_id,
            )
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


def late_usage(*, limit: int = 200) -> list[LateUsage]:
    """Usage that arrived after its period's invoice was finalized: stored, not billed.

    Only invoices whose metered periods ended within the 35-day acceptance window can receive
    late events, so only those are checked.
    """
    lines = (
        InvoiceLineItem.objects.filter(
            Q(period_end__gte=clock.now() - ACCEPTANCE_WINDOW_PAST - dt.timedelta(days=1))
            | Q(invoice__customer__test_clock__isnull=False),
            kind=InvoiceLineItem.Kind.METERED,
            invoice__finalized_at__isnull=False,
        )
        .select_related("invoice__customer", "price__meter")
        .order_by("-invoice__finalized_at")[:2000]
    )
    found: list[LateUsage] = []
    for line in lines:
        late = MeterEvent.objects.filter(
            Q(meter=line.price.meter, customer=line.invoice.customer)
            & Q(timestamp__gte=line.period_start, timestamp__lt=line.period_end)
            & Q(received_at__gt=line.invoice.finalized_at, cancelled_at__isnull=True)
        ).aggregate(quantity=Sum("value"), events=Count("pk"))
        if late["events"]:
            found.append(
                LateUsage(line.invoice, line, late["quantity"] or Decimal(0), late["events"])
            )
            if len(found) >= limit:
                break
    return found
