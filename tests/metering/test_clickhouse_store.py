"""The ClickHouse event store beyond the shared contract: its transport adapter, exactly-once on
retries, cancellation, the schema command, the settings and the copy from Django's database.

The contract itself (usage, windows, late usage, the hypothesis property) runs on ClickHouse in
`test_event_store_contract.py`.
"""

from __future__ import annotations

import datetime as dt
import io
import runpy
import threading
from dataclasses import replace
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

import billing_site.settings.base
from billing_site import clock
from metering.models import MeterEventIdentifier
from metering.store import get_event_store
from metering.store.clickhouse.schema import EVENT_COLUMNS, Schema, migrate
from metering.store.clickhouse.store import event_row, insert_events
from metering.store.clickhouse.transport import HttpTransport, TransientError, transport_for
from metering.validation import ValidEvent
from tests.factories import CustomerFactory, MeterFactory
from tests.metering.clickhouse_fixtures import needs_chdb

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
AT = NOW - dt.timedelta(hours=30, minutes=15)


def _event(meter, customer, identifier, value, at=AT, received=NOW) -> ValidEvent:
    return ValidEvent(
        index=0,
        meter=meter,
        customer_id=customer.pk,
        identifier=identifier,
        value=Decimal(value),
        timestamp=at,
        payload={"stripe_customer_id": customer.public_id, "value": str(value)},
        received_at=received,
    )


def _usage(store, meter, customer) -> Decimal:
    start = NOW - dt.timedelta(days=3)
    return store.usage(meter=meter, customer_id=customer.pk, start=start, end=NOW)


# --- the HTTP adapter, without a server: what it hands clickhouse-connect ---------------------


@pytest.fixture
def http_client():
    client = mock.Mock(name="clickhouse_connect client")
    with mock.patch("clickhouse_connect.get_client", return_value=client) as get_client:
        yield get_client, client


def test_the_server_url_becomes_the_client_s_connection(http_client):
    get_client, _ = http_client
    transport = HttpTransport.connect("clickhouse://billing:s%40cret@ch.internal:8123/events")
    assert transport.database == "events"
    kwargs = get_client.call_args.kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["username"], kwargs["password"]) == (
        "ch.internal",
        8123,
        "billing",
        "s@cret",
    )
    assert (kwargs["database"], kwargs["secure"]) == ("events", False)
    assert kwargs["settings"]["max_query_size"] >= 16 * 1024 * 1024
    assert kwargs["autogenerate_session_id"] is False  # threads share the client
    secure = HttpTransport.connect("clickhouses://ch.internal/events")
    assert (get_client.call_args.kwargs["port"], get_client.call_args.kwargs["secure"]) == (
        8443,
        True,
    )
    assert secure.database == "events"


def test_queries_bind_parameters_on_the_server_and_inserts_carry_the_token(http_client):
    _, client = http_client
    client.query.return_value.result_rows = [(1, Decimal("2.5"))]
    transport = HttpTransport.connect("clickhouse://ch.internal:8123/events")

    rows = transport.query("SELECT {identifier:String}", {"identifier": "it's\tme"})
    transport.insert(
        "events.meter_events",
        EVENT_COLUMNS,
        [(1, 2, AT, 3, "a", Decimal("1.5"), NOW, "{}", 1)],
        settings={"insert_deduplication_token": "abc"},
    )

    assert rows == [(1, Decimal("2.5"))]
    # The raw value: clickhouse-connect escapes it for the HTTP parameter itself.
    client.query.assert_called_once_with(
        "SELECT {identifier:String}", parameters={"identifier": "it's\tme"}
    )
    table, data = client.insert.call_args.args
    kwargs = client.insert.call_args.kwargs
    assert table == "events.meter_events"
    assert data == [[1, 2, AT, 3, "a", Decimal("1.5"), NOW, "{}", 1]]
    assert kwargs["column_names"] == [name for name, _ in EVENT_COLUMNS]
    assert kwargs["column_type_names"][5] == "Decimal(38, 12)"
    assert kwargs["settings"] == {"insert_deduplication_token": "abc"}


