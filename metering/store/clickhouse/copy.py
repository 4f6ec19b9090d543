"""Moving an install's meter events from Django's database to ClickHouse, a day at a time.

Each UTC day (of event timestamps) is compared first: per (meter, customer), the sum of the
uncancelled values and their number, on both sides. A day that matches is done. A day with no
rows in ClickHouse is copied whole; a day that differs (a copy interrupted half-way, late
events or cancellations since the last run) gets only what is missing, per (meter, customer)
pair that differs: the events ClickHouse lacks (by event id) and the cancellations it lacks
(compensating rows). Then the day is compared again. So the copy can be stopped and run again
at any time, for any range of days, and a second run over the same days writes nothing.

Copied events keep their ids. Afterwards the claim ids (which number new events on ClickHouse)
are moved past the largest copied id, so a new event still sorts after every older one in the
`last` tie-break.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Max, Min, Sum

from metering.models import MeterEvent, MeterEventIdentifier
from metering.store.base import DAY
from metering.store.clickhouse.schema import Schema
from metering.store.clickhouse.store import insert_events, moment_sql
from metering.store.clickhouse.transport import Transport

# Events a ClickHouse insert carries (one block, one deduplication token).
ROWS_PER_INSERT = 50_000
Totals = dict[tuple[int, int], tuple[Decimal, int]]


@dataclass
class DayReport:
    day: dt.date
    copied: int = 0
    cancellations: int = 0
    pairs: int = 0
    mismatched: list[tuple[int, int]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.mismatched


def days_with_events(since: dt.date | None, until: dt.date | None) -> list[dt.date]:
    """The UTC days from the first to the last event (or the range asked), oldest first."""
    bounds = MeterEvent.objects.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    if bounds["first"] is None:
        return []
    first = since or bounds["first"].astimezone(dt.UTC).date()
    last = until or bounds["last"].astimezone(dt.UTC).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def copy_day(transport: Transport, schema: Schema, day: dt.date) -> DayReport:
    """Copy what ClickHouse lacks of one day's events, then compare the day's totals."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + DAY
    report = DayReport(day)
    source = source_totals(start, end)
    target = clickhouse_totals(transport, schema, start, end)
    if source != target:
        if not target:
            events = MeterEvent.objects.filter(timestamp__gte=start, timestamp__lt=end)
            _send(transport, schema, events, {}, report)
        else:
            for meter_id, customer_id in sorted(set(source) | set(target)):
                if source.get((meter_id, customer_id)) != target.get((meter_id, customer_id)):
                    _repair_pair(transport, schema, meter_id, customer_id, start, end, report)
        target = clickhouse_totals(transport, schema, start, end)
    report.pairs = len(source)
    report.mismatched = sorted(
        pair for pair in set(source) | set(target) if source.get(pair) != target.get(pair)
    )
    return report


def source_totals(start: dt.datetime, end: dt.datetime) -> Totals:
    """(sum of values, count) of the uncancelled events per (meter, customer) in Django's
    database. SQLite adds decimals as floats: there the values are added up here."""
    events = MeterEvent.objects.filter(
        timestamp__gte=start, timestamp__lt=end, cancelled_at__isnull=True
    ).order_by()
    totals: Totals = {}
    if connection.vendor == "sqlite":
        for meter_id, customer_id, value in events.values_list("meter_id", "customer_id", "value"):
            total, count = totals.get((meter_id, customer_id), (Decimal(0), 0))
            totals[(meter_id, customer_id)] = (total + value, count + 1)
        return totals
    rows = events.values("meter_id", "customer_id").annotate(total=Sum("value"), count=Count("pk"))
    for row in rows:
        totals[(row["meter_id"], row["customer_id"])] = (row["total"], row["count"])
    return totals


