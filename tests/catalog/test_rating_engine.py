"""The rating engine: per unit, package, volume and graduated pricing, in exact minor units."""

from __future__ import annotations

from decimal import Decimal, localcontext
from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.rating import PriceTerms, Rating, Tier, TierCharge, TransformQuantity, rate

D = Decimal

# Stripe's published tier example: 1-5 at 7.00 USD, 6-10 at 6.50, 11 and up at 6.00.
STRIPE_TIERS = (
    Tier(up_to=D(5), unit_amount=D(700)),
    Tier(up_to=D(10), unit_amount=D(650)),
    Tier(up_to=None, unit_amount=D(600)),
)
STRIPE_VOLUME = PriceTerms(billing_scheme="tiered", tiers_mode="volume", tiers=STRIPE_TIERS)
STRIPE_GRADUATED = PriceTerms(billing_scheme="tiered", tiers_mode="graduated", tiers=STRIPE_TIERS)
# Hypernian: the first 100,000 tokens are free, then 0.001 USD (0.1 cents) per token.
HYPERNIAN = PriceTerms(
    billing_scheme="tiered",
    tiers_mode="graduated",
    tiers=(Tier(up_to=D(100000), unit_amount=D(0)), Tier(up_to=None, unit_amount=D("0.1"))),
)
# Alpaca AI: 0.04 USD per started package of 100 tokens.
ALPACA = PriceTerms(
    billing_scheme="per_unit",
    unit_amount=D(4),
    transform_quantity=TransformQuantity(divide_by=100, round="up"),
)


def per_unit(unit_amount: Decimal) -> PriceTerms:
    return PriceTerms(billing_scheme="per_unit", unit_amount=unit_amount)


def package(unit_amount: Decimal, divide_by: int, rounding: str) -> PriceTerms:
    return PriceTerms(
        billing_scheme="per_unit",
        unit_amount=unit_amount,
        transform_quantity=TransformQuantity(divide_by=divide_by, round=rounding),
    )


# --- Table tests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit_amount", "quantity", "amount"),
    [
        (D(20000), 1, D(20000)),
        (D(20000), 3, D(60000)),
        (D("0.1"), 150000, D(15000)),
        (D(4), D("2.5"), D(10)),  # meter sums may be fractional
        (D("0.000000000001"), 1, D("0.000000000001")),
        (D(20000), 0, D(0)),
        (D(0), 1000, D(0)),
    ],
)
def test_per_unit_charges_quantity_times_unit_amount(unit_amount, quantity, amount):
    rating = rate(per_unit(unit_amount), quantity)
    assert rating.amount == amount
    assert rating.billable_quantity == quantity
    assert rating.breakdown == (
        TierCharge(
            tier=None,
            units=D(quantity),
            unit_amount=unit_amount,
            flat_amount=D(0),
            subtotal=amount,
        ),
    )


@pytest.mark.parametrize(
    ("terms", "quantity", "packages", "amount"),
    [
        # Stripe docs: 150 minutes billed per started hour is 3 hours.
        (package(D(1000), 60, "up"), 150, 3, D(3000)),
        (package(D(1000), 60, "down"), 150, 2, D(2000)),
        (ALPACA, 150, 2, D(8)),
        (ALPACA, 100, 1, D(4)),
        (ALPACA, 101, 2, D(8)),
        (ALPACA, 1, 1, D(4)),
        (ALPACA, 0, 0, D(0)),
        (ALPACA, D("100.5"), 2, D(8)),
        (package(D(4), 100, "down"), 199, 1, D(4)),
        (package(D(4), 100, "down"), 99, 0, D(0)),
        (package(D(4), 100, "down"), 200, 2, D(8)),
        (package(D("0.5"), 1, "up"), D("2.25"), 3, D("1.5")),
    ],
)
def test_package_pricing_bills_whole_packages_rounded_as_configured(
    terms, quantity, packages, amount
):
    rating = rate(terms, quantity)
    assert rating.quantity == quantity
    assert rating.billable_quantity == packages
    assert rating.amount == amount
    assert [(row.tier, row.units) for row in rating.breakdown] == [(None, packages)]


