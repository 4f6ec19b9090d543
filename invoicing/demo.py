"""The demo data of `manage.py seed_demo`: the product docs' examples, created through services."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

from django.db import transaction

from billing_site import clock
from catalog.models import Price, Product
from catalog.services import Recurring, price_create, product_create
from catalog.terms import build_price_terms
from invoicing.models import Customer
from invoicing.services import customer_create
from metering.ingest import EventInput, meter_events_ingest
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


DEMO_CUSTOMERS = [
    # (name, email, meter event name, typical tokens per event)
    ("Northwind Robotics", "billing@northwind.example", "hypernian_api_tokens", 900),
    ("Acme Research", "ap@acme-research.example", "hypernian_api_tokens", 350),
    ("Bluebird Labs", "finance@bluebird.example", "alpaca_ai_tokens", 1200),
]


def seed_customers() -> list[tuple[Customer, str, int]]:
    seeded = []
    for name, email, event_name, typical in DEMO_CUSTOMERS:
        customer = Customer.objects.live().filter(email=email).first()
        if customer is None:
            customer = customer_create(name=name, email=email, description="Demo customer")
        seeded.append((customer, event_name, typical))
    return seeded


def seed_usage(
    *, events_per_customer: int, days: int = 30, progress: Callable[[int], None] | None = None
) -> int:
    """Token usage spread over the last `days`, busier on weekday afternoons (UTC).

    Identifiers are deterministic, so running the seeder again adds nothing: the exactly-once
    guard refuses the repeats.
    """
    now = clock.now()
    rng = random.Random(20261121)
    stored = 0
    for customer, event_name, typical in seed_customers():
        for start in range(0, events_per_customer, 100):
            batch = []
            for number in range(start, min(start + 100, events_per_customer)):
                moment = now - dt.timedelta(seconds=rng.uniform(0, days * 86400 - 60))
                busy = 1.8 if moment.weekday() < 5 and 12 <= moment.hour < 20 else 0.6
                tokens = max(1, int(rng.gauss(typical, typical / 3) * busy))
                batch.append(
                    EventInput(
                        event_name,
                        {"stripe_customer_id": customer.public_id, "value": str(Decimal(tokens))},
                        f"demo-{customer.public_id}-{number}",
                        moment,
                    )
                )
            stored += len(meter_events_ingest(events=batch, now=now).accepted)
            if progress:
                progress(len(batch))
    return stored
