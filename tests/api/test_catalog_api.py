"""`/v1/products` and `/v1/prices`: every bad input gets a clear error and changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.models import Price, PriceTier, Product
from tests.factories import MeterFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(db):
    return ProductFactory(name="Hypernian")


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="hypernian_api_tokens")


def _metered(meter, **extra):
    return {"interval": "month", "usage_type": "metered", "meter": meter.public_id, **extra}


GRADUATED = {
    "billing_scheme": "tiered",
    "tiers_mode": "graduated",
    "tiers": [{"up_to": 100000, "unit_amount": 0}, {"up_to": "inf", "unit_amount_decimal": "0.1"}],
}


def test_a_tiered_metered_price_is_stored_exactly(api, product, meter):
    response = api.post(
        "/v1/prices",
        {
            "product": product.public_id,
            "currency": "usd",
            "recurring": _metered(meter),
            **GRADUATED,
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["unit_amount"] is None
    assert body["tiers"][1] == {
        "flat_amount": 0,
        "flat_amount_decimal": "0",
        "unit_amount": None,
        "unit_amount_decimal": "0.1",
        "up_to": None,
    }
    price = Price.objects.get(public_id=body["id"])
    assert price.currency == "USD"
    assert price.meter == meter
    assert [
        (tier.up_to, tier.unit_amount_decimal) for tier in PriceTier.objects.filter(price=price)
    ] == [(100000, Decimal("0")), (None, Decimal("0.1"))]


def test_twelve_decimal_unit_amounts_round_trip(api, product):
    response = api.post(
        "/v1/prices",
        {"product": product.public_id, "currency": "usd", "unit_amount_decimal": "0.000000000001"},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["unit_amount_decimal"] == "0.000000000001"
    assert response.json()["type"] == "one_time"
    assert response.json()["recurring"] is None


def _tiered(tiers, **extra):
    return {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": tiers, **extra}


BAD_PRICES = [
    pytest.param(
        _tiered(
            [
                {"up_to": 100, "unit_amount": 5},
                {"up_to": 50, "unit_amount": 4},
                {"up_to": "inf", "unit_amount": 3},
            ]
        ),
        "tiers[1][up_to]",
        "Tier 2",
        id="tiers-out-of-order",
    ),
    pytest.param(
        _tiered([{"up_to": 100, "unit_amount": 5}, {"up_to": 200, "unit_amount": 4}]),
        "tiers[1][up_to]",
        "inf",
        id="tiers-not-ending-in-inf",
    ),
    pytest.param(
        {"unit_amount": 5, "unit_amount_decimal": "5"},
        "unit_amount_decimal",
        "only one",
        id="both-unit-amounts",
    ),
    pytest.param(
        {"unit_amount_decimal": "0.0000000000001"},
        "unit_amount_decimal",
        "12 decimal places",
        id="more-than-12-decimals",
    ),
    pytest.param({"unit_amount": -5}, "unit_amount", "negative", id="negative-unit-amount"),
    pytest.param(
        _tiered([{"up_to": "inf", "unit_amount": 1, "flat_amount": -100}]),
        "tiers[0][flat_amount]",
        "negative",
        id="negative-flat-amount",
    ),
    pytest.param(
        _tiered(
            [{"up_to": "inf", "unit_amount": 1}],
            transform_quantity={"divide_by": 100, "round": "up"},
        ),
        "transform_quantity",
        "cannot be combined with tiered pricing",
        id="transform-with-tiers",
    ),
    pytest.param(
        {"unit_amount": 4, "transform_quantity": {"divide_by": 0, "round": "up"}},
        "transform_quantity[divide_by]",
        "divide_by",
        id="divide-by-zero",
    ),
    pytest.param(
        {"unit_amount": 4, "transform_quantity": {"divide_by": -100, "round": "up"}},
        "transform_quantity[divide_by]",
        "divide_by",
        id="divide-by-negative",
    ),
    pytest.param(
        {"unit_amount": 4, "recurring": {"interval": "month", "usage_type": "metered"}},
        "recurring[meter]",
        "needs a meter",
        id="metered-without-meter",
    ),
    pytest.param(
        {"unit_amount": 4, "recurring": {"interval": "month", "interval_count": 37}},
        "recurring[interval_count]",
        "three years",
        id="interval-count-past-3-years",
    ),
    pytest.param(
        {"unit_amount": 4, "recurring": {"interval": "day", "interval_count": 1096}},
        "recurring[interval_count]",
        "three years",
        id="daily-interval-count-past-3-years",
    ),
    pytest.param(
        {"unit_amount": 4, "recurring": {"interval": "fortnight"}},
        "recurring[interval]",
        "day, week, month or year",
        id="unknown-interval",
    ),
    pytest.param(
        {"unit_amount": 4, "recurring": {"interval": "month", "cadence": "x"}},
        "recurring[cadence]",
        "unknown parameter",
        id="unknown-nested-parameter",
    ),
    pytest.param({"unit_amount": 4, "colour": "red"}, "colour", "unknown parameter", id="unknown"),
]


@pytest.mark.parametrize(("params", "param", "message"), BAD_PRICES)
def test_bad_prices_are_refused_with_the_offending_param(api, product, params, param, message):
    body = {"product": product.public_id, "currency": "usd", **params}
    response = api.post("/v1/prices", body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message.lower() in error["message"].lower()
    assert not Price.objects.exists()
    assert not PriceTier.objects.exists()


def test_an_unknown_currency_is_refused(api, product):
    response = api.post(
        "/v1/prices", {"product": product.public_id, "currency": "xyz", "unit_amount": 4}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "currency"
    assert "ISO 4217" in response.json()["error"]["message"]
    assert not Price.objects.exists()


def test_a_metered_price_on_an_inactive_meter_is_refused(api, product, meter):
    api.post(f"/v1/billing/meters/{meter.public_id}/deactivate")
    response = api.post(
        "/v1/prices",
        {
            "product": product.public_id,
            "currency": "usd",
            "unit_amount": 1,
            "recurring": _metered(meter),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "recurring[meter]"
    assert "inactive" in response.json()["error"]["message"]
    assert not Price.objects.exists()


def test_a_licensed_price_with_a_meter_is_refused(api, product, meter):
    response = api.post(
        "/v1/prices",
        {
            "product": product.public_id,
            "currency": "usd",
            "unit_amount": 1,
            "recurring": {"interval": "month", "usage_type": "licensed", "meter": meter.public_id},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "recurring[meter]"
    assert "Only metered prices" in response.json()["error"]["message"]
    assert not Price.objects.exists()


def test_product_data_is_rolled_back_when_the_price_is_invalid(api):
    response = api.post(
        "/v1/prices", {"currency": "usd", "unit_amount": -1, "product_data": {"name": "Ghost"}}
    )
    assert response.status_code == 400
    assert not Product.objects.exists()


def _create(api, product, **params):
    response = api.post(
        "/v1/prices",
        {"product": product.public_id, "currency": "usd", "unit_amount": 100, **params},
    )
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.mark.parametrize(
    "change",
    [
        {"unit_amount": 200},
        {"unit_amount_decimal": "2"},
        {"currency": "eur"},
        {"tiers": [{"up_to": "inf", "unit_amount": 1}]},
        {"transform_quantity": {"divide_by": 2, "round": "up"}},
    ],
)
def test_a_price_s_amounts_are_immutable(api, product, change):
    price = _create(api, product)
    response = api.post(f"/v1/prices/{price['id']}", change)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_immutable"
    assert "Archive this price" in response.json()["error"]["message"]
    stored = Price.objects.get(public_id=price["id"])
    assert (stored.unit_amount_decimal, stored.currency) == (Decimal(100), "USD")


def test_archiving_a_price_and_filtering_lists(api, product, meter):
    licensed = _create(api, product, recurring={"interval": "month"})
    one_time = _create(api, product)
    metered = _create(api, product, recurring=_metered(meter))
    other = _create(api, ProductFactory())

    archived = api.post(f"/v1/prices/{one_time['id']}", {"active": False}).json()
    assert archived["active"] is False

    def ids(params):
        return {price["id"] for price in api.get("/v1/prices", params).json()["data"]}

    assert ids({"product": product.public_id}) == {licensed["id"], one_time["id"], metered["id"]}
    assert ids({"product": product.public_id, "active": True}) == {licensed["id"], metered["id"]}
    assert ids({"type": "one_time"}) == {one_time["id"], other["id"]}
    assert ids({"recurring": {"usage_type": "metered"}}) == {metered["id"]}
    response = api.get("/v1/prices", {"type": "sometimes"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "type"


def test_lookup_keys_are_unique_unless_transferred(api, product):
    first = _create(api, product, lookup_key="pro_monthly")
    response = api.post(
        "/v1/prices",
        {
            "product": product.public_id,
            "currency": "usd",
            "unit_amount": 1,
            "lookup_key": "pro_monthly",
        },
    )
    assert response.status_code == 400
    assert first["id"] in response.json()["error"]["message"]

    second = _create(api, product, lookup_key="pro_monthly", transfer_lookup_key=True)
    assert second["lookup_key"] == "pro_monthly"
    assert Price.objects.get(public_id=first["id"]).lookup_key is None
    found = api.get("/v1/prices", {"lookup_keys": ["pro_monthly"]}).json()["data"]
    assert [price["id"] for price in found] == [second["id"]]


def test_expand_product_inlines_the_product(api, product):
    price = _create(api, product)
    body = api.get(f"/v1/prices/{price['id']}", {"expand": ["product"]}).json()
    assert body["product"]["id"] == product.public_id
    assert body["product"]["object"] == "product"
    response = api.get(f"/v1/prices/{price['id']}", {"expand": ["meter"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expand"


def test_products_crud_and_delete_rules(api):
    created = api.post("/v1/products", {"name": "Alpaca AI", "metadata": {"tier": "ai"}}).json()
    assert created["active"] is True
    updated = api.post(f"/v1/products/{created['id']}", {"active": False, "name": "Alpaca"}).json()
    assert (updated["name"], updated["active"]) == ("Alpaca", False)
    assert api.get("/v1/products", {"active": False}).json()["data"][0]["id"] == created["id"]
    assert api.get("/v1/products", {"active": True}).json()["data"] == []

    product = Product.objects.get(public_id=created["id"])
    price = _create(api, product)
    response = api.post(f"/v1/products/{created['id']}", {"default_price": price["id"]})
    assert response.json()["default_price"] == price["id"]

    response = api.delete(f"/v1/products/{created['id']}")
    assert response.status_code == 400
    assert "Archive it instead" in response.json()["error"]["message"]
    assert Product.objects.filter(pk=product.pk).exists()

    empty = api.post("/v1/products", {"name": "Empty"}).json()
    assert api.delete(f"/v1/products/{empty['id']}").json() == {
        "id": empty["id"],
        "object": "product",
        "deleted": True,
    }
    assert not Product.objects.filter(public_id=empty["id"]).exists()


def test_a_product_needs_a_name(api):
    response = api.post("/v1/products", {"description": "nameless"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "message": "Missing required param: name.",
        "param": "name",
    }
    assert not Product.objects.exists()


def test_default_price_must_belong_to_the_product(api, product):
    foreign = _create(api, ProductFactory())
    response = api.post(f"/v1/products/{product.public_id}", {"default_price": foreign["id"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "default_price"
    product.refresh_from_db()
    assert product.default_price is None