@pytest.mark.parametrize(
    ("quantity", "tier", "amount"),
    [
        (1, 1, D(700)),
        (5, 1, D(3500)),
        (6, 2, D(3900)),  # Stripe's example: 6 units = 39.00 USD
        (10, 2, D(6500)),
        (11, 3, D(6600)),
        (D("5.5"), 2, D(3575)),
        (1000, 3, D(600000)),
    ],
)
def test_volume_tiers_price_every_unit_at_the_rate_of_the_tier_the_total_falls_in(
    quantity, tier, amount
):
    rating = rate(STRIPE_VOLUME, quantity)
    assert rating.amount == amount
    [row] = rating.breakdown
    assert (row.tier, row.units, row.subtotal) == (tier, D(quantity), amount)


@pytest.mark.parametrize(
    ("quantity", "amount", "bands"),
    [
        (1, D(700), [(1, 1, 700)]),
        (5, D(3500), [(1, 5, 3500)]),
        (6, D(4150), [(1, 5, 3500), (2, 1, 650)]),  # Stripe: 5 * 7.00 + 1 * 6.50
        (10, D(6750), [(1, 5, 3500), (2, 5, 3250)]),
        (11, D(7350), [(1, 5, 3500), (2, 5, 3250), (3, 1, 600)]),
        (D("5.5"), D(3825), [(1, 5, 3500), (2, D("0.5"), 325)]),
    ],
)
def test_graduated_tiers_charge_each_band_at_its_own_rate(quantity, amount, bands):
    rating = rate(STRIPE_GRADUATED, quantity)
    assert rating.amount == amount
    assert [(row.tier, row.units, row.subtotal) for row in rating.breakdown] == [
        (tier, D(units), D(subtotal)) for tier, units, subtotal in bands
    ]


@pytest.mark.parametrize(
    ("tokens", "cents"),
    [
        (150000, D(5000)),  # 50.00 USD
        (90000, D(0)),
        (100000, D(0)),
        (100001, D("0.1")),
        (0, D(0)),
    ],
)
def test_hypernian_graduated_price_bills_only_tokens_past_the_free_allowance(tokens, cents):
    assert rate(HYPERNIAN, tokens).amount == cents


def test_graduated_quantity_on_a_tier_bound_stays_in_that_tier():
    rating = rate(HYPERNIAN, 100000)
    assert [row.tier for row in rating.breakdown] == [1]


def test_graduated_flat_amount_is_charged_once_the_quantity_reaches_into_its_band():
    terms = PriceTerms(
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=(
            Tier(up_to=D(10), flat_amount=D(500)),
            Tier(up_to=None, unit_amount=D(100), flat_amount=D(2000)),
        ),
    )
    assert rate(terms, 10).amount == D(500)
    assert rate(terms, 11).amount == D(500) + D(2000) + D(100)
    assert rate(terms, D("10.5")).amount == D(500) + D(2000) + D(50)


def test_volume_flat_amount_comes_from_the_chosen_tier_only():
    terms = PriceTerms(
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=(
            Tier(up_to=D(10), unit_amount=D(100), flat_amount=D(500)),
            Tier(up_to=None, unit_amount=D(80), flat_amount=D(2000)),
        ),
    )
    assert rate(terms, 10).amount == D(1500)
    assert rate(terms, 11).amount == D(11 * 80 + 2000)


