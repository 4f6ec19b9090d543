"""Staff go through the confirmation pages of destructive actions in a real browser: deleting a
customer (its subscriptions end at once, usage so far billed if ticked) and deactivating a
meter (ingestion stops)."""

from __future__ import annotations

from playwright.sync_api import expect

from invoicing.models import Customer, CustomerEvent, Invoice, Subscription
from invoicing.services import ItemInput, subscription_create
from metering.ingest import meter_event_create
from metering.models import Meter
from tests.factories import CustomerFactory, hypernian_usage_price, licensed_price


def test_staff_delete_a_customer_and_bill_its_usage_so_far(staff_page, live_server, screenshot):
    customer = CustomerFactory(name="Northwind Robotics")
    tokens = hypernian_usage_price()
    subscription = subscription_create(
        customer=customer, items=[ItemInput(licensed_price(unit_amount=2000)), ItemInput(tokens)]
    )
    meter_event_create(
        event_name=tokens.meter.event_name,
        payload={"stripe_customer_id": customer.public_id, "value": "150000"},
    )
    page = staff_page
    page.goto(f"{live_server.url}/admin/invoicing/customer/{customer.pk}/delete/")

    expect(page.locator("#subscriptions-canceled")).to_contain_text(
        "1 active subscription will be canceled at once"
    )
    expect(page.locator("#subscriptions-to-cancel")).to_contain_text("50.00 USD")
    page.get_by_label("Bill usage so far on a final invoice").check()
    screenshot("admin-customer-delete-confirmation")
    page.get_by_role("button", name="Yes, delete the customer").click()
    expect(page.locator(".messagelist")).to_contain_text("deleted successfully")

    assert Customer.objects.get(pk=customer.pk).deleted_at is not None
    assert Subscription.objects.get(pk=subscription.pk).status == "canceled"
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    assert final.total == 5000
    assert CustomerEvent.objects.get(action="deleted").actor == "staff"


def test_staff_deactivate_a_meter_after_reading_that_ingestion_stops(
    staff_page, live_server, screenshot
):
    meter = hypernian_usage_price().meter
    page = staff_page
    page.goto(f"{live_server.url}/admin/metering/meter/")
    page.locator(f"input[name=_selected_action][value='{meter.pk}']").check()
    page.select_option("select[name=action]", "deactivate_meters")
    page.locator("button[name=index], button[type=submit].button").first.click()

    expect(page.locator("#action-explanation")).to_contain_text("stops ingestion")
    screenshot("admin-meter-deactivate-confirmation")
    assert Meter.objects.get(pk=meter.pk).is_active  # only asked so far
    page.get_by_role("button", name="Yes, deactivate 1 meter").click()
    expect(page.locator(".messagelist")).to_contain_text("Deactivated 1 meter")

    assert not Meter.objects.get(pk=meter.pk).is_active
