"""The line planner: one answer to "what goes on the next invoice?"."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_site import clock
from invoicing.models import Invoice
from invoicing.periods import Period
from invoicing.selectors import invoice_preview
from invoicing.services import ItemInput, subscription_create
from invoicing.services.lines import PlanItem, plan_period_lines
from invoicing.services.subscriptions import subscription_close_period
from tests.factories import CustomerFactory, hypernian_usage_price, licensed_price

UTC = dt.UTC
JAN = Period(dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 2, 1, tzinfo=UTC))
FEB = Period(dt.datetime(2026, 2, 1, tzinfo=UTC), dt.datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
def prices(db):
    return licensed_price(unit_amount=20000), hypernian_usage_price()


def _items(prices, seats=3):
    fee, usage = prices
    return [PlanItem(1, "si_fee", fee, seats), PlanItem(2, "si_usage", usage, 1)]


def test_fees_in_advance_and_usage_in_arrears_in_item_order(prices):
    lines = plan_period_lines(
        items=_items(prices),
        usage_period=JAN,
        usage={2: Decimal("150000.4")},
        fee_period=FEB,
    )
    assert [(line.kind, line.period, line.quantity, line.amount) for line in lines] == [
        ("licensed", FEB, Decimal(3), 60000),
        # 50,000.4 tokens past the free 100,000 at 0.1 cent: 5,000.04 cents, rounded once.
        ("metered", JAN, Decimal("150000.4"), 5000),
    ]
    assert lines[1].unrounded_amount == Decimal("5000.04")
    assert [line.description for line in lines] == [
        "3 x Product 0 (Feb 1, 2026 to Feb 28, 2026)".replace("Product 0", prices[0].display_name),
        "Hypernian: usage Jan 1, 2026 to Jan 31, 2026",
    ]


def test_an_ending_subscription_bills_usage_only_and_missing_usage_is_zero(prices):
    lines = plan_period_lines(items=_items(prices), usage_period=JAN, usage={}, fee_period=None)
    assert [(line.kind, line.quantity, line.amount) for line in lines] == [
        ("metered", Decimal(0), 0)
    ]


def test_the_first_invoice_bills_fees_only_and_negative_usage_bills_nothing(prices):
    fees = plan_period_lines(items=_items(prices), usage_period=None, usage={}, fee_period=JAN)
    assert [(line.kind, line.amount) for line in fees] == [("licensed", 60000)]
    corrected = plan_period_lines(
        items=_items(prices), usage_period=JAN, usage={2: Decimal(-5)}, fee_period=None
    )
    assert [(line.quantity, line.amount) for line in corrected] == [(Decimal(0), 0)]


def test_the_preview_words_an_invoice_that_does_not_exist_yet(prices):
    lines = plan_period_lines(
        items=_items(prices), usage_period=JAN, usage={}, fee_period=FEB, preview=True
    )
    assert [line.description for line in lines] == [
        f"3 x {prices[0].display_name} (next period)",
        "Hypernian: usage so far",
    ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tokens=st.lists(st.integers(min_value=0, max_value=400_000), max_size=4),
    seats=st.integers(min_value=1, max_value=50),
)
def test_the_preview_at_period_end_is_the_invoice_the_close_writes(api, prices, tokens, seats):
    fee, usage = prices
    customer = CustomerFactory()
    with clock.frozen_at(JAN.start):
        subscription = subscription_create(
            customer=customer, items=[ItemInput(price=fee, quantity=seats), ItemInput(price=usage)]
        )
    with clock.frozen_at(JAN.end - dt.timedelta(minutes=1)):
        for index, value in enumerate(tokens):
            response = api.post(
                "/v1/billing/meter_events",
                {
                    "event_name": usage.meter.event_name,
                    "payload[stripe_customer_id]": customer.public_id,
                    "payload[value]": str(value),
                    "timestamp": str(int((JAN.start + dt.timedelta(days=index)).timestamp())),
                },
            )
            assert response.status_code == 200, response.json()
    with clock.frozen_at(JAN.end):
        preview = invoice_preview(customer=customer, subscription=subscription)
        invoice = subscription_close_period(subscription=subscription, at=JAN.end)
    assert isinstance(invoice, Invoice)
    written = [
        (line.kind, line.quantity, line.amount, line.period_start, line.period_end)
        for line in invoice.lines.order_by("pk")
    ]
    previewed = [
        (line.kind, line.quantity, line.amount, line.period.start, line.period.end)
        for line in preview.lines
    ]
    assert written == previewed
    assert (
        invoice.total
        == preview.total
        == seats * 20000 + sum(line.amount for line in preview.lines if line.kind == "metered")
    )
