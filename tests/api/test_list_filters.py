"""Stripe's list filters that incremental sync jobs use: `created[gt|gte|lt|lte]` (or an exact
`created`) on every list, `test_clock` on customers and subscriptions, `collection_method` and
`due_date[...]` on invoices, `pending` on invoice items."""

from __future__ import annotations

import pytest

from billing_site import clock
from invoicing import services as invoicing
from invoicing.services.test_clocks import test_clock_create
from tests.factories import CustomerFactory, MeterFactory, ProductFactory, licensed_price
from tests.helpers import JAN_1, grant_credits, manual_invoice, subscribe, ts, utc

pytestmark = pytest.mark.django_db

JAN_10, JAN_20 = utc(2026, 1, 10), utc(2026, 1, 20)


def _ids(api, path: str, params: dict) -> list[str]:
    response = api.get(path, params)
    assert response.status_code == 200, response.json()
    return [obj["id"] for obj in response.json()["data"]]


def _made_at(moment, make):
    with clock.frozen_at(moment):
        return make()


# Each list, and how one of its objects is made at the time the clock says.
MAKERS = {
    "/v1/customers": lambda: CustomerFactory(),
    "/v1/products": lambda: ProductFactory(),
    "/v1/prices": lambda: licensed_price(),
    "/v1/billing/meters": lambda: MeterFactory(),
    "/v1/test_helpers/test_clocks": lambda: test_clock_create(frozen_time=clock.now()),
    "/v1/subscriptions": lambda: subscribe(CustomerFactory(), licensed_price(), at=clock.now()),
    "/v1/invoices": lambda: manual_invoice(CustomerFactory(), at=clock.now(), finalize=False),
    "/v1/billing/credit_grants": lambda: grant_credits(CustomerFactory(), 100, at=clock.now()),
}


@pytest.mark.parametrize("path", MAKERS)
def test_every_list_filters_by_created(api, path):
    early, middle, late = (_made_at(moment, MAKERS[path]) for moment in (JAN_1, JAN_10, JAN_20))
    ids = {obj: obj.public_id for obj in (early, middle, late)}

    assert _ids(api, path, {"created": {"gte": ts(2026, 1, 10)}}) == [ids[late], ids[middle]]
    assert _ids(api, path, {"created": {"gt": ts(2026, 1, 10)}}) == [ids[late]]
    assert _ids(api, path, {"created": {"lt": ts(2026, 1, 10)}}) == [ids[early]]
    assert _ids(api, path, {"created": {"gte": ts(2026, 1, 1), "lte": ts(2026, 1, 10)}}) == [
        ids[middle],
        ids[early],
    ]
    assert _ids(api, path, {"created": ts(2026, 1, 20)}) == [ids[late]]


def test_a_created_filter_with_an_unknown_operator_is_refused_by_name(api):
    response = api.get("/v1/customers", {"created": {"after": ts(2026, 1, 1)}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "created[after]"
    response = api.get("/v1/invoices", {"created": {"gte": "yesterday"}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "created[gte]"


def test_invoice_items_and_credit_transactions_filter_by_created(api):
    customer = CustomerFactory()
    first = manual_invoice(customer, at=JAN_1)
    second = manual_invoice(customer, at=JAN_20)
    items = _ids(api, "/v1/invoiceitems", {"created": {"gt": ts(2026, 1, 10)}})
    assert items == [second.lines.get().item_public_id]
    assert first.lines.get().item_public_id not in items
    grant_credits(customer, 100, at=JAN_1)
    grant_credits(customer, 200, at=JAN_20)
    ledger = api.get(
        "/v1/billing/credit_balance_transactions",
        {"customer": customer.public_id, "created": {"gte": ts(2026, 1, 10)}},
    ).json()["data"]
    assert [entry["credit"]["amount"]["monetary"]["value"] for entry in ledger] == [200]


def test_customers_and_subscriptions_filter_by_test_clock(api):
    with clock.frozen_at(JAN_1):
        simulated = test_clock_create(frozen_time=JAN_1)
    on_clock = CustomerFactory(test_clock=simulated)
    real = CustomerFactory()
    simulated_sub = subscribe(on_clock, licensed_price())
    subscribe(real, licensed_price())

    assert _ids(api, "/v1/customers", {"test_clock": simulated.public_id}) == [on_clock.public_id]
    assert _ids(api, "/v1/subscriptions", {"test_clock": simulated.public_id}) == [
        simulated_sub.public_id
    ]
    assert len(_ids(api, "/v1/customers", {})) == 2


def test_invoices_filter_by_collection_method_and_due_date(api):
    customer = CustomerFactory()
    soon = manual_invoice(customer, at=JAN_1, days_until_due=7)
    later = manual_invoice(customer, at=JAN_1, days_until_due=60)
    subscribe(customer, licensed_price())  # charge_automatically, no due date

    assert _ids(api, "/v1/invoices", {"due_date": {"lt": ts(2026, 2, 1)}}) == [soon.public_id]
    assert _ids(api, "/v1/invoices", {"due_date": {"gte": ts(2026, 2, 1)}}) == [later.public_id]
    sent = _ids(api, "/v1/invoices", {"collection_method": "send_invoice"})
    assert sent == [later.public_id, soon.public_id]
    charged = _ids(api, "/v1/invoices", {"collection_method": "charge_automatically"})
    assert len(charged) == 1 and charged[0] not in sent
    response = api.get("/v1/invoices", {"collection_method": "by_pigeon"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "collection_method"


def test_invoice_items_filter_by_pending(api):
    customer = CustomerFactory()
    with clock.frozen_at(JAN_1):
        draft = invoicing.invoice_create(customer=customer, currency="usd")
        line = invoicing.invoice_item_create(invoice=draft, description="Setup", amount=500)
    # Every item here is on an invoice (a draft one too): none is pending.
    assert _ids(api, "/v1/invoiceitems", {"pending": "false"}) == [line.item_public_id]
    assert _ids(api, "/v1/invoiceitems", {"pending": "true"}) == []
