"""Amounts as staff type them on the create-product page: major units, turned into minor units.

"200.00" USD -> "20000", "0.001" USD -> "0.1", "5" JPY -> "5": the strings
:func:`catalog.terms.build_price_terms` takes, like the API's ``*_decimal`` parameters.
"""

from __future__ import annotations

import re
from decimal import Decimal

from moneyed import Money

from catalog.money import currency_exponent, significant_decimal_places, to_minor_units
from catalog.terms import MAX_DECIMAL_PLACES

__all__ = ["AmountError", "major_to_minor_units", "shown"]

_AMOUNT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class AmountError(ValueError):
    """An amount typed in the admin that can't be a price (bad number, negative, too precise)."""


def shown(value: str) -> str:
    """What staff typed, quoted back in an error message without flooding it."""
    return value if len(value) <= 40 else f"{value[:37]}..."


def major_to_minor_units(text: str, *, currency: str, label: str) -> str | None:
    """Turn an amount typed in major units into a minor-units string for build_price_terms.

    "200.00" USD -> "20000", "0.001" USD -> "0.1", "5" JPY -> "5"; blank -> None.
    Commas and spaces are taken as thousands separators ("1,000.00"). The 12-decimal limit
    of minor units is ``12 + exponent`` decimals in major units (14 for USD), and the error
    says so in the units staff typed.
    """
    typed = (text or "").strip()
    cleaned = typed.replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    code = currency.upper()
    if not _AMOUNT.fullmatch(cleaned):
        raise AmountError(
            f"{label} must be an amount in {code} such as 200.00 or 0.001, got '{shown(typed)}'."
        )
    major = Decimal(cleaned)
    if major < 0:
        raise AmountError(
            f"{label} must not be negative, got '{shown(typed)}'; discounts and credits are "
            "applied on the invoice, not in the price."
        )
    places = MAX_DECIMAL_PLACES + currency_exponent(code)
    if significant_decimal_places(major) > places:
        raise AmountError(
            f"{label} can have at most {places} decimal places in {code} "
            f"({MAX_DECIMAL_PLACES} decimal places of its minor unit), got '{shown(typed)}'."
        )
    return format(to_minor_units(Money(major, code)), "f")
