"""Building price terms from raw API/admin input, and the errors people get when it's wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.rating import PriceTerms, Tier, TransformQuantity, rate
from catalog.terms import InvalidPriceTerms, build_price_terms

D = Decimal

HYPERNIAN_TIERS = [
    {"up_to": "100000", "unit_amount": "0"},
    {"up_to": "inf", "unit_amount_decimal": "0.1"},
]


def tiered(tiers, mode="graduated"):
    return {"billing_scheme": "tiered", "tiers_mode": mode, "tiers": tiers}


# --- Accepted input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "terms"),
    [
        ({"unit_amount": 2000}, PriceTerms("per_unit", unit_amount=D(2000))),
        ({"unit_amount": "2000"}, PriceTerms("per_unit", unit_amount=D(2000))),
        ({"unit_amount": D(2000)}, PriceTerms("per_unit", unit_amount=D(2000))),
        ({"unit_amount": 0}, PriceTerms("per_unit", unit_amount=D(0))),
        (
            {"billing_scheme": "per_unit", "unit_amount_decimal": "0.1"},
            PriceTerms("per_unit", unit_amount=D("0.1")),
        ),
        ({"unit_amount_decimal": D("0.25")}, PriceTerms("per_unit", unit_amount=D("0.25"))),
        ({"unit_amount_decimal": 3}, PriceTerms("per_unit", unit_amount=D(3))),
        (
            {"unit_amount_decimal": "0.000000000001"},
            PriceTerms("per_unit", unit_amount=D("0.000000000001")),
        ),
        (
            {"unit_amount_decimal": "999999999999.999999999999"},
            PriceTerms("per_unit", unit_amount=D("999999999999.999999999999")),
        ),
        (
            {"unit_amount": "4", "transform_quantity": {"divide_by": "100", "round": "up"}},
            PriceTerms(
                "per_unit",
                unit_amount=D(4),
                transform_quantity=TransformQuantity(divide_by=100, round="up"),
            ),
        ),
        (
            {"unit_amount": 4, "transform_quantity": {"divide_by": 60, "round": "down"}},
            PriceTerms(
                "per_unit",
                unit_amount=D(4),
                transform_quantity=TransformQuantity(divide_by=60, round="down"),
            ),
        ),
        (
            tiered(HYPERNIAN_TIERS),
            PriceTerms(
                "tiered",
                tiers_mode="graduated",
                tiers=(
                    Tier(up_to=D(100000), unit_amount=D(0)),
                    Tier(up_to=None, unit_amount=D("0.1")),
                ),
            ),
        ),
        (
            tiered(
                [
                    {"up_to": 5, "unit_amount": 700, "flat_amount": "100"},
                    {"up_to": "10", "unit_amount": 650, "flat_amount_decimal": "0.5"},
                    {"up_to": "inf", "flat_amount": 0},
                ],
                mode="volume",
            ),
            PriceTerms(
                "tiered",
                tiers_mode="volume",
                tiers=(
                    Tier(up_to=D(5), unit_amount=D(700), flat_amount=D(100)),
                    Tier(up_to=D(10), unit_amount=D(650), flat_amount=D("0.5")),
                    Tier(up_to=None),
                ),
            ),
        ),
        (
            tiered([{"up_to": "inf", "flat_amount": 5000}]),
            PriceTerms("tiered", tiers_mode="graduated", tiers=(Tier(None, flat_amount=D(5000)),)),
        ),
    ],
)
def test_valid_input_builds_the_expected_terms(kwargs, terms):
    assert build_price_terms(**kwargs) == terms


def test_billing_scheme_defaults_to_per_unit():
    assert build_price_terms(unit_amount=1).billing_scheme == "per_unit"


def test_built_hypernian_terms_rate_like_the_product_page_says():
    terms = build_price_terms(**tiered(HYPERNIAN_TIERS))
    assert rate(terms, 150000).amount == D(5000)


def test_per_unit_accepts_an_empty_tier_list_from_a_form_with_no_tier_rows():
    assert build_price_terms(unit_amount=1, tiers=[]) == PriceTerms("per_unit", unit_amount=D(1))


def test_trailing_zeros_past_twelve_places_are_dropped_not_rejected():
    terms = build_price_terms(unit_amount_decimal="0.10000000000000000")
    assert terms.unit_amount == D("0.1")
    assert terms.unit_amount.as_tuple().exponent >= -12


def test_whole_amounts_written_with_a_zero_fraction_are_accepted():
    assert build_price_terms(unit_amount=D("15.00")).unit_amount == D(15)


# --- Rejected input: every rule names its parameter ------------------------------------

REJECTED = [
    # billing_scheme
    ({"billing_scheme": "flat", "unit_amount": 1}, "billing_scheme", "'per_unit' or 'tiered'"),
    ({"billing_scheme": "", "unit_amount": 1}, "billing_scheme", "got ''"),
    # per_unit needs exactly one unit amount
    ({}, "unit_amount", "needs unit_amount"),
    ({"billing_scheme": "per_unit"}, "unit_amount", "or unit_amount_decimal"),
    (
        {"unit_amount": 1, "unit_amount_decimal": "1"},
        "unit_amount_decimal",
        "only one of unit_amount or unit_amount_decimal",
    ),
    # per_unit takes no tiers
    ({"unit_amount": 1, "tiers": HYPERNIAN_TIERS}, "tiers", "only apply to tiered prices"),
    ({"unit_amount": 1, "tiers_mode": "volume"}, "tiers_mode", "only applies to tiered prices"),
    # whole amounts
    ({"unit_amount": "1.5"}, "unit_amount", "use unit_amount_decimal"),
    ({"unit_amount": D("1.5")}, "unit_amount", "whole number of minor units"),
    ({"unit_amount": -1}, "unit_amount", "must not be negative"),
    ({"unit_amount": "-100"}, "unit_amount", "must not be negative, got '-100'"),
    ({"unit_amount": "abc"}, "unit_amount", "got 'abc'"),
    ({"unit_amount": "1e3"}, "unit_amount", "got '1e3'"),
    ({"unit_amount": " 5"}, "unit_amount", "got ' 5'"),
    ({"unit_amount": 1.0}, "unit_amount", "not a floating-point number"),
    ({"unit_amount": True}, "unit_amount", "got True"),
    ({"unit_amount": [1]}, "unit_amount", "whole number"),
    ({"unit_amount": 10**12}, "unit_amount", "at most 12 digits before the decimal point"),
    # decimal amounts
    ({"unit_amount_decimal": "NaN"}, "unit_amount_decimal", "got 'NaN'"),
    ({"unit_amount_decimal": "Infinity"}, "unit_amount_decimal", "got 'Infinity'"),
    ({"unit_amount_decimal": D("NaN")}, "unit_amount_decimal", "got NaN"),
    ({"unit_amount_decimal": D("-Infinity")}, "unit_amount_decimal", "got -Infinity"),
    ({"unit_amount_decimal": "1_000"}, "unit_amount_decimal", "got '1_000'"),
    ({"unit_amount_decimal": "twelve"}, "unit_amount_decimal", "such as '0.1'"),
    ({"unit_amount_decimal": ""}, "unit_amount_decimal", "got ''"),
    ({"unit_amount_decimal": "-0.5"}, "unit_amount_decimal", "must not be negative"),
    ({"unit_amount_decimal": 0.1}, "unit_amount_decimal", "not a floating-point number"),
    (
        {"unit_amount_decimal": "0.0000000000001"},
        "unit_amount_decimal",
        "at most 12 decimal places, got '0.0000000000001'",
    ),
    (
        {"unit_amount_decimal": "1000000000000"},
        "unit_amount_decimal",
        "at most 12 digits before the decimal point",
    ),
    # tiered: top-level amounts and packages don't apply
    (
        {**tiered(HYPERNIAN_TIERS), "unit_amount": 1},
        "unit_amount",
        "set the unit amount on each tier",
    ),
    (
        {**tiered(HYPERNIAN_TIERS), "unit_amount_decimal": "1"},
        "unit_amount_decimal",
        "cannot be used with billing_scheme 'tiered'",
    ),
    (
        {**tiered(HYPERNIAN_TIERS), "transform_quantity": {"divide_by": 2, "round": "up"}},
        "transform_quantity",
        "cannot be combined with tiered pricing",
    ),
    # tiers_mode
    ({"billing_scheme": "tiered", "tiers": HYPERNIAN_TIERS}, "tiers_mode", "is required"),
    (tiered(HYPERNIAN_TIERS, mode="stairs"), "tiers_mode", "got 'stairs'"),
    # at least one tier
    (tiered(None), "tiers", "at least one tier"),
    (tiered([]), "tiers", "at least one tier"),
    (tiered("100000"), "tiers", "must be a list"),
    (tiered(["inf"]), "tiers[0]", "Tier 1 must be an object"),
    # up_to
    (
        tiered([{"unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: up_to is required",
    ),
    (
        tiered([{"up_to": 0, "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: up_to must be greater than 0",
    ),
    (
        tiered([{"up_to": "-5", "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: up_to must be greater than 0, got '-5'",
    ),
    (
        tiered([{"up_to": "10.5", "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: up_to must be a whole number, got '10.5'",
    ),
    (
        tiered([{"up_to": "lots", "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "or 'inf' for the last tier, got 'lots'",
    ),
    (
        tiered([{"up_to": 2**63, "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "too large",
    ),
    (
        tiered(
            [
                {"up_to": "100000", "unit_amount": 1},
                {"up_to": "50000", "unit_amount": 1},
                {"up_to": "inf", "unit_amount": 1},
            ]
        ),
        "tiers[1][up_to]",
        "Tier 2: up_to must be greater than tier 1's up_to (100000), got 50000",
    ),
    (
        tiered(
            [
                {"up_to": 10, "unit_amount": 1},
                {"up_to": 10, "unit_amount": 1},
                {"up_to": "inf", "unit_amount": 1},
            ]
        ),
        "tiers[1][up_to]",
        "Tier 2: up_to must be greater than tier 1's up_to (10)",
    ),
    (
        tiered([{"up_to": "inf", "unit_amount": 1}, {"up_to": "inf", "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: only the last tier can have up_to 'inf'",
    ),
    (
        tiered([{"up_to": 10, "unit_amount": 1}, {"up_to": 20, "unit_amount": 1}]),
        "tiers[1][up_to]",
        "Tier 2: the last tier must have up_to 'inf'",
    ),
    (
        tiered([{"up_to": 10, "unit_amount": 1}]),
        "tiers[0][up_to]",
        "Tier 1: the last tier must have up_to 'inf'",
    ),
    # tier fields and amounts
    (
        tiered([{"up_to": "inf", "unit_amount": 1, "unit_price": 2}]),
        "tiers[0][unit_price]",
        "Tier 1: unknown field 'unit_price'",
    ),
    (
        tiered([{"up_to": 5, "unit_amount": 1}, {"up_to": "inf"}]),
        "tiers[1]",
        "Tier 2: give unit_amount, unit_amount_decimal, flat_amount or flat_amount_decimal",
    ),
    (
        tiered([{"up_to": "inf", "unit_amount": 1, "unit_amount_decimal": "1"}]),
        "tiers[0][unit_amount_decimal]",
        "Tier 1: give only one of unit_amount or unit_amount_decimal",
    ),
    (
        tiered([{"up_to": "inf", "flat_amount": 1, "flat_amount_decimal": "1"}]),
        "tiers[0][flat_amount_decimal]",
        "Tier 1: give only one of flat_amount or flat_amount_decimal",
    ),
    (
        tiered([{"up_to": "inf", "unit_amount_decimal": "abc"}]),
        "tiers[0][unit_amount_decimal]",
        "Tier 1: unit_amount_decimal must be a non-negative decimal number",
    ),
    (
        tiered([{"up_to": 5, "unit_amount": 1}, {"up_to": "inf", "unit_amount": "0.5"}]),
        "tiers[1][unit_amount]",
        "Tier 2: unit_amount must be a whole number of minor units, got '0.5'; "
        "use unit_amount_decimal",
    ),
    (
        tiered([{"up_to": "inf", "flat_amount": "2.5"}]),
        "tiers[0][flat_amount]",
        "use flat_amount_decimal",
    ),
    (
        tiered([{"up_to": "inf", "flat_amount": -1}]),
        "tiers[0][flat_amount]",
        "Tier 1: flat_amount must not be negative",
    ),
    (
        tiered([{"up_to": "inf", "flat_amount_decimal": "0.0000000000001"}]),
        "tiers[0][flat_amount_decimal]",
        "at most 12 decimal places",
    ),
    # transform_quantity
    (
        {"unit_amount": 4, "transform_quantity": {"round": "up"}},
        "transform_quantity[divide_by]",
        "is required",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": 0, "round": "up"}},
        "transform_quantity[divide_by]",
        "must be greater than 0",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": "-100", "round": "up"}},
        "transform_quantity[divide_by]",
        "must be greater than 0",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": "2.5", "round": "up"}},
        "transform_quantity[divide_by]",
        "must be a whole number, got '2.5'",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": "many", "round": "up"}},
        "transform_quantity[divide_by]",
        "got 'many'",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": 100}},
        "transform_quantity[round]",
        "'up' (charge a partial package in full) or 'down'",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": 100, "round": "nearest"}},
        "transform_quantity[round]",
        "got 'nearest'",
    ),
    (
        {"unit_amount": 4, "transform_quantity": {"divide_by": 100, "round": "up", "by": 2}},
        "transform_quantity[by]",
        "no field 'by'",
    ),
    (
        {"unit_amount": 4, "transform_quantity": "100"},
        "transform_quantity",
        "an object with divide_by and round",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    REJECTED,
    ids=[f"{param}:{message[:40]}" for _, param, message in REJECTED],
)
def test_invalid_price_terms_are_rejected_with_the_stripe_param_and_an_actionable_message(
    kwargs, param, message
):
    with pytest.raises(InvalidPriceTerms) as excinfo:
        build_price_terms(**kwargs)
    assert excinfo.value.param == param
    assert message in excinfo.value.message
    assert str(excinfo.value) == excinfo.value.message


def test_invalid_price_terms_is_a_value_error():
    assert issubclass(InvalidPriceTerms, ValueError)


def test_a_huge_rejected_value_is_quoted_only_in_part():
    with pytest.raises(InvalidPriceTerms) as excinfo:
        build_price_terms(unit_amount_decimal="x" * 10_000)
    assert len(excinfo.value.message) < 200


# --- Properties --------------------------------------------------------------------------


@given(
    st.decimals(
        min_value=0,
        max_value=D("999999999999.999999999999"),
        places=12,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_amount_with_at_most_twelve_decimals_is_accepted_unchanged(amount):
    assert build_price_terms(unit_amount_decimal=str(amount)).unit_amount == amount


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=6, unique=True))
def test_tiers_are_accepted_exactly_when_up_to_strictly_increases(bounds):
    tiers = [{"up_to": bound, "unit_amount": 1} for bound in bounds]
    tiers.append({"up_to": "inf", "unit_amount": 1})
    if bounds == sorted(bounds):
        terms = build_price_terms(**tiered(tiers))
        assert [tier.up_to for tier in terms.tiers] == [*map(D, bounds), None]
    else:
        with pytest.raises(InvalidPriceTerms, match="must be greater than tier"):
            build_price_terms(**tiered(tiers))
