"""Subscriptions: create (with the first invoice), close periods, cancel, update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from billing_site.errors import BillingError
from billing_site.events.recording import record_event, record_update, snapshot
from billing_site.limits import MAX_AMOUNT, check_quantity, check_time
from catalog.models import Price
from catalog.money import format_minor_units
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import (
    Customer,
    CustomerEvent,
    Invoice,
    InvoiceLineItem,
    Subscription,
    SubscriptionItem,
)
from invoicing.periods import Period, period_boundary, period_containing
from invoicing.services.customer_currency import customer_currency_settle
from invoicing.services.customer_events import customer_event_record
from invoicing.services.invoice_items import pending_invoice_items_attach
from invoicing.services.invoices import (
    check_collection,
    invoice_finalize,
    invoice_hold_for_review,
    set_totals,
)
from invoicing.services.lines import (
    PlannedLine,
    amount_limit_problem,
    line_items,
    plan_period_close,
    plan_subscription_lines,
    rate_line_within_limit,
)

MAX_ITEMS = 20
BILLING_RUN = "billing run"


@dataclass(frozen=True)
class ItemInput:
    price: Price
    quantity: int | None = None
    metadata: dict[str, str] | None = None


def grace_period() -> dt.timedelta:
    return dt.timedelta(minutes=settings.BILLING_GRACE_PERIOD_MINUTES)


def _check_items(items: list[ItemInput]) -> None:
    if not items:
        raise BillingError(
            "A subscription needs at least one item (items[0][price]).", param="items"
        )
    if len(items) > MAX_ITEMS:
        raise BillingError(f"A subscription can have at most {MAX_ITEMS} items.", param="items")
    seen: set[int] = set()
    first = items[0].price
    for index, item in enumerate(items):
        price, param = item.price, f"items[{index}][price]"
        if price.pk in seen:
            raise BillingError(
                f"Price {price.public_id} appears twice; use one item with a quantity.", param=param
            )
        seen.add(price.pk)
        if not price.active:
            raise BillingError(
                f"Price {price.public_id} is archived and can't be subscribed to; use its "
                "replacement.",
                param=param,
            )
        if price.type != Price.Type.RECURRING:
            raise BillingError(
                f"Price {price.public_id} is one-time; subscriptions need recurring prices "
                "(one-time charges go on an invoice item).",
                param=param,
            )
        if price.currency != first.currency:
            raise BillingError(
                f"All items must share one currency: {price.public_id} is in {price.currency}, "
                f"{first.public_id} in {first.currency}.",
                param=param,
            )
        if (price.recurring_interval, price.recurring_interval_count) != (
            first.recurring_interval,
            first.recurring_interval_count,
        ):
            raise BillingError(
                f"All items must share one billing interval: {price.public_id} bills every "
                f"{price.recurring_interval_count} {price.recurring_interval}(s), "
                f"{first.public_id} every {first.recurring_interval_count} "
                f"{first.recurring_interval}(s).",
                param=param,
            )
        if price.is_metered and item.quantity not in (None, 1):
            raise BillingError(
                f"Price {price.public_id} is metered: its quantity comes from usage, so don't "
                "set items[][quantity].",
                param=f"items[{index}][quantity]",
            )
        if item.quantity is not None and item.quantity < 1:
            raise BillingError("quantity must be at least 1.", param=f"items[{index}][quantity]")
    _check_fees(
        (f"items[{index}][quantity]", item.price, item.quantity or 1)
        for index, item in enumerate(items)
        if not item.price.is_metered
    )


def _check_fees(fees: Iterable[tuple[str, Price, int]]) -> None:
    """Refuse licensed quantities whose fee line, or the fees' total, would pass the amount
    limits: the fees are billed every period, so the input is refused now, not at a period end.
    """
    total, currency = 0, None
    for param, price, quantity in fees:
        check_quantity(quantity, param=param)
        total += rate_line_within_limit(price, Decimal(quantity), param=param).amount
        currency = price.currency
    if currency is not None and total > MAX_AMOUNT:
        raise BillingError(
            f"The fees of this subscription come to {format_minor_units(total, currency)} a "
            f"period, over the limit of {format_minor_units(MAX_AMOUNT, currency)} per invoice.",
            param="items",
        )


def hold_if_over_limit(invoice: Invoice, planned: list[PlannedLine], at: dt.datetime) -> bool:
    """Hold a draft whose usage rated past the amount limits for review; True if held."""
    problem = amount_limit_problem(
        ((line.description, line.rated) for line in planned),
        total=invoice.subtotal,
        currency=invoice.currency,
    )
    if problem:
        invoice_hold_for_review(invoice=invoice, problem=problem, at=at)
    return problem is not None


@transaction.atomic
def subscription_create(
    *,
    customer: Customer,
    items: list[ItemInput],
    billing_cycle_anchor: dt.datetime | None = None,
    cancel_at_period_end: bool = False,
    collection_method: str = Subscription.CollectionMethod.CHARGE_AUTOMATICALLY,
    days_until_due: int | None = None,
    metadata: dict[str, str] | None = None,
    actor: str = "api",
    billing_mode: str = Subscription.BillingMode.FLEXIBLE,
) -> Subscription:
    """Start a subscription and bill its licensed items for the first period, in advance.

    In `flexible` billing mode (the default) a subscription with metered items only gets no
    first invoice: there is nothing to bill in advance. `classic` sends one for 0, as Stripe's
    classic mode does."""
    if billing_mode not in Subscription.BillingMode.values:
        raise BillingError(
            f"Invalid billing_mode[type]: must be one of "
            f"{', '.join(Subscription.BillingMode.values)} (got '{billing_mode}').",
            param="billing_mode[type]",
        )
    if customer.deleted_at is not None:
        raise BillingError(f"Customer {customer.public_id} has been deleted.", param="customer")
    _check_items(items)
    check_collection(collection_method, days_until_due, sent="collection_method=send_invoice")
    at = customer.billing_now()
    first = items[0].price
    interval, count = first.recurring_interval, first.recurring_interval_count
    anchor = billing_cycle_anchor or at
    check_time(anchor, param="billing_cycle_anchor")
    if anchor > at:
        raise BillingError(
            "billing_cycle_anchor is in the future: that would need a prorated first period, "
            "which isn't supported. Use a time up to now.",
            param="billing_cycle_anchor",
        )
    if anchor < period_boundary(at, interval, count, -1):
        raise BillingError(
            "billing_cycle_anchor is more than one billing period in the past; pick a time "
            f"within the last {count} {interval}(s).",
            param="billing_cycle_anchor",
        )
    period = period_containing(anchor, interval, count, at)
    subscription = Subscription.objects.create(
        customer=customer,
        currency=first.currency,
        interval=interval,
        interval_count=count,
        billing_cycle_anchor=anchor,
        current_period_start=period.start,
        current_period_end=period.end,
        cancel_at_period_end=cancel_at_period_end,
        collection_method=collection_method,
        days_until_due=days_until_due,
        billing_mode=billing_mode,
        metadata=metadata or {},
        created_at=at,
    )
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            subscription=subscription,
            price=item.price,
            quantity=1 if item.price.is_metered else (item.quantity or 1),
            metadata=item.metadata or {},
            created_at=at,
        )
        for item in items
    )
    record_event("customer.subscription.created", subscription)
    customer_currency_settle(customer=customer, currency=subscription.currency)
    in_advance = any(not item.price.is_metered for item in items)
    if in_advance or billing_mode == Subscription.BillingMode.CLASSIC:
        invoice = _new_subscription_invoice(
            subscription, key="create", reason=Invoice.BillingReason.SUBSCRIPTION_CREATE, at=at
        )
        invoice.period_start, invoice.period_end = period.start, period.end
        planned = plan_subscription_lines(subscription, usage_period=None, fee_period=period)
        lines = InvoiceLineItem.objects.bulk_create(line_items(invoice, planned, at=at))
        set_totals(invoice, lines)
        invoice.save()
        pending_invoice_items_attach(invoice=invoice)
        record_event("invoice.created", invoice)
        invoice_finalize(invoice=invoice, actor=actor, at=at)
    customer_event_record(
        customer=customer,
        subscription=subscription,
        action=CustomerEvent.Action.SUBSCRIPTION_CREATED,
        actor=actor,
        at=at,
        note=f"{subscription.public_id}: " + ", ".join(item.price.public_id for item in items),
    )
    return subscription


def _new_subscription_invoice(
    subscription: Subscription, *, key: str, reason: str, at: dt.datetime
) -> Invoice:
    invoice = _subscription_invoice(subscription, key=key, reason=reason, at=at)
    invoice.save(force_insert=True)
    return invoice


def _subscription_invoice(
    subscription: Subscription, *, key: str, reason: str, at: dt.datetime
) -> Invoice:
    return Invoice(
        customer_id=subscription.customer_id,
        subscription=subscription,
        billing_period_key=key,
        billing_reason=reason,
        currency=subscription.currency,
        collection_method=subscription.collection_method,
        days_until_due=subscription.days_until_due,
        created_at=at,
    )


def closing_invoice(subscription: Subscription) -> Invoice:
    """The (unsaved) draft that closing the subscription's current period writes."""
    ended = subscription.current_period
    invoice = _subscription_invoice(
        subscription,
        key=ended.start.isoformat(),
        reason=(
            Invoice.BillingReason.SUBSCRIPTION_CANCEL
            if subscription.cancel_at_period_end
            else Invoice.BillingReason.SUBSCRIPTION_CYCLE
        ),
        at=ended.end,
    )
    invoice.period_start, invoice.period_end = ended.start, ended.end
    invoice.finalize_after = ended.end + grace_period()
    return invoice


