"""The ClickHouse tables of the event store, as `manage.py clickhouse_migrate` creates them.

- `meter_events`: one row per event (`sign = 1`) and one per cancellation (`sign = -1`, a copy
  of the event with its sign flipped). MergeTree, a partition a month, ordered by
  (meter_id, customer_id, timestamp): a customer's usage over a period is one range of the
  primary key. Rows are never updated or deduplicated by merges, so no read needs `FINAL`:
  exactly-once is decided before the insert, by the identifier claim in PostgreSQL.
- `meter_usage_hourly`: per (meter, customer, hour) the sum (cancellations subtract), the count
  (they subtract one), how many cancellations the hour has, and the last event as the greatest
  (timestamp, event id, value) tuple: `max` of that tuple is `argMax(value, (timestamp, event
  id))`, the rule of `metering.store.base.UsageAggregate`, and merges as a simple aggregate.
  Kept by a materialized view on every insert into `meter_events`; read with GROUP BY, since
  rows of one hour are added up by merges only eventually.
- TTL: both tables drop whole monthly parts once every event in them is older than the
  retention (`CLICKHOUSE_EVENT_RETENTION_DAYS`, 0 keeps events for ever).
- On a cluster (`CLICKHOUSE_CLUSTER`): every statement runs `ON CLUSTER`, the two tables become
  `*_local` Replicated tables on each shard, and `meter_events` / `meter_usage_hourly` are
  `Distributed` tables over them, sharded by `cityHash64(customer_id)`: all of one customer's
  events, cancellations and rollups live on one shard, so each shard answers its customers'
  usage completely and the initiator only concatenates.

Every statement is idempotent (IF NOT EXISTS, MODIFY TTL), so the command can run on each
deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metering.store.clickhouse.transport import Transport

EVENTS = "meter_events"
ROLLUPS = "meter_usage_hourly"
ROLLUPS_VIEW = "meter_usage_hourly_mv"

MOMENT = "DateTime64(6, 'UTC')"
VALUE = "Decimal(38, 12)"
LAST = f"Tuple({MOMENT}, UInt64, {VALUE})"
# How many recent insert blocks each table remembers the deduplication tokens of.
DEDUPLICATION_WINDOW = 10_000

# The columns an insert into `meter_events` sends, with their types (the HTTP client needs them).
EVENT_COLUMNS = (
    ("meter_id", "UInt64"),
    ("customer_id", "UInt64"),
    ("timestamp", MOMENT),
    ("event_id", "UInt64"),
    ("identifier", "String"),
    ("value", VALUE),
    ("received_at", MOMENT),
    ("payload", "String"),
    ("sign", "Int8"),
)


@dataclass(frozen=True)
class Schema:
    database: str
    cluster: str = ""
    retention_days: int = 0

    def __post_init__(self) -> None:
        if "-" in self.database:
            raise ValueError(f"Not a usable ClickHouse database name: {self.database!r}.")
        _identifier(self.database)
        if self.cluster:
            _identifier(self.cluster)
        if self.retention_days < 0:
            raise ValueError("The retention is a number of days, 0 for ever.")

    @property
    def events(self) -> str:
        """The table inserts and reads name (Distributed on a cluster)."""
        return f"{self.database}.{EVENTS}"

    @property
    def rollups(self) -> str:
        return f"{self.database}.{ROLLUPS}"

    def _local(self, table: str) -> str:
        return f"{self.database}.{table}_local" if self.cluster else f"{self.database}.{table}"

    def _on_cluster(self) -> str:
        return f" ON CLUSTER {_identifier(self.cluster)}" if self.cluster else ""

    def _engine(self, kind: str, table: str) -> str:
        if not self.cluster:
            return kind
        path = f"/clickhouse/tables/{{shard}}/{self.database}/{table}"
        return f"Replicated{kind}('{path}', '{{replica}}')"

    def _ttl(self, column: str) -> str:
        return f"{column} + INTERVAL {self.retention_days} DAY"

    def statements(self) -> list[str]:
        """The DDL, in order; running it again changes nothing (but the TTL, if changed)."""
        on = self._on_cluster()
        events, rollups = self._local(EVENTS), self._local(ROLLUPS)
        ttl_parts = "ttl_only_drop_parts = 1, " if self.retention_days else ""
        replicated = "replicated" if self.cluster else "non_replicated"
        dedup = f"{replicated}_deduplication_window = {DEDUPLICATION_WINDOW}"
        statements = [
            f"CREATE DATABASE IF NOT EXISTS {self.database}{on}",
            f"""CREATE TABLE IF NOT EXISTS {events}{on} (
    meter_id UInt64,
    customer_id UInt64,
    timestamp {MOMENT},
    event_id UInt64,
    identifier String,
    value {VALUE},
    received_at {MOMENT},
    payload String CODEC(ZSTD(3)),
    sign Int8
) ENGINE = {self._engine("MergeTree", EVENTS)}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (meter_id, customer_id, timestamp)
SETTINGS {ttl_parts}{dedup}""",
            f"""CREATE TABLE IF NOT EXISTS {rollups}{on} (
    meter_id UInt64,
    customer_id UInt64,
    hour DateTime('UTC'),
    value_sum SimpleAggregateFunction(sum, {VALUE}),
    event_count SimpleAggregateFunction(sum, Int64),
    cancelled SimpleAggregateFunction(sum, UInt64),
    last SimpleAggregateFunction(max, {LAST})
) ENGINE = {self._engine("AggregatingMergeTree", ROLLUPS)}
PARTITION BY toYYYYMM(hour)
ORDER BY (meter_id, customer_id, hour)
SETTINGS {ttl_parts}{dedup}""",
            f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {self.database}.{ROLLUPS_VIEW}{on}
TO {rollups} AS
SELECT meter_id, customer_id, toStartOfHour(timestamp) AS hour,
    sum(if(sign > 0, value, -value)) AS value_sum,
    sum(toInt64(sign)) AS event_count,
    countIf(sign < 0) AS cancelled,
    maxIf((timestamp, event_id, value), sign > 0) AS last
FROM {events}
GROUP BY meter_id, customer_id, hour""",
        ]
        if self.cluster:
            for table in (EVENTS, ROLLUPS):
                statements.append(
                    f"CREATE TABLE IF NOT EXISTS {self.database}.{table}{on} "
                    f"AS {self._local(table)} ENGINE = Distributed({_identifier(self.cluster)}, "
                    f"{self.database}, {table}_local, cityHash64(customer_id))"
                )
        if self.retention_days:
            for table, column in self._ttl_columns():
                statements.append(f"ALTER TABLE {table}{on} MODIFY TTL {self._ttl(column)}")
        return statements

    def _ttl_columns(self) -> list[tuple[str, str]]:
        return [
            (self._local(EVENTS), "toDateTime(timestamp)"),
            (self._local(ROLLUPS), "hour"),
        ]

    def remove_ttl_statement(self, table: str) -> str:
        """For a retention set back to 0 (for ever) on a table that has a TTL."""
        return f"ALTER TABLE {table}{self._on_cluster()} REMOVE TTL"

    def local_tables(self) -> list[str]:
        return [self._local(EVENTS), self._local(ROLLUPS)]

    def truncate_statements(self) -> list[str]:
        """Empty both tables (tests); also forgets the deduplication tokens."""
        on = self._on_cluster()
        return [f"TRUNCATE TABLE IF EXISTS {self._local(t)}{on}" for t in (EVENTS, ROLLUPS)]


def migrate(transport: Transport, schema: Schema) -> list[str]:
    """Run the DDL (idempotent); return the statements run."""
    done = []
    for statement in schema.statements():
        transport.command(statement)
        done.append(statement)
    if not schema.retention_days:
        for table in schema.local_tables():
            database, name = table.split(".")
            rows = transport.query(
                "SELECT create_table_query FROM system.tables "
                "WHERE database = {database:String} AND name = {name:String}",
                {"database": database, "name": name},
            )
            if rows and " TTL " in rows[0][0]:
                statement = schema.remove_ttl_statement(table)
                transport.command(statement)
                done.append(statement)
    return done


def _identifier(name: str) -> str:
    """A database or cluster name, refused unless plain (it is written into the DDL)."""
    if not name or not name.replace("_", "").replace("-", "").isalnum() or not name.isascii():
        raise ValueError(f"Not a usable ClickHouse name: {name!r} (letters, digits, _ and -).")
    return f"`{name}`" if "-" in name else name
