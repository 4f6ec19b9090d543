"""Every state change records its Stripe-shaped event, in the transaction of the change.

Each event's `data.object` is what the API shows for that object at that moment; `*.updated`
events carry only the changed fields' former values; a change made by an API request names
it (and its idempotency key), one made by a job or a person in the admin names none.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing_site import clock
from billing_site.models import Event, WebhookAttempt, WebhookDelivery
from credits.services import credit_grant_create
from invoicing.models import Customer, Subscription
from invoicing.services import (
    ItemInput,
    customer_update,
    invoice_create,
    invoice_finalize,
    invoice_item_create,
    subscription_create,
)
from invoicing.services.notices import invoice_notices_send
from tests.billing_site.event_shapes import assert_event_shape
from tests.factories import CustomerFactory, MeterFactory, ProductFactory, licensed_price
from tests.helpers import ok_body

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def ts(*args) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp())


def _events(*types: str) -> list[dict]:
    """The recorded events (oldest first), as GET /v1/events/{id} shows them."""
    events = Event.objects.order_by("pk")
    if types:
        events = events.filter(type__in=types)
    return [
        {
            "type": event.type,
            "object": event.data["object"],
            "previous": event.data.get("previous_attributes"),
            "request": event.request_id,
            "idempotency_key": event.request_idempotency_key,
        }
        for event in events
    ]


def _changed(previous: dict) -> dict:
    """previous_attributes without `updated`, which changes too unless within the second."""
    return {key: value for key, value in previous.items() if key != "updated"}


def _new_events(since: int) -> list[str]:
    return list(Event.objects.filter(pk__gt=since).order_by("pk").values_list("type", flat=True))


def _last_pk() -> int:
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_customer_events_carry_the_customer_as_the_api_shows_it(api):
    created = ok_body(api.post("/v1/customers", {"name": "Acme", "email": "ap@acme.test"}))
    updated = ok_body(api.post(f"/v1/customers/{created['id']}", {"name": "Acme Inc."}))
    # Sending the same values again changes nothing, so no event.
    ok_body(api.post(f"/v1/customers/{created['id']}", {"name": "Acme Inc."}))
    ok_body(api.delete(f"/v1/customers/{created['id']}"))

    events = _events()
    assert [e["type"] for e in events] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    assert events[0]["object"] == created
    assert events[1]["object"] == updated
    assert events[1]["previous"] == {"name": "Acme"}
    # The deleted event shows the customer as it was, not the API's deleted stub.
    assert events[2]["object"] == updated
    for event in Event.objects.all():
        assert_event_shape(ok_body(api.get(f"/v1/events/{event.public_id}")))


def test_an_api_request_is_named_with_its_idempotency_key_and_a_replay_records_nothing(api):
    response = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="create-acme-1")
    assert response["Request-Id"].startswith("req_")
    replay = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="create-acme-1")
    assert replay["Idempotent-Replayed"] == "true"
    [event] = _events()
    assert (event["request"], event["idempotency_key"]) == (response["Request-Id"], "create-acme-1")
    listed = ok_body(api.get("/v1/events"))["data"][0]
    assert listed["request"] == {"id": response["Request-Id"], "idempotency_key": "create-acme-1"}


def test_catalog_events(api):
    meter = ok_body(
        api.post(
            "/v1/billing/meters",
            {
                "display_name": "Tokens",
                "event_name": "tokens",
                "default_aggregation": {"formula": "sum"},
            },
        )
    )
    ok_body(api.post(f"/v1/billing/meters/{meter['id']}", {"display_name": "API tokens"}))
    ok_body(api.post(f"/v1/billing/meters/{meter['id']}/deactivate"))
    reactivated = ok_body(api.post(f"/v1/billing/meters/{meter['id']}/reactivate"))
    product = ok_body(api.post("/v1/products", {"name": "Widget"}))
    price = ok_body(
        api.post(
            "/v1/prices",
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": 2000,
                "lookup_key": "widget",
                "recurring": {"interval": "month"},
            },
        )
    )
    # A second price takes the lookup key over: the first one is updated too.
    second = ok_body(
        api.post(
            "/v1/prices",
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": 2500,
                "lookup_key": "widget",
                "transfer_lookup_key": True,
            },
        )
    )
    ok_body(api.post(f"/v1/prices/{second['id']}", {"nickname": "Widget 2026"}))
    other = ok_body(api.post("/v1/products", {"name": "Gadget"}))
    archived = ok_body(api.post(f"/v1/products/{other['id']}", {"active": False}))
    ok_body(api.delete(f"/v1/products/{other['id']}"))

    assert [(e["type"], e["previous"] and _changed(e["previous"])) for e in _events()] == [
        ("billing.meter.created", None),
        ("billing.meter.updated", {"display_name": "Tokens"}),
        ("billing.meter.deactivated", None),
        ("billing.meter.reactivated", None),
        ("product.created", None),
        ("price.created", None),
        ("price.updated", {"lookup_key": "widget"}),
        ("price.created", None),
        ("price.updated", {"nickname": None}),
        ("product.created", None),
        ("product.updated", {"active": True}),
        ("product.deleted", None),
    ]
    events = _events()
    assert events[3]["object"] == reactivated
    assert events[5]["object"] == price
    assert events[6]["object"]["id"] == price["id"] and events[6]["object"]["lookup_key"] is None
    assert events[11]["object"] == archived


def test_subscription_and_invoice_events(api):
    customer = CustomerFactory()
    price = licensed_price()
    since = _last_pk()
    subscription = ok_body(
        api.post(
            "/v1/subscriptions",
            {"customer": customer.public_id, "items": [{"price": price.public_id}]},
        )
    )
    # The first invoice is billed at once; charged automatically, it stays open.
    assert _new_events(since) == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
    ]
    since = _last_pk()
    updated = ok_body(
        api.post(f"/v1/subscriptions/{subscription['id']}", {"cancel_at_period_end": True})
    )
    [event] = _events("customer.subscription.updated")
    assert event["object"] == updated
    assert event["previous"] == {
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "feedback_option": None,
            "reason": None,
        },
    }
    ok_body(api.delete(f"/v1/subscriptions/{subscription['id']}"))
    assert _new_events(since) == ["customer.subscription.updated", "customer.subscription.deleted"]

    since = _last_pk()
    invoice = ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}))
    item = ok_body(
        api.post(
            "/v1/invoiceitems",
            {"customer": customer.public_id, "invoice": invoice["id"], "amount": 5000},
        )
    )
    ok_body(api.post(f"/v1/invoices/{invoice['id']}", {"description": "Setup"}))
    ok_body(api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    ok_body(api.post(f"/v1/invoices/{invoice['id']}/mark_uncollectible"))
    voided = ok_body(api.post(f"/v1/invoices/{invoice['id']}/void"))
    assert _new_events(since) == [
        "invoice.created",
        "invoiceitem.created",
        "invoice.updated",
        "invoice.updated",
        "invoice.finalized",
        "invoice.marked_uncollectible",
        "invoice.voided",
    ]
    events = _events("invoiceitem.created", "invoice.updated", "invoice.voided")
    assert events[0]["object"] == item
    assert events[1]["previous"]["amount_due"] == 0 and events[1]["object"]["amount_due"] == 5000
    assert events[2]["previous"] == {"description": None}
    assert events[3]["object"] == voided

    since = _last_pk()
    draft = ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}))
    draft_item = ok_body(
        api.post(
            "/v1/invoiceitems",
            {"customer": customer.public_id, "invoice": draft["id"], "amount": 700},
        )
    )
    ok_body(api.delete(f"/v1/invoices/{draft['id']}"))
    assert _new_events(since)[-2:] == ["invoiceitem.deleted", "invoice.deleted"]
    deleted_item, deleted = _events("invoiceitem.deleted", "invoice.deleted")
    assert deleted_item["object"] == draft_item
    assert (deleted["object"]["id"], deleted["object"]["total"]) == (draft["id"], 700)
    for event in Event.objects.all():
        assert_event_shape(ok_body(api.get(f"/v1/events/{event.public_id}")))


def test_credit_events_name_every_ledger_entry(api):
    customer = CustomerFactory()
    grant = ok_body(
        api.post(
            "/v1/billing/credit_grants",
            {
                "customer": customer.public_id,
                "category": "paid",
                "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
                "applicability_config": {"scope": {"price_type": "metered"}},
            },
        )
    )
    voided = ok_body(api.post(f"/v1/billing/credit_grants/{grant['id']}/void"))
    events = _events()
    assert [e["type"] for e in events] == [
        "billing.credit_grant.created",
        "billing.credit_balance_transaction.created",
        "billing.credit_balance_transaction.created",
        "billing.credit_grant.updated",
    ]
    assert events[0]["object"] == grant
    assert [e["object"]["credit"] is not None for e in events[1:3]] == [True, False]
    assert events[2]["object"]["debit"]["type"] == "credits_voided"
    assert events[3]["object"] == voided
    assert _changed(events[3]["previous"]) == {"voided_at": None}
    for event in Event.objects.all():
        assert_event_shape(ok_body(api.get(f"/v1/events/{event.public_id}")))


def test_test_clock_events(api, django_capture_on_commit_callbacks):
    test_clock = ok_body(api.post("/v1/test_helpers/test_clocks", {"frozen_time": ts(2026, 1, 1)}))
    with django_capture_on_commit_callbacks(execute=True):
        advancing = ok_body(
            api.post(
                f"/v1/test_helpers/test_clocks/{test_clock['id']}/advance",
                {"frozen_time": ts(2026, 1, 2)},
            )
        )
    ok_body(api.delete(f"/v1/test_helpers/test_clocks/{test_clock['id']}"))
    events = _events()
    assert [e["type"] for e in events] == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.deleted",
    ]
    assert events[1]["object"] == advancing
    assert (events[2]["object"]["status"], events[2]["object"]["frozen_time"]) == (
        "ready",
        ts(2026, 1, 2),
    )
    # The advance ran after the request's commit: its own events name no request.
    assert [bool(e["request"]) for e in events] == [True, True, False, True]
    assert events[3]["object"]["frozen_time"] == ts(2026, 1, 2)


def test_changes_by_jobs_and_staff_record_the_same_events_without_a_request(operator, client):
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        customer = CustomerFactory()
        subscription = subscription_create(
            customer=customer, items=[ItemInput(price=licensed_price())], actor="staff"
        )
    since = _last_pk()
    with clock.frozen_at(dt.datetime(2026, 4, 1, 2, tzinfo=UTC)):
        call_command("run_billing")
    assert _new_events(since) == [
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
    ]
    renewal = Event.objects.get(type="customer.subscription.updated")
    assert renewal.data["previous_attributes"]["current_period_end"] == ts(2026, 4, 1)
    assert renewal.data["object"]["id"] == subscription.public_id
    assert set(Event.objects.values_list("request_id", flat=True)) == {None}

    # A person in the admin: the service is the same, so is the event.
    customer_update(customer=Customer.objects.get(pk=customer.pk), name="Renamed by staff")
    event = Event.objects.get(type="customer.updated")
    assert (event.request_id, event.data["previous_attributes"]) == (
        None,
        {"name": customer.name},
    )


def test_invoice_upcoming_is_sent_days_before_each_renewal_once(settings):
    settings.BILLING_INVOICE_UPCOMING_DAYS = 3
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        monthly = subscription_create(
            customer=CustomerFactory(), items=[ItemInput(price=licensed_price(unit_amount=900))]
        )
        ending = subscription_create(
            customer=CustomerFactory(), items=[ItemInput(price=licensed_price())]
        )
        Subscription.objects.filter(pk=ending.pk).update(cancel_at_period_end=True)
        subscription_create(
            customer=CustomerFactory(),
            items=[ItemInput(price=licensed_price(interval="day"))],
        )

    def upcoming_at(*args) -> list[dict]:
        with clock.frozen_at(dt.datetime(*args, tzinfo=UTC)):
            call_command("run_billing")
        return [e.data["object"] for e in Event.objects.filter(type="invoice.upcoming")]

    assert upcoming_at(2026, 3, 28, 23) == []
    [notice] = upcoming_at(2026, 3, 29, 0, 1)
    assert (notice["subscription"], notice["amount_due"], notice["period_start"]) == (
        monthly.public_id,
        900,
        ts(2026, 3, 1),
    )
    assert len(upcoming_at(2026, 3, 30)) == 1  # once per period
    # And again for the next period (the first notice is past the 30 days events are kept).
    assert [n["period_start"] for n in upcoming_at(2026, 4, 29, 0, 1)] == [ts(2026, 4, 1)]


def test_invoice_overdue_is_sent_once_when_the_due_date_passes():
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        customer = CustomerFactory()
        invoice = invoice_create(customer=customer, currency="usd", days_until_due=7)
        invoice_item_create(invoice=invoice, description="Setup", amount=1000)
        invoice = invoice_finalize(invoice=invoice, actor="staff")
        paid = invoice_create(customer=customer, currency="usd", days_until_due=7)
        invoice_item_create(invoice=paid, description="Paid", amount=1000, quantity=Decimal(1))
        api_paid = invoice_finalize(invoice=paid, actor="staff")
    from invoicing.services import invoice_pay

    with clock.frozen_at(start):
        invoice_pay(invoice=api_paid, actor="staff")
    for day in (7, 8, 9):
        with clock.frozen_at(start + dt.timedelta(days=day, seconds=1)):
            invoice_notices_send()
    [overdue] = Event.objects.filter(type="invoice.overdue")
    assert overdue.data["object"]["id"] == invoice.public_id
    assert overdue.data["object"]["due_date"] == ts(2026, 3, 8)


def test_events_are_kept_30_days_with_their_delivery_log(receiver):
    from billing_site.events.endpoints import webhook_endpoint_create

    webhook_endpoint_create(url=receiver.url, enabled_events=["*"])
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        MeterFactory()
        ProductFactory()
        from catalog.services import product_create

        product_create(name="Old")
        call_command("run_billing")
    with clock.frozen_at(start + dt.timedelta(days=29)):
        product_create(name="Recent")
        call_command("run_billing")
    assert WebhookAttempt.objects.count() == 2
    with clock.frozen_at(start + dt.timedelta(days=30, seconds=1)):
        call_command("run_billing")
    assert list(Event.objects.values_list("data__object__name", flat=True)) == ["Recent"]
    assert WebhookDelivery.objects.count() == WebhookAttempt.objects.count() == 1


def test_a_credit_grant_made_by_a_service_records_its_events(receiver):
    grant = credit_grant_create(
        customer=CustomerFactory(), amount=100, currency="usd", category="promotional"
    )
    assert list(Event.objects.order_by("pk").values_list("type", "object_id")) == [
        ("billing.credit_grant.created", grant.public_id),
        (
            "billing.credit_balance_transaction.created",
            grant.transactions.get().public_id,
        ),
    ]


def test_other_side_effects_hang_from_the_bus_and_run_only_after_commit(
    django_capture_on_commit_callbacks,
):
    from django.db import transaction

    from billing_site.events.recording import event_committed
    from invoicing.services import customer_create

    heard = []

    def listener(sender, event, **kwargs):
        heard.append(event.type)

    event_committed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            customer_create(name="Heard")
            assert heard == []  # not before commit
        assert heard == ["customer.created"]
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_create(name="Rolled back")
            raise RuntimeError
        assert heard == ["customer.created"]
    finally:
        event_committed.disconnect(listener)
