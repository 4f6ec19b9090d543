"""Build :class:`~catalog.rating.PriceTerms` from raw API or admin input, or say what's wrong.

Input arrives as decoded form or JSON values: strings, ints or Decimals, with tiers as a
list of dicts. Errors are :class:`InvalidPriceTerms` carrying the Stripe parameter name
(``tiers[1][up_to]``; indices are 0-based as in the request) and a message written for
the person who sent it, naming tiers the way staff count them ("Tier 2", 1-based).

Amounts are minor units (cents for USD). Whole amounts (``unit_amount``, ``flat_amount``)
must be integers; fractions go in the ``*_decimal`` variants, as in Stripe's API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_site.limits import MAX_AMOUNT_DIGITS, MAX_DIVIDE_BY, MAX_TIER_UP_TO
from catalog.money import significant_decimal_places
from catalog.rating import (
    BILLING_SCHEMES,
    ROUNDING_MODES,
    TIERS_MODES,
    PriceTerms,
    Tier,
    TransformQuantity,
)

__all__ = [
    "MAX_DECIMAL_PLACES",
    "MAX_INTEGER_DIGITS",
    "InvalidPriceTerms",
    "build_price_terms",
]

MAX_DECIMAL_PLACES = 12
# The bounds themselves live in billing_site.limits, with why they are what they are.
MAX_INTEGER_DIGITS = MAX_AMOUNT_DIGITS
_AMOUNT_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_TIER_FIELDS = ("up_to", "unit_amount", "unit_amount_decimal", "flat_amount", "flat_amount_decimal")
_TRANSFORM_FIELDS = ("divide_by", "round")
# Decimal() alone would also take "1_000", " 5 ", "NaN" and "Infinity", none of which a
# person means as a price. Exponents are allowed in decimal amounts only: str(Decimal)
# writes "1E-7", and clients such as the stripe SDK send exactly that.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_NUMBER_WITH_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ZERO = Decimal(0)


class InvalidPriceTerms(ValueError):
    """Price terms that can't be accepted; ``param`` names the offending field."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"InvalidPriceTerms({self.message!r}, param={self.param!r})"


def build_price_terms(
    *,
    billing_scheme: str | None = None,
    unit_amount: Any = None,
    unit_amount_decimal: Any = None,
    tiers_mode: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
    transform_quantity: dict[str, Any] | None = None,
) -> PriceTerms:
    """Validate raw price input and return the terms the rating engine uses.

    ``None`` means "not given". ``billing_scheme`` defaults to ``per_unit``.
    Raises :class:`InvalidPriceTerms` on the first problem found.
    """
    scheme = "per_unit" if billing_scheme is None else billing_scheme
    if scheme not in BILLING_SCHEMES:
        raise InvalidPriceTerms(
            f"billing_scheme must be 'per_unit' or 'tiered', got {_shown(billing_scheme)}.",
            param="billing_scheme",
        )
    given = _Given(unit_amount, unit_amount_decimal, tiers_mode, tiers, transform_quantity)
    return _build_per_unit(given) if scheme == "per_unit" else _build_tiered(given)


@dataclass(frozen=True)
class _Given:
    """The terms' parameters as given (None: not given); each scheme refuses the others'."""

    unit_amount: Any
    unit_amount_decimal: Any
    tiers_mode: Any
    tiers: Any
    transform_quantity: Any


def _build_per_unit(given: _Given) -> PriceTerms:
    if given.tiers_mode is not None:
        raise InvalidPriceTerms(
            "tiers_mode only applies to tiered prices; "
            "set billing_scheme to 'tiered' or leave tiers_mode out.",
            param="tiers_mode",
        )
    # An empty list carries no terms (a form with no tier rows), so only real tiers clash.
    if given.tiers not in (None, [], ()):
        raise InvalidPriceTerms(
            "tiers only apply to tiered prices; set billing_scheme to 'tiered' or leave tiers out.",
            param="tiers",
        )
    amount = _one_amount(
        given.unit_amount,
        given.unit_amount_decimal,
        field="unit_amount",
        param=_top_param,
        prefix="",
    )
    if amount is None:
        raise InvalidPriceTerms(
            "A per_unit price needs unit_amount (whole minor units, e.g. 1500 for 15.00 USD) "
            "or unit_amount_decimal (a decimal string such as '0.1').",
            param="unit_amount",
        )
    return PriceTerms(
        billing_scheme="per_unit",
        unit_amount=amount,
        transform_quantity=_transform_quantity(given.transform_quantity),
    )


