"""product_create_with_prices: a product, its new meters and its prices in one transaction.

The admin's "Create product" page writes through it; so could an API endpoint.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_site.errors import BillingError
from catalog.models import Price, Product
from catalog.rating import PriceTerms
from catalog.services import (
    NewMeter,
    PriceInput,
    PricesRejected,
    Recurring,
    product_create_with_prices,
)
from metering.models import Meter
from tests.factories import MeterFactory, ProductFactory, licensed_price

pytestmark = pytest.mark.django_db

PER_UNIT_20 = PriceTerms(billing_scheme="per_unit", unit_amount=Decimal(2000))
PER_TOKEN = PriceTerms(billing_scheme="per_unit", unit_amount=Decimal("0.1"))


def per_token(*, meter=None, new_meter=None, **options) -> PriceInput:
    """A monthly metered price of 0.001 USD a token."""
    return PriceInput(
        currency="usd",
        terms=PER_TOKEN,
        recurring=Recurring(interval="month", usage_type="metered", meter=meter),
        new_meter=new_meter,
        **options,
    )


def test_creates_the_product_a_new_meter_and_every_price():
    created = product_create_with_prices(
        name="Hypernian",
        description="  API access  ",
        prices=[
            PriceInput(currency="usd", terms=PER_UNIT_20, recurring=Recurring(interval="month")),
            per_token(
                new_meter=NewMeter(event_name="api_tokens", display_name="API tokens"),
                lookup_key="tokens_monthly",
            ),
        ],
    )
    assert created.product_is_new
    assert (created.product.name, created.product.description) == ("Hypernian", "API access")
    meter = Meter.objects.get(event_name="api_tokens")
    assert created.meters == [meter]
    licensed, metered = created.prices
    assert (licensed.meter, licensed.recurring_usage_type) == (None, "licensed")
    assert (metered.meter, metered.lookup_key) == (meter, "tokens_monthly")


def test_adds_prices_to_an_existing_product():
    product = ProductFactory(name="Hypernian")
    created = product_create_with_prices(
        product=product,
        prices=[PriceInput(currency="eur", terms=PER_UNIT_20, recurring=None)],
    )
    assert not created.product_is_new
    assert created.product == product
    assert [price.currency for price in product.prices.all()] == ["EUR"]
    assert Product.objects.count() == 1


def test_every_refused_price_is_reported_at_once_and_nothing_is_written():
    older = licensed_price(product=ProductFactory(name="Older"))
    Price.objects.filter(pk=older.pk).update(lookup_key="pro_monthly")
    inactive = MeterFactory(status=Meter.Status.INACTIVE)
    with pytest.raises(PricesRejected) as refused:
        product_create_with_prices(
            name="Hypernian",
            prices=[
                PriceInput(
                    currency="usd",
                    terms=PER_UNIT_20,
                    recurring=Recurring(interval="month"),
                    lookup_key="pro_monthly",
                ),
                PriceInput(currency="usd", terms=PER_UNIT_20, recurring=None),
                per_token(meter=inactive),
            ],
        )
    errors = refused.value.errors
    assert sorted(errors) == [0, 2]
    assert errors[0].param == "lookup_key"
    assert "already uses the lookup key 'pro_monthly'" in errors[0].message
    assert errors[2].param == "recurring[meter]"
    assert "is inactive" in errors[2].message
    # The first refusal, in the API's bracket notation for a list of prices.
    assert refused.value.param == "prices[0][lookup_key]"
    assert refused.value.message == errors[0].message
    assert not Product.objects.filter(name="Hypernian").exists()
    assert Price.objects.count() == 1  # the older product's


def test_a_refused_new_meter_is_reported_with_its_price_and_not_created():
    MeterFactory(event_name="api_tokens")
    with pytest.raises(PricesRejected) as refused:
        product_create_with_prices(
            name="Hypernian",
            prices=[per_token(new_meter=NewMeter(event_name="api_tokens", display_name="Again"))],
        )
    assert refused.value.errors[0].param == "event_name"
    assert refused.value.param == "prices[0][event_name]"
    assert not Meter.objects.filter(display_name="Again").exists()


def test_a_product_without_a_name_is_refused_before_any_price():
    with pytest.raises(BillingError) as refused:
        product_create_with_prices(
            name="  ",
            prices=[PriceInput(currency="usd", terms=PER_UNIT_20)],
        )
    assert not isinstance(refused.value, PricesRejected)
    assert refused.value.param == "name"
    assert not Product.objects.exists()
    assert not Price.objects.exists()