def test_a_dropped_connection_is_a_transient_error_and_the_insert_is_retried_with_one_token(
    http_client, settings
):
    from clickhouse_connect.driver.exceptions import OperationalError

    _, client = http_client
    client.insert.side_effect = [OperationalError("timed out"), None]
    transport = HttpTransport.connect("clickhouse://ch.internal:8123/events")
    rows = [(1, 2, AT, 3, "a", Decimal("1.5"), NOW, "{}", 1)]

    insert_events(transport, Schema("events"), rows)

    tokens = [
        call.kwargs["settings"]["insert_deduplication_token"]
        for call in client.insert.call_args_list
    ]
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    client.insert.side_effect = OperationalError("down")
    with pytest.raises(TransientError):
        insert_events(transport, Schema("events"), rows)


def test_an_unknown_url_is_refused_naming_both_forms():
    with pytest.raises(ImproperlyConfigured, match=r"clickhouse://user:password@host.*chdb:///"):
        transport_for("mysql://host/db")
    with pytest.raises(ImproperlyConfigured, match="chdb:///absolute/directory"):
        transport_for("chdb://relative/dir")


# --- settings ---------------------------------------------------------------------------------


def _load_settings(monkeypatch, **env) -> dict:
    monkeypatch.setenv("DATABASE_URL", "postgres://billing@db.invalid:5432/billing")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(billing_site.settings.base.__file__)


def test_the_clickhouse_store_needs_a_url_it_understands(monkeypatch):
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    with pytest.raises(ImproperlyConfigured, match="needs CLICKHOUSE_URL=clickhouse://"):
        _load_settings(monkeypatch, METER_EVENT_STORE="clickhouse")
    loaded = _load_settings(
        monkeypatch, METER_EVENT_STORE="clickhouse", CLICKHOUSE_URL="chdb:///tmp/x"
    )
    assert (loaded["METER_EVENT_STORE"], loaded["CLICKHOUSE_CLUSTER"]) == ("clickhouse", "")


def test_without_the_packages_the_error_says_what_to_install(monkeypatch):
    import importlib.util

    original = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("chdb", "clickhouse_connect") else original(name, *a),
    )
    with pytest.raises(ImproperlyConfigured, match=r"pip install -e '\.\[clickhouse\]'"):
        _load_settings(monkeypatch, METER_EVENT_STORE="clickhouse", CLICKHOUSE_URL="chdb:///x")


# --- the schema -------------------------------------------------------------------------------


def test_the_cluster_ddl_shards_by_customer_over_replicated_tables():
    statements = "\n".join(Schema("events", cluster="billing", retention_days=400).statements())
    assert "CREATE TABLE IF NOT EXISTS events.meter_events_local ON CLUSTER billing" in statements
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/events/meter_events'" in statements
    assert "ReplicatedAggregatingMergeTree(" in statements
    assert (
        "ENGINE = Distributed(billing, events, meter_events_local, cityHash64(customer_id))"
        in statements
    )
    assert "FROM events.meter_events_local" in statements  # the view rolls up each shard
    assert "MODIFY TTL toDateTime(timestamp) + INTERVAL 400 DAY" in statements
    with pytest.raises(ValueError, match="Not a usable ClickHouse name"):
        Schema("events; DROP TABLE x")


@needs_chdb
def test_migrate_is_idempotent_and_can_drop_the_ttl(clickhouse, settings, db):
    schema = Schema(clickhouse.database, retention_days=30)
    call_command("clickhouse_migrate", stdout=mock.Mock())
    migrate(clickhouse, schema)
    ttl = "SELECT create_table_query FROM system.tables WHERE database = {d:String}"
    assert all("TTL" in row[0] for row in clickhouse.query(ttl, {"d": schema.database})[:2])
    done = migrate(clickhouse, Schema(clickhouse.database, retention_days=0))
    assert sum("REMOVE TTL" in statement for statement in done) == 2
    migrate(clickhouse, Schema(clickhouse.database, retention_days=760))


# --- exactly once -----------------------------------------------------------------------------