def _build_tiered(given: _Given) -> PriceTerms:
    for name, value in (
        ("unit_amount", given.unit_amount),
        ("unit_amount_decimal", given.unit_amount_decimal),
    ):
        if value is not None:
            raise InvalidPriceTerms(
                f"{name} cannot be used with billing_scheme 'tiered'; "
                "set the unit amount on each tier instead.",
                param=name,
            )
    if given.transform_quantity is not None:
        raise InvalidPriceTerms(
            "transform_quantity cannot be combined with tiered pricing; "
            "use billing_scheme 'per_unit' for package pricing.",
            param="transform_quantity",
        )
    if given.tiers_mode is None:
        raise InvalidPriceTerms(
            "tiers_mode is required for a tiered price: 'graduated' or 'volume'.",
            param="tiers_mode",
        )
    if given.tiers_mode not in TIERS_MODES:
        raise InvalidPriceTerms(
            f"tiers_mode must be 'graduated' or 'volume', got {_shown(given.tiers_mode)}.",
            param="tiers_mode",
        )
    if given.tiers is None or (isinstance(given.tiers, list | tuple) and not given.tiers):
        raise InvalidPriceTerms(
            "A tiered price needs at least one tier, and the last tier must have up_to 'inf'.",
            param="tiers",
        )
    if not isinstance(given.tiers, list | tuple):
        raise InvalidPriceTerms(
            f"tiers must be a list of tier objects, got {type(given.tiers).__name__}.",
            param="tiers",
        )
    tiers = given.tiers
    parsed: list[Tier] = []
    previous_up_to: int | None = None
    for index, raw in enumerate(tiers):
        tier = _tier(raw, index=index, is_last=index == len(tiers) - 1, previous=previous_up_to)
        parsed.append(tier)
        previous_up_to = None if tier.up_to is None else int(tier.up_to)
    return PriceTerms(billing_scheme="tiered", tiers_mode=given.tiers_mode, tiers=tuple(parsed))


def _tier(raw: Any, *, index: int, is_last: bool, previous: int | None) -> Tier:
    number = index + 1
    prefix = f"Tier {number}: "

    def param(field: str) -> str:
        return f"tiers[{index}][{field}]"

    if not isinstance(raw, Mapping):
        raise InvalidPriceTerms(
            f"Tier {number} must be an object with up_to and an amount, got {type(raw).__name__}.",
            param=f"tiers[{index}]",
        )
    for key in raw:
        if key not in _TIER_FIELDS:
            raise InvalidPriceTerms(
                f"{prefix}unknown field {_shown(key)}; a tier takes "
                "up_to, unit_amount, unit_amount_decimal, flat_amount and flat_amount_decimal.",
                param=param(str(key)),
            )

    up_to = _up_to(raw.get("up_to"), prefix=prefix, param=param("up_to"))
    if up_to is None and not is_last:
        raise InvalidPriceTerms(
            f"{prefix}only the last tier can have up_to 'inf'; give tier {number} a number "
            "or remove the tiers after it.",
            param=param("up_to"),
        )
    if up_to is not None and is_last:
        raise InvalidPriceTerms(
            f"{prefix}the last tier must have up_to 'inf' so that every quantity has a price, "
            f"got {up_to}; add a final tier with up_to 'inf'.",
            param=param("up_to"),
        )
    if up_to is not None and previous is not None and up_to <= previous:
        raise InvalidPriceTerms(
            f"{prefix}up_to must be greater than tier {number - 1}'s up_to ({previous}), "
            f"got {up_to}.",
            param=param("up_to"),
        )

    unit, flat = (
        _one_amount(
            raw.get(field), raw.get(f"{field}_decimal"), field=field, param=param, prefix=prefix
        )
        for field in ("unit_amount", "flat_amount")
    )
    if unit is None and flat is None:
        raise InvalidPriceTerms(
            f"{prefix}give unit_amount, unit_amount_decimal, flat_amount or "
            "flat_amount_decimal (use unit_amount 0 for a free tier).",
            param=f"tiers[{index}]",
        )
    return Tier(
        up_to=None if up_to is None else Decimal(up_to),
        unit_amount=_ZERO if unit is None else unit,
        flat_amount=_ZERO if flat is None else flat,
    )


def _up_to(value: Any, *, prefix: str, param: str) -> int | None:
    if value is None:
        raise InvalidPriceTerms(
            f"{prefix}up_to is required: a positive whole number, or 'inf' for the last tier.",
            param=param,
        )
    if value == "inf":
        return None
    return _positive_count(
        value,
        label=f"{prefix}up_to",
        param=param,
        expected="a positive whole number of units, or 'inf' for the last tier",
        limit=MAX_TIER_UP_TO,
    )


def _transform_quantity(raw: Any) -> TransformQuantity | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidPriceTerms(
            "transform_quantity must be an object with divide_by and round.",
            param="transform_quantity",
        )
    for key in raw:
        if key not in _TRANSFORM_FIELDS:
            raise InvalidPriceTerms(
                f"transform_quantity has no field {_shown(key)}; it takes divide_by and round.",
                param=f"transform_quantity[{key}]",
            )
    divide_by = raw.get("divide_by")
    if divide_by is None:
        raise InvalidPriceTerms(
            "transform_quantity[divide_by] is required: the number of units in a package.",
            param="transform_quantity[divide_by]",
        )
    packages_of = _positive_count(
        divide_by,
        label="transform_quantity[divide_by]",
        param="transform_quantity[divide_by]",
        expected="a positive whole number of units per package",
        limit=MAX_DIVIDE_BY,
    )
    rounding = raw.get("round")
    if rounding not in ROUNDING_MODES:
        detail = "is required" if rounding is None else f"got {_shown(rounding)}"
        raise InvalidPriceTerms(
            f"transform_quantity[round] must be 'up' (charge a partial package in full) or "
            f"'down' (don't charge it); {detail}.",
            param="transform_quantity[round]",
        )
    return TransformQuantity(divide_by=packages_of, round=rounding)


