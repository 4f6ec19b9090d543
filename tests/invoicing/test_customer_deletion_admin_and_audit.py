"""Deleting a customer from the admin (issue 10, row 3) and who did what (row 11): the delete
confirmation says how many subscriptions end at once and offers to bill their usage so far; the
API and the admin record the API key's or the staff user's name on every change they make."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import DELETION, LogEntry

from billing_site import clock
from invoicing.models import Customer, CustomerEvent, Invoice, InvoiceEvent, Subscription
from invoicing.services import ItemInput, subscription_create
from metering.ingest import meter_event_create
from metering.models import MeterEventAdjustment
from tests.admin_pages import get, post, text
from tests.factories import CustomerFactory, hypernian_usage_price, licensed_price
from tests.helpers import OCT_1

pytestmark = pytest.mark.django_db

OCT_11 = dt.datetime(2026, 10, 11, tzinfo=dt.UTC)
CUSTOMERS = "/admin/invoicing/customer/"
API_ACTOR = "api (tests)"  # the `api` fixture's key is named "tests"


def subscribed(name: str = "Northwind Robotics", tokens: int = 150_000, usage_price=None):
    """A customer with seats (9.99 USD) and tokens (100,000 free, then 0.1 cent each); `tokens`
    used so far in October."""
    customer = CustomerFactory(name=name)
    usage_price = usage_price or hypernian_usage_price()
    with clock.frozen_at(OCT_1):
        subscription = subscription_create(
            customer=customer,
            items=[ItemInput(price=licensed_price(unit_amount=999)), ItemInput(usage_price)],
            actor="setup",
        )
    with clock.frozen_at(OCT_1 + dt.timedelta(days=5)):
        meter_event_create(
            event_name=usage_price.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": str(tokens)},
        )
    return customer, subscription


# --- The admin's delete confirmation ---------------------------------------------------------


def test_the_delete_page_says_how_many_subscriptions_end_at_once_and_offers_a_final_invoice(
    admin_client,
):
    customer, subscription = subscribed()

    page = get(admin_client, f"{CUSTOMERS}{customer.pk}/delete/", at=OCT_11)

    assert page.status_code == 200
    words = text(page)
    assert "1 active subscription will be canceled at once" in words
    assert subscription.public_id in words
    assert "50.00 USD" in words  # usage so far: 50,000 tokens past the free 100,000
    assert "Bill usage so far on a final invoice" in words
    assert 'name="invoice_now"' in page.content.decode()
    # Nothing else is listed as deleted: the row stays and invoices keep pointing at it.
    assert "Invoice line items" not in words and "Subscription items" not in words
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # looking changes nothing


def test_confirming_with_the_checkbox_cancels_at_once_and_bills_usage_so_far(admin_client):
    customer, subscription = subscribed()

    response = post(
        admin_client,
        f"{CUSTOMERS}{customer.pk}/delete/",
        {"post": "yes", "invoice_now": "on"},
        at=OCT_11,
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    subscription.refresh_from_db()
    assert customer.deleted_at is not None
    assert (subscription.status, subscription.ended_at) == ("canceled", OCT_11)
    final = Invoice.objects.get(billing_reason=Invoice.BillingReason.SUBSCRIPTION_CANCEL)
    assert (final.period_start, final.period_end, final.total) == (OCT_1, OCT_11, 5000)
    assert final.events.get(to_status="open").actor == "admin"
    deleted = CustomerEvent.objects.get(customer=customer, action=CustomerEvent.Action.DELETED)
    assert deleted.actor == "admin"
    assert subscription.public_id in deleted.note and "usage so far invoiced" in deleted.note
    assert LogEntry.objects.get(action_flag=DELETION).object_id == str(customer.pk)
    history = get(admin_client, f"{CUSTOMERS}{customer.pk}/change/", at=OCT_11)
    assert "Customer deleted admin Canceled at once" in text(history)


def test_confirming_without_the_checkbox_bills_nothing_more(admin_client):
    customer, subscription = subscribed()

    post(admin_client, f"{CUSTOMERS}{customer.pk}/delete/", {"post": "yes"}, at=OCT_11)

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert not Invoice.objects.filter(billing_reason="subscription_cancel").exists()
    canceled = CustomerEvent.objects.get(action=CustomerEvent.Action.SUBSCRIPTION_CANCELED)
    assert (canceled.actor, canceled.subscription) == ("admin", subscription)
    assert "not invoiced" in canceled.note


def test_deleting_selected_customers_says_how_many_subscriptions_end(admin_client):
    tokens = hypernian_usage_price()
    first, _ = subscribed("Northwind Robotics", usage_price=tokens)
    second, _ = subscribed("Acme Research", tokens=10, usage_price=tokens)
    idle = CustomerFactory(name="Idle Ltd")
    action = {"action": "delete_selected", "_selected_action": [first.pk, second.pk, idle.pk]}

    page = post(admin_client, CUSTOMERS, action, at=OCT_11)

    assert page.status_code == 200
    assert "2 active subscriptions will be canceled at once" in text(page)
    assert "Bill usage so far on a final invoice" in text(page)
    assert not Customer.objects.filter(deleted_at__isnull=False).exists()

    post(admin_client, CUSTOMERS, {**action, "post": "yes", "invoice_now": "on"}, at=OCT_11)

    assert Customer.objects.filter(deleted_at__isnull=False).count() == 3
    assert Invoice.objects.filter(billing_reason="subscription_cancel").count() == 2
    assert set(CustomerEvent.objects.filter(action="deleted").values_list("actor", flat=True)) == {
        "admin"
    }


def test_a_deleted_customer_has_no_delete_page(admin_client):
    customer, _ = subscribed()
    post(admin_client, f"{CUSTOMERS}{customer.pk}/delete/", {"post": "yes"}, at=OCT_11)

    assert get(admin_client, f"{CUSTOMERS}{customer.pk}/delete/").status_code == 403


# --- The API records the key's name ---------------------------------------------------------


def test_deleting_through_the_api_keeps_stripes_behaviour_and_records_the_key(api):
    customer, subscription = subscribed()

    with clock.frozen_at(OCT_11):
        response = api.delete(f"/v1/customers/{customer.public_id}")

    assert response.status_code == 200
    assert not Invoice.objects.filter(billing_reason="subscription_cancel").exists()
    deleted = CustomerEvent.objects.get(customer=customer, action="deleted")
    assert (deleted.actor, deleted.created_at) == (API_ACTOR, OCT_11)
    assert subscription.public_id in deleted.note
    canceled = CustomerEvent.objects.get(action="subscription_canceled")
    assert canceled.actor == API_ACTOR


def test_subscriptions_created_and_canceled_through_the_api_record_the_key(api):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=500)
    usage_price = hypernian_usage_price()
    with clock.frozen_at(OCT_1):
        created = api.post(
            "/v1/subscriptions",
            {"customer": customer.public_id, "items": [{"price": price.public_id}]},
        ).json()
        other = api.post(
            "/v1/subscriptions",
            {"customer": customer.public_id, "items": [{"price": usage_price.public_id}]},
        ).json()
    with clock.frozen_at(OCT_11):
        api.delete(f"/v1/subscriptions/{created['id']}")
        api.delete(f"/v1/subscriptions/{other['id']}?invoice_now=true")

    first_invoice = Invoice.objects.get(subscription__public_id=created["id"], number__isnull=False)
    assert set(first_invoice.events.values_list("actor", flat=True)) == {API_ACTOR}
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    assert set(InvoiceEvent.objects.filter(invoice=final).values_list("actor", flat=True)) == {
        API_ACTOR
    }
    history = CustomerEvent.objects.filter(customer=customer)
    assert [(event.action, event.actor) for event in history] == [
        ("subscription_created", API_ACTOR),
        ("subscription_created", API_ACTOR),
        ("subscription_canceled", API_ACTOR),
        ("subscription_canceled", API_ACTOR),
    ]
    assert final.label in history.last().note


def test_a_meter_event_canceled_through_the_api_records_the_key(api):
    customer = CustomerFactory()
    price = hypernian_usage_price()
    with clock.frozen_at(OCT_11):
        meter_event_create(
            event_name=price.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": "5"},
            identifier="evt-1",
        )
        response = api.post(
            "/v1/billing/meter_event_adjustments",
            {
                "event_name": price.meter.event_name,
                "type": "cancel",
                "cancel": {"identifier": "evt-1"},
            },
        )

    assert response.status_code == 200, response.content
    assert MeterEventAdjustment.objects.get().created_by == API_ACTOR