@pytest.mark.parametrize("mode", ["graduated", "volume"])
def test_zero_quantity_falls_in_the_first_tier_and_pays_its_flat_amount(mode):
    terms = PriceTerms(
        billing_scheme="tiered",
        tiers_mode=mode,
        tiers=(
            Tier(up_to=D(100), unit_amount=D(5), flat_amount=D(1000)),
            Tier(up_to=None, unit_amount=D(1), flat_amount=D(99)),
        ),
    )
    rating = rate(terms, 0)
    assert rating.amount == D(1000)
    assert rating.breakdown == (
        TierCharge(tier=1, units=D(0), unit_amount=D(5), flat_amount=D(1000), subtotal=D(1000)),
    )


@pytest.mark.parametrize("mode", ["graduated", "volume"])
def test_a_single_inf_tier_prices_every_quantity(mode):
    terms = PriceTerms(
        billing_scheme="tiered",
        tiers_mode=mode,
        tiers=(Tier(up_to=None, unit_amount=D(3), flat_amount=D(10)),),
    )
    assert rate(terms, 7).amount == D(31)


def test_volume_total_can_drop_when_the_quantity_crosses_into_a_cheaper_tier():
    # Why the monotonicity property below only holds within a tier.
    terms = PriceTerms(
        billing_scheme="tiered",
        tiers_mode="volume",
        tiers=(Tier(up_to=D(10), unit_amount=D(100)), Tier(up_to=None, unit_amount=D(50))),
    )
    assert rate(terms, 10).amount == D(1000)
    assert rate(terms, 11).amount == D(550)


def test_rating_keeps_the_amount_exact_and_unrounded():
    rating = rate(per_unit(D("0.333333333333")), 7)
    assert rating.amount == D("2.333333333331")


def test_rating_stays_exact_beyond_the_default_28_digit_precision():
    # 15-digit meter total x 24-digit unit amount: 40 significant digits, which the
    # default decimal context would silently round.
    quantity = D("123456789012345.123")
    unit_amount = D("123456789012.123456789012")
    with localcontext(prec=100):
        exact = quantity * unit_amount
        exact_past_first_unit = (quantity - 1) * unit_amount
    assert rate(per_unit(unit_amount), quantity).amount == exact
    graduated = PriceTerms(
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=(Tier(up_to=D(1), unit_amount=D(0)), Tier(up_to=None, unit_amount=unit_amount)),
    )
    assert rate(graduated, quantity).amount == exact_past_first_unit


def test_rating_records_the_quantity_as_a_decimal():
    rating = rate(per_unit(D(1)), 3)
    assert rating == Rating(
        quantity=D(3),
        billable_quantity=D(3),
        amount=D(3),
        breakdown=(TierCharge(None, D(3), D(1), D(0), D(3)),),
    )
    assert isinstance(rating.quantity, Decimal)


@pytest.mark.parametrize("terms", [per_unit(D(1)), ALPACA, STRIPE_VOLUME, STRIPE_GRADUATED])
def test_negative_quantity_is_rejected_because_invoicing_clamps_it_first(terms):
    with pytest.raises(ValueError, match="negative quantity"):
        rate(terms, D("-1"))


@pytest.mark.parametrize("quantity", [1.5, True, "3"])
def test_quantity_must_be_a_decimal_or_int(quantity):
    with pytest.raises(TypeError, match="quantity"):
        rate(per_unit(D(1)), quantity)


@pytest.mark.parametrize("quantity", [D("NaN"), D("Infinity")])
def test_quantity_must_be_finite(quantity):
    with pytest.raises(ValueError, match="finite"):
        rate(per_unit(D(1)), quantity)