def advance_past_period(subscription: Subscription) -> bool:
    """Move the subscription (in memory) past its current period: to the next one, or ended
    with it when it cancels at period end (True)."""
    ended = subscription.current_period
    if subscription.cancel_at_period_end:
        subscription.status = Subscription.Status.CANCELED
        subscription.ended_at = ended.end
        subscription.canceled_at = subscription.canceled_at or ended.end
        return True
    following = subscription.following_period
    subscription.current_period_start = following.start
    subscription.current_period_end = following.end
    return False


@transaction.atomic
def subscription_close_period(*, subscription: Subscription, at: dt.datetime) -> Invoice | None:
    """Close the current period if it has ended: one draft invoice, then the next period.

    Safe to run twice or on two workers at once: the subscription row is locked, and a
    period whose end is still ahead (or already closed) is left alone. The billing run closes
    many at once (`billing_chunks.py`) the same way; this is its one-at-a-time fallback.
    """
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock")
        .get(pk=subscription.pk)
    )
    if subscription.status != Subscription.Status.ACTIVE or subscription.current_period_end > at:
        return None
    before = snapshot(subscription)
    invoice = closing_invoice(subscription)
    planned = plan_period_close(subscription)
    lines = line_items(invoice, planned, at=invoice.period_end)
    set_totals(invoice, lines)
    invoice.save()
    InvoiceLineItem.objects.bulk_create(lines)
    pending_invoice_items_attach(invoice=invoice)
    # Usage past the limits holds this draft for review; the subscription still moves on.
    hold_if_over_limit(invoice, planned, at)
    record_event("invoice.created", invoice)
    ending = advance_past_period(subscription)
    subscription.save()
    if ending:
        record_event("customer.subscription.deleted", subscription)
    else:
        # A renewal: Stripe reports the new period as an update.
        record_update("customer.subscription.updated", subscription, before)
    return invoice


