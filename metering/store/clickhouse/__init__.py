"""The ClickHouse event store: `store.py` (the EventStore), `schema.py` (the tables, created by
`manage.py clickhouse_migrate`), `claims.py` (the exactly-once claim in Django's database) and
`transport.py` (HTTP through clickhouse-connect, or chdb in-process)."""

from metering.store.clickhouse.store import ClickHouseEventStore

__all__ = ["ClickHouseEventStore"]
