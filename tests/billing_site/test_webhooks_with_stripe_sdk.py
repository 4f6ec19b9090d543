"""A billing cycle seen from the customer's own systems: a real HTTP receiver, the official
`stripe` SDK, no broker (the embedded default).

The SDK creates the endpoint; a customer subscribes on a test clock, uses the product, the period
closes, the renewal is finalized and paid. Nothing is sent while the API answers; the delivery
job (`run_billing`) then POSTs every event, and every body verifies with the SDK's
`Webhook.construct_event` with the endpoint's secret, while a body altered by one byte does not.
`Event.list` lists exactly the events delivered.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import stripe
from django.core.management import call_command

from billing_site.models import Event, WebhookDelivery
from invoicing.demo import seed_catalog
from tests.billing_site.event_shapes import assert_event_shape, assert_stripe_shape

pytestmark = pytest.mark.django_db(transaction=True)


def ts(*args) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


@pytest.fixture
def client(live_server):
    from billing_site.services import api_key_create

    _, secret = api_key_create(name="webhooks")
    return stripe.StripeClient(
        secret,
        base_addresses={"api": live_server.url, "meter_events": live_server.url},
        max_network_retries=0,
    )


@pytest.fixture
def catalog(db):
    seed_catalog()
    from catalog.models import Price

    return {price.lookup_key: price.public_id for price in Price.objects.all()}


def _advance(client, test_clock, frozen_time):
    client.v1.test_helpers.test_clocks.advance(test_clock, {"frozen_time": frozen_time})
    assert client.v1.test_helpers.test_clocks.retrieve(test_clock).status == "ready"


def _run_a_billing_cycle(client, catalog) -> dict[str, str]:
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": ts(2026, 1, 1)})
    customer = client.v1.customers.create({"name": "Northwind", "test_clock": test_clock.id})
    subscription = client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [
                {"price": catalog["hypernian_monthly_fee"]},
                {"price": catalog["hypernian_api_tokens"]},
            ],
        },
        {"idempotency_key": "subscribe-northwind"},
    )
    _advance(client, test_clock.id, ts(2026, 1, 16))
    client.v1.billing.meter_events.create(
        {
            "event_name": "hypernian_api_tokens",
            "payload": {"stripe_customer_id": customer.id, "value": "150000"},
            "timestamp": ts(2026, 1, 10),
            "identifier": "jan",
        }
    )
    # Past the period end and the one-hour grace period: the renewal is closed and finalized.
    _advance(client, test_clock.id, ts(2026, 2, 1, 2))
    renewal = client.v1.invoices.list(
        {"subscription": subscription.id, "status": "open", "limit": 1}
    ).data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_due == 25000
    client.v1.invoices.pay(renewal.id, {"paid_out_of_band": True})
    return {"customer": customer.id, "subscription": subscription.id, "renewal": renewal.id}


def test_every_event_of_a_billing_cycle_reaches_the_receiver_signed_as_stripe_signs(
    client, catalog, receiver
):
    # The catalog's own events were recorded before the endpoint existed: never sent to it.
    earlier = {event.id for event in client.v1.events.list({"limit": 100}).auto_paging_iter()}
    endpoint = client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["*"], "description": "Provisioning"}
    )
    secret = endpoint.secret
    assert secret.startswith("whsec_")
    assert_stripe_shape("webhook_endpoint", endpoint.to_dict())
    # The secret is shown once: never again.
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    assert all("secret" not in e.to_dict() for e in client.v1.webhook_endpoints.list().data)

    ids = _run_a_billing_cycle(client, catalog)
    # The API and the test-clock advance answered without sending anything.
    assert receiver.requests == []

    call_command("run_billing")

    delivered = []
    for request in receiver.requests:
        assert request.headers["Content-Type"].startswith("application/json")
        event = stripe.Webhook.construct_event(
            request.body, request.headers["Stripe-Signature"], secret
        )
        delivered.append(event)
        assert_event_shape(json.loads(request.body))
        # One byte changed anywhere, and the signature no longer matches.
        altered = request.body.replace(b'"livemode": false', b'"livemode": falsf', 1)
        assert altered != request.body
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(altered, request.headers["Stripe-Signature"], secret)

    types = [event.type for event in delivered]
    assert {
        "customer.created",
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.upcoming",
        "customer.subscription.updated",
        "invoice.paid",
    } <= set(types)
    # Delivery is unordered (several at a time), as Stripe's: the list has the order.
    listed = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
    renewal_events = [e.type for e in reversed(listed) if e.data.object.id == ids["renewal"]]
    assert renewal_events == ["invoice.created", "invoice.finalized", "invoice.paid"]
    renewed = next(e for e in delivered if e.type == "customer.subscription.updated")
    assert renewed.data.previous_attributes["current_period_start"] == ts(2026, 1, 1)
    assert renewed.data.object.current_period_start == ts(2026, 2, 1)
    upcoming = [e for e in delivered if e.type == "invoice.upcoming"]
    assert [e.data.object.period_end for e in upcoming] == [ts(2026, 2, 1)]
    assert upcoming[0].data.object.amount_due == 25000
    # Changes made by a request name it; those of the clock's own advance don't.
    subscribed = next(e for e in delivered if e.type == "customer.subscription.created")
    assert subscribed.request.id.startswith("req_")
    assert subscribed.request.idempotency_key == "subscribe-northwind"
    assert (
        next(e for e in delivered if e.type == "test_helpers.test_clock.ready").request.id is None
    )

    # Stripe's list shows the same events, newest first.
    assert {event.id for event in listed} - earlier == {event.id for event in delivered}
    assert len(delivered) == len(listed) - len(earlier)
    assert [event.created for event in listed] == sorted(
        (event.created for event in listed), reverse=True
    )
    assert {event.pending_webhooks for event in listed} == {0}
    assert all(isinstance(client.v1.events.retrieve(e.id), stripe.Event) for e in listed[:3])

    # Delivered once; the next runs have nothing left to send.
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    call_command("run_billing")
    assert len(receiver.requests) == len(delivered) == Event.objects.count() - len(earlier)


def test_an_endpoint_receives_only_the_types_it_enabled(client, catalog, receiver):
    endpoint = client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["invoice.paid", "customer.subscription.created"]}
    )
    _run_a_billing_cycle(client, catalog)
    call_command("run_billing")
    types = [
        stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], endpoint.secret).type
        for r in receiver.requests
    ]
    # The first invoice (20,000, charged automatically) stays open; the renewal is paid.
    assert sorted(types) == ["customer.subscription.created", "invoice.paid"]
