"""Both seed plans through a full period on a test clock, with the official `stripe` SDK.

Every invoice is checked to the cent: the first invoice, the mid-period preview, and the renewal
invoice with both lines and their service periods.
"""

from __future__ import annotations

import pytest

from invoicing.models import Invoice, InvoiceEvent
from invoicing.selectors import late_usage
from tests.api_client import (
    sdk_advance,
    sdk_customer_on_test_clock,
    sdk_hypernian_subscriber,
    sdk_subscribe,
    sdk_usage,
)
from tests.helpers import ts
from tests.metering.reference_usage import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


def _lines(invoice):
    return [
        (
            line.description.split(":")[0].split(" (")[0],
            line.amount,
            line.period.start,
            line.period.end,
        )
        for line in invoice.lines.data
    ]


def test_hypernian_flat_fee_plus_token_overage_through_a_period(stripe_client, demo_prices):
    test_clock, customer, subscription = sdk_hypernian_subscriber(stripe_client, demo_prices)
    assert (subscription.current_period_start, subscription.current_period_end) == (
        ts(2026, 1, 1),
        ts(2026, 2, 1),
    )

    # The first invoice bills the flat fee for January in advance.
    [first] = stripe_client.v1.invoices.list({"subscription": subscription.id}).data
    assert (first.status, first.billing_reason, first.number) == (
        "open",
        "subscription_create",
        "INV-0001",
    )
    assert first.amount_due == 20000
    assert _lines(first) == [("1 x Hypernian monthly fee", 20000, ts(2026, 1, 1), ts(2026, 2, 1))]

    sdk_advance(stripe_client, test_clock.id, ts(2026, 1, 16))
    sdk_usage(stripe_client, "hypernian_api_tokens", customer.id, 90000, ts(2026, 1, 10), "jan-a")
    sdk_usage(stripe_client, "hypernian_api_tokens", customer.id, 60000, ts(2026, 1, 15), "jan-b")

    # Mid-period preview: 150,000 tokens so far, 50,000 past the included 100,000 at 0.001 USD.
    preview = stripe_client.v1.invoices.create_preview(
        {"customer": customer.id, "subscription": subscription.id}
    )
    assert preview.amount_due == 25000
    assert [(line.amount, line.period.start, line.period.end) for line in preview.lines.data] == [
        (20000, ts(2026, 2, 1), ts(2026, 3, 1)),
        (5000, ts(2026, 1, 1), ts(2026, 2, 1)),
    ]
    assert Invoice.objects.count() == 1  # the preview saved nothing

    # The period closes; the renewal invoice waits out its grace period as a draft.
    sdk_advance(stripe_client, test_clock.id, ts(2026, 2, 1, 0, 30))
    renewal = stripe_client.v1.invoices.list(
        {"subscription": subscription.id, "status": "draft"}
    ).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.number is None

    # A late event for January, inside the grace period, still counts.
    sdk_usage(
        stripe_client, "hypernian_api_tokens", customer.id, 10000, ts(2026, 1, 31, 23), "jan-late"
    )
    sdk_advance(stripe_client, test_clock.id, ts(2026, 2, 1, 2))
    renewal = stripe_client.v1.invoices.retrieve(renewal.id)
    assert (renewal.status, renewal.number) == ("open", "INV-0002")
    assert sorted(_lines(renewal), key=lambda line: line[2]) == [
        ("Hypernian API tokens", 6000, ts(2026, 1, 1), ts(2026, 2, 1)),
        ("1 x Hypernian monthly fee", 20000, ts(2026, 2, 1), ts(2026, 3, 1)),
    ]
    usage_line = next(line for line in renewal.lines.data if line.amount == 6000)
    assert usage_line.quantity == 160000
    assert [tier["amount_decimal"] for tier in usage_line.tier_breakdown] == ["0", "6000"]
    assert renewal.total == 26000 and renewal.amount_due == 26000

    # After finalization a late event is stored, not billed, and shown to staff.
    sdk_usage(
        stripe_client, "hypernian_api_tokens", customer.id, 7000, ts(2026, 1, 31, 22), "jan-later"
    )
    assert "jan-later" in {event.identifier for event in stored_events()}
    assert stripe_client.v1.invoices.retrieve(renewal.id).total == 26000
    [late] = late_usage()
    assert (late.invoice.public_id, late.late_quantity, late.late_events) == (renewal.id, 7000, 1)

    paid = stripe_client.v1.invoices.pay(renewal.id, {"paid_out_of_band": True})
    assert (paid.status, paid.amount_remaining) == ("paid", 0)
    assert list(
        InvoiceEvent.objects.filter(invoice__public_id=renewal.id).values_list(
            "from_status", "to_status"
        )
    ) == [("draft", "open"), ("open", "paid")]


def test_alpaca_pay_as_you_go_per_hundred_tokens(stripe_client, demo_prices):
    test_clock, customer = sdk_customer_on_test_clock(stripe_client, "Bluebird", ts(2026, 3, 5, 9))
    subscription = sdk_subscribe(stripe_client, customer.id, demo_prices["alpaca_ai_tokens"])
    # Nothing is billed in advance: in flexible billing mode (the default) there is no empty
    # first invoice. (Classic mode's zero invoice: tests/api/test_subscription_billing_mode.py.)
    assert subscription.billing_mode.type == "flexible"
    assert subscription.latest_invoice is None
    assert stripe_client.v1.invoices.list({"subscription": subscription.id}).data == []

    sdk_advance(stripe_client, test_clock.id, ts(2026, 3, 20))
    sdk_usage(stripe_client, "alpaca_ai_tokens", customer.id, 12000, ts(2026, 3, 10), "a")
    sdk_usage(stripe_client, "alpaca_ai_tokens", customer.id, 345, ts(2026, 3, 19), "b")
    preview = stripe_client.v1.invoices.create_preview({"customer": customer.id})
    # 12,345 tokens = 124 packages of 100 (rounded up) x 0.04 USD = 4.96 USD.
    assert preview.amount_due == 496

    sdk_advance(stripe_client, test_clock.id, ts(2026, 4, 5, 12))
    invoices = stripe_client.v1.invoices.list({"subscription": subscription.id}).data
    renewal = next(
        invoice for invoice in invoices if invoice.billing_reason == "subscription_cycle"
    )
    assert renewal.status == "open"
    assert [(line.amount, line.period.start, line.period.end) for line in renewal.lines.data] == [
        (496, ts(2026, 3, 5, 9), ts(2026, 4, 5, 9))
    ]
    assert stripe_client.v1.subscriptions.retrieve(subscription.id).latest_invoice == renewal.id
