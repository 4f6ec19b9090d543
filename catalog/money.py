"""Minor units, the project's single rounding rule, and display of amounts.

Every amount in the billing math is a ``Decimal`` number of the currency's minor units
(USD cents, whole yen), the same convention as Stripe's ``unit_amount``. Amounts stay
exact, possibly with up to 12 decimal places, until an invoice line is complete; that
line is then rounded once, here, with :func:`round_to_minor_unit`.

This module deliberately uses py-moneyed's ``Money`` rather than ``djmoney.money.Money``:
importing djmoney reads Django settings at import time, and the catalog math has to run
without Django. djmoney's ``Money`` subclasses moneyed's, so both are accepted as input,
and a moneyed ``Money`` can be assigned to a ``MoneyField``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from moneyed import Currency, CurrencyDoesNotExist, Money, get_currency

__all__ = [
    "UnknownCurrency",
    "currency_exponent",
    "exact_decimal",
    "format_minor_units",
    "from_minor_units",
    "round_to_minor_unit",
    "significant_decimal_places",
    "to_minor_units",
]


class UnknownCurrency(ValueError):
    def __init__(self, currency: object) -> None:
        super().__init__(
            f"Unknown currency {currency!r}: use a three-letter ISO 4217 code such as 'usd'."
        )
        self.currency = currency


def _currency(code: str) -> Currency:
    if not isinstance(code, str):
        raise UnknownCurrency(code)
    try:
        # Stripe sends lower-case codes ("usd"); moneyed only knows upper-case ones.
        return get_currency(code.upper())
    except CurrencyDoesNotExist:
        raise UnknownCurrency(code) from None


def currency_exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit: USD 2, JPY 0, KWD 3."""
    sub_unit = _currency(currency).sub_unit
    exponent = len(str(sub_unit)) - 1
    if 10**exponent != sub_unit:
        # Every ISO 4217 sub-unit is a power of ten; anything else would make "minor units"
        # meaningless, so refuse rather than guess.
        raise ValueError(f"Currency {currency!r} has a sub-unit of {sub_unit}, not a power of 10.")
    return exponent


def exact_decimal(value: Decimal | int, what: str) -> Decimal:
    """`value` as a finite Decimal, for the money math and the rating engine alike; `what`
    names it in the error."""
    # bool is an int subclass and float is inexact: both are bugs when they reach money code.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{what} must be a Decimal or an int, not {type(value).__name__}.")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}.")
    return value


def _shift(amount: Decimal, places: int) -> Decimal:
    """Multiply by 10**places exactly, with no exponent above zero in the result.

    ``scaleb`` and ``quantize`` would do this but round to the context precision (28
    digits), and an exact amount from the rating engine can be longer than that.
    """
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _as_decimal
    exponent += places
    if exponent > 0:
        # Spell the zeros out: Decimal("2E+4") equals 20000 but reads badly in messages.
        digits, exponent = (*digits, *(0,) * exponent), 0
    return Decimal((sign, digits, exponent))


def round_to_minor_unit(amount: Decimal | int) -> int:
    """Round an exact amount of minor units to a whole number of them, half up.

    This is the one rounding function of the project: an invoice line is rounded once,
    when it is complete, and the invoice total is the sum of rounded lines. Halves round
    away from zero (1.5 cents -> 2, -1.5 cents -> -2; 2.5 yen -> 3), which is what a
    billing team means by "half up" and what ``ROUND_HALF_UP`` does.
    """
    amount = exact_decimal(amount, "amount")
    # to_integral_value, unlike quantize, cannot fail on a long integer part.
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


def to_minor_units(money: Money) -> Decimal:
    """Exact amount of ``money`` in minor units: 1.50 USD -> 150, 0.001 USD -> 0.1."""
    exponent = currency_exponent(money.currency.code)
    return _shift(exact_decimal(money.amount, "money.amount"), exponent)


def from_minor_units(amount: Decimal | int, currency: str) -> Money:
    """Exact inverse of :func:`to_minor_units`: 150 USD -> Money("1.50", "USD")."""
    exponent = currency_exponent(currency)
    return Money(_shift(exact_decimal(amount, "amount"), -exponent), currency.upper())


def significant_decimal_places(amount: Decimal) -> int:
    """Decimal places an amount needs, ignoring trailing zeros: Decimal("0.100") -> 1."""
    # normalize() would answer this too, but it rounds to the context precision.
    _sign, digits, exponent = exact_decimal(amount, "amount").as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _as_decimal
    if not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def format_minor_units(amount: Decimal | int, currency: str) -> str:
    """Render minor units as major units with the currency code.

    At least the currency's decimals are shown, and more only when the amount needs them,
    so sub-cent unit prices stay visible: 20000 USD -> "200.00 USD",
    Decimal("0.1") USD -> "0.001 USD", 500 JPY -> "500 JPY".
    """
    exponent = currency_exponent(currency)
    major = _shift(exact_decimal(amount, "amount"), -exponent)
    if major.is_zero():
        major = major.copy_abs()  # a "-0.00 USD" would only confuse
    places = max(exponent, significant_decimal_places(major))
    return f"{major:,.{places}f} {currency.upper()}"
