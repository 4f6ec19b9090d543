"""A product's optional details (a chosen `id`, `unit_label`, `url`, `images`,
`statement_descriptor`, `tax_details`, `default_price_data`), a price's `tax_behavior` and
`currency_options`, and `customer.currency` set by the first subscription or invoice."""

from __future__ import annotations

import pytest

from catalog.models import Price, Product
from invoicing.models import Customer
from tests.factories import licensed_price
from tests.helpers import JAN_1, error_body, ok_body, subscribe


def test_sdk_creates_a_product_with_its_details_and_default_price(stripe_client):
    v1 = stripe_client.v1
    product = v1.products.create(
        {
            "id": "hypernian-pro",
            "name": "Hypernian Pro",
            "unit_label": "seat",
            "url": "https://example.com/pro",
            "images": ["https://example.com/pro.png"],
            "statement_descriptor": "HYPERNIAN PRO",
            "tax_details": {"tax_code": "txcd_10000000"},
            "default_price_data": {
                "currency": "usd",
                "unit_amount": 4900,
                "recurring": {"interval": "month"},
                "tax_behavior": "exclusive",
            },
            "expand": ["default_price"],
        }
    )
    assert product.id == "hypernian-pro"
    assert (product.unit_label, product.url, product.images) == (
        "seat",
        "https://example.com/pro",
        ["https://example.com/pro.png"],
    )
    assert product.statement_descriptor == "HYPERNIAN PRO"
    assert (product.tax_details.tax_code, product.tax_code) == ("txcd_10000000", "txcd_10000000")
    price = product.default_price
    assert (price.unit_amount, price.recurring.interval, price.tax_behavior) == (
        4900,
        "month",
        "exclusive",
    )
    assert price.product == "hypernian-pro"
    again = v1.products.retrieve("hypernian-pro")
    assert (again.default_price, again.unit_label) == (price.id, "seat")
    cleared = v1.products.update("hypernian-pro", {"unit_label": "", "images": ""})
    assert (cleared.unit_label, cleared.images) == (None, [])


def test_a_chosen_product_id_is_checked_and_unique(api):
    ok_body(api.post("/v1/products", {"id": "plan_basic", "name": "Basic"}))
    error = error_body(api.post("/v1/products", {"id": "plan_basic", "name": "Other"}))
    assert (error["param"], error["code"]) == ("id", "resource_already_exists")
    assert "plan_basic" in error["message"]
    for bad in ("has space", "search", "x" * 65, "naïve"):
        assert error_body(api.post("/v1/products", {"id": bad, "name": "X"}))["param"] == "id"
    assert Product.objects.count() == 1


def test_bad_product_details_are_refused_naming_the_parameter(api):
    cases = [
        ({"url": "ftp://example.com"}, "url"),
        ({"images": ["not a url"]}, "images[0]"),
        ({"images": [f"https://e.com/{i}.png" for i in range(9)]}, "images"),
        ({"statement_descriptor": "ABC"}, "statement_descriptor"),
        ({"statement_descriptor": "Hypernian <pro>"}, "statement_descriptor"),
        ({"unit_label": "a very long label"}, "unit_label"),
        ({"tax_details": {"tax_code": "x", "color": "red"}}, "tax_details[color]"),
        ({"default_price_data": {"unit_amount": 5}}, "default_price_data[currency]"),
        (
            {"default_price_data": {"currency": "usd", "unit_amount": -5}},
            "default_price_data[unit_amount]",
        ),
        (
            {
                "default_price_data": {
                    "currency": "usd",
                    "unit_amount": 5,
                    "recurring": {"interval": "fortnight"},
                }
            },
            "default_price_data[recurring][interval]",
        ),
        (
            {"default_price_data": {"currency": "usd", "unit_amount": 5, "tax_behavior": "x"}},
            "default_price_data[tax_behavior]",
        ),
    ]
    for params, param in cases:
        error = error_body(api.post("/v1/products", {"name": "Widget", **params}))
        assert error["param"] == param, (params, error)
    assert not Product.objects.exists()
    assert not Price.objects.exists()