# --- PriceTerms guards terms built outside build_price_terms (e.g. from DB rows) ---------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"billing_scheme": "flat"}, "billing_scheme"),
        ({"billing_scheme": "per_unit"}, "needs a unit_amount"),
        ({"billing_scheme": "per_unit", "unit_amount": D(-1)}, "negative"),
        (
            {"billing_scheme": "per_unit", "unit_amount": D(1), "tiers_mode": "volume"},
            "cannot have tiers",
        ),
        ({"billing_scheme": "tiered", "tiers_mode": "volume"}, "at least one tier"),
        (
            {"billing_scheme": "tiered", "tiers_mode": "stairs", "tiers": STRIPE_TIERS},
            "tiers_mode",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": (Tier(up_to=D(5), unit_amount=D(1)),),
            },
            "last tier",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": (Tier(up_to=None), Tier(up_to=None)),
            },
            "Only the last tier",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": (Tier(up_to=D(5)), Tier(up_to=D(5)), Tier(up_to=None)),
            },
            "strictly increasing",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": STRIPE_TIERS,
                "transform_quantity": TransformQuantity(divide_by=2, round="up"),
            },
            "transform_quantity",
        ),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": STRIPE_TIERS,
                "unit_amount": D(1),
            },
            "from its tiers",
        ),
    ],
)
def test_price_terms_refuse_structures_the_engine_cannot_rate(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PriceTerms(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"divide_by": 0, "round": "up"}, ValueError, "greater than 0"),
        ({"divide_by": 10, "round": "nearest"}, ValueError, "'up' or 'down'"),
        ({"divide_by": D(10), "round": "up"}, TypeError, "int"),
    ],
)
def test_transform_quantity_refuses_unusable_packages(kwargs, error, message):
    with pytest.raises(error, match=message):
        TransformQuantity(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"up_to": D(0)}, ValueError, "greater than 0"),
        ({"up_to": None, "unit_amount": D(-1)}, ValueError, "negative"),
        ({"up_to": None, "flat_amount": 1.5}, TypeError, "float"),
    ],
)
def test_tier_refuses_impossible_values(kwargs, error, message):
    with pytest.raises(error, match=message):
        Tier(**kwargs)


def test_tier_stores_int_arguments_as_decimals():
    tier = Tier(up_to=5, unit_amount=700, flat_amount=0)  # type: ignore[arg-type]
    assert tier == Tier(up_to=D(5), unit_amount=D(700))
    assert all(isinstance(value, Decimal) for value in (tier.up_to, tier.unit_amount))


# --- Properties --------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(Decimal),
    st.decimals(min_value=0, max_value=10**4, places=12, allow_nan=False, allow_infinity=False),
)
quantities = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(Decimal),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
)
package_sizes = st.integers(min_value=1, max_value=10**4)


@st.composite
def tier_ladders(draw: st.DrawFn) -> tuple[Tier, ...]:
    """Valid tiers: strictly increasing whole up_to values, the last one inf."""
    steps = draw(st.lists(st.integers(min_value=1, max_value=10**5), max_size=5))
    bounds: list[Decimal | None] = [D(bound) for bound in accumulate(steps)]
    bounds.append(None)
    return tuple(
        Tier(up_to=bound, unit_amount=draw(amounts), flat_amount=draw(amounts)) for bound in bounds
    )


@st.composite
def ladders_and_quantities(draw: st.DrawFn) -> tuple[tuple[Tier, ...], Decimal]:
    tiers = draw(tier_ladders())
    bounds = [tier.up_to for tier in tiers if tier.up_to is not None]
    # Bounds are where off-by-one mistakes live, so hit them on purpose too.
    near_bounds = [bound + delta for bound in bounds for delta in (D(0), D(1), D("0.5"))]
    if near_bounds:
        quantity = draw(st.one_of(quantities, st.sampled_from(near_bounds)))
    else:
        quantity = draw(quantities)
    return tiers, quantity


def graduated_by_hand(tiers: tuple[Tier, ...], quantity: Decimal) -> Decimal:
    """Independent statement of graduated pricing: clamp the quantity into every band."""
    total = D(0)
    lower = D(0)
    for number, tier in enumerate(tiers, start=1):
        upper = quantity if tier.up_to is None else tier.up_to
        in_band = max(D(0), min(quantity, upper) - lower)
        if number == 1 or quantity > lower:
            total += in_band * tier.unit_amount + tier.flat_amount
        lower = max(lower, upper)
    return total


