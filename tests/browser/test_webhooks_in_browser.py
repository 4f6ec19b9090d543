"""Staff set up a webhook endpoint and resend an event in a real browser: the secret is shown
once, the event page shows the object's JSON and every attempt, and Resend reaches a real
receiver (tests/billing_site/webhook_receiver.py) with a signature the Stripe SDK verifies."""

from __future__ import annotations

import pytest
import stripe
from playwright.sync_api import expect

from billing_site.events.delivery import webhook_deliveries_send_due
from billing_site.models import Event, WebhookAttempt, WebhookEndpoint
from invoicing.services import customer_create
from tests.billing_site.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


def test_staff_create_an_endpoint_see_its_secret_once_and_resend_an_event(
    staff_page, live_server, screenshot, receiver
):
    page = staff_page
    admin = f"{live_server.url}/admin/billing_site"
    page.goto(f"{admin}/webhookendpoint/add/")
    page.fill("input[name=url]", receiver.url)
    page.fill("textarea[name=description]", "Provisioning service")
    page.check("input[name=enabled_events][value='customer.created']")
    page.check("input[name=enabled_events][value='customer.updated']")
    screenshot("admin-webhook-endpoint-add")
    page.get_by_role("button", name="Save", exact=True).click()

    secret_field = page.locator("#webhook-secret-value")
    expect(secret_field).to_have_value(WebhookEndpoint.objects.get().secret)
    secret = secret_field.input_value()
    assert secret.startswith("whsec_")
    expect(page.locator("#secret-intro")).to_contain_text("this is the only time it is shown")
    screenshot("admin-webhook-endpoint-secret-shown-once")

    # An event the receiver refuses at first; the endpoint page shows the failed attempt.
    customer_create(name="Northwind Robotics")
    receiver.answer(500)
    webhook_deliveries_send_due()
    page.click("#secret-done")
    expect(page.locator("#endpoint-deliveries")).to_contain_text("HTTP 500")
    assert secret not in page.content()  # shown once: not on the endpoint page
    screenshot("admin-webhook-endpoint-page")

    page.goto(f"{admin}/event/")
    page.get_by_role("link", name=Event.objects.get().public_id).click()
    expect(page.locator("#event-object")).to_contain_text('"name": "Northwind Robotics"')
    screenshot("admin-event-page-with-a-failed-delivery")
    page.get_by_role("button", name="Resend").click()

    expect(page.locator(".messagelist")).to_contain_text("HTTP 200")
    expect(page.locator("#event-deliveries")).to_contain_text("Resent by staff")
    page.evaluate("window.scrollTo(0, 0)")  # back from #delivery-N, for a whole-page picture
    screenshot("admin-event-page-after-resend")
    assert WebhookAttempt.objects.filter(trigger="resend", succeeded=True).count() == 1
    resent = receiver.requests[-1]
    event = stripe.Webhook.construct_event(resent.body, resent.headers["Stripe-Signature"], secret)
    assert (event.type, event.data.object.name) == ("customer.created", "Northwind Robotics")