@transaction.atomic
def subscription_cancel_now(
    *, subscription: Subscription, invoice_now: bool = False, actor: str = "api"
) -> Subscription:
    """Cancel at once. With invoice_now, usage so far is billed on a final invoice."""
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock")
        .get(pk=subscription.pk)
    )
    if subscription.status == Subscription.Status.CANCELED:
        raise BillingError(
            f"Subscription {subscription.public_id} is already canceled.",
            code=InvoicingErrorCode.SUBSCRIPTION_CANCELED,
        )
    at = subscription.customer.billing_now()
    note = f"{subscription.public_id}: usage so far not invoiced"
    # At the period's first instant nothing can have been used yet: there is nothing to bill.
    if invoice_now and at > subscription.current_period_start:
        partial = Period(subscription.current_period_start, at)
        invoice = _new_subscription_invoice(
            subscription,
            key=f"cancel:{partial.start.isoformat()}",
            reason=Invoice.BillingReason.SUBSCRIPTION_CANCEL,
            at=at,
        )
        planned = plan_subscription_lines(subscription, usage_period=partial, fee_period=None)
        lines = InvoiceLineItem.objects.bulk_create(line_items(invoice, planned, at=at))
        invoice.period_start, invoice.period_end = partial.start, partial.end
        set_totals(invoice, lines)
        invoice.save()
        pending_invoice_items_attach(invoice=invoice)
        held = hold_if_over_limit(invoice, planned, at)
        record_event("invoice.created", invoice)
        if held:
            note = f"{subscription.public_id}: usage so far held for review on {invoice.label}"
        else:
            invoice = invoice_finalize(invoice=invoice, actor=actor, at=at)
            note = f"{subscription.public_id}: usage so far invoiced on {invoice.label}"
    subscription.status = Subscription.Status.CANCELED
    subscription.canceled_at = at
    subscription.ended_at = at
    subscription.save()
    record_event("customer.subscription.deleted", subscription)
    customer_event_record(
        customer=subscription.customer,
        subscription=subscription,
        action=CustomerEvent.Action.SUBSCRIPTION_CANCELED,
        actor=actor,
        at=at,
        note=note,
    )
    return subscription


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    cancel_at_period_end: bool | None = None,
    metadata: dict[str, str] | None = None,
    quantities: dict[SubscriptionItem, int] | None = None,
) -> Subscription:
    subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
    if subscription.status == Subscription.Status.CANCELED:
        raise BillingError(
            f"Subscription {subscription.public_id} is canceled and can't be changed.",
            code=InvoicingErrorCode.SUBSCRIPTION_CANCELED,
        )
    before = snapshot(subscription)
    if (
        cancel_at_period_end is not None
        and cancel_at_period_end != subscription.cancel_at_period_end
    ):
        subscription.cancel_at_period_end = cancel_at_period_end
        # When the cancellation was asked for; cleared if it is taken back.
        subscription.canceled_at = (
            subscription.customer.billing_now() if cancel_at_period_end else None
        )
    if metadata is not None:
        subscription.metadata = metadata
    subscription.save()
    quantities = quantities or {}
    for item, quantity in quantities.items():
        if item.subscription_id != subscription.pk:
            raise BillingError(f"Item {item.public_id} belongs to another subscription.")
        if item.price.is_metered:
            raise BillingError(
                f"Item {item.public_id} is metered: its quantity comes from usage.",
                param="items",
            )
        if quantity < 1:
            raise BillingError("quantity must be at least 1.", param="items")
    if quantities:
        changed = {item.pk: quantity for item, quantity in quantities.items()}
        licensed = subscription.items.select_related("price").prefetch_related("price__tiers")
        _check_fees(
            ("items", item.price, changed.get(item.pk, item.quantity))
            for item in licensed
            if not item.price.is_metered
        )
    for item, quantity in quantities.items():
        # Takes effect from the next period's invoice: there is no proration.
        item.quantity = quantity
        item.save(update_fields=["quantity"])
    record_update("customer.subscription.updated", subscription, before)
    return subscription
