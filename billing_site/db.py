"""Database plumbing shared by the apps: server-bound (and preparable) statements on PostgreSQL.

Hot paths (the API-key lookup on every request, the meter event batch) run one statement text
many times with different values. Django's psycopg cursor binds on the client: it quotes every
value into a new statement text, which for a batch of a hundred events costs more than the
insert itself. Here the values travel apart from the text, in binary (arrays too, with `%b`).

The statement is also marked for preparing, but psycopg only prepares when the connection
allows it: Django turns preparing off (`prepare_threshold=None`) so that transaction-mode
connection poolers keep working. Set `prepare_threshold` in the database OPTIONS to have these
statements parsed and planned once per connection.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection, models

# Text PostgreSQL can't store: NUL (refused in text and jsonb) and lone surrogates (JSON "\ud800"
# decodes to one; it can't be encoded as UTF-8). Refused at the edge, or the statement fails.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def is_storable_text(text: str) -> bool:
    return UNSTORABLE_TEXT.search(text) is None


def escape_unstorable(text: str) -> str:
    """`text` with NUL and lone surrogates written as `\\u0000`, so an error can quote it."""
    return UNSTORABLE_TEXT.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class _PreparingCursor(psycopg.Cursor):
    """psycopg's server-side binding cursor, asking to prepare every statement. (Django's own
    cursor is psycopg's ClientCursor, which binds on the client and can't prepare.)"""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def execute_prepared(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
    """Run `sql` with server-side binding on PostgreSQL and return all its rows.

    The statement runs inside Django's cursor wrapper, like any ORM query: a database error is
    raised as Django's exception and flags the connection, so a connection that died (a
    restarted server, a killed backend) is discarded when the request ends instead of failing
    every later request. Queries are logged and counted like the ORM's (DEBUG, test assertions).
    """
    if connection.vendor != "postgresql":
        raise NotImplementedError("Server-side binding needs PostgreSQL (psycopg 3).")
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw_cursor = _PreparingCursor(connection.connection)
    wrapped = (
        connection.make_debug_cursor(raw_cursor)
        if connection.queries_logged
        else connection.make_cursor(raw_cursor)
    )
    with wrapped as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@contextlib.contextmanager
def values_bound_on_server() -> Iterator[None]:
    """ORM writes inside bind their values on the server, in binary, instead of being quoted
    into the statement text by Django's client-binding cursor.

    For bulk writes of many rows (a billing-run chunk's invoices, lines and events), Django
    sends each column as one array (`UNNEST`), and quoting arrays of JSON in Python costs more
    than the insert itself. Only for plain INSERT and UPDATE statements: parameters in SELECT
    or GROUP BY expressions aren't recognised as equal under server-side binding (Django
    #34255). Elsewhere than PostgreSQL it changes nothing.
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous, raw.cursor_factory = raw.cursor_factory, _binary_params_cursor()
    try:
        yield
    finally:
        raw.cursor_factory = previous


@functools.cache
def _binary_params_cursor() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class BinaryParamsCursor(ServerBindingCursor):
        """Django's server-binding cursor, sending every value in binary (`%b`): the text
        format escapes each array element (every quote of every JSON document) in Python."""

        def execute(self, query, params=None, *args, **kwargs):
            if params and isinstance(query, str):
                query = query.replace("%s", "%b")
            return super().execute(query, params, *args, **kwargs)

    return BinaryParamsCursor


def bulk_update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """`QuerySet.bulk_update` in one `UPDATE ... FROM UNNEST(...)` on PostgreSQL: Django's
    builds a CASE per field and row, whose compiling costs more than the update."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    pk = quote(meta.pk.column)
    types = [meta.pk.db_type(connection)] + [
        column.db_type(connection).split("(")[0] for column in columns
    ]
    arrays = [[obj.pk for obj in objs]] + [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objs]
        for column in columns
    ]
    table = quote(meta.db_table)
    names = [quote(column.column) for column in columns]
    sql = (
        f"UPDATE {table} SET {', '.join(f'{name} = v.{name}' for name in names)} "
        f"FROM UNNEST({', '.join(f'%s::{kind}[]' for kind in types)}) "
        f"AS v({pk}, {', '.join(names)}) WHERE {table}.{pk} = v.{pk}"
    )
    with values_bound_on_server(), connection.cursor() as cursor:
        cursor.execute(sql, arrays)