def clickhouse_totals(
    transport: Transport, schema: Schema, start: dt.datetime, end: dt.datetime
) -> Totals:
    rows = transport.query(
        f"""SELECT meter_id, customer_id, sum(if(sign > 0, value, -value)), sum(toInt64(sign)) AS n
        FROM {schema.events}
        WHERE timestamp >= {moment_sql(start)} AND timestamp < {moment_sql(end)}
        GROUP BY meter_id, customer_id HAVING n != 0"""
    )
    return {(meter_id, customer_id): (total, count) for meter_id, customer_id, total, count in rows}


def _repair_pair(
    transport: Transport,
    schema: Schema,
    meter_id: int,
    customer_id: int,
    start: dt.datetime,
    end: dt.datetime,
    report: DayReport,
) -> None:
    """Send one (meter, customer, day)'s events and cancellations that ClickHouse lacks."""
    rows = transport.query(
        f"""SELECT event_id, min(sign) FROM {schema.events}
        WHERE meter_id = {int(meter_id)} AND customer_id = {int(customer_id)}
            AND timestamp >= {moment_sql(start)} AND timestamp < {moment_sql(end)}
        GROUP BY event_id"""
    )
    present = {event_id: lowest_sign for event_id, lowest_sign in rows}
    events = MeterEvent.objects.filter(
        meter_id=meter_id, customer_id=customer_id, timestamp__gte=start, timestamp__lt=end
    )
    _send(transport, schema, events, present, report)


def _send(
    transport: Transport, schema: Schema, events, present: dict[int, int], report: DayReport
) -> None:
    """Insert `events` that are not `present` (event id -> lowest sign stored), and the
    compensating row of each cancelled one that has none yet."""
    batch: list[tuple] = []
    for row in _rows(events):
        event_id, sign = row[3], row[8]
        stored_sign = present.get(event_id)
        if sign > 0 and stored_sign is None:
            report.copied += 1
        elif sign < 0 and (stored_sign is None or stored_sign > 0):
            report.cancellations += 1
        else:
            continue
        batch.append(row)
        if len(batch) >= ROWS_PER_INSERT:
            insert_events(transport, schema, batch)
            batch = []
    if batch:
        insert_events(transport, schema, batch)


def _rows(events) -> Iterator[tuple]:
    """Rows of `meter_events` for these events: each event, then its cancellation if any."""
    columns = (
        "meter_id",
        "customer_id",
        "timestamp",
        "pk",
        "identifier",
        "value",
        "received_at",
        "payload",
        "cancelled_at",
    )
    for *row, payload, cancelled_at in (
        events.order_by("pk").values_list(*columns).iterator(chunk_size=10_000)
    ):
        payload_text = _payload_text(payload)
        yield (*row, payload_text, 1)
        if cancelled_at is not None:
            yield (*row, payload_text, -1)


def _payload_text(payload) -> str:
    return json.dumps(payload or {}, separators=(",", ":"), sort_keys=True)


def advance_claim_ids() -> int:
    """Move the claim id counter past the largest copied event id (see the module doc);
    return the id new claims start above."""
    largest = MeterEvent.objects.aggregate(largest=Max("pk"))["largest"] or 0
    table = MeterEventIdentifier._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
            cursor.execute(f"SELECT last_value FROM {sequence}")
            (current,) = cursor.fetchone()
            largest = max(largest, current)
            cursor.execute("SELECT setval(%s, %s)", [sequence, largest])
        elif connection.vendor == "sqlite":
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = MAX(seq, %s) WHERE name = %s", [largest, table]
            )
            if cursor.rowcount == 0:
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, largest]
                )
    return largest


def copy_days(
    transport: Transport,
    schema: Schema,
    days: list[dt.date],
    progress: Callable[[int, DayReport], None],
) -> list[DayReport]:
    """Copy and verify each day in turn, reporting each as it finishes."""
    reports = []
    for number, day in enumerate(days, start=1):
        report = copy_day(transport, schema, day)
        reports.append(report)
        progress(number, report)
    return reports
