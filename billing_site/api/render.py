"""Small helpers shared by the serializers of every app."""

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
