"""`POST /v1/billing/meter_events` in one round trip on PostgreSQL: the key, the meter, the
customer (with its test clock) and the write in one function call, with every answer the
general path gives (tests/metering/test_meter_event_ingestion.py runs the same requests)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from billing_site import clock
from billing_site.models import ApiKey
from billing_site.services import api_key_create, api_key_revoke, hash_api_secret
from metering.ingest import Caller, CallerRefused, meter_event_record
from metering.models import MeterEvent, MeterEventIdentifier, MeterUsageRollup
from metering.store import usage
from metering.validation import EventInput
from tests.factories import CustomerFactory, MeterFactory

pytestmark = pytest.mark.postgres

NOW = dt.datetime(2026, 11, 21, 12, 30, tzinfo=dt.UTC)
URL = "/v1/billing/meter_events"


@pytest.fixture
def frozen_clock(db):
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def meter(frozen_clock):
    return MeterFactory(event_name="alpaca_ai_tokens")


def _event(customer, value="1", **payload_extra):
    return {"stripe_customer_id": customer.public_id, "value": value, **payload_extra}


def _post_counting_queries(api, body, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, body, **kwargs)
    return response, len(queries.captured_queries)


def _month_usage(meter, customer) -> Decimal:
    start = NOW - dt.timedelta(days=40)
    return usage(meter=meter, customer_id=customer.pk, start=start, end=NOW + dt.timedelta(days=1))


def test_an_accepted_event_costs_one_round_trip_and_counts(api, meter, customer):
    body = {"event_name": meter.event_name, "payload": _event(customer, "25"), "identifier": "a"}
    response, queries = _post_counting_queries(api, body)
    assert response.status_code == 200, response.json()
    assert queries == 1
    assert response.json()["identifier"] == "a"
    assert response.json()["created"] == int(NOW.timestamp())
    assert _month_usage(meter, customer) == Decimal(25)
    rollup = MeterUsageRollup.objects.get()
    assert (rollup.event_count, rollup.value_sum) == (1, Decimal(25))


def _bad_request(api, meter, customer, case):
    good = _event(customer)
    now = int(NOW.timestamp())
    body = {"event_name": meter.event_name, "payload": good}
    if case == "unknown_meter":
        body["event_name"] = "nope"
    elif case == "inactive_meter":
        api.post(f"/v1/billing/meters/{meter.public_id}/deactivate")
    elif case == "no_customer_key":
        body["payload"] = {"value": "1"}
    elif case == "unknown_customer":
        body["payload"] = {**good, "stripe_customer_id": "cus_ghost"}
    elif case == "deleted_customer":
        api.delete(f"/v1/customers/{customer.public_id}")
    elif case == "no_value":
        body["payload"] = {"stripe_customer_id": customer.public_id}
    elif case == "non_numeric_value":
        body["payload"] = {**good, "value": "lots"}
    elif case == "sixteen_digits":
        body["payload"] = {**good, "value": "1234567890123456"}
    elif case == "too_big":
        body["payload"] = {**good, "value": "1e15"}
    elif case == "too_old":
        body["timestamp"] = now - 35 * 86400 - 1
    elif case == "too_new":
        body["timestamp"] = now + 301
    elif case == "oversized_payload":
        body["payload"] = {**good, "note": "x" * 5000}
    elif case == "unstorable_payload":
        body["payload"] = {**good, "note": "a\x00b"}
    elif case == "duplicate":
        assert api.post(URL, {**body, "identifier": "dup"}).status_code == 200
        body["identifier"] = "dup"
    return _post_counting_queries(api, body)


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
        ("sixteen_digits", "meter_event_value_too_precise", "15 significant digits"),
        ("too_big", "meter_event_invalid_value", "out of range"),
        ("too_old", "timestamp_too_far_in_past", "35 days"),
        ("too_new", "timestamp_in_future", "5 minutes"),
        ("oversized_payload", "payload_too_large", "4096 bytes"),
        ("unstorable_payload", "meter_event_invalid_payload", "NUL"),
        ("duplicate", "duplicate_meter_event", "'dup'"),
    ],
)
def test_each_refusal_comes_from_the_one_statement_with_its_code(
    api, meter, customer, case, code, message
):
    response, queries = _bad_request(api, meter, customer, case)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (code, "invalid_request_error")
    assert message in error["message"]
    assert queries == 1
    stored = 1 if case == "duplicate" else 0
    assert MeterEvent.objects.count() == MeterEventIdentifier.objects.count() == stored
    assert sum(r.event_count for r in MeterUsageRollup.objects.all()) == stored


def test_a_revoked_key_is_refused_on_its_next_request(api, api_secret, meter, customer):
    body = {"event_name": meter.event_name, "payload": _event(customer)}
    assert api.post(URL, body).status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(secret_hash=hash_api_secret(api_secret)))
    response, queries = _post_counting_queries(api, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_invalid"
    assert queries == 1
    assert MeterEvent.objects.count() == 1


def test_a_bad_key_is_refused_before_a_malformed_request(api, meter, customer):
    response = api.post(URL, {"payload": _event(customer)}, secret="sk_wrong_0000000000")
    assert response.status_code == 401
    assert "Invalid API Key provided" in response.json()["error"]["message"]
    response = api.post(URL, {"payload": _event(customer)})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "event_name"


def test_restricted_keys_need_write_on_meter_events(client, meter, customer):
    from tests.api_client import ApiClient

    body = {"event_name": meter.event_name, "payload": _event(customer)}
    _, read_only = api_key_create(name="reader", permissions={"meter_events": "read"})
    response = ApiClient(client, read_only).post(URL, body)
    assert response.status_code == 403
    assert "'meter_events' write permission" in response.json()["error"]["message"]
    # Still refused (403, not 400) when the request is malformed as well.
    response = ApiClient(client, read_only).post(URL, {"payload": _event(customer)})
    assert response.status_code == 403
    assert not MeterEvent.objects.exists()
    _, ingest_only = api_key_create(name="ingest", permissions={"meter_events": "write"})
    response, queries = _post_counting_queries(ApiClient(client, ingest_only), body)
    assert (response.status_code, queries) == (200, 1)


def test_a_customer_on_a_test_clock_is_checked_at_the_clock_s_time(api, meter):
    from invoicing.models import TestClock

    frozen = NOW - dt.timedelta(days=100)
    test_clock = TestClock.objects.create(frozen_time=frozen, created_at=NOW)
    customer = CustomerFactory(test_clock=test_clock)
    at_clock = int(frozen.timestamp())
    body = {"event_name": meter.event_name, "payload": _event(customer, "4")}
    response, queries = _post_counting_queries(api, {**body, "timestamp": at_clock - 60})
    assert (response.status_code, queries) == (200, 1), response.json()
    assert response.json()["created"] == at_clock
    assert MeterEvent.objects.get().received_at == frozen
    # Today's time is 100 days in the clock's future: refused as such.
    response = api.post(URL, {**body, "timestamp": int(NOW.timestamp())})
    assert response.json()["error"]["code"] == "timestamp_in_future"
    # Without a timestamp the event happens at the clock's time.
    assert api.post(URL, body).json()["timestamp"] == at_clock


def test_an_idempotent_request_is_replayed_not_stored_twice(api, meter, customer):
    body = {"event_name": meter.event_name, "payload": _event(customer, "5")}
    first = api.post(URL, body, idempotency_key="k-1")
    again = api.post(URL, body, idempotency_key="k-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert MeterEvent.objects.count() == 1


def test_one_identifier_sent_from_parallel_connections_is_stored_once(transactional_db):
    meter = MeterFactory()
    customers = [CustomerFactory() for _ in range(2)]
    _, secret = api_key_create(name="parallel")
    caller = Caller(hash_api_secret(secret), "meter_events")
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def send(number: int) -> None:
        try:
            start.wait()
            for index in range(20):
                customer = customers[index % 2]
                event = EventInput(meter.event_name, _event(customer, "1.5"), f"evt-{index}", None)
                recorded = meter_event_record(event=event, caller=caller)
                outcomes.append("ok" if recorded.event else recorded.refusal.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 20
    assert outcomes.count("duplicate_meter_event") == 100
    assert MeterEvent.objects.count() == MeterEventIdentifier.objects.count() == 20
    rollups = MeterUsageRollup.objects.all()
    assert sum(r.event_count for r in rollups) == 20
    assert sum(r.value_sum for r in rollups) == Decimal("30")


def test_an_unknown_key_is_refused_by_the_statement(db, meter, customer):
    event = EventInput(meter.event_name, _event(customer), None, None)
    with pytest.raises(CallerRefused) as refused:
        meter_event_record(event=event, caller=Caller(hash_api_secret("sk_nope"), "meter_events"))
    assert refused.value.reason == "invalid"
    assert not MeterEvent.objects.exists()


def test_single_events_and_batches_racing_on_the_same_identifiers_store_each_once(
    transactional_db,
):
    from metering.ingest import meter_events_ingest

    meter = MeterFactory()
    customer = CustomerFactory()
    _, secret = api_key_create(name="race")
    caller = Caller(hash_api_secret(secret), "meter_events")
    events = [EventInput(meter.event_name, _event(customer, "2"), f"evt-{i}") for i in range(30)]
    accepted: list[int] = []
    start = threading.Barrier(4)

    def singles() -> None:
        try:
            start.wait()
            recorded = [meter_event_record(event=event, caller=caller) for event in events]
            accepted.append(sum(1 for r in recorded if r.event is not None))
        finally:
            connections.close_all()

    def batches() -> None:
        try:
            start.wait()
            accepted.append(len(meter_events_ingest(events=events[::-1]).accepted))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=t) for t in (singles, singles, batches, batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(accepted) == 30
    assert MeterEvent.objects.count() == MeterEventIdentifier.objects.count() == 30
    assert _month_usage_now(meter, customer) == Decimal(60)


def _month_usage_now(meter, customer) -> Decimal:
    now = clock.now()
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=1)
    return usage(meter=meter, customer_id=customer.pk, start=start, end=end)
