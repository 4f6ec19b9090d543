"""Price terms in words, as staff and customers read them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.describe import (
    billing_period_label,
    describe_price_terms,
    describe_price_terms_short,
    price_summary,
)
from catalog.rating import PriceTerms, Tier, TransformQuantity
from tests.factories import ProductFactory, licensed_price

D = Decimal

HYPERNIAN = PriceTerms(
    billing_scheme="tiered",
    tiers_mode="graduated",
    tiers=(Tier(up_to=D(100000), unit_amount=D(0)), Tier(up_to=None, unit_amount=D("0.1"))),
)
STRIPE_TIERS = (
    Tier(up_to=D(5), unit_amount=D(700)),
    Tier(up_to=D(10), unit_amount=D(650)),
    Tier(up_to=None, unit_amount=D(600)),
)


@pytest.mark.parametrize(
    ("terms", "currency", "lines"),
    [
        (PriceTerms("per_unit", unit_amount=D(20000)), "usd", ["200.00 USD per unit"]),
        (PriceTerms("per_unit", unit_amount=D("0.1")), "USD", ["0.001 USD per unit"]),
        (PriceTerms("per_unit", unit_amount=D(500)), "jpy", ["500 JPY per unit"]),
        (
            PriceTerms(
                "per_unit",
                unit_amount=D(4),
                transform_quantity=TransformQuantity(divide_by=100, round="up"),
            ),
            "usd",
            ["0.04 USD per 100 units (rounded up)"],
        ),
        (
            PriceTerms(
                "per_unit",
                unit_amount=D(1000),
                transform_quantity=TransformQuantity(divide_by=1000, round="down"),
            ),
            "usd",
            ["10.00 USD per 1,000 units (rounded down)"],
        ),
        (
            HYPERNIAN,
            "usd",
            [
                "Graduated pricing: each band is charged at its own rate",
                "First 100,000 units: 0.00 USD per unit",
                "100,001 and up: 0.001 USD per unit",
            ],
        ),
        (
            PriceTerms("tiered", tiers_mode="graduated", tiers=STRIPE_TIERS),
            "usd",
            [
                "Graduated pricing: each band is charged at its own rate",
                "First 5 units: 7.00 USD per unit",
                "6 to 10: 6.50 USD per unit",
                "11 and up: 6.00 USD per unit",
            ],
        ),
        (
            PriceTerms("tiered", tiers_mode="volume", tiers=STRIPE_TIERS),
            "usd",
            [
                "Volume pricing: the total quantity sets the price of every unit",
                "Up to 5 units: 7.00 USD per unit",
                "6 to 10: 6.50 USD per unit",
                "11 and up: 6.00 USD per unit",
            ],
        ),
        (
            PriceTerms(
                "tiered",
                tiers_mode="graduated",
                tiers=(
                    Tier(up_to=D(1), flat_amount=D(500)),
                    Tier(up_to=D(200000), unit_amount=D(2), flat_amount=D(500)),
                    Tier(up_to=None, unit_amount=D("0.5")),
                ),
            ),
            "usd",
            [
                "Graduated pricing: each band is charged at its own rate",
                "First 1 unit: 5.00 USD flat",
                "2 to 200,000: 0.02 USD per unit + 5.00 USD flat",
                "200,001 and up: 0.005 USD per unit",
            ],
        ),
        (
            PriceTerms(
                "tiered",
                tiers_mode="volume",
                tiers=(Tier(up_to=None, unit_amount=D(100), flat_amount=D(2500)),),
            ),
            "eur",
            [
                "Volume pricing: the total quantity sets the price of every unit",
                "All units: 1.00 EUR per unit + 25.00 EUR flat",
            ],
        ),
    ],
)
def test_price_terms_are_described_one_line_per_tier(terms, currency, lines):
    assert describe_price_terms(terms, currency) == lines


def test_short_description_joins_the_lines_with_semicolons():
    assert describe_price_terms_short(HYPERNIAN, "usd") == (
        "Graduated pricing: each band is charged at its own rate; "
        "First 100,000 units: 0.00 USD per unit; "
        "100,001 and up: 0.001 USD per unit"
    )


def test_short_description_of_a_per_unit_price_is_its_single_line():
    assert describe_price_terms_short(PriceTerms("per_unit", unit_amount=D(20000)), "usd") == (
        "200.00 USD per unit"
    )


@pytest.mark.parametrize(
    ("interval", "count", "label"),
    [
        ("month", 1, "Monthly"),
        ("year", 1, "Yearly"),
        ("month", 3, "Every 3 months"),
        ("month", None, "Monthly"),
        ("week", 2, "Every 2 weeks"),
        ("month", 2, "Every 2 months"),
        (None, None, "One-off"),
    ],
)
def test_billing_periods_are_named_like_the_stripe_dashboard(interval, count, label):
    assert billing_period_label(interval, count) == label


@pytest.mark.django_db
def test_a_price_on_one_line_has_its_name_id_terms_and_period():
    price = licensed_price(product=ProductFactory(name="Pro seats"), unit_amount=2000)
    assert price_summary(price) == f"Pro seats ({price.public_id}): 20.00 USD per unit, Monthly"
    assert price_summary(price, with_period=False) == (
        f"Pro seats ({price.public_id}): 20.00 USD per unit"
    )
