"""Subscriptions and invoices via the API: one-off invoices, cancellation, anchors, bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from billing_site import clock
from billing_site.errors import BillingError
from invoicing.models import Invoice, InvoiceEvent, InvoiceLineItem, Subscription, TestClock
from invoicing.services import (
    invoice_create,
    invoice_finalize,
    invoice_item_create,
    invoice_update,
)
from invoicing.services import test_clock_advance as advance_clock
from metering.ingest import meter_event_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ProductFactory,
    hypernian_usage_price,
    licensed_price,
)
from tests.helpers import error_body, ok_body, ts, utc

pytestmark = pytest.mark.django_db


def _open_invoice(api, customer) -> dict:
    """A one-off invoice of 5.00 USD, created, given its item and finalized through the API."""
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    api.post(
        "/v1/invoiceitems",
        {"customer": customer.public_id, "invoice": invoice["id"], "amount": 500},
    )
    api.post(f"/v1/invoices/{invoice['id']}/finalize")
    return invoice


def test_one_off_prepayment_invoice_through_finalize_and_pay(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}))
    assert (invoice["status"], invoice["number"], invoice["collection_method"]) == (
        "draft",
        None,
        "send_invoice",
    )
    item = ok_body(
        api.post(
            "/v1/invoiceitems",
            {
                "customer": customer.public_id,
                "invoice": invoice["id"],
                "amount": 10_000_000,
                "description": "Hypernian Credits",
            },
        )
    )
    assert item["object"] == "invoiceitem" and item["id"].startswith("ii_")
    sent = ok_body(api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    assert sent["status"] == "open"
    assert sent["number"] == "INV-0001"
    assert sent["amount_due"] == 10_000_000
    assert sent["due_date"] - sent["status_transitions"]["finalized_at"] == 30 * 86400
    assert [line["description"] for line in sent["lines"]["data"]] == ["Hypernian Credits"]

    refused = error_body(api.post(f"/v1/invoices/{invoice['id']}/pay"))
    assert "paid_out_of_band=true" in refused["message"]
    paid = ok_body(api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": True}))
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == (
        "paid",
        10_000_000,
        0,
    )
    assert list(InvoiceEvent.objects.values_list("from_status", "to_status", "actor")) == [
        ("draft", "open", "api (tests)"),
        ("open", "paid", "api (tests)"),
    ]


def test_invoice_lines_endpoint_lists_lines_in_invoice_order(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    for amount in (100, 200, 300):
        api.post(
            "/v1/invoiceitems",
            {"customer": customer.public_id, "invoice": invoice["id"], "amount": amount},
        )
    lines = ok_body(api.get(f"/v1/invoices/{invoice['id']}/lines", {"limit": 2}))
    assert [line["amount"] for line in lines["data"]] == [100, 200]
    assert lines["has_more"] is True


@pytest.mark.parametrize(
    ("final_status", "action", "message"),
    [
        ("void", "pay", "void invoice is final"),
        ("paid", "void", "paid invoice is final"),
        ("paid", "mark_uncollectible", "paid invoice is final"),
        ("open", "finalize", "only draft invoices can be finalized"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    api, customer, final_status, action, message
):
    invoice = _open_invoice(api, customer)
    if final_status == "void":
        api.post(f"/v1/invoices/{invoice['id']}/void")
    elif final_status == "paid":
        api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": True})
    events = InvoiceEvent.objects.count()
    error = error_body(
        api.post(f"/v1/invoices/{invoice['id']}/{action}", {"paid_out_of_band": True})
    )
    assert message in error["message"]
    assert Invoice.objects.get(public_id=invoice["id"]).status == final_status
    assert InvoiceEvent.objects.count() == events


def test_uncollectible_can_still_be_paid_or_voided(api, customer):
    invoice = _open_invoice(api, customer)
    assert (
        ok_body(api.post(f"/v1/invoices/{invoice['id']}/mark_uncollectible"))["status"]
        == "uncollectible"
    )
    assert (
        ok_body(api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": True}))["status"]
        == "paid"
    )


def test_finalized_invoices_cannot_be_edited_or_get_items(api, customer):
    invoice = _open_invoice(api, customer)
    error = error_body(api.post(f"/v1/invoices/{invoice['id']}", {"description": "changed"}))
    assert "only draft invoices can be edited" in error["message"]
    error = error_body(
        api.post(
            "/v1/invoiceitems",
            {"customer": customer.public_id, "invoice": invoice["id"], "amount": 100},
        )
    )
    assert "only draft invoices can get new items" in error["message"]
    error = error_body(api.delete(f"/v1/invoices/{invoice['id']}"))
    assert "only draft invoices can be deleted" in error["message"]
    stored = Invoice.objects.get(public_id=invoice["id"])
    assert (stored.description, stored.total, stored.lines.count()) == ("", 500, 1)


def test_a_draft_invoice_s_description_and_metadata_can_be_edited(api, customer):
    invoice = ok_body(
        api.post(
            "/v1/invoices",
            {"customer": customer.public_id, "metadata": {"po": "1", "team": "ml"}},
        )
    )
    edited = ok_body(
        api.post(
            f"/v1/invoices/{invoice['id']}",
            {"description": "Q3 credits", "metadata": {"po": "2", "team": ""}},
        )
    )
    assert (edited["description"], edited["metadata"]) == ("Q3 credits", {"po": "2"})
    untouched = ok_body(api.post(f"/v1/invoices/{invoice['id']}"))
    assert (untouched["description"], untouched["metadata"]) == ("Q3 credits", {"po": "2"})
    cleared = ok_body(
        api.post(f"/v1/invoices/{invoice['id']}", {"description": "", "metadata": ""})
    )
    assert (cleared["description"], cleared["metadata"]) == (None, {})
    stored = Invoice.objects.get(public_id=invoice["id"])
    assert (stored.description, stored.metadata) == ("", {})


def test_invoice_update_rechecks_the_status_under_the_row_lock(customer):
    invoice = invoice_create(customer=customer, currency="usd")
    invoice_item_create(invoice=invoice, description="Credits", amount=500)
    loaded_while_draft = Invoice.objects.get(pk=invoice.pk)
    invoice_finalize(invoice=invoice, actor="tests")
    with pytest.raises(BillingError) as caught:
        invoice_update(invoice=loaded_while_draft, description="too late", metadata={"a": "b"})
    assert caught.value.code == "invoice_not_editable"
    assert caught.value.message == "Invoice INV-0001 is open: only draft invoices can be edited."
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.description, stored.metadata) == ("", {})


def test_invoice_lists_filter_by_customer_status_and_collection_method(api, customer):
    other = CustomerFactory()
    draft = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    charged = ok_body(
        api.post(
            "/v1/invoices",
            {"customer": customer.public_id, "collection_method": "charge_automatically"},
        )
    )
    theirs = ok_body(api.post("/v1/invoices", {"customer": other.public_id}))
    api.post(
        "/v1/invoiceitems",
        {"customer": customer.public_id, "invoice": charged["id"], "amount": 500},
    )
    ok_body(api.post(f"/v1/invoices/{charged['id']}/finalize"))

    def listed(**params):
        return [invoice["id"] for invoice in ok_body(api.get("/v1/invoices", params))["data"]]

    assert listed(customer=customer.public_id) == [charged["id"], draft["id"]]
    assert listed(status="open") == [charged["id"]]
    assert listed(collection_method="send_invoice") == [theirs["id"], draft["id"]]
    assert listed(customer=customer.public_id, status="draft") == [draft["id"]]
    assert listed(customer="") == [theirs["id"], charged["id"], draft["id"]]
    assert listed(subscription="sub_none") == []
    assert error_body(api.get("/v1/invoices", {"status": "paidish"}))["param"] == "status"
    error = error_body(api.get("/v1/invoices", {"collection_method": "cash"}))
    assert error["param"] == "collection_method"


def test_invoice_item_lists_filter_by_customer_and_invoice(api, customer):
    other = CustomerFactory()
    first = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    second = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    theirs = ok_body(api.post("/v1/invoices", {"customer": other.public_id}))
    items = {}
    for owner, invoice, amount in (
        (customer, first, 100),
        (customer, second, 200),
        (other, theirs, 300),
    ):
        item = api.post(
            "/v1/invoiceitems",
            {"customer": owner.public_id, "invoice": invoice["id"], "amount": amount},
        )
        items[amount] = ok_body(item)["id"]

    def listed(**params):
        return [item["amount"] for item in ok_body(api.get("/v1/invoiceitems", params))["data"]]

    assert listed(customer=customer.public_id) == [200, 100]
    assert listed(invoice=first["id"]) == [100]
    assert listed(customer=other.public_id, invoice=first["id"]) == []
    assert ok_body(api.get(f"/v1/invoiceitems/{items[300]}"))["invoice"] == theirs["id"]
    missing = error_body(api.get("/v1/invoiceitems/ii_missing"), status=404)
    assert (missing["code"], missing["message"]) == (
        "resource_missing",
        "No such invoiceitem: 'ii_missing'",
    )


def test_invoice_item_references_are_checked_and_named(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    base = {"customer": customer.public_id, "invoice": invoice["id"]}
    error = error_body(api.post("/v1/invoiceitems", {**base, "price": "price_missing"}))
    assert (error["param"], error["code"]) == ("price", "resource_missing")
    error = error_body(api.post("/v1/invoiceitems", {**base, "invoice": "in_missing", "amount": 1}))
    assert (error["param"], error["code"]) == ("invoice", "resource_missing")
    # Without an invoice the item is pending: it needs a currency (a new customer has none yet;
    # this one's is its first invoice's).
    new = CustomerFactory()
    error = error_body(api.post("/v1/invoiceitems", {"customer": new.public_id, "amount": 1}))
    assert (error["param"], error["code"]) == ("currency", "parameter_missing")
    pending = ok_body(api.post("/v1/invoiceitems", {"customer": customer.public_id, "amount": 1}))
    assert (pending["currency"], pending["invoice"]) == ("usd", None)
    InvoiceLineItem.objects.filter(item_public_id=pending["id"]).delete()
    # A period past year 9999 is refused with the parameter's name (it used to be a 500).
    far = {**base, "amount": 100, "period": {"start": 0, "end": 10**15}}
    assert error_body(api.post("/v1/invoiceitems", far))["param"] == "period[end]"
    assert not InvoiceLineItem.objects.exists()


def test_a_draft_one_off_invoice_can_be_deleted(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    assert ok_body(api.delete(f"/v1/invoices/{invoice['id']}"))["deleted"] is True
    assert not Invoice.objects.exists()


def test_an_empty_invoice_cannot_be_sent(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    assert (
        "no line items" in error_body(api.post(f"/v1/invoices/{invoice['id']}/finalize"))["message"]
    )
    assert Invoice.objects.get().status == "draft"


def test_subscription_bad_input_changes_nothing(api, customer):
    monthly = licensed_price()
    euro = licensed_price(currency="eur")
    yearly = licensed_price(interval="year")
    archived = licensed_price()
    api.post(f"/v1/prices/{archived.public_id}", {"active": False})
    cases = [
        ((archived,), {}, "items[0][price]", "archived"),
        ((monthly, euro), {}, "items[1][price]", "one currency"),
        ((monthly, yearly), {}, "items[1][price]", "one billing interval"),
        (
            (monthly,),
            {"billing_cycle_anchor": int(clock.now().timestamp()) - 40 * 86400},
            "billing_cycle_anchor",
            "more than one billing period",
        ),
        (
            (monthly,),
            {"billing_cycle_anchor": int(clock.now().timestamp()) + 3600},
            "billing_cycle_anchor",
            "future",
        ),
        ((monthly, monthly), {}, "items[1][price]", "appears twice"),
        ((monthly,), {"collection_method": "send_invoice"}, "days_until_due", "days_until_due"),
    ]
    for prices, extra, param, message in cases:
        error = error_body(api.subscribe(customer, *prices, **extra))
        assert error["param"] == param, (param, error)
        assert message in error["message"]
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_mid_period_price_changes_are_refused_clearly(api, customer):
    price = licensed_price()
    subscription = ok_body(api.subscribe(customer, price))
    item = subscription["items"]["data"][0]["id"]
    error = error_body(
        api.post(
            f"/v1/subscriptions/{subscription['id']}",
            {"items": [{"id": item, "price": licensed_price().public_id}]},
        )
    )
    assert error["code"] == "proration_not_supported"
    changed = ok_body(
        api.post(
            f"/v1/subscriptions/{subscription['id']}", {"items": [{"id": item, "quantity": 3}]}
        )
    )
    assert changed["items"]["data"][0]["quantity"] == 3


def test_month_end_anchor_bills_on_the_last_day_of_short_months(api):
    test_clock = TestClock.objects.create(frozen_time=utc(2026, 1, 31, 12), created_at=clock.now())
    customer = CustomerFactory(test_clock=test_clock)
    subscription = ok_body(api.subscribe(customer, licensed_price(unit_amount=1000)))
    assert (subscription["current_period_start"], subscription["current_period_end"]) == (
        ts(2026, 1, 31, 12),
        ts(2026, 2, 28, 12),
    )
    advance_clock(test_clock=test_clock, frozen_time=utc(2026, 5, 1))
    periods = sorted(
        (line.period_start, line.period_end)
        for line in InvoiceLineItem.objects.filter(
            invoice__subscription__public_id=subscription["id"]
        )
    )
    assert periods == [
        (utc(2026, 1, 31, 12), utc(2026, 2, 28, 12)),
        (utc(2026, 2, 28, 12), utc(2026, 3, 31, 12)),
        (utc(2026, 3, 31, 12), utc(2026, 4, 30, 12)),
        (utc(2026, 4, 30, 12), utc(2026, 5, 31, 12)),
    ]
    numbers = list(Invoice.objects.order_by("finalized_at").values_list("number", flat=True))
    assert numbers == ["INV-0001", "INV-0002", "INV-0003", "INV-0004"]


def test_cancel_at_period_end_bills_final_usage_and_no_more_fees(api):
    test_clock = TestClock.objects.create(frozen_time=utc(2026, 6, 1), created_at=clock.now())
    customer = CustomerFactory(test_clock=test_clock)
    meter = MeterFactory(event_name="hypernian_api_tokens")
    product = ProductFactory(name="Hypernian")
    subscription = ok_body(
        api.subscribe(
            customer,
            licensed_price(product=product, unit_amount=20000),
            hypernian_usage_price(product=product, meter=meter),
        )
    )
    updated = ok_body(
        api.post(f"/v1/subscriptions/{subscription['id']}", {"cancel_at_period_end": True})
    )
    assert updated["cancel_at"] == ts(2026, 7, 1)
    advance_clock(test_clock=test_clock, frozen_time=utc(2026, 6, 20))
    meter_event_create(
        event_name=meter.event_name,
        payload={"stripe_customer_id": customer.public_id, "value": "130000"},
        timestamp=utc(2026, 6, 19),
    )
    preview = ok_body(api.post("/v1/invoices/create_preview", {"customer": customer.public_id}))
    assert [line["amount"] for line in preview["lines"]["data"]] == [3000]  # no next-period fee

    advance_clock(test_clock=test_clock, frozen_time=utc(2026, 8, 15))
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    assert (final.status, final.total) == ("open", 3000)
    assert list(final.lines.values_list("kind", "amount")) == [("metered", 3000)]
    assert Invoice.objects.filter(subscription__public_id=subscription["id"]).count() == 2
    stored = Subscription.objects.get(public_id=subscription["id"])
    assert (stored.status, stored.ended_at) == ("canceled", utc(2026, 7, 1))

    error = error_body(
        api.post(
            "/v1/invoices/create_preview",
            {"customer": customer.public_id, "subscription": subscription["id"]},
        )
    )
    assert "canceled" in error["message"]


def test_cancel_now_with_invoice_now_bills_usage_so_far(api):
    test_clock = TestClock.objects.create(frozen_time=utc(2026, 6, 1), created_at=clock.now())
    customer = CustomerFactory(test_clock=test_clock)
    meter = MeterFactory()
    subscription = ok_body(api.subscribe(customer, hypernian_usage_price(meter=meter)))
    advance_clock(test_clock=test_clock, frozen_time=utc(2026, 6, 10))
    meter_event_create(
        event_name=meter.event_name,
        payload={"stripe_customer_id": customer.public_id, "value": "100500"},
        timestamp=utc(2026, 6, 9),
    )
    canceled = ok_body(api.delete(f"/v1/subscriptions/{subscription['id']}?invoice_now=true"))
    assert canceled["status"] == "canceled"
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    assert (final.status, final.total, final.period_end) == ("open", 50, utc(2026, 6, 10))
    assert (
        "already canceled"
        in error_body(api.delete(f"/v1/subscriptions/{subscription['id']}"))["message"]
    )


def test_test_clock_bad_input(api):
    created = ok_body(api.post("/v1/test_helpers/test_clocks", {"frozen_time": ts(2026, 1, 1)}))
    error = error_body(
        api.post(
            f"/v1/test_helpers/test_clocks/{created['id']}/advance",
            {"frozen_time": ts(2025, 12, 1)},
        )
    )
    assert error["param"] == "frozen_time"
    assert "only moves forward" in error["message"]
    assert TestClock.objects.get().frozen_time == utc(2026, 1, 1)
    assert ok_body(api.delete(f"/v1/test_helpers/test_clocks/{created['id']}"))["deleted"] is True


def test_meter_event_window_follows_the_customer_s_test_clock(api):
    test_clock = TestClock.objects.create(frozen_time=utc(2026, 1, 1), created_at=clock.now())
    customer = CustomerFactory(test_clock=test_clock)
    meter = MeterFactory()
    payload = {"stripe_customer_id": customer.public_id, "value": "5"}
    ok = api.post(
        "/v1/billing/meter_events",
        {"event_name": meter.event_name, "payload": payload, "timestamp": ts(2025, 12, 20)},
    )
    assert ok.status_code == 200, ok.json()
    too_new = api.post(
        "/v1/billing/meter_events",
        {"event_name": meter.event_name, "payload": payload, "timestamp": ts(2026, 1, 2)},
    )
    assert error_body(too_new)["code"] == "timestamp_in_future"


def test_run_billing_command_closes_and_finalizes_due_periods(capsys):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=999)
    with clock.frozen_at(utc(2026, 10, 1)):
        from invoicing.services import ItemInput, subscription_create

        subscription_create(customer=customer, items=[ItemInput(price=price)])
    with clock.frozen_at(utc(2026, 11, 1, 2)):
        call_command("run_billing")
        call_command("run_billing")  # idempotent
    out = capsys.readouterr().out
    assert "Closed 1 period(s), finalized 1 invoice(s), 0 failure(s)." in out
    assert "Closed 0 period(s), finalized 0 invoice(s), 0 failure(s)." in out
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (renewal.status, renewal.total, renewal.number) == ("open", 999, "INV-0002")
    assert renewal.lines.get().period_start == utc(2026, 11, 1)
    assert Decimal(renewal.lines.get().quantity) == 1


def test_invoice_items_page_by_their_own_ids(api, customer):
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id}))
    ids = [
        ok_body(
            api.post(
                "/v1/invoiceitems",
                {"customer": customer.public_id, "invoice": invoice["id"], "amount": amount},
            )
        )["id"]
        for amount in (100, 200, 300)
    ]
    first = ok_body(api.get("/v1/invoiceitems", {"limit": 1}))
    assert ([item["id"] for item in first["data"]], first["has_more"]) == ([ids[2]], True)
    after = ok_body(api.get("/v1/invoiceitems", {"limit": 5, "starting_after": ids[2]}))
    assert [item["amount"] for item in after["data"]] == [200, 100]
    before = ok_body(api.get("/v1/invoiceitems", {"ending_before": ids[0]}))
    assert [item["amount"] for item in before["data"]] == [300, 200]
