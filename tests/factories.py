"""factory_boy factories. Create through services where a business rule applies."""

from __future__ import annotations

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from billing_site import clock
from catalog.models import Price, Product
from catalog.rating import PriceTerms, Tier
from catalog.services import Recurring, price_create
from invoicing.models import Customer
from metering.models import Meter


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"billing{n}@example.com")
    created_at = factory.LazyFunction(clock.now)


class MeterFactory(DjangoModelFactory):
    class Meta:
        model = Meter

    event_name = factory.Sequence(lambda n: f"api_tokens_{n}")
    display_name = factory.Sequence(lambda n: f"API tokens {n}")
    created_at = factory.LazyFunction(clock.now)
    updated_at = factory.LazyFunction(clock.now)


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Product {n}")
    created_at = factory.LazyFunction(clock.now)
    updated_at = factory.LazyFunction(clock.now)


def licensed_price(*, product=None, unit_amount=2000, currency="usd", interval="month") -> Price:
    return price_create(
        product=product or ProductFactory(),
        currency=currency,
        terms=PriceTerms(billing_scheme="per_unit", unit_amount=Decimal(unit_amount)),
        recurring=Recurring(interval=interval),
    )


def hypernian_usage_price(*, product=None, meter=None) -> Price:
    return price_create(
        product=product or ProductFactory(name="Hypernian"),
        currency="usd",
        terms=PriceTerms(
            billing_scheme="tiered",
            tiers_mode="graduated",
            tiers=(
                Tier(up_to=Decimal(100000), unit_amount=Decimal(0), flat_amount=Decimal(0)),
                Tier(up_to=None, unit_amount=Decimal("0.1"), flat_amount=Decimal(0)),
            ),
        ),
        recurring=Recurring(
            interval="month",
            usage_type="metered",
            meter=meter or MeterFactory(event_name="hypernian_api_tokens"),
        ),
    )
