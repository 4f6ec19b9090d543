"""Prices in words, for the admin, the portal and invoice line details: terms, billing period.

Amounts are shown in major units via :func:`catalog.money.format_minor_units`, so a
sub-cent unit price keeps its digits ("0.001 USD per unit") instead of showing as 0.00.
"""

from __future__ import annotations

from decimal import Decimal

from catalog.money import format_minor_units
from catalog.rating import PriceTerms, Tier

__all__ = [
    "NAMED_BILLING_PERIODS",
    "billing_period_label",
    "describe_price_terms",
    "describe_price_terms_short",
    "price_summary",
]

# Billing periods with a name of their own, as (interval, interval_count).
NAMED_BILLING_PERIODS = {
    ("month", 1): "Monthly",
    ("year", 1): "Yearly",
    ("week", 1): "Weekly",
    ("day", 1): "Daily",
    ("month", 3): "Every 3 months",
    ("month", 6): "Every 6 months",
}

_MODE_HEADLINES = {
    "volume": "Volume pricing: the total quantity sets the price of every unit",
    "graduated": "Graduated pricing: each band is charged at its own rate",
}


def describe_price_terms(terms: PriceTerms, currency: str) -> list[str]:
    """One line per tier (after a line naming the tiers mode), or one line for per_unit.

    >>> describe_price_terms(PriceTerms("per_unit", unit_amount=Decimal(20000)), "usd")
    ['200.00 USD per unit']
    """
    if terms.billing_scheme == "per_unit":
        return [_per_unit_line(terms, currency)]
    assert terms.tiers_mode is not None  # guaranteed by PriceTerms
    lines = [_MODE_HEADLINES[terms.tiers_mode]]
    previous: Decimal | None = None
    for tier in terms.tiers:
        label = _tier_label(tier, previous, volume=terms.tiers_mode == "volume")
        lines.append(f"{label}: {_tier_amounts(tier, currency)}")
        previous = tier.up_to
    return lines


def describe_price_terms_short(terms: PriceTerms, currency: str) -> str:
    """The same description on one line, for tables and invoice line details."""
    return "; ".join(describe_price_terms(terms, currency))


def billing_period_label(interval: str | None, interval_count: int | None) -> str:
    """ "Monthly", "Every 3 months", "Every 2 weeks"; "One-off" without an interval."""
    if not interval:
        return "One-off"
    count = interval_count or 1
    named = NAMED_BILLING_PERIODS.get((interval, count))
    if named:
        return named
    return f"Every {count} {interval}s" if count != 1 else f"Every {interval}"


def price_summary(price, *, with_period: bool = True) -> str:
    """A price on one line, for choices and pickers: its name, id and terms, and (unless
    ``with_period=False``) its billing period. "Pro seats (price_…): 20.00 USD per unit, Monthly".
    """
    summary = (
        f"{price.display_name} ({price.public_id}): "
        f"{describe_price_terms_short(price.terms, price.currency)}"
    )
    if not with_period:
        return summary
    period = billing_period_label(price.recurring_interval, price.recurring_interval_count)
    return f"{summary}, {period}"


def _per_unit_line(terms: PriceTerms, currency: str) -> str:
    assert terms.unit_amount is not None  # guaranteed by PriceTerms
    price = format_minor_units(terms.unit_amount, currency)
    transform = terms.transform_quantity
    if transform is None:
        return f"{price} per unit"
    return f"{price} per {_units(Decimal(transform.divide_by))} (rounded {transform.round})"


def _tier_label(tier: Tier, previous: Decimal | None, *, volume: bool) -> str:
    # Tier bounds are whole units (build_price_terms insists), so a band starts one past
    # the previous tier's inclusive up_to.
    if previous is None:
        if tier.up_to is None:
            return "All units"
        # In volume mode the first tier is not "the first N units of a larger total" but
        # "totals of up to N", and the headline line says so; word it to match.
        return f"Up to {_units(tier.up_to)}" if volume else f"First {_units(tier.up_to)}"
    start = _count(previous + 1)
    if tier.up_to is None:
        return f"{start} and up"
    return f"{start} to {_count(tier.up_to)}"


def _tier_amounts(tier: Tier, currency: str) -> str:
    per_unit = f"{format_minor_units(tier.unit_amount, currency)} per unit"
    if not tier.flat_amount:
        return per_unit
    flat = f"{format_minor_units(tier.flat_amount, currency)} flat"
    if not tier.unit_amount:
        return flat
    return f"{per_unit} + {flat}"


def _units(count: Decimal) -> str:
    return "1 unit" if count == 1 else f"{_count(count)} units"


def _count(count: Decimal) -> str:
    # Format integers through int so "1E+5" style exponents never leak into the text.
    if count == count.to_integral_value():
        return f"{int(count):,}"
    return f"{count:,f}"
