"""ClickHouse for the tests: the embedded engine (chdb), one directory per test session, its
tables emptied before each test that uses it.

A test asks for the `clickhouse` fixture (the contract tests do, for their ClickHouse run). A
whole run with `METER_EVENT_STORE=clickhouse` (CI's second pass) gets it for every test, so the
billing and metering tests run on ClickHouse unchanged; `CLICKHOUSE_URL` then names the directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from unittest import mock

import pytest

CHDB_MISSING = importlib.util.find_spec("chdb") is None
needs_chdb = pytest.mark.skipif(
    CHDB_MISSING, reason="the ClickHouse store's tests need chdb: pip install -e '.[clickhouse]'"
)

_migrated: set[str] = set()


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory) -> str:
    from django.conf import settings

    configured = settings.CLICKHOUSE_URL
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if configured.startswith("chdb://") and "?" not in configured:
        # One process per chdb directory: each xdist worker gets its own.
        return f"{configured}-{worker}" if worker else configured
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture
def clickhouse(settings, clickhouse_url):
    """The ClickHouse store's tables, created once a session and empty at the start of the test."""
    from metering.store.clickhouse.schema import migrate
    from metering.store.clickhouse.store import connect

    settings.CLICKHOUSE_URL = clickhouse_url
    transport, schema = connect()
    if clickhouse_url not in _migrated:
        migrate(transport, schema)
        _migrated.add(clickhouse_url)
    for statement in schema.truncate_statements():
        transport.command(statement)
    return transport


@pytest.fixture(autouse=True)
def _clickhouse_when_configured(request, settings):
    if settings.METER_EVENT_STORE == "clickhouse":
        request.getfixturevalue("clickhouse")


@contextlib.contextmanager
def clickhouse_statements(store) -> Iterator[list[str]]:
    """The statements `store` sends to ClickHouse inside the block (none for other stores)."""
    sent: list[str] = []
    if store.name != "clickhouse":
        yield sent
        return
    from metering.store.clickhouse.store import connect

    transport, _ = connect()
    query, insert = transport.query, transport.insert

    def logged_query(sql, params=None):
        sent.append(sql)
        return query(sql, params)

    def logged_insert(table, columns, rows, *, settings):
        sent.append(f"INSERT INTO {table}")
        return insert(table, columns, rows, settings=settings)

    with (
        mock.patch.object(transport, "query", logged_query),
        mock.patch.object(transport, "insert", logged_insert),
    ):
        yield sent


def clickhouse_raw_events() -> list[tuple]:
    """Every event in ClickHouse as (meter id, customer id, identifier, value, timestamp, id,
    received at, cancelled): plain rows, added up by nobody (the reference's input). An event
    is cancelled if a compensating row (sign -1) has its id."""
    from metering.store.clickhouse.store import connect

    transport, schema = connect()
    rows = transport.query(
        "SELECT meter_id, customer_id, identifier, value, timestamp, event_id, received_at, sign "
        f"FROM {schema.events} ORDER BY event_id"
    )
    cancelled = {(row[0], row[5]) for row in rows if row[7] < 0}
    return [(*row[:7], (row[0], row[5]) in cancelled) for row in rows if row[7] > 0]
