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

import re
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.db import connection

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
