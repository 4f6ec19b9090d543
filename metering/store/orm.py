"""The event store written through Django's ORM: SQLite, or any database Django supports.

One transaction per batch claims the identifiers (INSERT ... ON CONFLICT DO NOTHING RETURNING,
so of two concurrent senders of one identifier exactly one wins), stores only the winners and
adds them to their hourly rollups in (meter, customer, hour) order, so concurrent batches wait
rather than deadlock. SQLite stores decimals as floats: rollup sums are added in Python there.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from metering.models import MeterEvent, MeterUsageRollup
from metering.store.base import IngestResult, hour_of
from metering.store.claims import claim_identifiers
from metering.store.relational import RelationalEventStore
from metering.validation import ValidEvent


class OrmEventStore(RelationalEventStore):
    name = "orm"

    def ingest(self, events: Sequence[ValidEvent]) -> IngestResult:
        if not events:
            return IngestResult()
        with transaction.atomic():
            claimed = claim_identifiers(events)
            _store([event for event in events if (event.meter.pk, event.identifier) in claimed])
        return IngestResult.of_claims(events, set(claimed))


def _store(items: list[ValidEvent]) -> None:
    if not items:
        return
    events = MeterEvent.objects.bulk_create(
        [
            MeterEvent(
                meter=item.meter,
                customer_id=item.customer_id,
                identifier=item.identifier,
                value=item.value,
                timestamp=item.timestamp,
                received_at=item.received_at,
                payload=item.payload,
            )
            for item in items
        ]
    )
    _add_to_rollups(events)


@dataclass
class _Bucket:
    value_sum: Decimal = Decimal(0)
    event_count: int = 0
    last_value: Decimal | None = None
    last_key: tuple[dt.datetime, int] | None = None


def _add_to_rollups(events: list[MeterEvent]) -> None:
    buckets: dict[tuple[int, int, dt.datetime], _Bucket] = defaultdict(_Bucket)
    for event in events:
        bucket = buckets[(event.meter_id, event.customer_id, hour_of(event.timestamp))]
        bucket.value_sum += event.value
        bucket.event_count += 1
        key = (event.timestamp, event.pk)
        if bucket.last_key is None or key > bucket.last_key:
            bucket.last_key, bucket.last_value = key, event.value
    if connection.vendor == "sqlite":
        _add_to_rollups_in_python(buckets)
        return
    ops = connection.ops
    table = MeterUsageRollup._meta.db_table
    placeholders = []
    params: list[Any] = []
    # Fixed lock order: concurrent batches touching the same buckets wait, never deadlock.
    for (meter_id, customer_id, hour), bucket in sorted(buckets.items()):
        assert bucket.last_key is not None
        placeholders.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            meter_id,
            customer_id,
            ops.adapt_datetimefield_value(hour),
            ops.adapt_decimalfield_value(bucket.value_sum),
            bucket.event_count,
            ops.adapt_decimalfield_value(bucket.last_value),
            ops.adapt_datetimefield_value(bucket.last_key[0]),
            bucket.last_key[1],
        ]
    newer = (
        f"(excluded.last_timestamp > {table}.last_timestamp OR {table}.last_timestamp IS NULL "
        f"OR (excluded.last_timestamp = {table}.last_timestamp "
        f"AND excluded.last_event_id > {table}.last_event_id))"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (meter_id, customer_id, hour, value_sum, event_count, "
            f"last_value, last_timestamp, last_event_id) VALUES {', '.join(placeholders)} "
            "ON CONFLICT (meter_id, customer_id, hour) DO UPDATE SET "
            f"value_sum = {table}.value_sum + excluded.value_sum, "
            f"event_count = {table}.event_count + excluded.event_count, "
            f"last_value = CASE WHEN {newer} THEN excluded.last_value "
            f"ELSE {table}.last_value END, "
            f"last_timestamp = CASE WHEN {newer} THEN excluded.last_timestamp "
            f"ELSE {table}.last_timestamp END, "
            f"last_event_id = CASE WHEN {newer} THEN excluded.last_event_id "
            f"ELSE {table}.last_event_id END",
            params,
        )


def _add_to_rollups_in_python(buckets: dict[tuple[int, int, dt.datetime], _Bucket]) -> None:
    """SQLite adds decimals as floats; it also has one writer at a time, and this transaction
    already holds the write lock (it wrote the identifiers), so read-modify-write is safe."""
    for (meter_id, customer_id, hour), bucket in sorted(buckets.items()):
        assert bucket.last_key is not None
        rollup, created = MeterUsageRollup.objects.get_or_create(
            meter_id=meter_id,
            customer_id=customer_id,
            hour=hour,
            defaults={
                "value_sum": bucket.value_sum,
                "event_count": bucket.event_count,
                "last_value": bucket.last_value,
                "last_timestamp": bucket.last_key[0],
                "last_event_id": bucket.last_key[1],
            },
        )
        if created:
            continue
        rollup.value_sum += bucket.value_sum
        rollup.event_count += bucket.event_count
        if rollup.last_timestamp is None or bucket.last_key > (
            rollup.last_timestamp,
            rollup.last_event_id,
        ):
            rollup.last_value = bucket.last_value
            rollup.last_timestamp, rollup.last_event_id = bucket.last_key
        rollup.save()
