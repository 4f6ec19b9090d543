"""The official `stripe` SDK records usage, cancels it, reads summaries and streams batches."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
import stripe

from tests.api_client import sdk_client
from tests.factories import MeterFactory
from tests.metering.reference_usage import stored_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(live_server):
    from billing_site.services import api_key_create

    return api_key_create(name="sdk ingestion")[1]


@pytest.fixture
def client(live_server, secret):
    return sdk_client(live_server, secret)


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="hypernian_api_tokens")


def _hour_floor(seconds: int) -> int:
    return seconds - seconds % 3600


def test_sdk_records_cancels_and_summarises_usage(client, meter, customer):
    now = int(time.time())
    event = client.v1.billing.meter_events.create(
        {
            "event_name": "hypernian_api_tokens",
            "payload": {"stripe_customer_id": customer.public_id, "value": "1500"},
            "identifier": "req-1",
            "timestamp": _hour_floor(now) + 1,
        }
    )
    assert event.object == "billing.meter_event"
    assert event.identifier == "req-1"
    client.v1.billing.meter_events.create(
        {
            "event_name": "hypernian_api_tokens",
            "payload": {"stripe_customer_id": customer.public_id, "value": "500"},
            "identifier": "req-2",
            "timestamp": _hour_floor(now) + 1,
        }
    )

    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        client.v1.billing.meter_events.create(
            {
                "event_name": "hypernian_api_tokens",
                "payload": {"stripe_customer_id": customer.public_id, "value": "1500"},
                "identifier": "req-1",
            }
        )
    assert duplicate.value.code == "duplicate_meter_event"

    adjustment = client.v1.billing.meter_event_adjustments.create(
        {"event_name": "hypernian_api_tokens", "type": "cancel", "cancel": {"identifier": "req-2"}}
    )
    assert adjustment.status == "complete"

    start = _hour_floor(now) - 3600
    end = _hour_floor(now) + 2 * 3600
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.public_id,
        {"customer": customer.public_id, "start_time": start, "end_time": end},
    )
    assert [s.aggregated_value for s in summaries.data] == [1500]
    assert summaries.data[0].object == "billing.meter_event_summary"

    hourly = client.v1.billing.meters.event_summaries.list(
        meter.public_id,
        {
            "customer": customer.public_id,
            "start_time": start,
            "end_time": end,
            "value_grouping_window": "hour",
        },
    )
    assert [(s.start_time, s.aggregated_value) for s in hourly.data] == [
        (_hour_floor(now) + 3600, 0),
        (_hour_floor(now), 1500),
        (_hour_floor(now) - 3600, 0),
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"value": "1"}, "meter_event_no_customer_defined"),
        ({"stripe_customer_id": "cus_ghost", "value": "1"}, "meter_event_customer_not_found"),
        ({"stripe_customer_id": "CUSTOMER", "value": "abc"}, "meter_event_invalid_value"),
        ({"stripe_customer_id": "CUSTOMER"}, "meter_event_value_not_found"),
        ({"stripe_customer_id": "CUSTOMER", "value": "1" * 16}, "meter_event_value_too_precise"),
    ],
)
def test_sdk_raises_the_specific_validation_error(client, meter, customer, payload, code):
    payload = {k: customer.public_id if v == "CUSTOMER" else v for k, v in payload.items()}
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.billing.meter_events.create(
            {"event_name": "hypernian_api_tokens", "payload": payload}
        )
    assert excinfo.value.code == code
    assert not stored_events()


def test_sdk_timestamp_and_meter_errors(client, meter, customer):
    payload = {"stripe_customer_id": customer.public_id, "value": "1"}
    now = int(time.time())
    for timestamp, code in (
        (now - 36 * 86400, "timestamp_too_far_in_past"),
        (now + 600, "timestamp_in_future"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            client.v1.billing.meter_events.create(
                {"event_name": meter.event_name, "payload": payload, "timestamp": timestamp}
            )
        assert excinfo.value.code == code
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.billing.meter_events.create({"event_name": "unknown", "payload": payload})
    assert excinfo.value.code == "no_meter"
    client.v1.billing.meters.deactivate(meter.public_id)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.billing.meter_events.create({"event_name": meter.event_name, "payload": payload})
    assert excinfo.value.code == "archived_meter"
    assert not stored_events()


def test_sdk_meter_event_stream_stores_a_batch_once(client, live_server, meter, customer):
    session = client.v2.billing.meter_event_session.create()
    assert session.object == "v2.billing.meter_event_session"
    assert session.authentication_token.startswith("mes_tok_")
    stream = sdk_client(live_server, session.authentication_token)
    events = [
        {
            "event_name": meter.event_name,
            "identifier": f"batch-{i}",
            "payload": {"stripe_customer_id": customer.public_id, "value": "10"},
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        }
        for i in range(100)
    ]
    stream.v2.billing.meter_event_stream.create({"events": events})
    stream.v2.billing.meter_event_stream.create({"events": events})  # a retry
    assert len(stored_events()) == 100
    assert sum(event.value for event in stored_events()) == 1000


def test_stream_reports_each_rejected_event_with_its_index(client, live_server, meter, customer):
    token = client.v2.billing.meter_event_session.create().authentication_token
    good = {"stripe_customer_id": customer.public_id, "value": "1"}
    body = {
        "events": [
            {"event_name": meter.event_name, "identifier": "a", "payload": good},
            {"event_name": "nope", "identifier": "b", "payload": good},
            {"event_name": meter.event_name, "identifier": "a", "payload": good},
            {"event_name": meter.event_name, "payload": {**good, "value": "x"}},
            {"event_name": meter.event_name, "payload": good, "timestamp": "yesterday"},
            {"event_name": meter.event_name, "payload": good, "colour": "red"},
            "not an object",
            {"event_name": meter.event_name, "identifier": "c", "payload": good},
        ]
    }
    response = requests.post(
        f"{live_server.url}/v2/billing/meter_event_stream",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in result["rejected"]] == [
        (1, "no_meter"),
        (2, "duplicate_meter_event"),
        (3, "meter_event_invalid_value"),
        (4, "invalid_timestamp"),
        (5, "parameter_unknown"),
        (6, "invalid_event"),
    ]
    assert {event.identifier for event in stored_events()} == {"a", "c"}


def test_stream_refuses_oversized_batches_and_bad_tokens(client, live_server, meter, customer):
    token = client.v2.billing.meter_event_session.create().authentication_token
    event = {
        "event_name": meter.event_name,
        "payload": {"stripe_customer_id": customer.public_id, "value": "1"},
    }
    response = requests.post(
        f"{live_server.url}/v2/billing/meter_event_stream",
        json={"events": [event] * 101},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "at most 100 events" in response.json()["error"]["message"]

    for header in ("Bearer mes_tok_forged", "Bearer sk_not_a_session"):
        response = requests.post(
            f"{live_server.url}/v2/billing/meter_event_stream",
            json={"events": [event]},
            headers={"Authorization": header},
            timeout=30,
        )
        assert response.status_code == 401
    assert not stored_events()


def test_summaries_check_alignment_like_stripe(client, meter, customer):
    aligned = _hour_floor(int(time.time()))
    cases = [
        ({"start_time": aligned + 30, "end_time": aligned + 3600}, "start_time"),
        (
            {"start_time": aligned, "end_time": aligned + 90, "value_grouping_window": "hour"},
            "end_time",
        ),
        (
            {"start_time": aligned, "end_time": aligned + 3600, "value_grouping_window": "day"},
            "start_time",
        ),
        ({"start_time": aligned + 3600, "end_time": aligned}, "start_time"),
    ]
    for params, param in cases:
        if params.get("value_grouping_window") == "day" and aligned % 86400 == 0:
            continue
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            client.v1.billing.meters.event_summaries.list(
                meter.public_id, {"customer": customer.public_id, **params}
            )
        assert excinfo.value.param == param
