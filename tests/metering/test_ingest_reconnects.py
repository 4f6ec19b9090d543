"""Ingestion with persistent connections survives a dropped database connection: the request
that hits the dead connection fails (as JSON, never an HTML page), and the next one reconnects
and is stored. Nothing of the failed request is stored, so its retry is not a duplicate."""

from __future__ import annotations

import pytest
from django.db import close_old_connections, connection

from metering import ingest
from metering.models import MeterEvent, MeterEventIdentifier
from metering.store.postgresql import PostgresEventStore
from tests.factories import CustomerFactory, MeterFactory

pytestmark = pytest.mark.postgres


def _terminate(backend_pid: int) -> None:
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture
def persistent_connections(transactional_db, monkeypatch):
    """CONN_MAX_AGE=600 as in production, and what the WSGI handler does around each request
    (Django's test client leaves connections alone)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()

    def request(send):
        close_old_connections()
        try:
            return send()
        finally:
            close_old_connections()

    return request


@pytest.fixture
def send(api):
    meter, customer = MeterFactory(), CustomerFactory()
    token = api.post("/v2/billing/meter_event_session").json()["authentication_token"]

    def send_event(identifier: str, *, stream: bool = False):
        event = {
            "event_name": meter.event_name,
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer.public_id, "value": "3"},
        }
        if stream:
            body = {"events": [event]}
            return api.post_json("/v2/billing/meter_event_stream", body, secret=token)
        # No Idempotency-Key: a retry with the key of a request cut off mid-way is refused as
        # "in progress" until the idempotency layer's staleness window passes (not tested here).
        return api.post("/v1/billing/meter_events", event)

    return send_event


def _assert_failed_as_json(response) -> None:
    assert response.status_code in (500, 503)
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
def test_a_connection_killed_between_requests_fails_one_and_the_next_reconnects(
    persistent_connections, send, stream
):
    request = persistent_connections
    assert request(lambda: send("evt-1", stream=stream)).status_code == 200
    backend = _backend_pid()
    assert request(lambda: send("evt-2", stream=stream)).status_code == 200
    assert _backend_pid() == backend  # one connection, kept across requests

    _terminate(backend)
    _assert_failed_as_json(request(lambda: send("evt-3", stream=stream)))

    assert request(lambda: send("evt-3", stream=stream)).status_code == 200
    assert request(lambda: send("evt-4", stream=stream)).status_code == 200
    assert _backend_pid() != backend
    assert sorted(MeterEvent.objects.values_list("identifier", flat=True)) == [
        "evt-1",
        "evt-2",
        "evt-3",
        "evt-4",
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["single", "stream"])
def test_a_connection_killed_during_the_ingest_statement_stores_nothing_and_the_retry_works(
    persistent_connections, send, stream, monkeypatch
):
    request = persistent_connections
    assert request(lambda: send("evt-1", stream=stream)).status_code == 200
    # The batch's statement is the store's; a single event's is the one function call.
    target, name = (PostgresEventStore, "ingest") if stream else (ingest, "execute_prepared")
    statement = getattr(target, name)

    def killed_first(*args):
        monkeypatch.setattr(target, name, statement)
        _terminate(_backend_pid())
        return statement(*args)

    monkeypatch.setattr(target, name, killed_first)
    _assert_failed_as_json(request(lambda: send("evt-2", stream=stream)))
    assert getattr(target, name) is statement  # the kill happened in the statement

    response = request(lambda: send("evt-2", stream=stream))
    assert response.status_code == 200, response.json()
    if stream:
        assert response.json()["accepted"] == 1  # not refused as a duplicate
    assert sorted(MeterEventIdentifier.objects.values_list("identifier", flat=True)) == [
        "evt-1",
        "evt-2",
    ]
    assert MeterEvent.objects.count() == 2
