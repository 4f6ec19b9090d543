"""The one place that knows how statements reach ClickHouse: over HTTP or in-process.

`CLICKHOUSE_URL` picks the transport:

- `clickhouse://user:password@host:8123/database` (or `clickhouses://` for TLS): a server, through
  `clickhouse-connect`, the official client, over the HTTP interface;
- `chdb:///absolute/directory` (optionally `?database=name`): the same engine embedded in this
  process through `chdb`, for development and tests. One process at a time may open a directory.

Both take the same SQL, the same string parameters (`{name:String}` placeholders, bound by the
server) and the same rows to insert, and return rows as tuples of Python values (int, Decimal,
aware datetime, str). The store above never sees which one it talks to, so everything but the
few lines below runs on the real engine in the tests.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

INSTALL_HINT = "pip install -e '.[clickhouse]'"
# Statements carry their lists (pairs, billed periods) inline: allow more than the 256 KiB
# default. The limit applies while parsing, so it must be a session/connection setting.
MAX_QUERY_SIZE = 64 * 1024 * 1024
CHDB_DEFAULT_DATABASE = "billing"


class TransientError(Exception):
    """The statement may or may not have reached the server (timeout, dropped connection):
    sending the same insert again, with the same deduplication token, is safe."""


class Transport(Protocol):
    database: str

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> list[tuple]: ...

    def command(self, sql: str) -> None: ...

    def insert(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        *,
        settings: Mapping[str, str | int],
    ) -> None:
        """Insert `rows` (one value per (name, type) column) as one block, with these query
        settings (the store's `insert_deduplication_token`: a block whose token ClickHouse has
        already seen is dropped, so a retried insert is written once)."""


class HttpTransport:
    """A ClickHouse server through clickhouse-connect (HTTP, native format for inserts)."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database

    @classmethod
    def connect(cls, url: str) -> HttpTransport:
        parts = urlsplit(url)
        try:
            import clickhouse_connect
        except ImportError as error:
            raise ImproperlyConfigured(
                f"CLICKHOUSE_URL names a ClickHouse server, but clickhouse-connect is not "
                f"installed: {INSTALL_HINT}"
            ) from error
        database = database_of(url)
        client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if parts.scheme == "clickhouses" else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
            secure=parts.scheme == "clickhouses",
            settings={"max_query_size": MAX_QUERY_SIZE},
            # One client serves every thread of a worker: a server session would refuse the
            # second of two concurrent queries ("session is locked").
            autogenerate_session_id=False,
        )
        return cls(client, database)

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> list[tuple]:
        try:
            return list(self.client.query(sql, parameters=dict(params or {})).result_rows)
        except _transient_errors() as error:
            raise TransientError(str(error)) from error

    def command(self, sql: str) -> None:
        self.client.command(sql)

    def insert(self, table, columns, rows, *, settings) -> None:
        try:
            self.client.insert(
                table,
                [list(row) for row in rows],
                column_names=[name for name, _ in columns],
                column_type_names=[type_name for _, type_name in columns],
                settings=dict(settings),
            )
        except _transient_errors() as error:
            raise TransientError(str(error)) from error


def _transient_errors() -> tuple[type[Exception], ...]:
    from clickhouse_connect.driver.exceptions import OperationalError

    return (OperationalError,)


class ChdbTransport:
    """The ClickHouse engine in this process (chdb). Statements are serialized: one session
    serves every thread (the live-server tests call it from the server's threads)."""

    def __init__(self, session: Any, database: str) -> None:
        self.session = session
        self.database = database
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str) -> ChdbTransport:
        parts = urlsplit(url)
        if not parts.path.startswith("/") or parts.netloc:
            raise ImproperlyConfigured(
                f"CLICKHOUSE_URL={url!r}: an embedded store is chdb:///absolute/directory."
            )
        try:
            from chdb import session as chdb_session
        except ImportError as error:
            raise ImproperlyConfigured(
                f"CLICKHOUSE_URL names an embedded chdb store, but chdb is not installed: "
                f"{INSTALL_HINT}"
            ) from error
        database = database_of(url)
        session = chdb_session.Session(parts.path)
        session.query(f"SET max_query_size = {MAX_QUERY_SIZE}")
        return cls(session, database)

    def query(self, sql: str, params: Mapping[str, str] | None = None) -> list[tuple]:
        escaped = {name: tsv_escape(value) for name, value in (params or {}).items()}
        with self._lock:
            # Arrow keeps Decimals and microseconds exact; decoding the stream here is several
            # times faster than chdb's own "ArrowTable" conversion.
            result = self.session.query(sql, "ArrowStream", params=escaped or None)
        data = result.bytes()
        if not data:
            return []
        import pyarrow.ipc

        table = pyarrow.ipc.open_stream(data).read_all()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def command(self, sql: str) -> None:
        with self._lock:
            self.session.query(sql)

    def insert(self, table, columns, rows, *, settings) -> None:
        clause = ", ".join(f"{name} = {_literal(value)}" for name, value in settings.items())
        data = "\n".join("\t".join(_tsv_value(value) for value in row) for row in rows)
        names = ", ".join(name for name, _ in columns)
        with self._lock:
            self.session.query(
                f"INSERT INTO {table} ({names}) SETTINGS {clause} FORMAT TabSeparated\n{data}\n"
            )


_TSV_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


def tsv_escape(text: str) -> str:
    """Text in ClickHouse's escaped (TabSeparated) form: how parameters and rows travel."""
    return text.translate(_TSV_ESCAPES)


def _tsv_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return datetime_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return tsv_escape(value)
    return str(int(value))


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(int(value))


def datetime_text(moment: dt.datetime) -> str:
    """A moment as ClickHouse's DateTime64(6, 'UTC') text."""
    if moment.tzinfo is None:
        raise ValueError(f"An event time must be timezone-aware: {moment!r}")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def database_of(url: str) -> str:
    """The database a CLICKHOUSE_URL names: the path of a server URL (default `default`), the
    `?database=` of a chdb URL (default `billing`)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return parse_qs(parts.query).get("database", [CHDB_DEFAULT_DATABASE])[0]
    return parts.path.strip("/") or "default"


@functools.cache
def transport_for(url: str) -> Transport:
    """The (one, cached) transport for a CLICKHOUSE_URL."""
    scheme = urlsplit(url).scheme
    if scheme in ("clickhouse", "clickhouses"):
        return HttpTransport.connect(url)
    if scheme == "chdb":
        return ChdbTransport.connect(url)
    raise ImproperlyConfigured(
        "CLICKHOUSE_URL must be clickhouse://user:password@host:8123/database (a server) or "
        f"chdb:///absolute/directory (embedded), got {url.split('@')[-1]!r}."
    )