def test_price_tax_behavior_is_stored_and_set_once(api):
    product = ok_body(api.post("/v1/products", {"name": "Seats"}))
    base = {"product": product["id"], "currency": "usd", "unit_amount": 1000}
    unspecified = ok_body(api.post("/v1/prices", base))
    assert unspecified["tax_behavior"] == "unspecified"
    set_once = ok_body(api.post(f"/v1/prices/{unspecified['id']}", {"tax_behavior": "inclusive"}))
    assert set_once["tax_behavior"] == "inclusive"
    error = error_body(api.post(f"/v1/prices/{unspecified['id']}", {"tax_behavior": "exclusive"}))
    assert (error["param"], error["code"]) == ("tax_behavior", "parameter_immutable")
    bad = error_body(api.post("/v1/prices", {**base, "tax_behavior": "sometimes"}))
    assert bad["param"] == "tax_behavior"
    assert Price.objects.get(public_id=unspecified["id"]).tax_behavior == "inclusive"


def test_currency_options_are_stored_per_currency(api):
    product = ok_body(api.post("/v1/products", {"name": "Seats"}))
    price = ok_body(
        api.post(
            "/v1/prices",
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": 2000,
                "currency_options": {
                    "eur": {"unit_amount": 1800, "tax_behavior": "inclusive"},
                    "jpy": {"unit_amount_decimal": "3000"},
                },
            },
        )
    )
    options = price["currency_options"]
    assert set(options) == {"usd", "eur", "jpy"}
    assert (options["eur"]["unit_amount"], options["eur"]["tax_behavior"]) == (1800, "inclusive")
    assert (options["jpy"]["unit_amount_decimal"], options["usd"]["unit_amount"]) == ("3000", 2000)
    updated = ok_body(
        api.post(f"/v1/prices/{price['id']}", {"currency_options": {"gbp": {"unit_amount": 1500}}})
    )
    assert set(updated["currency_options"]) == {"usd", "eur", "jpy", "gbp"}
    assert updated["unit_amount"] == 2000  # the price's own amount never changes


def test_bad_currency_options_are_refused_naming_the_parameter(api):
    product = ok_body(api.post("/v1/products", {"name": "Seats"}))
    base = {"product": product["id"], "currency": "usd", "unit_amount": 2000}
    tiered = {
        "product": product["id"],
        "currency": "usd",
        "billing_scheme": "tiered",
        "tiers_mode": "volume",
        "tiers": [{"up_to": "inf", "unit_amount": 5}],
    }
    cases = [
        (
            {**base, "currency_options": {"eur": {"unit_amount": -1}}},
            "currency_options[eur][unit_amount]",
        ),
        (
            {**base, "currency_options": {"eur": {"tax_behavior": "inclusive"}}},
            "currency_options[eur][unit_amount]",
        ),
        ({**base, "currency_options": {"usd": {"unit_amount": 1}}}, "currency_options[usd]"),
        ({**base, "currency_options": {"xyz": {"unit_amount": 1}}}, "currency_options[xyz]"),
        (
            {**base, "currency_options": {"eur": {"unit_amount": 1, "tiers": "x"}}},
            "currency_options[eur][tiers]",
        ),
        ({**tiered, "currency_options": {"eur": {"unit_amount": 1}}}, "currency_options"),
    ]
    for params, param in cases:
        error = error_body(api.post("/v1/prices", params))
        assert error["param"] == param, (params, error)
    assert not Price.objects.exists()


@pytest.mark.django_db
def test_customer_currency_is_set_by_the_first_subscription(api, customer):
    assert ok_body(api.get(f"/v1/customers/{customer.public_id}"))["currency"] is None
    subscribe(customer, licensed_price(currency="eur"), at=JAN_1)
    assert ok_body(api.get(f"/v1/customers/{customer.public_id}"))["currency"] == "eur"
    # Later invoices in another currency don't change it.
    ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}))
    assert Customer.objects.get(pk=customer.pk).currency == "EUR"


def test_customer_currency_is_set_by_the_first_invoice_and_used_by_pending_items(api, customer):
    ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "gbp"}))
    assert ok_body(api.get(f"/v1/customers/{customer.public_id}"))["currency"] == "gbp"
    item = ok_body(api.post("/v1/invoiceitems", {"customer": customer.public_id, "amount": 300}))
    assert (item["currency"], item["invoice"]) == ("gbp", None)
