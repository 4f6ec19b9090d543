"""A billing cycle seen from the customer's own systems: a real HTTP receiver, the official
`stripe` SDK, no broker (the embedded default).

The SDK creates the endpoint; a customer subscribes on a test clock, uses the product, the period
closes, the renewal is finalized and paid. Nothing is sent while the API answers; the delivery
job (`run_billing`) then POSTs every event, and every body verifies with the SDK's
`Webhook.construct_event` with the endpoint's secret, while a body altered by one byte does not.
`Event.list` lists exactly the events delivered.
"""

from __future__ import annotations

import json

import pytest
import stripe
from django.core.management import call_command

from billing_site.models import Event, WebhookDelivery
from tests.api_client import (
    sdk_advance,
    sdk_hypernian_subscriber,
    sdk_usage,
)
from tests.billing_site.event_shapes import assert_event_shape, assert_stripe_shape
from tests.helpers import ts

pytestmark = pytest.mark.django_db(transaction=True)


def _run_a_billing_cycle(stripe_client, demo_prices) -> dict[str, str]:
    test_clock, customer, subscription = sdk_hypernian_subscriber(
        stripe_client, demo_prices, idempotency_key="subscribe-northwind"
    )
    sdk_advance(stripe_client, test_clock.id, ts(2026, 1, 16))
    sdk_usage(stripe_client, "hypernian_api_tokens", customer.id, 150000, ts(2026, 1, 10), "jan")
    # Past the period end and the one-hour grace period: the renewal is closed and finalized.
    sdk_advance(stripe_client, test_clock.id, ts(2026, 2, 1, 2))
    renewal = stripe_client.v1.invoices.list(
        {"subscription": subscription.id, "status": "open", "limit": 1}
    ).data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_due == 25000
    stripe_client.v1.invoices.pay(renewal.id, {"paid_out_of_band": True})
    return {"customer": customer.id, "subscription": subscription.id, "renewal": renewal.id}


def test_every_event_of_a_billing_cycle_reaches_the_receiver_signed_as_stripe_signs(
    stripe_client, demo_prices, receiver
):
    # The demo catalog's own events were recorded before the endpoint existed: never sent to it.
    earlier = {
        event.id for event in stripe_client.v1.events.list({"limit": 100}).auto_paging_iter()
    }
    endpoint = stripe_client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["*"], "description": "Provisioning"}
    )
    secret = endpoint.secret
    assert secret.startswith("whsec_")
    assert_stripe_shape("webhook_endpoint", endpoint.to_dict())
    # The secret is shown once: never again.
    assert "secret" not in stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    assert all("secret" not in e.to_dict() for e in stripe_client.v1.webhook_endpoints.list().data)

    ids = _run_a_billing_cycle(stripe_client, demo_prices)
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
    listed = list(stripe_client.v1.events.list({"limit": 100}).auto_paging_iter())
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
    assert all(isinstance(stripe_client.v1.events.retrieve(e.id), stripe.Event) for e in listed[:3])

    # Delivered once; the next runs have nothing left to send.
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    call_command("run_billing")
    assert len(receiver.requests) == len(delivered) == Event.objects.count() - len(earlier)


def test_an_endpoint_receives_only_the_types_it_enabled(stripe_client, demo_prices, receiver):
    endpoint = stripe_client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["invoice.paid", "customer.subscription.created"]}
    )
    _run_a_billing_cycle(stripe_client, demo_prices)
    call_command("run_billing")
    types = [
        stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], endpoint.secret).type
        for r in receiver.requests
    ]
    # The first invoice (20,000, charged automatically) stays open; the renewal is paid.
    assert sorted(types) == ["customer.subscription.created", "invoice.paid"]
