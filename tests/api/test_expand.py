"""`expand[]` as Stripe documents it: on every kind of endpoint, `data.` on lists, nested up to
four levels, an unexpandable path refused with Stripe's message, and lists loaded in batches."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_site import clock
from invoicing.models import Invoice, Subscription
from invoicing.services.test_clocks import test_clock_create
from metering.models import MeterEvent
from tests.factories import CustomerFactory, hypernian_usage_price, licensed_price
from tests.helpers import JAN_1, grant_credits, manual_invoice, ok_body, subscribe

pytestmark = pytest.mark.django_db


def _refused(response, message: str) -> None:
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["message"], error["param"]) == (
        "invalid_request_error",
        message,
        "expand",
    )


def test_subscription_create_expands_its_first_invoice_and_customer(api, customer):
    fee = licensed_price(unit_amount=2500)
    body = ok_body(
        api.post(
            "/v1/subscriptions",
            {
                "customer": customer.public_id,
                "items": [{"price": fee.public_id}],
                "expand": ["latest_invoice", "customer"],
            },
        )
    )
    first = Invoice.objects.get(subscription__public_id=body["id"])
    assert body["latest_invoice"]["id"] == first.public_id
    assert body["latest_invoice"]["object"] == "invoice"
    assert body["latest_invoice"]["amount_due"] == 2500
    assert body["customer"]["id"] == customer.public_id
    assert body["customer"]["object"] == "customer"
    # Without expand, the same fields are ids.
    plain = ok_body(api.get(f"/v1/subscriptions/{body['id']}"))
    assert (plain["latest_invoice"], plain["customer"]) == (first.public_id, customer.public_id)


def test_nested_paths_expand_through_expanded_and_embedded_objects(api, customer):
    subscription = subscribe(customer, licensed_price(), hypernian_usage_price())
    body = ok_body(
        api.get(
            f"/v1/subscriptions/{subscription.public_id}",
            {"expand": ["latest_invoice.customer.test_clock", "items.data.price.product"]},
        )
    )
    assert body["latest_invoice"]["customer"]["id"] == customer.public_id
    assert body["latest_invoice"]["customer"]["test_clock"] is None  # no clock: stays null
    products = [item["price"]["product"] for item in body["items"]["data"]]
    assert [product["object"] for product in products] == ["product", "product"]


def test_lists_expand_with_the_data_prefix_in_one_query_per_level(api):
    def invoices_with_customers(count: int) -> int:
        Invoice.objects.all().delete()
        for _ in range(count):
            manual_invoice(CustomerFactory())
        with CaptureQueriesContext(connection) as queries:
            body = ok_body(api.get("/v1/invoices", {"limit": 100, "expand": ["data.customer"]}))
        assert len(body["data"]) == count
        assert all(invoice["customer"]["object"] == "customer" for invoice in body["data"])
        return len(queries)

    invoices_with_customers(1)  # a key's first request also records when it was last used
    assert invoices_with_customers(2) == invoices_with_customers(12)


def test_an_object_named_by_several_items_expands_in_each(api):
    with clock.frozen_at(JAN_1):
        simulated = test_clock_create(frozen_time=JAN_1)
    customer = CustomerFactory(test_clock=simulated)
    invoices = [manual_invoice(customer) for _ in range(3)]
    body = ok_body(
        api.get("/v1/invoices", {"expand": ["data.customer.test_clock", "data.subscription"]})
    )
    assert [invoice["id"] for invoice in body["data"]] == [i.public_id for i in reversed(invoices)]
    assert {invoice["customer"]["id"] for invoice in body["data"]} == {customer.public_id}
    assert all(invoice["subscription"] is None for invoice in body["data"])
    clocks = {invoice["customer"]["test_clock"]["id"] for invoice in body["data"]}
    assert clocks == {simulated.public_id}


def test_an_unexpandable_path_gets_stripes_error_and_changes_nothing(api, customer):
    fee = licensed_price()
    for path in ("foo", "customer.foo", "items.price", "latest_invoice.lines.price"):
        response = api.post(
            "/v1/subscriptions",
            {"customer": customer.public_id, "items": [{"price": fee.public_id}], "expand": [path]},
        )
        _refused(response, f"This property cannot be expanded ({path}).")
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()
    # On a list, the items' fields need the data. prefix, even when the page is empty.
    _refused(
        api.get("/v1/invoices", {"expand": ["customer"]}),
        "This property cannot be expanded (customer).",
    )
    # Four levels at most, as on Stripe.
    deep = "latest_invoice.subscription.latest_invoice.customer.test_clock"
    _refused(
        api.get("/v1/subscriptions", {"expand": [f"data.{deep}"]}),
        f"You cannot expand more than 4 levels of a property. Property: data.{deep}",
    )


def test_updates_actions_and_deletes_expand_too(api, customer):
    invoice = manual_invoice(customer, finalize=False)
    updated = ok_body(
        api.post(
            f"/v1/invoices/{invoice.public_id}", {"description": "Setup", "expand": ["customer"]}
        )
    )
    assert updated["customer"]["email"] == (customer.email or None)
    finalized = ok_body(
        api.post(f"/v1/invoices/{invoice.public_id}/finalize", {"expand": ["customer"]})
    )
    assert (finalized["status"], finalized["customer"]["id"]) == ("open", customer.public_id)
    line = ok_body(api.get(f"/v1/invoices/{invoice.public_id}/lines", {"expand": ["data.invoice"]}))
    assert line["data"][0]["invoice"]["id"] == invoice.public_id
    items = ok_body(api.get("/v1/invoiceitems", {"expand": ["data.customer", "data.invoice"]}))
    assert items["data"][0]["customer"]["id"] == customer.public_id
    assert items["data"][0]["invoice"]["number"] == finalized["number"]


def test_a_deleted_customer_expands_to_stripes_deleted_object(api, customer):
    invoice = manual_invoice(customer)
    ok_body(api.delete(f"/v1/customers/{customer.public_id}"))
    body = ok_body(api.get(f"/v1/invoices/{invoice.public_id}", {"expand": ["customer"]}))
    assert body["customer"] == {"id": customer.public_id, "object": "customer", "deleted": True}


def test_catalog_and_credit_objects_expand(api, customer):
    price = licensed_price()
    ok_body(api.post(f"/v1/products/{price.product.public_id}", {"default_price": price.public_id}))
    product = ok_body(
        api.get(f"/v1/products/{price.product.public_id}", {"expand": ["default_price.product"]})
    )
    assert product["default_price"]["product"]["id"] == price.product.public_id
    # Tiers are always returned; asking for them is accepted.
    assert ok_body(api.get(f"/v1/prices/{price.public_id}", {"expand": ["tiers", "product"]}))
    grant = grant_credits(customer, 5000)
    body = ok_body(
        api.get(f"/v1/billing/credit_grants/{grant.public_id}", {"expand": ["customer"]})
    )
    assert body["customer"]["id"] == customer.public_id
    ledger = ok_body(
        api.get(
            "/v1/billing/credit_balance_transactions",
            {"customer": customer.public_id, "expand": ["data.credit_grant.customer"]},
        )
    )
    assert ledger["data"][0]["credit_grant"]["customer"]["id"] == customer.public_id


def test_an_idempotent_replay_returns_the_expanded_response(api, customer):
    fee = licensed_price()
    params = {
        "customer": customer.public_id,
        "items": [{"price": fee.public_id}],
        "expand": ["latest_invoice"],
    }
    first = ok_body(api.post("/v1/subscriptions", params, idempotency_key="sub-1"))
    again = api.post("/v1/subscriptions", params, idempotency_key="sub-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert ok_body(again) == first
    assert first["latest_invoice"]["object"] == "invoice"


def test_meter_events_refuse_expand_before_storing_the_event(api, customer):
    price = hypernian_usage_price()
    response = api.post(
        "/v1/billing/meter_events",
        {
            "event_name": price.meter.event_name,
            "payload": {"stripe_customer_id": customer.public_id, "value": "5"},
            "expand": ["customer"],
        },
    )
    _refused(response, "This property cannot be expanded (customer).")
    assert not MeterEvent.objects.exists()
