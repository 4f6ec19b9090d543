"""Minor units, the one rounding rule (half up, once per line) and amount display."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from catalog.money import (
    UnknownCurrency,
    currency_exponent,
    format_minor_units,
    from_minor_units,
    round_to_minor_unit,
    significant_decimal_places,
    to_minor_units,
)

# Exact amounts as the rating engine produces them: minor units with up to 12 decimals.
exact_amounts = st.decimals(
    min_value=Decimal("-1000000000"),
    max_value=Decimal("1000000000"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("usd", 2), ("EUR", 2), ("JPY", 0), ("jpy", 0), ("KWD", 3), ("BHD", 3)],
)
def test_currency_exponent_is_the_number_of_minor_unit_decimals(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("code", ["XYZ", "", "dollars", "US"])
def test_unknown_currency_is_rejected_with_the_code_in_the_message(code):
    with pytest.raises(UnknownCurrency, match="Unknown currency") as excinfo:
        currency_exponent(code)
    assert repr(code) in str(excinfo.value)


def test_unknown_currency_is_a_value_error_so_callers_can_treat_it_as_bad_input():
    assert issubclass(UnknownCurrency, ValueError)


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        (Decimal("1.5"), 2),  # 0.015 USD -> 0.02 USD
        (Decimal("2.5"), 3),  # 2.5 yen -> 3 yen: half up, not to even
        (Decimal("0.5"), 1),
        (Decimal("1.4999999999"), 1),
        (Decimal("1.500000000001"), 2),
        (Decimal("-1.5"), -2),  # away from zero
        (Decimal("-1.4"), -1),
        (Decimal("-0.4"), 0),
        (Decimal("5000.0"), 5000),
        (Decimal("0.000000000001"), 0),
        (Decimal(0), 0),
        (7, 7),
    ],
)
def test_round_to_minor_unit_rounds_half_up(amount, rounded):
    result = round_to_minor_unit(amount)
    assert result == rounded
    assert type(result) is int


def test_round_to_minor_unit_refuses_floats():
    with pytest.raises(TypeError, match="float"):
        round_to_minor_unit(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_round_to_minor_unit_refuses_non_finite_amounts(amount):
    with pytest.raises(ValueError, match="finite"):
        round_to_minor_unit(amount)


@given(exact_amounts)
def test_rounding_moves_an_amount_by_at_most_half_a_minor_unit(amount):
    assert abs(round_to_minor_unit(amount) - amount) <= Decimal("0.5")


@given(exact_amounts)
def test_rounding_matches_floor_of_amount_plus_a_half_mirrored_for_negatives(amount):
    magnitude = int(abs(amount) + Decimal("0.5"))  # int() truncates: floor for >= 0
    expected = magnitude if amount >= 0 else -magnitude
    assert round_to_minor_unit(amount) == expected


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_exact_halves_round_away_from_zero(whole):
    half = Decimal(whole) + (Decimal("0.5") if whole >= 0 else Decimal("-0.5"))
    away_from_zero = whole + 1 if whole >= 0 else whole - 1
    assert round_to_minor_unit(half) == away_from_zero


@pytest.mark.parametrize(
    ("money", "minor"),
    [
        (Money("200.00", "USD"), Decimal(20000)),
        (Money("0.001", "USD"), Decimal("0.1")),
        (Money("0.015", "USD"), Decimal("1.5")),
        (Money("500", "JPY"), Decimal(500)),
        (Money("1.234", "KWD"), Decimal(1234)),
        (Money("-3.50", "EUR"), Decimal(-350)),
    ],
)
def test_to_minor_units_is_exact(money, minor):
    assert to_minor_units(money) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "money"),
    [
        (20000, "usd", Money("200.00", "USD")),
        (Decimal("0.1"), "USD", Money("0.001", "USD")),
        (500, "JPY", Money("500", "JPY")),
        (1234, "KWD", Money("1.234", "KWD")),
    ],
)
def test_from_minor_units_is_exact(minor, currency, money):
    assert from_minor_units(minor, currency) == money


def test_from_minor_units_keeps_the_currency_scale_for_whole_amounts():
    assert str(from_minor_units(20000, "USD").amount) == "200.00"


def test_to_minor_units_never_shows_an_exponent():
    assert str(to_minor_units(Money(Decimal(200), "USD"))) == "20000"


@given(exact_amounts, st.sampled_from(["USD", "JPY", "KWD", "EUR"]))
def test_minor_unit_conversion_round_trips_exactly(amount, currency):
    assert to_minor_units(from_minor_units(amount, currency)) == amount


def test_conversions_stay_exact_past_the_default_28_digit_precision():
    # A 40-digit exact amount, as a huge meter total times a 12-decimal unit price gives.
    amount = Decimal("1234567890123456789012345678901234567890.5")
    assert to_minor_units(from_minor_units(amount, "USD")) == amount
    assert format_minor_units(amount, "USD") == (
        "12,345,678,901,234,567,890,123,456,789,012,345,678.905 USD"
    )
    assert round_to_minor_unit(amount) == 1234567890123456789012345678901234567891


def test_from_minor_units_refuses_floats():
    with pytest.raises(TypeError, match="float"):
        from_minor_units(0.1, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (20000, "USD", "200.00 USD"),
        (Decimal("0.1"), "USD", "0.001 USD"),
        (Decimal("10000000"), "USD", "100,000.00 USD"),
        (500, "JPY", "500 JPY"),
        (1234567, "jpy", "1,234,567 JPY"),
        (0, "USD", "0.00 USD"),
        (Decimal("0.000000000000"), "USD", "0.00 USD"),
        (4, "usd", "0.04 USD"),
        (Decimal("150.50"), "USD", "1.505 USD"),
        (Decimal("0.000000000001"), "USD", "0.00000000000001 USD"),
        (Decimal("2.5"), "JPY", "2.5 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (-350, "EUR", "-3.50 EUR"),
        (Decimal("-0.00"), "USD", "0.00 USD"),
    ],
)
def test_format_minor_units_shows_major_units_with_as_many_decimals_as_needed(
    amount, currency, text
):
    assert format_minor_units(amount, currency) == text


def test_format_minor_units_rejects_unknown_currencies():
    with pytest.raises(UnknownCurrency):
        format_minor_units(100, "ABC")


@pytest.mark.parametrize(
    ("amount", "places"),
    [
        (Decimal("0.1"), 1),
        (Decimal("0.100"), 1),
        (Decimal("100"), 0),
        (Decimal("1E+2"), 0),
        (Decimal("0.000"), 0),
        (Decimal("1.000000000001"), 12),
    ],
)
def test_significant_decimal_places_ignores_trailing_zeros(amount, places):
    assert significant_decimal_places(amount) == places