def tiers_containing(tiers: tuple[Tier, ...], quantity: Decimal) -> list[int]:
    """1-based numbers of the tiers whose range (lower, up_to] holds the quantity."""
    found = []
    lower = D(-1)  # tier 1 also holds 0
    for number, tier in enumerate(tiers, start=1):
        if lower < quantity and (tier.up_to is None or quantity <= tier.up_to):
            found.append(number)
        if tier.up_to is not None:
            lower = tier.up_to
    return found


@given(ladders_and_quantities())
def test_graduated_total_is_the_sum_of_its_bands_and_matches_an_independent_computation(
    case,
):
    tiers, quantity = case
    rating = rate(
        PriceTerms(billing_scheme="tiered", tiers_mode="graduated", tiers=tiers), quantity
    )
    assert rating.amount == sum((row.subtotal for row in rating.breakdown), D(0))
    assert rating.amount == graduated_by_hand(tiers, quantity)
    assert sum((row.units for row in rating.breakdown), D(0)) == quantity
    assert [row.tier for row in rating.breakdown] == list(range(1, len(rating.breakdown) + 1))
    for row in rating.breakdown:
        assert row.subtotal == row.units * row.unit_amount + row.flat_amount


@given(quantity=quantities, unit_amount=amounts, divide_by=package_sizes)
def test_package_rounding_up_never_undercharges(quantity, unit_amount, divide_by):
    rating = rate(package(unit_amount, divide_by, "up"), quantity)
    packages = rating.billable_quantity
    assert packages == packages.to_integral_value()
    # amount >= quantity / divide_by * unit_amount, multiplied out to stay exact.
    assert rating.amount * divide_by >= quantity * unit_amount
    # ... and it is the fewest packages that cover the quantity.
    assert packages * divide_by >= quantity > (packages - 1) * divide_by


@given(quantity=quantities, unit_amount=amounts, divide_by=package_sizes)
def test_package_rounding_down_never_overcharges(quantity, unit_amount, divide_by):
    rating = rate(package(unit_amount, divide_by, "down"), quantity)
    packages = rating.billable_quantity
    assert packages == packages.to_integral_value()
    assert rating.amount * divide_by <= quantity * unit_amount
    # ... and it counts every complete package.
    assert packages * divide_by <= quantity < (packages + 1) * divide_by


@given(ladders_and_quantities())
def test_volume_amount_is_the_price_of_exactly_the_tier_containing_the_quantity(case):
    tiers, quantity = case
    rating = rate(PriceTerms(billing_scheme="tiered", tiers_mode="volume", tiers=tiers), quantity)
    [number] = tiers_containing(tiers, quantity)
    chosen = tiers[number - 1]
    assert [row.tier for row in rating.breakdown] == [number]
    assert rating.amount == quantity * chosen.unit_amount + chosen.flat_amount


@given(st.data())
def test_volume_total_never_decreases_as_quantity_grows_within_a_tier(data):
    tiers = data.draw(tier_ladders())
    number = data.draw(st.integers(min_value=1, max_value=len(tiers)))
    lower = D(0) if number == 1 else tiers[number - 2].up_to
    assert lower is not None
    upper = tiers[number - 1].up_to
    upper = lower + 10**6 if upper is None else upper
    # Tier 1 includes 0; later tiers start just above the previous bound.
    smallest = lower if number == 1 else lower + D("0.001")
    in_tier = st.decimals(
        min_value=smallest, max_value=upper, places=3, allow_nan=False, allow_infinity=False
    )
    low, high = sorted([data.draw(in_tier), data.draw(in_tier)])
    terms = PriceTerms(billing_scheme="tiered", tiers_mode="volume", tiers=tiers)
    assert rate(terms, low).breakdown[0].tier == rate(terms, high).breakdown[0].tier == number
    assert rate(terms, low).amount <= rate(terms, high).amount