@needs_chdb
@pytest.mark.django_db
def test_the_same_block_inserted_twice_counts_once_in_events_and_rollups(clickhouse, settings):
    settings.METER_EVENT_STORE = "clickhouse"
    store = get_event_store("clickhouse")
    meter, customer = MeterFactory(), CustomerFactory()
    rows = [event_row(_event(meter, customer, "a", "2.5"), 1)]
    schema = Schema(clickhouse.database)
    insert_events(clickhouse, schema, rows)
    insert_events(clickhouse, schema, rows)  # the retry of a batch that did arrive
    assert _usage(store, meter, customer) == Decimal("2.5")
    # The whole hours come from the rollups, which saw the block once too.
    assert store.usage(
        meter=meter, customer_id=customer.pk, start=AT - dt.timedelta(minutes=15), end=NOW
    ) == Decimal("2.5")


@needs_chdb
@pytest.mark.django_db
def test_a_failed_write_releases_the_claims_and_the_retry_counts_once(clickhouse, settings):
    settings.METER_EVENT_STORE = "clickhouse"
    store = get_event_store("clickhouse")
    meter, customer = MeterFactory(), CustomerFactory()
    batch = [_event(meter, customer, "a", "1"), _event(meter, customer, "b", "2")]
    batch = [replace(event, index=index) for index, event in enumerate(batch)]
    real_insert = clickhouse.insert

    def written_then_lost(*args, **kwargs):
        real_insert(*args, **kwargs)  # ClickHouse stored it; the answer never came back
        raise TransientError("timed out")

    with mock.patch.object(clickhouse, "insert", written_then_lost), pytest.raises(TransientError):
        store.ingest(batch)
    assert not MeterEventIdentifier.objects.filter(meter=meter).exists()

    result = store.ingest(batch)  # the sender's retry: claimed again, same block, dropped

    assert [event.identifier for event in result.accepted] == ["a", "b"]
    assert _usage(store, meter, customer) == Decimal(3)
    assert store.ingest(batch).accepted == []


@needs_chdb
@pytest.mark.django_db
def test_identifiers_with_tabs_quotes_and_newlines_round_trip_and_cancel(clickhouse, settings):
    settings.METER_EVENT_STORE = "clickhouse"
    store = get_event_store("clickhouse")
    meter, customer = MeterFactory(formula="last"), CustomerFactory()
    odd = "it's\ta \\n\nline"
    store.ingest([_event(meter, customer, "plain", "5", AT - dt.timedelta(hours=2))])
    store.ingest([_event(meter, customer, odd, "7")])
    assert _usage(store, meter, customer) == Decimal(7)
    found = store.find_event(meter=meter, identifier=odd)
    first = store.cancel(event=found, at=NOW)
    assert store.cancel(event=found, at=NOW) == first  # once: the second changes nothing
    assert _usage(store, meter, customer) == Decimal(5)
    rows = clickhouse.query(
        f"SELECT identifier, sign FROM {clickhouse.database}.meter_events ORDER BY event_id, sign"
    )
    assert rows == [("plain", 1), (odd, -1), (odd, 1)]


@needs_chdb
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_of_the_same_batch_store_it_once(clickhouse, settings):
    settings.METER_EVENT_STORE = "clickhouse"
    store = get_event_store("clickhouse")
    meter, customer = MeterFactory(), CustomerFactory()
    batch = [replace(_event(meter, customer, f"e{n}", "1"), index=n) for n in range(50)]
    accepted: list[int] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        try:
            barrier.wait()
            accepted.append(len(store.ingest(batch).accepted))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(accepted) == 50  # each identifier accepted by exactly one sender
    assert _usage(store, meter, customer) == Decimal(50)


# --- moving an install: meter_events_copy -----------------------------------------------------


