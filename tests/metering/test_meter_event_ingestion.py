"""Meter event ingestion through the API: exactly-once, strict validation, cancellation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing_site import clock
from metering.models import MeterEvent, MeterEventAdjustment, MeterEventIdentifier, MeterUsageRollup
from metering.store import usage
from tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="alpaca_ai_tokens")


def _send(api, meter, customer, value="25", **extra):
    payload = {"stripe_customer_id": customer.public_id, "value": value}
    return api.post(
        "/v1/billing/meter_events", {"event_name": meter.event_name, "payload": payload, **extra}
    )


def _month_usage(meter, customer) -> Decimal:
    return usage(
        meter=meter,
        customer_id=customer.pk,
        start=NOW - dt.timedelta(days=40),
        end=NOW + dt.timedelta(days=1),
    )


def test_an_event_is_stored_counted_and_returned_in_stripe_s_shape(api, meter, customer):
    response = _send(api, meter, customer, identifier="evt-1", timestamp=int(NOW.timestamp()) - 60)
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "object": "billing.meter_event",
        "created": int(NOW.timestamp()),
        "event_name": "alpaca_ai_tokens",
        "identifier": "evt-1",
        "livemode": False,
        "payload": {"stripe_customer_id": customer.public_id, "value": "25"},
        "timestamp": int(NOW.timestamp()) - 60,
    }
    assert _month_usage(meter, customer) == Decimal(25)


def test_an_event_without_identifier_or_timestamp_gets_both(api, meter, customer):
    body = _send(api, meter, customer).json()
    assert len(body["identifier"]) == 32
    assert body["timestamp"] == int(NOW.timestamp())


def test_a_duplicate_identifier_is_refused_and_counted_once(api, meter, customer):
    assert _send(api, meter, customer, identifier="evt-1").status_code == 200
    response = _send(api, meter, customer, value="1000", identifier="evt-1")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate_meter_event"
    assert "evt-1" in response.json()["error"]["message"]
    assert MeterEvent.objects.count() == 1
    assert _month_usage(meter, customer) == Decimal(25)


def test_the_same_identifier_on_two_meters_is_two_events(api, meter, customer):
    other = MeterFactory()
    assert _send(api, meter, customer, identifier="evt-1").status_code == 200
    assert _send(api, other, customer, identifier="evt-1").status_code == 200
    assert MeterEvent.objects.count() == 2


def _bad(api, meter, customer, payload=None, **extra):
    body = {
        "event_name": meter.event_name,
        "payload": payload
        if payload is not None
        else {"stripe_customer_id": customer.public_id, "value": "1"},
        **extra,
    }
    return api.post("/v1/billing/meter_events", body)


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("unknown_meter", "no_meter", "No meter has event_name 'nope'"),
        ("inactive_meter", "archived_meter", "inactive"),
        ("no_customer_key", "meter_event_no_customer_defined", "stripe_customer_id"),
        ("unknown_customer", "meter_event_customer_not_found", "cus_ghost"),
        ("deleted_customer", "meter_event_customer_not_found", "No customer"),
        ("no_value", "meter_event_value_not_found", "'value'"),
        ("non_numeric_value", "meter_event_invalid_value", "not a number"),
        ("infinite_value", "meter_event_invalid_value", "not a number"),
        ("sixteen_digits", "meter_event_value_too_precise", "15 significant digits"),
        ("thirteen_decimals", "meter_event_value_too_precise", "12 decimal places"),
        ("too_old", "timestamp_too_far_in_past", "35 days"),
        ("too_new", "timestamp_in_future", "5 minutes"),
        ("oversized_payload", "payload_too_large", "4096 bytes"),
        ("too_many_keys", "payload_too_large", "at most 50"),
        ("long_identifier", None, "at most 100 characters"),
    ],
)
def test_every_bad_event_gets_a_specific_error_and_nothing_is_stored(
    api, meter, customer, case, code, message
):
    good = {"stripe_customer_id": customer.public_id, "value": "1"}
    now = int(NOW.timestamp())
    if case == "unknown_meter":
        response = api.post("/v1/billing/meter_events", {"event_name": "nope", "payload": good})
    elif case == "inactive_meter":
        api.post(f"/v1/billing/meters/{meter.public_id}/deactivate")
        response = _bad(api, meter, customer)
    elif case == "no_customer_key":
        response = _bad(api, meter, customer, {"value": "1"})
    elif case == "unknown_customer":
        response = _bad(api, meter, customer, {**good, "stripe_customer_id": "cus_ghost"})
    elif case == "deleted_customer":
        api.delete(f"/v1/customers/{customer.public_id}")
        response = _bad(api, meter, customer)
    elif case == "no_value":
        response = _bad(api, meter, customer, {"stripe_customer_id": customer.public_id})
    elif case == "non_numeric_value":
        response = _bad(api, meter, customer, {**good, "value": "lots"})
    elif case == "infinite_value":
        response = _bad(api, meter, customer, {**good, "value": "Infinity"})
    elif case == "sixteen_digits":
        response = _bad(api, meter, customer, {**good, "value": "1234567890123456"})
    elif case == "thirteen_decimals":
        response = _bad(api, meter, customer, {**good, "value": "0.0000000000001"})
    elif case == "too_old":
        response = _bad(api, meter, customer, timestamp=now - 35 * 86400 - 1)
    elif case == "too_new":
        response = _bad(api, meter, customer, timestamp=now + 301)
    elif case == "oversized_payload":
        response = _bad(api, meter, customer, {**good, "note": "x" * 5000})
    elif case == "too_many_keys":
        response = _bad(api, meter, customer, {**good, **{f"k{i}": "v" for i in range(60)}})
    else:
        response = _bad(api, meter, customer, identifier="i" * 101)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    if code:
        assert error["code"] == code
    assert message in error["message"]
    assert not MeterEvent.objects.exists()
    assert not MeterEventIdentifier.objects.exists()
    assert not MeterUsageRollup.objects.exists()


def test_boundary_values_are_accepted(api, meter, customer):
    now = int(NOW.timestamp())
    assert _send(api, meter, customer, value="123456789012345").status_code == 200
    assert _send(api, meter, customer, value="-0.000000000001").status_code == 200
    assert _send(api, meter, customer, timestamp=now - 35 * 86400).status_code == 200
    assert _send(api, meter, customer, timestamp=now + 300).status_code == 200
    assert MeterEvent.objects.count() == 4


@pytest.mark.postgres
def test_sums_are_exact_past_fifteen_significant_digits(api, meter, customer):
    # SQLite keeps decimals as 64-bit floats (15 significant digits); PostgreSQL is exact.
    _send(api, meter, customer, value="123456789012345")
    _send(api, meter, customer, value="-0.000000000001")
    _send(api, meter, customer, value="0.000000000003")
    assert _month_usage(meter, customer) == Decimal("123456789012345.000000000002")


def test_negative_values_correct_earlier_usage(api, meter, customer):
    _send(api, meter, customer, value="100")
    _send(api, meter, customer, value="-30")
    assert _month_usage(meter, customer) == Decimal(70)


def _cancel(api, meter, identifier):
    return api.post(
        "/v1/billing/meter_event_adjustments",
        {"event_name": meter.event_name, "type": "cancel", "cancel": {"identifier": identifier}},
    )


def test_a_cancelled_event_stops_counting(api, meter, customer):
    _send(api, meter, customer, value="10", identifier="keep")
    _send(api, meter, customer, value="90", identifier="oops")
    response = _cancel(api, meter, "oops")
    assert response.status_code == 200
    assert response.json() == {
        "object": "billing.meter_event_adjustment",
        "cancel": {"identifier": "oops"},
        "event_name": meter.event_name,
        "livemode": False,
        "status": "complete",
        "type": "cancel",
    }
    assert _month_usage(meter, customer) == Decimal(10)
    assert MeterEvent.objects.get(identifier="oops").cancelled_at == NOW
    # The identifier stays claimed: resending the cancelled event doesn't bring it back.
    assert _send(api, meter, customer, value="90", identifier="oops").status_code == 400


def test_cancelling_twice_unknown_or_too_late_is_refused(api, meter, customer):
    _send(api, meter, customer, identifier="evt")
    assert _cancel(api, meter, "evt").status_code == 200
    twice = _cancel(api, meter, "evt")
    assert twice.status_code == 400
    assert twice.json()["error"]["code"] == "meter_event_already_cancelled"
    assert MeterEventAdjustment.objects.count() == 1

    unknown = _cancel(api, meter, "never-sent")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "resource_missing"

    _send(api, meter, customer, identifier="old", value="5")
    with clock.frozen_at(NOW + dt.timedelta(hours=24, seconds=1)):
        late = _cancel(api, meter, "old")
    assert late.status_code == 400
    assert "within 24 hours" in late.json()["error"]["message"]
    assert _month_usage(meter, customer) == Decimal(5)


def test_cancel_needs_a_known_type(api, meter):
    response = api.post(
        "/v1/billing/meter_event_adjustments",
        {"event_name": meter.event_name, "type": "refund", "cancel": {"identifier": "x"}},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "type"


def test_count_and_last_formulas(api, customer):
    counter = MeterFactory(formula="count")
    gauge = MeterFactory(formula="last")
    now = int(NOW.timestamp())
    for offset, value in ((-3000, "7"), (-60, "3"), (-1200, "9")):
        _send(api, counter, customer, value=value, timestamp=now + offset)
        _send(api, gauge, customer, value=value, timestamp=now + offset)
    assert _month_usage(counter, customer) == 3
    assert _month_usage(gauge, customer) == 3  # the latest by timestamp, not by arrival
    # A count meter needs no value.
    response = api.post(
        "/v1/billing/meter_events",
        {"event_name": counter.event_name, "payload": {"stripe_customer_id": customer.public_id}},
    )
    assert response.status_code == 200
    assert _month_usage(counter, customer) == 4


def test_custom_payload_keys(api, customer):
    meter = MeterFactory(customer_payload_key="customer", value_payload_key="tokens")
    response = api.post(
        "/v1/billing/meter_events",
        {
            "event_name": meter.event_name,
            "payload": {"customer": customer.public_id, "tokens": "12"},
        },
    )
    assert response.status_code == 200
    assert _month_usage(meter, customer) == 12
