"""Numbers as text: the pure value formatters every layer may use.

This module sits at the bottom of the import graph (it imports no app and no Django), so
services, the API, the admin and the portal can all share one spelling of a number. Money
is not formatted here: how many decimals an amount shows depends on its currency, which
`catalog.money.format_minor_units` knows.
"""

from __future__ import annotations

from decimal import Decimal


def decimal_string(value: Decimal | None) -> str | None:
    """Stripe's `*_decimal` strings: no exponent, no trailing zeros ("0.1", "2000")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def integer_or_none(value: Decimal | None) -> int | None:
    """Stripe's integer twin of a decimal amount: null when the amount has a fraction."""
    if value is None or value != value.to_integral_value():
        return None
    return int(value)


def format_value(value: Decimal) -> str:
    """A usage value for people: 25.000000000000 -> '25', 1234.5 -> '1,234.5'."""
    return "0" if value == 0 else f"{value.normalize():,f}"