def _top_param(field: str) -> str:
    return field


def _one_amount(
    whole: Any, decimal: Any, *, field: str, param: Callable[[str], str], prefix: str
) -> Decimal | None:
    """Read ``<field>`` or ``<field>_decimal``, whichever is given; never both."""
    decimal_field = f"{field}_decimal"
    if whole is not None and decimal is not None:
        raise InvalidPriceTerms(
            f"{prefix}give only one of {field} or {decimal_field}, not both.",
            param=param(decimal_field),
        )
    if whole is not None:
        return _whole_amount(whole, field=field, param=param(field), prefix=prefix)
    if decimal is not None:
        return _decimal_amount(
            decimal, field=decimal_field, param=param(decimal_field), prefix=prefix
        )
    return None


def _whole_amount(value: Any, *, field: str, param: str, prefix: str) -> Decimal:
    label = f"{prefix}{field}"
    number = _number(
        value, label=label, param=param, expected="a non-negative whole number of minor units"
    )
    _check_not_negative(number, value, label=label, param=param)
    if number != number.to_integral_value():
        raise InvalidPriceTerms(
            f"{label} must be a whole number of minor units, got {_shown(value)}; "
            f"use {field}_decimal for fractional amounts.",
            param=param,
        )
    _check_size(number, value, label=label, param=param)
    return Decimal(int(number))


def _decimal_amount(value: Any, *, field: str, param: str, prefix: str) -> Decimal:
    label = f"{prefix}{field}"
    number = _number(
        value,
        label=label,
        param=param,
        expected="a non-negative decimal number of minor units, such as '0.1'",
        allow_exponent=True,
    )
    _check_not_negative(number, value, label=label, param=param)
    _check_size(number, value, label=label, param=param)
    if significant_decimal_places(number) > MAX_DECIMAL_PLACES:
        raise InvalidPriceTerms(
            f"{label} can have at most {MAX_DECIMAL_PLACES} decimal places, got {_shown(value)}.",
            param=param,
        )
    if -number.as_tuple().exponent > MAX_DECIMAL_PLACES:  # type: ignore[operator]
        # Only trailing zeros go past 12 places here; drop them so the value fits a
        # 12-decimal column exactly.
        number = number.quantize(Decimal(1).scaleb(-MAX_DECIMAL_PLACES))
    return abs(number) if number.is_zero() else number


def _positive_count(value: Any, *, label: str, param: str, expected: str, limit: int) -> int:
    number = _number(value, label=label, param=param, expected=expected)
    if number != number.to_integral_value():
        raise InvalidPriceTerms(
            f"{label} must be a whole number, got {_shown(value)}.", param=param
        )
    if number <= 0:
        raise InvalidPriceTerms(
            f"{label} must be greater than 0, got {_shown(value)}.", param=param
        )
    if number > limit:
        raise InvalidPriceTerms(
            f"{label} is too large, got {_shown(value)}; the limit is {limit:,}.",
            param=param,
        )
    return int(number)


def _number(
    value: Any, *, label: str, param: str, expected: str, allow_exponent: bool = False
) -> Decimal:
    """Turn a string, int or Decimal into a finite Decimal, or explain what was expected."""
    if isinstance(value, float):
        raise InvalidPriceTerms(
            f"{label} must be sent as a string or an integer, not a floating-point number "
            f"({value!r}), so that it stays exact.",
            param=param,
        )
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidPriceTerms(f"{label} must be {expected}, got {_shown(value)}.", param=param)
    if isinstance(value, str):
        pattern = _NUMBER_WITH_EXPONENT if allow_exponent else _PLAIN_NUMBER
        if not pattern.fullmatch(value):
            raise InvalidPriceTerms(
                f"{label} must be {expected}, got {_shown(value)}.", param=param
            )
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
            raise InvalidPriceTerms(
                f"{label} must be {expected}, got {_shown(value)}.", param=param
            ) from None
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidPriceTerms(f"{label} must be {expected}, got {_shown(value)}.", param=param)
    return number


def _check_not_negative(number: Decimal, value: Any, *, label: str, param: str) -> None:
    if number < 0:
        raise InvalidPriceTerms(
            f"{label} must not be negative, got {_shown(value)}; "
            "discounts and credits are applied on the invoice, not in the price.",
            param=param,
        )


def _check_size(number: Decimal, value: Any, *, label: str, param: str) -> None:
    if number >= _AMOUNT_LIMIT:
        raise InvalidPriceTerms(
            f"{label} can have at most {MAX_INTEGER_DIGITS} digits before the decimal point, "
            f"got {_shown(value)}.",
            param=param,
        )


def _shown(value: Any) -> str:
    """Quote a rejected value in a message, cut short so a huge input can't flood it."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
