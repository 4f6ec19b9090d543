"""The official `stripe` SDK, pointed at a live test server, sets up the docs' seed catalogs.

The expected field lists are the top-level keys of Stripe's published example objects
(stripe/openapi fixtures), written out here so the suite needs nothing outside the repo.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from catalog.models import Price, PriceTier, Product
from metering.models import Meter

CUSTOMER_FIELDS = {
    "address", "balance", "created", "currency", "customer_account", "default_source",
    "delinquent", "description", "discount", "email", "id", "invoice_prefix", "invoice_settings",
    "livemode", "metadata", "name", "next_invoice_sequence", "object", "phone",
    "preferred_locales", "shipping", "tax_exempt", "test_clock",
}  # fmt: skip
PRODUCT_FIELDS = {
    "active", "created", "default_price", "description", "id", "images", "livemode",
    "marketing_features", "metadata", "name", "object", "package_dimensions", "shippable",
    "statement_descriptor", "tax_code", "type", "unit_label", "updated", "url",
}  # fmt: skip
PRICE_FIELDS = {
    "active", "billing_scheme", "created", "currency", "custom_unit_amount", "id", "livemode",
    "lookup_key", "metadata", "nickname", "object", "product", "recurring", "tax_behavior",
    "tiers_mode", "transform_quantity", "type", "unit_amount", "unit_amount_decimal",
}  # fmt: skip
RECURRING_FIELDS = {"interval", "interval_count", "meter", "trial_period_days", "usage_type"}
METER_FIELDS = {
    "created", "customer_mapping", "default_aggregation", "display_name", "event_name",
    "event_time_window", "id", "livemode", "object", "status", "status_transitions", "updated",
    "value_settings",
}  # fmt: skip


def _keys(obj) -> set[str]:
    return set(obj.to_dict().keys())


def test_sdk_creates_the_hypernian_catalog_with_stripe_shapes(sdk):
    meter = sdk.billing.Meter.create(
        display_name="Hypernian API tokens",
        event_name="hypernian_api_tokens",
        default_aggregation={"formula": "sum"},
        customer_mapping={"event_payload_key": "stripe_customer_id", "type": "by_id"},
        value_settings={"event_payload_key": "value"},
    )
    assert _keys(meter) >= METER_FIELDS
    assert meter.object == "billing.meter"
    assert meter.id.startswith("mtr_")
    assert meter.status == "active"
    assert meter.default_aggregation.formula == "sum"
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"

    product = sdk.Product.create(name="Hypernian", description="AI API")
    assert _keys(product) >= PRODUCT_FIELDS
    assert product.id.startswith("prod_")
    assert isinstance(product.created, int)

    flat = sdk.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=20000,
        recurring={"interval": "month", "usage_type": "licensed"},
        nickname="Monthly fee",
    )
    assert _keys(flat) >= PRICE_FIELDS
    assert set(flat.recurring.to_dict()) >= RECURRING_FIELDS
    # The SDK decodes Stripe's decimal strings into Decimal.
    assert (flat.unit_amount, flat.unit_amount_decimal) == (20000, Decimal("20000"))
    assert flat.recurring.usage_type == "licensed"
    assert flat.recurring.meter is None

    overage = sdk.Price.create(
        product=product.id,
        currency="usd",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            {"up_to": 100000, "unit_amount": 0},
            {"up_to": "inf", "unit_amount_decimal": "0.1"},
        ],
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
    )
    assert _keys(overage) >= PRICE_FIELDS
    assert overage.billing_scheme == "tiered"
    assert overage.tiers_mode == "graduated"
    assert overage.unit_amount is None
    assert overage.recurring.meter == meter.id
    assert [tier.to_dict() for tier in overage.tiers] == [
        {
            "flat_amount": 0,
            "flat_amount_decimal": Decimal("0"),
            "unit_amount": 0,
            "unit_amount_decimal": Decimal("0"),
            "up_to": 100000,
        },
        {
            "flat_amount": 0,
            "flat_amount_decimal": Decimal("0"),
            "unit_amount": None,
            "unit_amount_decimal": Decimal("0.1"),
            "up_to": None,
        },
    ]

    stored = Price.objects.get(public_id=overage.id)
    assert stored.meter.public_id == meter.id
    assert list(PriceTier.objects.filter(price=stored).values_list("up_to", flat=True)) == [
        100000,
        None,
    ]

    listed = sdk.Price.list(product=product.id)
    assert listed.object == "list"
    assert {price.id for price in listed.data} == {flat.id, overage.id}
    assert listed.has_more is False


def test_sdk_creates_the_alpaca_package_price(sdk):
    meter = sdk.billing.Meter.create(
        display_name="Alpaca AI tokens",
        event_name="alpaca_ai_tokens",
        default_aggregation={"formula": "sum"},
    )
    price = sdk.Price.create(
        currency="usd",
        unit_amount=4,
        transform_quantity={"divide_by": 100, "round": "up"},
        recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
        product_data={"name": "Alpaca AI"},
    )
    assert _keys(price) >= PRICE_FIELDS
    assert price.transform_quantity.to_dict() == {"divide_by": 100, "round": "up"}
    assert price.unit_amount == 4
    assert Product.objects.get(public_id=price.product).name == "Alpaca AI"
    # The SDK's defaults are Stripe's: customer id under stripe_customer_id, value under value.
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.value_settings.event_payload_key == "value"


def test_sdk_customers_round_trip(sdk):
    customer = sdk.Customer.create(
        name="Acme", email="billing@acme.test", metadata={"crm_id": "42"}
    )
    assert _keys(customer) >= CUSTOMER_FIELDS
    assert customer.id.startswith("cus_")

    updated = sdk.Customer.modify(customer.id, description="Enterprise", metadata={"crm_id": ""})
    assert updated.description == "Enterprise"
    assert updated.metadata.to_dict() == {}

    assert sdk.Customer.retrieve(customer.id).email == "billing@acme.test"
    deleted = sdk.Customer.delete(customer.id)
    assert deleted.deleted is True
    assert [c.id for c in sdk.Customer.list().data] == []


def test_sdk_meter_lifecycle_and_immutability(sdk):
    meter = sdk.billing.Meter.create(
        display_name="Tokens", event_name="tokens", default_aggregation={"formula": "count"}
    )
    renamed = sdk.billing.Meter.modify(meter.id, display_name="API tokens")
    assert renamed.display_name == "API tokens"

    inactive = sdk.billing.Meter.deactivate(meter.id)
    assert inactive.status == "inactive"
    assert isinstance(inactive.status_transitions.deactivated_at, int)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        sdk.Price.create(
            currency="usd",
            unit_amount=1,
            recurring={"interval": "month", "usage_type": "metered", "meter": meter.id},
            product_data={"name": "Tokens"},
        )
    assert excinfo.value.param == "recurring[meter]"
    assert "inactive" in excinfo.value.user_message
    assert not Product.objects.filter(name="Tokens").exists()

    assert sdk.billing.Meter.reactivate(meter.id).status == "active"
    assert Meter.objects.get(public_id=meter.id).deactivated_at is None


def test_sdk_surfaces_errors_as_stripe_exceptions(sdk):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        sdk.Product.retrieve("prod_missing")
    assert excinfo.value.http_status == 404
    assert excinfo.value.code == "resource_missing"

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        sdk.Product.create(name="X", colour="red")
    assert excinfo.value.param == "colour"
    assert excinfo.value.code == "parameter_unknown"
    assert not Product.objects.exists()

    with pytest.raises(stripe.AuthenticationError):
        sdk.Product.list(api_key="sk_wrong_key_123456")
