"""Poison events: values the value column can't hold and text the database can't store.

Each is refused on its own, by the event rules, with the event's own error code: in a stream
batch the other events are stored (a sender retrying the batch would otherwise never succeed),
and the single endpoint answers a 400. Run on PostgreSQL too, where a value past numeric(27, 12)
really overflows and a NUL really can't be stored.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from billing_site import clock
from metering.models import MeterEvent, MeterEventIdentifier, MeterUsageRollup
from metering.store import usage
from metering.validation import (
    MAX_SIGNIFICANT_DIGITS,
    MAX_VALUE_DECIMALS,
    VALUE_LIMIT,
    ErrorCode,
    EventInput,
    EventRejected,
    parse_event_value,
    validate_batch,
)
from tests.factories import CustomerFactory, MeterFactory

pytestmark = pytest.mark.django_db

POISON = "__poison__"  # replaced in the JSON text by the raw poison (a number can't be a string)


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="alpaca_ai_tokens")


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def stream_token(api) -> str:
    return api.post("/v2/billing/meter_event_session").json()["authentication_token"]


def _usage(meter, customer) -> Decimal:
    now = clock.now()
    return usage(
        meter=meter,
        customer_id=customer.pk,
        start=now - dt.timedelta(days=1),
        end=now + dt.timedelta(days=1),
    )


def _nothing_stored() -> bool:
    return not (
        MeterEvent.objects.exists()
        or MeterEventIdentifier.objects.exists()
        or MeterUsageRollup.objects.exists()
    )


# --- the range, in the pure rules ---------------------------------------------------------------


def test_the_documented_range_is_what_the_value_column_holds():
    field = MeterEvent._meta.get_field("value")
    assert VALUE_LIMIT == Decimal(10) ** (field.max_digits - field.decimal_places) == 10**15
    assert MAX_VALUE_DECIMALS == field.decimal_places == 12
    assert MAX_SIGNIFICANT_DIGITS == 15


@pytest.mark.parametrize(
    "raw",
    ["1e16", "1E+20", "1e15", "-1e15", "1000000000000000", Decimal("1e308"), 10**20, "9e99999"],
)
def test_a_value_past_the_range_is_an_invalid_value(raw):
    with pytest.raises(EventRejected) as refused:
        parse_event_value(raw)
    assert refused.value.code == ErrorCode.INVALID_VALUE
    assert "less than 10^15" in refused.value.message


@pytest.mark.parametrize("raw", ["NaN", "nan", "sNaN", "Infinity", "-inf", "0x1A", "1e", ""])
def test_what_is_not_a_finite_decimal_is_an_invalid_value(raw):
    with pytest.raises(EventRejected) as refused:
        parse_event_value(raw)
    assert refused.value.code == ErrorCode.INVALID_VALUE


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("999999999999999", Decimal("999999999999999")),
        ("-999999999999999", Decimal("-999999999999999")),
        ("99999999999999.9", Decimal("99999999999999.9")),
        ("0.000000000001", Decimal("1e-12")),
        ("-0", Decimal(0)),
        ("0E+99", Decimal(0)),
        ("1.5E+3", Decimal(1500)),
    ],
)
def test_values_inside_the_range_are_kept_exactly(raw, value):
    parsed = parse_event_value(raw)
    assert parsed == value
    assert not parsed.is_signed() or parsed < 0  # "-0" is stored as 0


@pytest.mark.parametrize(
    ("field", "text", "code", "param"),
    [
        ("payload value", "12\x00", ErrorCode.INVALID_PAYLOAD, "payload[value]"),
        ("payload value", "\ud800", ErrorCode.INVALID_PAYLOAD, "payload[value]"),
        ("payload key", "note\x00", ErrorCode.INVALID_PAYLOAD, "payload[note\\u0000]"),
        ("payload key", "\udfff", ErrorCode.INVALID_PAYLOAD, "payload[\\udfff]"),
        ("customer id", "cus_\x00", ErrorCode.INVALID_PAYLOAD, "payload[stripe_customer_id]"),
        ("identifier", "evt\x00", ErrorCode.INVALID_IDENTIFIER, "identifier"),
        ("identifier", "evt\ud83d", ErrorCode.INVALID_IDENTIFIER, "identifier"),
        ("event_name", "alpaca_ai_tokens\x00", ErrorCode.PARAMETER_INVALID, "event_name"),
    ],
)
def test_text_the_database_cant_store_refuses_that_event_only(
    meter, customer, field, text, code, param
):
    payload = {"stripe_customer_id": customer.public_id, "value": "1"}
    event_name, identifier = meter.event_name, "poison"
    if field == "payload value":
        payload["value"] = text
    elif field == "payload key":
        payload[text] = "x"
    elif field == "customer id":
        payload["stripe_customer_id"] = text
    elif field == "identifier":
        identifier = text
    else:
        event_name = text
    good = EventInput(meter.event_name, {"stripe_customer_id": customer.public_id, "value": "1"})

    valid, rejected = validate_batch(
        [good, EventInput(event_name, payload, identifier)],
        now=clock.now(),
        meters={meter.event_name: meter},
        customers={customer.public_id: (customer.pk, None)},
    )

    assert [event.index for event in valid] == [0]
    [refused] = rejected
    assert (refused.index, refused.code, refused.param) == (1, code, param)
    # Nothing the database can't store is quoted back (the rejection list is stored with the
    # response for idempotent retries).
    assert "\x00" not in refused.message + (refused.param or "") + (refused.identifier or "")
    assert refused.identifier in (None, "poison")


# --- a stream batch: the poison event is refused, the other 99 are stored ----------------------


@pytest.mark.parametrize(
    ("poison", "code"),
    [
        ({"payload": {"value": "1e16"}}, "meter_event_invalid_value"),
        ({"payload": {"value": "1E+20"}}, "meter_event_invalid_value"),
        ({"payload": {"value": POISON}}, "meter_event_invalid_value"),  # JSON 1e308
        ({"payload": {"value": "NaN"}}, "meter_event_invalid_value"),
        ({"payload": {"value": "0x10"}}, "meter_event_invalid_value"),
        ({"payload": {"value": "1\u0000"}}, "meter_event_invalid_payload"),
        ({"payload": {"note": "\ud800"}}, "meter_event_invalid_payload"),
        ({"payload": {"no\u0000te": "x"}}, "meter_event_invalid_payload"),
        ({"identifier": "evt-\u0000"}, "meter_event_invalid_identifier"),
        ({"event_name": "alpaca\u0000"}, "parameter_invalid"),
        # No UTC date exists for these: the error message must still be written.
        ({"timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp_too_far_in_past"),
        ({"timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp_in_future"),
    ],
    ids=[
        "1e16",
        "1E+20",
        "json-1e308",
        "nan",
        "hex",
        "nul-value",
        "surrogate",
        "nul-key",
        "nul-identifier",
        "nul-event-name",
        "year-1",
        "year-9999",
    ],
)
def test_one_poison_event_in_a_batch_of_100_is_refused_and_the_99_others_are_stored(
    client, stream_token, meter, customer, poison, code
):
    events = [
        {
            "event_name": meter.event_name,
            "identifier": f"evt-{index}",
            "payload": {"stripe_customer_id": customer.public_id, "value": "2.5"},
        }
        for index in range(100)
    ]
    bad = events[37]
    bad.update({key: value for key, value in poison.items() if key != "payload"})
    bad["payload"].update(poison.get("payload", {}))
    body = json.dumps({"events": events}).replace(f'"{POISON}"', "1e308")

    for attempt in range(2):  # a retry of the same batch stores nothing more
        response = client.post(
            "/v2/billing/meter_event_stream",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {stream_token}",
            # The response is stored for replays: nothing in it may be unstorable text.
            HTTP_IDEMPOTENCY_KEY=f"batch-{attempt}",
        )
        assert response.status_code == 200, response.content[:500]
        result = response.json()
        [refused] = [r for r in result["rejected"] if r["error"]["code"] != "duplicate_meter_event"]
        assert refused["index"] == 37
        assert refused["error"]["code"] == code

    assert MeterEvent.objects.count() == 99
    assert not MeterEvent.objects.filter(identifier="evt-37").exists()
    assert _usage(meter, customer) == Decimal("247.5")


# --- the single endpoint: a 400 in Stripe's shape, nothing stored ------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1e16", "meter_event_invalid_value"),
        ("1E+20", "meter_event_invalid_value"),
        ("-1000000000000000", "meter_event_invalid_value"),
        ("NaN", "meter_event_invalid_value"),
        ("Infinity", "meter_event_invalid_value"),
        ("-Infinity", "meter_event_invalid_value"),
        ("0x1A", "meter_event_invalid_value"),
        ("7\x00", "meter_event_invalid_payload"),
    ],
)
def test_a_single_poison_event_is_a_400_and_nothing_is_stored(api, meter, customer, value, code):
    response = api.post(
        "/v1/billing/meter_events",
        {
            "event_name": meter.event_name,
            "payload": {"stripe_customer_id": customer.public_id, "value": value},
        },
        idempotency_key=f"poison-{value!r}",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        "payload[value]",
    )
    assert _nothing_stored()


def test_a_single_event_with_a_json_1e308_value_is_a_400(api, meter, customer):
    body = json.dumps(
        {
            "event_name": meter.event_name,
            "payload": {"stripe_customer_id": customer.public_id, "value": POISON},
        }
    ).replace(f'"{POISON}"', "1e308")
    response = api.client.post(
        "/v1/billing/meter_events",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.secret}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "meter_event_invalid_value"
    assert _nothing_stored()


def test_minus_zero_and_the_largest_values_are_stored(api, meter, customer):
    for value in ("-0", "999999999999999", "-999999999999999", "0.000000000001"):
        response = api.post(
            "/v1/billing/meter_events",
            {
                "event_name": meter.event_name,
                "payload": {"stripe_customer_id": customer.public_id, "value": value},
            },
        )
        assert response.status_code == 200, response.json()
    assert MeterEvent.objects.count() == 4
    assert _usage(meter, customer) == Decimal("0.000000000001")
