"""`POST /v2/billing/meter_events` and `POST /v2/billing/meter_event_adjustments`, through the
official SDK's v2 stripe_client (JSON bodies, RFC 3339 times) and as raw JSON."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import stripe

from billing_site import clock
from metering.models import MeterEvent, MeterEventAdjustment
from metering.store import usage
from tests.factories import MeterFactory

pytestmark = pytest.mark.django_db(transaction=True)

PERIOD = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="alpaca_ai_tokens")


def _usage(meter, customer) -> Decimal:
    return usage(meter=meter, customer_id=customer.pk, start=PERIOD[0], end=PERIOD[1])


def test_sdk_records_one_event_and_cancels_it(stripe_client, meter, customer):
    moment = clock.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    event = stripe_client.v2.billing.meter_events.create(
        {
            "event_name": "alpaca_ai_tokens",
            "payload": {"stripe_customer_id": customer.public_id, "value": "25"},
            "identifier": "v2-req-1",
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
        }
    )
    assert event.object == "v2.billing.meter_event"
    assert event.identifier == "v2-req-1"
    assert event.payload.to_dict() == {"stripe_customer_id": customer.public_id, "value": "25"}
    assert dt.datetime.fromisoformat(event.timestamp) == moment
    assert isinstance(event.created, str) and event.created.endswith("Z")
    stripe_client.v2.billing.meter_events.create(
        {
            "event_name": "alpaca_ai_tokens",
            "payload": {"stripe_customer_id": customer.public_id, "value": "5"},
        }
    )
    assert _usage(meter, customer) == 30

    adjustment = stripe_client.v2.billing.meter_event_adjustments.create(
        {"event_name": "alpaca_ai_tokens", "type": "cancel", "cancel": {"identifier": "v2-req-1"}}
    )
    assert adjustment.object == "v2.billing.meter_event_adjustment"
    assert adjustment.status == "complete"
    assert adjustment.cancel.identifier == "v2-req-1"
    assert adjustment.id.startswith("mtr_adj_")
    assert _usage(meter, customer) == 5
    assert (
        MeterEventAdjustment.objects.get().created_by == "api (sdk tests)"
    )  # the key of the stripe_client fixture


def test_sdk_gets_the_specific_refusal_and_nothing_is_stored(stripe_client, meter, customer):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v2.billing.meter_events.create(
            {"event_name": "alpaca_ai_tokens", "payload": {"value": "1"}}
        )
    assert refused.value.http_status == 400
    assert refused.value.code == "meter_event_no_customer_defined"
    assert refused.value.json_body["error"]["type"] == "invalid_request_error"

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v2.billing.meter_events.create(
            {
                "event_name": "alpaca_ai_tokens",
                "payload": {"stripe_customer_id": customer.public_id, "value": "1"},
                "timestamp": "yesterday",
            }
        )
    assert refused.value.json_body["error"]["param"] == "timestamp"
    assert "RFC 3339" in refused.value.user_message
    assert not MeterEvent.objects.exists()


def test_a_duplicate_identifier_is_refused_and_counted_once(stripe_client, meter, customer):
    body = {
        "event_name": "alpaca_ai_tokens",
        "payload": {"stripe_customer_id": customer.public_id, "value": "7"},
        "identifier": "once",
    }
    stripe_client.v2.billing.meter_events.create(body)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v2.billing.meter_events.create(body)
    assert refused.value.code == "duplicate_meter_event"
    assert _usage(meter, customer) == 7


def test_cancelling_an_unknown_or_already_cancelled_event_is_refused(
    stripe_client, meter, customer
):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v2.billing.meter_event_adjustments.create(
            {"event_name": "alpaca_ai_tokens", "type": "cancel", "cancel": {"identifier": "nope"}}
        )
    assert refused.value.code == "resource_missing"
    assert refused.value.json_body["error"]["param"] == "cancel[identifier]"

    stripe_client.v2.billing.meter_events.create(
        {
            "event_name": "alpaca_ai_tokens",
            "payload": {"stripe_customer_id": customer.public_id, "value": "1"},
            "identifier": "twice",
        }
    )
    cancel = {"event_name": "alpaca_ai_tokens", "type": "cancel", "cancel": {"identifier": "twice"}}
    stripe_client.v2.billing.meter_event_adjustments.create(cancel)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v2.billing.meter_event_adjustments.create(cancel)
    assert refused.value.code == "meter_event_already_cancelled"
    assert MeterEventAdjustment.objects.count() == 1


def test_raw_json_unknown_fields_and_missing_payload_get_the_error_shape(live_server, meter):
    import requests

    from billing_site.services import api_key_create

    secret = api_key_create(name="raw v2")[1]
    url = f"{live_server.url}/v2/billing/meter_events"
    headers = {"Authorization": f"Bearer {secret}"}
    response = requests.post(url, json={"event_name": "alpaca_ai_tokens"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_missing"
    assert response.json()["error"]["param"] == "payload"

    response = requests.post(
        url,
        json={"event_name": "alpaca_ai_tokens", "payload": {}, "colour": "red"},
        headers=headers,
    )
    assert response.json()["error"]["code"] == "parameter_unknown"

    response = requests.post(url, json={"event_name": "alpaca_ai_tokens", "payload": {}})
    assert response.status_code == 401
    assert not MeterEvent.objects.exists()
