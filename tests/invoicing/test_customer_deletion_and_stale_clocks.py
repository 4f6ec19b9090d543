"""Faults in the billing cycle: deleted customers stop being billed, stuck clock advances resume,
and cancelling at a period's first instant bills nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from billing_site import clock
from invoicing.models import Invoice, Subscription, TestClock
from invoicing.services import (
    ItemInput,
    customer_delete,
    subscription_cancel_now,
    subscription_create,
)
from tests.factories import CustomerFactory, hypernian_usage_price, licensed_price
from tests.helpers import NOV_1, OCT_1

UTC = dt.UTC


def _subscribed_customer(**customer):
    customer = CustomerFactory(**customer)
    with clock.frozen_at(OCT_1):
        subscription = subscription_create(
            customer=customer,
            items=[
                ItemInput(price=licensed_price(unit_amount=999)),
                ItemInput(hypernian_usage_price()),
            ],
        )
    return customer, subscription


@pytest.mark.django_db
def test_deleting_a_customer_through_the_api_cancels_its_subscriptions_and_billing_stops(api):
    customer, subscription = _subscribed_customer()
    with clock.frozen_at(OCT_1 + dt.timedelta(days=10)):
        response = api.delete(f"/v1/customers/{customer.public_id}")
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == (
        Subscription.Status.CANCELED,
        OCT_1 + dt.timedelta(days=10),
    )
    # The period end passes: no renewal is drafted, no number is used for a deleted customer.
    with clock.frozen_at(NOV_1 + dt.timedelta(hours=2)):
        call_command("run_billing")
    assert list(Invoice.objects.values_list("billing_reason", flat=True)) == ["subscription_create"]
    listed = api.get("/v1/subscriptions", {"customer": customer.public_id, "status": "all"})
    assert [item["status"] for item in listed.json()["data"]] == ["canceled"]


@pytest.mark.django_db
def test_deleting_with_invoice_now_bills_the_usage_so_far_on_a_final_invoice():
    customer, _ = _subscribed_customer()
    with clock.frozen_at(OCT_1 + dt.timedelta(days=10)):
        customer_delete(customer=customer, invoice_now=True, actor="admin: ops")
    final = Invoice.objects.get(billing_reason="subscription_cancel")
    assert (final.status, final.period_start, final.period_end) == (
        "paid",  # no usage: nothing billed, so paid at once
        OCT_1,
        OCT_1 + dt.timedelta(days=10),
    )
    assert [line.kind for line in final.lines.all()] == ["metered"]
    customer.refresh_from_db()
    assert customer.deleted_at is not None


@pytest.mark.django_db
def test_cancel_with_invoice_now_at_the_period_s_first_instant_bills_nothing():
    _, subscription = _subscribed_customer()
    with clock.frozen_at(OCT_1):
        subscription_cancel_now(subscription=subscription, invoice_now=True)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.CANCELED
    assert not Invoice.objects.filter(billing_reason="subscription_cancel").exists()


@pytest.mark.django_db
def test_cancel_at_the_anchor_instant_through_the_api_is_not_a_server_error(api):
    _, subscription = _subscribed_customer()
    with clock.frozen_at(OCT_1):
        response = api.delete(f"/v1/subscriptions/{subscription.public_id}?invoice_now=true")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "canceled"


def _stuck_clock(started: dt.datetime) -> TestClock:
    """What a worker killed mid-advance leaves behind."""
    test_clock = TestClock.objects.create(
        frozen_time=OCT_1,
        created_at=OCT_1,
        status=TestClock.Status.ADVANCING,
        advance_started_at=started,
    )
    return test_clock


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_clock_advance_killed_with_its_worker_is_taken_over_after_the_staleness_window(api):
    now = dt.datetime(2026, 11, 29, 12, tzinfo=UTC)
    fresh = _stuck_clock(now - dt.timedelta(seconds=30))
    stale = _stuck_clock(now - dt.timedelta(seconds=91))
    customer = CustomerFactory(test_clock=stale)
    with clock.frozen_at(OCT_1):
        subscription_create(
            customer=customer, items=[ItemInput(price=licensed_price(unit_amount=500))]
        )
    target = int((NOV_1 + dt.timedelta(hours=2)).timestamp())
    with clock.frozen_at(now):
        still_running = api.post(
            f"/v1/test_helpers/test_clocks/{fresh.public_id}/advance", {"frozen_time": target}
        )
        resumed = api.post(
            f"/v1/test_helpers/test_clocks/{stale.public_id}/advance", {"frozen_time": target}
        )
    assert still_running.status_code == 400
    assert still_running.json()["error"]["code"] == "test_clock_advancing"
    assert resumed.status_code == 200, resumed.content
    stale.refresh_from_db()
    assert (stale.status, stale.frozen_time) == ("ready", NOV_1 + dt.timedelta(hours=2))
    renewal = Invoice.objects.get(customer=customer, billing_reason="subscription_cycle")
    assert (renewal.status, renewal.total) == ("open", 500)
