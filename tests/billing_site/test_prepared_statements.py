"""billing_site.db.execute_prepared: bound on the server, yet handled like any ORM query."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from billing_site.db import execute_prepared

pytestmark = pytest.mark.postgres


def _prepared_count(marker: str) -> int:
    rows = execute_prepared(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %b", [f"%{marker}%"]
    )
    return rows[0][0]


def test_values_travel_apart_from_the_statement_text(db):
    sql = "SELECT n * 2 FROM unnest(%b::int[]) AS n WHERE %b <> '' /* bound-test */"
    assert execute_prepared(sql, [[1, 2, 3], "'; DROP TABLE x; --"]) == [(2,), (4,), (6,)]
    # Django turns preparing off by default (connection poolers): nothing is prepared then.
    assert _prepared_count("bound-test") == 0


def test_statements_are_prepared_once_the_connection_allows_it(db):
    connection.ensure_connection()
    connection.connection.prepare_threshold = 5  # as `prepare_threshold` in OPTIONS would set
    try:
        sql = "SELECT %b::int + 1 /* prepared-test */"
        assert execute_prepared(sql, [1]) == [(2,)]
        assert execute_prepared(sql, [41]) == [(42,)]
        assert _prepared_count("prepared-test") == 1
    finally:
        connection.connection.prepare_threshold = None


def test_prepared_statements_are_logged_like_orm_queries(db):
    with CaptureQueriesContext(connection) as queries:
        execute_prepared("SELECT 1 /* counted */", [])
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT 1 /* counted */"]


def test_a_dropped_connection_is_discarded_and_the_next_query_reconnects(transactional_db):
    """With persistent connections, a dead connection must not outlive the request that hit it
    (Django closes a connection flagged by an error at the end of each request)."""
    backend_pid = execute_prepared("SELECT pg_backend_pid()", [])[0][0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    with pytest.raises(OperationalError):
        execute_prepared("SELECT 1", [])
    assert connection.errors_occurred
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is None
    assert execute_prepared("SELECT pg_backend_pid()", [])[0][0] != backend_pid
