"""The line planner: what goes on a subscription's invoice for a period.

One function, `plan_period_lines`, decides every subscription line: usage in arrears for the
ended (or current) period, fees in advance for the following one, their quantities, service
periods, descriptions, rating and the one rounding. The first invoice, the period close, cancel
with `invoice_now`, test-clock advances (through the period close) and the upcoming-invoice
preview all call it, so the preview is the invoice the close would write (both through
`plan_period_close`).

It is pure: its inputs are plain values (items with their prices and tiers loaded, usage per
item), so a caller can load them for many subscriptions at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing_site.errors import BillingError
from billing_site.formatting import decimal_string
from billing_site.limits import MAX_AMOUNT
from catalog.models import Price
from catalog.money import format_minor_units, round_to_minor_unit
from catalog.rating import Rating, rate
from invoicing.models import Invoice, InvoiceLineItem, Subscription, SubscriptionItem
from invoicing.periods import Period
from metering.store import usage_many

Kind = InvoiceLineItem.Kind


@dataclass(frozen=True)
class RatedLine:
    quantity: Decimal
    amount: int
    unrounded_amount: Decimal
    tier_breakdown: list[dict[str, Any]]
    # Set when the line rates past the per-line limit: the exact amount, while `amount` and
    # `unrounded_amount` hold the limit (what can be stored and billed).
    over_limit_amount: Decimal | None = None

    @property
    def over_limit(self) -> bool:
        return self.over_limit_amount is not None


def breakdown_json(rating: Rating) -> list[dict[str, Any]]:
    return [
        {
            "tier": charge.tier,
            "units": decimal_string(charge.units),
            "unit_amount_decimal": decimal_string(charge.unit_amount),
            "flat_amount_decimal": decimal_string(charge.flat_amount),
            "amount_decimal": decimal_string(charge.subtotal),
        }
        for charge in rating.breakdown
    ]


def rate_line(price: Price, quantity: Decimal) -> RatedLine:
    """Rate a quantity and round the line once, half up (the invoice total adds rounded lines).

    A line past `MAX_AMOUNT` is capped at it and flagged (`over_limit`): input that would make
    one (a fee, an item) is refused by its service, and a usage line is held for review.
    """
    quantity = max(Decimal(0), quantity)  # a negative period total bills nothing
    rating = rate(price.terms, quantity)
    amount = round_to_minor_unit(rating.amount)
    if amount > MAX_AMOUNT:
        return RatedLine(
            quantity=quantity,
            amount=MAX_AMOUNT,
            unrounded_amount=Decimal(MAX_AMOUNT),
            tier_breakdown=breakdown_json(rating),
            over_limit_amount=rating.amount,
        )
    return RatedLine(
        quantity=quantity,
        amount=amount,
        unrounded_amount=rating.amount,
        tier_breakdown=breakdown_json(rating),
    )


def rate_line_within_limit(price: Price, quantity: Decimal, *, param: str) -> RatedLine:
    """Rate a line that comes from input (a fee's quantity, an item): past the limit, refuse it."""
    rated = rate_line(price, quantity)
    if rated.over_limit:
        raise BillingError(
            f"{decimal_string(quantity)} x {price.public_id} comes to more than "
            f"{format_minor_units(MAX_AMOUNT, price.currency)}, the limit of an invoice line; "
            "use a smaller quantity.",
            param=param,
        )
    return rated


# Appended to the description of a usage line capped at the limit, so the invoice says so.
CAPPED_NOTE = " (capped at the per-line limit)"


def described(description: str, rated: RatedLine) -> str:
    """A line's description, with the capped note exactly when the line is capped."""
    return description.removesuffix(CAPPED_NOTE) + (CAPPED_NOTE if rated.over_limit else "")


def amount_limit_problem(
    lines: Iterable[tuple[str, RatedLine]], *, total: int, currency: str
) -> str | None:
    """Why an invoice with these lines can't be finalized without review, or None.

    A usage line that rated past the per-line limit, or a total past the per-invoice limit.
    """
    limit = format_minor_units(MAX_AMOUNT, currency)
    for description, rated in lines:
        if rated.over_limit_amount is not None:
            exact = format_minor_units(round_to_minor_unit(rated.over_limit_amount), currency)
            return (
                f"the line '{described(description, rated)}' rates to {exact}, over the limit "
                f"of {limit} per line, and is capped at the limit"
            )
    if total > MAX_AMOUNT:
        total_words = format_minor_units(total, currency)
        return f"the total, {total_words}, is over the limit of {limit} per invoice"
    return None


@dataclass(frozen=True)
class PlanItem:
    """A subscription item as the planner sees it (price with product, meter and tiers loaded)."""

    pk: int
    public_id: str
    price: Price
    quantity: int

    @classmethod
    def of(cls, item: SubscriptionItem) -> PlanItem:
        return cls(item.pk, item.public_id, item.price, item.quantity)


@dataclass(frozen=True)
class PlannedLine:
    kind: str
    item: PlanItem
    description: str
    rated: RatedLine
    period: Period
    credits_applied: int = 0

    # Read by the preview's presenters and serializers, like an InvoiceLineItem's fields.
    @property
    def price(self) -> Price:
        return self.item.price

    @property
    def subscription_item_public_id(self) -> str:
        return self.item.public_id

    @property
    def quantity(self) -> Decimal:
        return self.rated.quantity

    @property
    def amount(self) -> int:
        return self.rated.amount

    @property
    def unrounded_amount(self) -> Decimal:
        return self.rated.unrounded_amount

    @property
    def tier_breakdown(self) -> list[dict[str, Any]]:
        return self.rated.tier_breakdown


def period_words(period: Period) -> str:
    last_day = period.end - dt.timedelta(seconds=1)
    return f"{period.start:%b %-d, %Y} to {last_day:%b %-d, %Y}"


def plan_period_lines(
    *,
    items: Sequence[PlanItem],
    usage_period: Period | None,
    usage: Mapping[int, Decimal],
    fee_period: Period | None,
    preview: bool = False,
) -> list[PlannedLine]:
    """The subscription lines of one invoice, one per item, in the subscription's item order.

    - `usage_period`: the period whose usage is billed in arrears (None: no usage lines), with
      `usage[item.pk]` the metered quantity of each metered item in it.
    - `fee_period`: the period whose fees are billed in advance (None: no fee lines, as on the
      last invoice of a subscription that ends).
    - `preview`: words for an invoice that doesn't exist yet ("usage so far", "next period").
    """
    lines: list[PlannedLine] = []
    for item in items:
        name = item.price.display_name
        if item.price.is_metered and usage_period is not None:
            kind, period = Kind.METERED, usage_period
            words = "usage so far" if preview else f"usage {period_words(period)}"
            rated = rate_line(item.price, usage.get(item.pk, Decimal(0)))
            description = f"{name}: {words}"
        elif not item.price.is_metered and fee_period is not None:
            kind, period = Kind.LICENSED, fee_period
            words = "next period" if preview else period_words(period)
            rated = rate_line(item.price, Decimal(item.quantity))
            description = f"{item.quantity} x {name} ({words})"
        else:
            continue
        description = described(description, rated)
        lines.append(PlannedLine(kind, item, description, rated, period))
    return lines


# --- loading inputs ----------------------------------------------------------------------------


def plan_items(subscription: Subscription) -> list[PlanItem]:
    items = subscription.items.select_related("price__product", "price__meter").prefetch_related(
        "price__tiers"
    )
    return [PlanItem.of(item) for item in items]


def usage_by_item(
    items: Iterable[PlanItem], *, customer_id: int, start: dt.datetime, end: dt.datetime
) -> dict[int, Decimal]:
    """Metered quantity of each metered item over [start, end), from the event store."""
    metered = [item for item in items if item.price.is_metered]
    if not metered:
        return {}
    totals = usage_many(
        pairs=[(item.price.meter, customer_id) for item in metered], start=start, end=end
    )
    return item_usage(metered, customer_id=customer_id, totals=totals)


def item_usage(
    items: Iterable[PlanItem], *, customer_id: int, totals: Mapping[tuple[int, int], Decimal]
) -> dict[int, Decimal]:
    """Each metered item's quantity, from `usage_many`'s totals keyed (meter id, customer id)
    (read for one subscription, or for a whole billing-run chunk at once)."""
    return {
        item.pk: totals.get((item.price.meter_id, customer_id), Decimal(0))
        for item in items
        if item.price.is_metered
    }


def plan_subscription_lines(
    subscription: Subscription,
    *,
    usage_period: Period | None,
    fee_period: Period | None,
    usage_end: dt.datetime | None = None,
    preview: bool = False,
) -> list[PlannedLine]:
    """`plan_period_lines` for one subscription, its items and usage loaded: usage over
    [usage_period.start, usage_end), `usage_end` being the period's end unless given."""
    items = plan_items(subscription)
    usage = {}
    if usage_period is not None:
        end = usage_end or usage_period.end
        usage = usage_by_item(
            items, customer_id=subscription.customer_id, start=usage_period.start, end=end
        )
    return plan_period_lines(
        items=items, usage_period=usage_period, usage=usage, fee_period=fee_period, preview=preview
    )


def plan_period_close(
    subscription: Subscription, *, usage_end: dt.datetime | None = None, preview: bool = False
) -> list[PlannedLine]:
    """The lines that closing the subscription's current period bills: its usage in arrears
    and, unless the subscription ends with the period, the next period's fees in advance.

    The period close writes them; the upcoming-invoice preview shows them, with the usage so
    far (`usage_end`, now).
    """
    usage_period, fee_period = close_periods(subscription)
    return plan_subscription_lines(
        subscription,
        usage_period=usage_period,
        fee_period=fee_period,
        usage_end=usage_end,
        preview=preview,
    )


def close_periods(subscription: Subscription) -> tuple[Period, Period | None]:
    """What closing the current period bills: its usage, and the next period's fees unless the
    subscription ends with the period (the billing run's chunks plan with these too)."""
    following = None if subscription.cancel_at_period_end else subscription.following_period
    return subscription.current_period, following


def metered_quantity(*, price: Price, customer_id: int, start: dt.datetime, end: dt.datetime):
    """One metered price's usage over [start, end): re-read when a draft is finalized."""
    return usage_many(pairs=[(price.meter, customer_id)], start=start, end=end).get(
        (price.meter_id, customer_id), Decimal(0)
    )


def line_items(
    invoice: Invoice, planned: Iterable[PlannedLine], *, at: dt.datetime
) -> list[InvoiceLineItem]:
    """The planned lines as unsaved rows of `invoice`."""
    return [
        InvoiceLineItem(
            invoice=invoice,
            kind=line.kind,
            subscription_item_id=line.item.pk,
            price=line.item.price,
            description=line.description,
            quantity=line.rated.quantity,
            amount=line.rated.amount,
            unrounded_amount=line.rated.unrounded_amount,
            tier_breakdown=line.rated.tier_breakdown,
            period_start=line.period.start,
            period_end=line.period.end,
            created_at=at,
        )
        for line in planned
    ]
