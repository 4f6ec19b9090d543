"""The demo data of `manage.py seed_demo`: the product docs' examples, created through services."""

from __future__ import annotations

from django.db import transaction

from catalog.models import Price, Product
from catalog.services import Recurring, price_create, product_create
from catalog.terms import build_price_terms
from metering.models import Meter
from metering.services import meter_create


def _meter(event_name: str, display_name: str) -> Meter:
    existing = Meter.objects.filter(event_name=event_name).first()
    return existing or meter_create(event_name=event_name, display_name=display_name)


def _product(name: str, description: str) -> tuple[Product, bool]:
    existing = Product.objects.filter(name=name).first()
    if existing:
        return existing, False
    return product_create(name=name, description=description), True


@transaction.atomic
def seed_catalog() -> list[Price]:
    """Hypernian (flat fee plus token overage) and Alpaca AI (per hundred tokens). Idempotent."""
    created: list[Price] = []

    tokens = _meter("hypernian_api_tokens", "Hypernian API tokens")
    hypernian, is_new = _product(
        "Hypernian", "200 USD a month, 100,000 API tokens included, then 0.001 USD a token."
    )
    if is_new:
        created.append(
            price_create(
                product=hypernian,
                currency="usd",
                terms=build_price_terms(unit_amount=20000),
                recurring=Recurring(interval="month"),
                nickname="Hypernian monthly fee",
                lookup_key="hypernian_monthly_fee",
            )
        )
        created.append(
            price_create(
                product=hypernian,
                currency="usd",
                terms=build_price_terms(
                    billing_scheme="tiered",
                    tiers_mode="graduated",
                    tiers=[
                        {"up_to": 100000, "unit_amount": 0},
                        {"up_to": "inf", "unit_amount_decimal": "0.1"},
                    ],
                ),
                recurring=Recurring(interval="month", usage_type="metered", meter=tokens),
                nickname="Hypernian API tokens",
                lookup_key="hypernian_api_tokens",
            )
        )

    alpaca_tokens = _meter("alpaca_ai_tokens", "Alpaca AI tokens")
    alpaca, is_new = _product(
        "Alpaca AI", "0.04 USD per hundred tokens, billed monthly in arrears."
    )
    if is_new:
        created.append(
            price_create(
                product=alpaca,
                currency="usd",
                terms=build_price_terms(
                    unit_amount=4, transform_quantity={"divide_by": 100, "round": "up"}
                ),
                recurring=Recurring(interval="month", usage_type="metered", meter=alpaca_tokens),
                nickname="Alpaca AI tokens",
                lookup_key="alpaca_ai_tokens",
            )
        )
    return created