@needs_chdb
@pytest.mark.django_db
def test_the_copy_moves_events_and_cancellations_and_resumes(clickhouse, settings):
    settings.METER_EVENT_STORE = "orm" if connection.vendor == "sqlite" else "postgresql"
    source = get_event_store(settings.METER_EVENT_STORE)
    target = get_event_store("clickhouse")
    meters = [MeterFactory(formula=formula) for formula in ("sum", "count", "last")]
    customers = [CustomerFactory(), CustomerFactory()]
    events = [
        _event(
            meter,
            customer,
            f"{meter.pk}-{customer.pk}-{n}",
            f"{n}.000000000001",
            AT - dt.timedelta(hours=7 * n),
        )
        for meter in meters
        for customer in customers
        for n in range(6)
    ]
    source.ingest([replace(event, index=index) for index, event in enumerate(events)])
    source.cancel(
        event=source.find_event(meter=meters[2], identifier=events[-1].identifier), at=NOW
    )
    out = io.StringIO()

    call_command("meter_events_copy", "--to", "clickhouse", stdout=out)

    assert "36 events copied; all 2 days verified equal on both sides" in out.getvalue()
    start, end = NOW - dt.timedelta(days=5), NOW
    pairs = [(meter, customer.pk) for meter in meters for customer in customers]
    assert target.usage_many(pairs=pairs, start=start, end=end) == source.usage_many(
        pairs=pairs, start=start, end=end
    )
    # A late event and a cancellation after the copy: the next run sends just those.
    source.ingest([_event(meters[0], customers[0], "late", "100", AT - dt.timedelta(days=1))])
    source.cancel(event=source.find_event(meter=meters[0], identifier=events[0].identifier), at=NOW)
    out = io.StringIO()
    call_command("meter_events_copy", "--to", "clickhouse", stdout=out)
    assert "2026-11-18: 1 events and 0 cancellations copied" in out.getvalue()
    assert "2026-11-19: 0 events and 1 cancellations copied" in out.getvalue()
    assert target.usage_many(pairs=pairs, start=start, end=end) == source.usage_many(
        pairs=pairs, start=start, end=end
    )
    rows = clickhouse.query(f"SELECT count() FROM {clickhouse.database}.meter_events")
    assert rows == [(len(events) + 1 + 2,)]  # every event once, two cancellations
    # New events are numbered after every copied one (the `last` tie-break).
    claimed = target.ingest([_event(meters[2], customers[0], "new", "1")])
    assert claimed.accepted
    new_id = clickhouse.query(
        f"SELECT event_id FROM {clickhouse.database}.meter_events WHERE identifier = 'new'"
    )[0][0]
    assert new_id > max(
        row[0]
        for row in clickhouse.query(
            f"SELECT event_id FROM {clickhouse.database}.meter_events WHERE identifier != 'new'"
        )
    )


@needs_chdb
@pytest.mark.django_db
def test_the_copy_refuses_a_backwards_range(clickhouse):
    with pytest.raises(CommandError, match="--since 2026-02-01 is after --until 2026-01-01"):
        call_command(
            "meter_events_copy",
            "--to",
            "clickhouse",
            "--since",
            "2026-02-01",
            "--until",
            "2026-01-01",
        )


@needs_chdb
@pytest.mark.django_db
def test_the_admin_records_a_test_event_and_charts_it_on_clickhouse(
    admin_client, clickhouse, settings
):
    settings.METER_EVENT_STORE = "clickhouse"
    meter, customer = MeterFactory(), CustomerFactory()
    noon = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)
    url = f"/admin/metering/meter/{meter.pk}/"
    form = {"customer": customer.pk, "value": "3.5", "identifier": "t-1"}
    with clock.frozen_at(noon):
        response = admin_client.post(
            f"{url}send-test-event/", {**form, "timestamp": "2026-11-21T09:15:00"}, follow=True
        )
        chart = admin_client.get(f"{url}change/", {"window": "day", "customer": customer.pk})

    messages = [str(message) for message in response.context["messages"]]
    assert any("t-1" in message and "recorded" in message for message in messages)
    start = noon - dt.timedelta(days=1)
    assert get_event_store("clickhouse").usage(
        meter=meter, customer_id=customer.pk, start=start, end=noon
    ) == Decimal("3.5")
    assert chart.status_code == 200 and "<svg" in chart.content.decode()
