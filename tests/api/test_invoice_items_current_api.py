"""Invoice items as the current API has them: `pricing[price]`, `price_data`,
`unit_amount_decimal`, `quantity`; pending items that go onto the customer's next invoice
(one-off with `pending_invoice_items_behavior=include`, a subscription's first invoice, its
renewal) exactly once; update and delete while the invoice is a draft."""

from __future__ import annotations

import pytest
import stripe

from billing_site import clock
from catalog.models import Price
from invoicing import services
from invoicing.models import Invoice, InvoiceLineItem
from tests.factories import CustomerFactory, ProductFactory, licensed_price
from tests.helpers import FEB_1, JAN_1, error_body, ok_body, subscribe, utc

MAR_1 = utc(2026, 3, 1)


def _one_time_price(api, unit_amount=1500, currency="usd") -> str:
    product = ok_body(api.post("/v1/products", {"name": "Onboarding"}))
    return ok_body(
        api.post(
            "/v1/prices",
            {"product": product["id"], "currency": currency, "unit_amount": unit_amount},
        )
    )["id"]


def test_sdk_pending_item_lands_on_the_next_one_off_invoice_exactly_once(stripe_client):
    v1 = stripe_client.v1
    customer = v1.customers.create({"name": "Acme"})
    product = v1.products.create({"name": "Onboarding"})
    price = v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 1250})
    item = v1.invoice_items.create(
        {"customer": customer.id, "pricing": {"price": price.id}, "quantity": 3}
    )
    assert (item.invoice, item.amount, item.quantity, item.currency) == (None, 3750, 3, "usd")
    assert item.pricing.price_details.price == price.id
    pending = v1.invoice_items.list({"customer": customer.id, "pending": True})
    assert [entry.id for entry in pending.data] == [item.id]

    # Stripe's default is `exclude`: a plain one-off invoice leaves the item pending.
    plain = v1.invoices.create({"customer": customer.id})
    assert (plain.total, plain.lines.data) == (0, [])
    included = v1.invoices.create(
        {"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    assert [line.parent.invoice_item_details.invoice_item for line in included.lines.data] == [
        item.id
    ]
    assert (included.subtotal, included.total, included.amount_due) == (3750, 3750, 3750)
    assert v1.invoice_items.retrieve(item.id).invoice == included.id
    again = v1.invoices.create(
        {"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    assert (again.total, again.lines.data) == (0, [])
    assert v1.invoice_items.list({"customer": customer.id, "pending": True}).data == []
    finalized = v1.invoices.finalize_invoice(included.id)
    assert (finalized.status, finalized.total) == ("open", 3750)


def test_price_data_and_unit_amount_decimal_are_rated_and_rounded_once(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    product = ProductFactory(name="Consulting")
    inline = ok_body(
        api.post(
            "/v1/invoiceitems",
            {
                "customer": customer.public_id,
                "invoice": invoice["id"],
                "price_data": {
                    "currency": "usd",
                    "product": product.public_id,
                    "unit_amount_decimal": "12.5",
                },
                "quantity": 3,
            },
        )
    )
    assert inline["amount"] == 38  # 37.5 cents, rounded half up once
    created = Price.objects.get(public_id=inline["pricing"]["price_details"]["price"])
    assert (created.product, created.active, created.type) == (product, False, "one_time")
    by_unit = ok_body(
        api.post(
            "/v1/invoiceitems",
            {
                "customer": customer.public_id,
                "invoice": invoice["id"],
                "unit_amount_decimal": "0.333",
                "quantity": 10,
                "description": "Tokens",
            },
        )
    )
    assert (by_unit["amount"], by_unit["quantity"]) == (3, 10)
    assert by_unit["pricing"]["unit_amount_decimal"] == "0.333"
    totals = ok_body(api.get(f"/v1/invoices/{invoice['id']}"))
    assert (totals["subtotal"], totals["total"], totals["amount_due"]) == (41, 41, 41)


def test_the_removed_price_parameter_still_works(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    price = _one_time_price(api, unit_amount=999)
    item = ok_body(
        api.post(
            "/v1/invoiceitems",
            {
                "customer": customer.public_id,
                "invoice": invoice["id"],
                "price": price,
                "quantity": 2,
            },
        )
    )
    assert (item["amount"], item["pricing"]["price_details"]["price"]) == (1998, price)


def test_update_and_delete_recompute_a_draft_and_are_refused_once_finalized(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    price = _one_time_price(api, unit_amount=1500)
    base = {"customer": customer.public_id, "invoice": invoice["id"]}
    seats = ok_body(api.post("/v1/invoiceitems", {**base, "pricing": {"price": price}}))
    setup = ok_body(api.post("/v1/invoiceitems", {**base, "amount": 700}))
    updated = ok_body(
        api.post(f"/v1/invoiceitems/{seats['id']}", {"quantity": 4, "metadata": {"a": "1"}})
    )
    assert (updated["amount"], updated["quantity"], updated["metadata"]) == (6000, 4, {"a": "1"})
    assert ok_body(api.get(f"/v1/invoices/{invoice['id']}"))["total"] == 6700
    ok_body(api.post(f"/v1/invoiceitems/{setup['id']}", {"amount": 250, "description": "Setup"}))
    assert ok_body(api.get(f"/v1/invoices/{invoice['id']}"))["total"] == 6250
    deleted = ok_body(api.delete(f"/v1/invoiceitems/{setup['id']}"))
    assert deleted == {"id": setup["id"], "object": "invoiceitem", "deleted": True}
    assert ok_body(api.get(f"/v1/invoices/{invoice['id']}"))["total"] == 6000
    assert error_body(api.get(f"/v1/invoiceitems/{setup['id']}"), status=404)

    ok_body(api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    error = error_body(api.post(f"/v1/invoiceitems/{seats['id']}", {"quantity": 1}))
    assert error["code"] == "invoice_not_editable"
    assert "is open: only draft invoices can" in error["message"]
    assert (
        error_body(api.delete(f"/v1/invoiceitems/{seats['id']}"))["code"] == "invoice_not_editable"
    )
    finalized = Invoice.objects.get(public_id=invoice["id"])
    assert (finalized.total, finalized.lines.count()) == (6000, 1)
    assert InvoiceLineItem.objects.get(item_public_id=seats["id"]).quantity == 4


def test_a_pending_item_can_be_changed_and_deleted(api, customer):
    item = ok_body(
        api.post(
            "/v1/invoiceitems", {"customer": customer.public_id, "currency": "eur", "amount": 100}
        )
    )
    assert (item["invoice"], item["currency"]) == (None, "eur")
    changed = ok_body(
        api.post(f"/v1/invoiceitems/{item['id']}", {"unit_amount_decimal": "2.5", "quantity": 3})
    )
    assert changed["amount"] == 8  # 7.5 rounds up
    ok_body(api.delete(f"/v1/invoiceitems/{item['id']}"))
    assert not InvoiceLineItem.objects.exists()


def test_bad_item_parameters_are_refused_naming_the_parameter(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    base = {"customer": customer.public_id, "invoice": invoice["id"]}
    price = _one_time_price(api)
    cases = [
        ({"pricing": {"price": "price_missing"}}, "pricing[price]", "resource_missing"),
        ({"pricing": {"price": price}, "amount": 5}, "pricing[price]", None),
        ({"pricing": {"price": price}, "price": price}, "price", None),
        ({"price_data": {"product": "prod_x", "unit_amount": 5}}, "price_data[product]", None),
        (
            {"price_data": {"product": ProductFactory().public_id, "unit_amount": 5}},
            "price_data[currency]",
            "parameter_missing",
        ),
        (
            {"price_data": {"product": ProductFactory().public_id, "currency": "usd"}},
            "price_data[unit_amount]",
            "parameter_missing",
        ),
        (
            {
                "price_data": {
                    "product": ProductFactory().public_id,
                    "currency": "eur",
                    "unit_amount": 5,
                }
            },
            "price_data[currency]",
            None,
        ),
        ({"unit_amount_decimal": "abc"}, "unit_amount_decimal", None),
        ({"unit_amount_decimal": "-1"}, "unit_amount_decimal", None),
        ({"amount": 5, "quantity": 0}, "quantity", None),
        ({"amount": 5, "quantity": 3}, "quantity", None),
        ({"amount": 5, "tax_behavior": "exclusive"}, "tax_behavior", "parameter_unknown"),
        ({"description": "nothing priced"}, "amount", None),
    ]
    for params, param, code in cases:
        error = error_body(api.post("/v1/invoiceitems", {**base, **params}))
        assert error["param"] == param, (params, error)
        if code:
            assert error["code"] == code, (params, error)
        assert error["message"]
    pending = {"customer": customer.public_id, "amount": 5}
    assert error_body(api.post("/v1/invoiceitems", {**pending, "currency": "xyz"}))["param"] == (
        "currency"
    )
    assert not InvoiceLineItem.objects.exists()
    assert ok_body(api.get(f"/v1/invoices/{invoice['id']}"))["total"] == 0


@pytest.mark.django_db
def test_pending_item_goes_onto_the_renewal_invoice_exactly_once(customer):
    price = licensed_price(unit_amount=2000)
    subscription = subscribe(customer, price, at=JAN_1)
    with clock.frozen_at(utc(2026, 1, 20)):
        item = services.invoice_item_create(
            customer=customer, currency="usd", amount=1234, description="Extra seats"
        )
        euro = services.invoice_item_create(customer=customer, currency="eur", amount=99)
    assert item.invoice is None
    renewal = services.subscription_close_period(subscription=subscription, at=FEB_1)
    assert renewal is not None
    amounts = sorted(renewal.lines.values_list("amount", flat=True))
    assert amounts == [1234, 2000]
    renewal.refresh_from_db()
    assert (renewal.subtotal, renewal.total, renewal.amount_due) == (3234, 3234, 3234)
    item.refresh_from_db()
    assert item.invoice_id == renewal.pk
    # Other currencies wait for an invoice in theirs.
    euro.refresh_from_db()
    assert euro.invoice_id is None
    subscription.refresh_from_db()
    following = services.subscription_close_period(subscription=subscription, at=MAR_1)
    assert list(following.lines.values_list("amount", flat=True)) == [2000]
    assert following.total == 2000


@pytest.mark.django_db
def test_pending_item_goes_onto_a_new_subscriptions_first_invoice(customer):
    with clock.frozen_at(JAN_1):
        services.invoice_item_create(customer=customer, currency="usd", amount=500)
    subscription = subscribe(customer, licensed_price(unit_amount=2000), at=JAN_1)
    first = subscription.invoices.get()
    assert (first.status, first.total, first.lines.count()) == ("open", 2500, 2)


@pytest.mark.django_db
def test_the_billing_run_puts_pending_items_on_the_renewal(customer):
    subscription = subscribe(customer, licensed_price(unit_amount=2000), at=JAN_1)
    with clock.frozen_at(utc(2026, 1, 20)):
        item = services.invoice_item_create(customer=customer, currency="usd", amount=1234)
        euro_item = services.invoice_item_create(customer=customer, currency="eur", amount=99)
    services.billing_run(at=FEB_1)
    renewal = subscription.invoices.get(billing_reason="subscription_cycle")
    assert renewal.subtotal == 3234
    item.refresh_from_db()
    euro_item.refresh_from_db()
    assert item.invoice_id == renewal.pk
    # An item in another currency waits for an invoice in its own currency.
    assert euro_item.invoice_id is None
    # The next period's invoice does not bill it again.
    services.billing_run(at=MAR_1)
    following = subscription.invoices.exclude(pk=renewal.pk).get(
        billing_reason="subscription_cycle"
    )
    assert following.subtotal == 2000


def test_a_deleted_customer_gets_no_pending_items(api, customer):
    ok_body(api.delete(f"/v1/customers/{customer.public_id}"))
    error = error_body(
        api.post(
            "/v1/invoiceitems", {"customer": customer.public_id, "currency": "usd", "amount": 1}
        )
    )
    assert error["param"] == "customer"


def test_stripe_error_is_raised_by_the_sdk_for_a_finalized_invoice(stripe_client):
    v1 = stripe_client.v1
    customer = v1.customers.create({"name": "Acme"})
    invoice = v1.invoices.create({"customer": customer.id, "currency": "usd"})
    item = v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "amount": 100})
    v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        v1.invoice_items.delete(item.id)
    assert raised.value.code == "invoice_not_editable"


@pytest.mark.postgres
def test_invoices_created_at_once_take_each_pending_item_once(transactional_db):
    import threading

    from django.db import connection

    customer = CustomerFactory()
    with clock.frozen_at(JAN_1):
        for amount in (100, 250, 4000):
            services.invoice_item_create(customer=customer, currency="usd", amount=amount)
    barrier = threading.Barrier(4)
    errors = []

    def create():
        try:
            barrier.wait()
            services.invoice_create(
                customer=customer, currency="usd", pending_invoice_items_behavior="include"
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    invoices = list(Invoice.objects.filter(customer=customer))
    assert len(invoices) == 4
    assert sorted(invoice.total for invoice in invoices) == [0, 0, 0, 4350]
    assert not InvoiceLineItem.objects.filter(invoice__isnull=True).exists()
    for invoice in invoices:
        assert invoice.total == sum(invoice.lines.values_list("amount", flat=True))
