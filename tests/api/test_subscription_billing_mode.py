"""`billing_mode`, `latest_invoice` and the invoice fields a Stripe integration reads first:
`automatically_finalizes_at`, the `*_excluding_tax` totals, and the preview's own id."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_site import clock
from invoicing.models import Invoice, Subscription
from invoicing.services import subscription_cancel_now, subscription_close_period
from tests.factories import hypernian_usage_price, licensed_price
from tests.helpers import JAN_1, send_usage, subscribe, utc

pytestmark = pytest.mark.django_db


def test_a_metered_only_subscription_is_flexible_and_sends_no_empty_first_invoice(api, customer):
    body = api.subscribe(customer, hypernian_usage_price()).json()
    assert body["billing_mode"] == {
        "type": "flexible",
        "flexible": {"proration_discounts": "included"},
    }
    assert body["latest_invoice"] is None
    assert not Invoice.objects.exists()
    # Stripe's schema has no quantity on a metered item.
    assert "quantity" not in body["items"]["data"][0]


def test_classic_billing_mode_keeps_the_zero_first_invoice(api, customer):
    body = api.subscribe(customer, hypernian_usage_price(), billing_mode={"type": "classic"}).json()
    assert body["billing_mode"] == {"type": "classic", "flexible": None}
    first = Invoice.objects.get()
    assert (first.total, first.status, first.billing_reason) == (0, "paid", "subscription_create")
    assert body["latest_invoice"] == first.public_id


def test_a_subscription_with_a_fee_bills_it_in_advance_in_either_mode(api, customer):
    fee = licensed_price(unit_amount=4900)
    body = api.subscribe(customer, fee, expand=["latest_invoice"]).json()
    assert body["billing_mode"]["type"] == "flexible"
    assert (body["latest_invoice"]["amount_due"], body["latest_invoice"]["status"]) == (
        4900,
        "open",
    )
    assert body["items"]["data"][0]["quantity"] == 1


def test_an_unknown_billing_mode_is_refused_and_nothing_is_created(api, customer):
    response = api.subscribe(customer, licensed_price(), billing_mode={"type": "hybrid"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "billing_mode[type]"
    response = api.subscribe(customer, licensed_price(), billing_mode={"type": "flexible", "x": 1})
    assert response.json()["error"]["param"] == "billing_mode[x]"
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_latest_invoice_follows_each_renewal_and_the_final_invoice(api, customer):
    subscription = subscribe(customer, licensed_price(), hypernian_usage_price())
    first = Invoice.objects.get()
    assert api.get(f"/v1/subscriptions/{subscription.public_id}").json()["latest_invoice"] == (
        first.public_id
    )
    renewal = subscription_close_period(subscription=subscription, at=utc(2026, 2, 1))
    body = api.get(
        f"/v1/subscriptions/{subscription.public_id}", {"expand": ["latest_invoice"]}
    ).json()
    draft = body["latest_invoice"]
    assert (draft["id"], draft["status"]) == (renewal.public_id, "draft")
    # A draft in its grace period says when it finalizes on its own.
    assert draft["automatically_finalizes_at"] == int(renewal.finalize_after.timestamp())
    assert draft["total_excluding_tax"] == draft["total"] == renewal.total
    assert draft["subtotal_excluding_tax"] == draft["subtotal"] == renewal.subtotal

    # Canceled with invoice_now: the final invoice is the latest.
    send_usage(price_of(subscription), customer, 10, timestamp=utc(2026, 2, 5))
    with clock.frozen_at(utc(2026, 2, 10)):
        subscription_cancel_now(subscription=subscription, invoice_now=True)
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    body = api.get(f"/v1/subscriptions/{subscription.public_id}").json()
    assert (body["status"], body["latest_invoice"]) == ("canceled", final.public_id)
    assert body["cancellation_details"]["reason"] == "cancellation_requested"


def price_of(subscription):
    return next(item.price for item in subscription.items.all() if item.price.is_metered)


def test_a_finalized_invoice_no_longer_finalizes_automatically(api, customer):
    subscription = subscribe(customer, licensed_price())
    first = api.get("/v1/invoices", {"subscription": subscription.public_id}).json()["data"][0]
    assert (first["status"], first["automatically_finalizes_at"]) == ("open", None)


def test_the_preview_is_a_complete_invoice_with_a_preview_id(api, customer):
    price = hypernian_usage_price()
    subscription = subscribe(customer, licensed_price(unit_amount=20000), price)
    send_usage(price, customer, 150000, timestamp=JAN_1 + dt.timedelta(days=3))
    with clock.frozen_at(JAN_1 + dt.timedelta(days=10)):
        preview = api.post("/v1/invoices/create_preview", {"customer": customer.public_id}).json()
    assert preview["id"] == "upcoming_in_" + subscription.public_id.removeprefix("sub_")
    assert preview["lines"]["url"] == f"/v1/invoices/{preview['id']}/lines"
    assert preview["status_transitions"] == {
        "finalized_at": None,
        "marked_uncollectible_at": None,
        "paid_at": None,
        "voided_at": None,
    }
    assert [line["invoice"] for line in preview["lines"]["data"]] == [preview["id"]] * 2
    assert preview["total_excluding_tax"] == preview["total"] == 25000
    assert preview["automatically_finalizes_at"] is None
    # The seller, as GET /v1/account describes it (BILLING_SELLER_NAME, BILLING_SELLER_COUNTRY).
    assert (preview["account_name"], preview["account_country"]) == ("Usage Billing", "US")
