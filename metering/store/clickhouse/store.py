"""The event store on ClickHouse (`METER_EVENT_STORE=clickhouse`), for installs whose meter
events outgrow one PostgreSQL. Invoices, credits and the identifier claim stay in Django's
database; events, cancellations and hourly rollups live in ClickHouse (`schema.py`).

Exactly once, without FINAL: a batch first claims its identifiers in Django's database
(`claims.py`), then writes only the events it claimed to ClickHouse, then commits. ClickHouse
never receives a duplicate, so plain sums are right without FINAL or waiting for merges. The
insert carries a deduplication token derived from its rows: a retry after a timeout (here, or
the sender's retry of the same batch after the claims rolled back) is dropped by ClickHouse
instead of written twice.

Cancellation writes a compensating row (the event with `sign = -1`): sums and counts subtract
it, in the raw events and (through the materialized view) in the hourly rollup, from the moment
the insert returns. For `last`, the reads exclude cancelled event ids and recompute the hours
that had a cancellation from raw events.

Usage over [start, end) reads whole hours from the rollups and the partial hours at either edge
from raw events, in one statement, whatever the number of (meter, customer) pairs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from metering.models import Meter, MeterEventIdentifier
from metering.store.base import (
    DAY,
    HOUR,
    BilledPeriod,
    EventStore,
    IngestResult,
    LateUsageTotal,
    MeterCustomer,
    StoredEvent,
    UsageAggregate,
    UsageKey,
    hour_of,
)
from metering.store.claims import claim_identifiers
from metering.store.clickhouse.schema import EVENT_COLUMNS, LAST, Schema
from metering.store.clickhouse.transport import (
    TransientError,
    Transport,
    database_of,
    datetime_text,
    transport_for,
)
from metering.store.relational import find_claimed_event
from metering.validation import ValidEvent

# A timed-out insert is sent again with the same token: ClickHouse keeps one copy.
INSERT_ATTEMPTS = 3
# Billed periods a late-usage statement carries inline (about 120 bytes each).
PERIODS_PER_STATEMENT = 5_000
# The `last` of a group without a counted event: loses to every real (timestamp, id, value).
NO_LAST = f"CAST((toDateTime64(0, 6, 'UTC'), 0, 0) AS {LAST})"


def _url() -> str:
    url = settings.CLICKHOUSE_URL
    if not url:
        raise ImproperlyConfigured(
            "METER_EVENT_STORE=clickhouse needs CLICKHOUSE_URL: "
            "clickhouse://user:password@host:8123/database or chdb:///absolute/directory."
        )
    return url


def configured_schema() -> Schema:
    """The tables the settings name (no connection needed)."""
    return Schema(
        database_of(_url()),
        cluster=settings.CLICKHOUSE_CLUSTER,
        retention_days=settings.CLICKHOUSE_EVENT_RETENTION_DAYS,
    )


def connect() -> tuple[Transport, Schema]:
    """The transport and the tables the settings name."""
    return transport_for(_url()), configured_schema()


def event_row(event: ValidEvent, event_id: int, sign: int = 1) -> tuple:
    """An event as the columns of `schema.EVENT_COLUMNS`."""
    payload = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
    return (
        event.meter.pk,
        event.customer_id,
        event.timestamp,
        event_id,
        event.identifier,
        event.value,
        event.received_at,
        payload,
        sign,
    )


def insert_events(transport: Transport, schema: Schema, rows: Sequence[tuple]) -> None:
    """Write rows of `meter_events` as one block, exactly once even when retried.

    The token is a digest of what the rows say (meter, customer, time, identifier, value,
    sign), not of the event ids: the sender's retry of the same batch, claimed anew with new
    ids after the first attempt rolled back, is still recognised as the same block.
    """
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda row: (row[0], row[4], row[8])):
        meter_id, customer_id, moment, _, identifier, value, _, _, sign = row
        line = f"{meter_id}\t{customer_id}\t{datetime_text(moment)}\t{identifier}\t{value}\t{sign}"
        digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    query_settings: dict[str, str | int] = {"insert_deduplication_token": digest.hexdigest()}
    if schema.cluster:
        # Forwarded to the shards before returning: a cancellation counts at once everywhere.
        query_settings["distributed_foreground_insert"] = 1
    for attempt in range(1, INSERT_ATTEMPTS + 1):
        try:
            transport.insert(schema.events, EVENT_COLUMNS, rows, settings=query_settings)
            return
        except TransientError:
            if attempt == INSERT_ATTEMPTS:
                raise


def _ints(values: Iterable[int]) -> str:
    return ", ".join(str(int(value)) for value in sorted(set(values)))


def moment_sql(moment: dt.datetime) -> str:
    """A moment as a ClickHouse DateTime64(6, 'UTC') expression."""
    return f"toDateTime64('{datetime_text(moment)}', 6, 'UTC')"


class ClickHouseEventStore(EventStore):
    name = "clickhouse"

    # --- writes -------------------------------------------------------------------------------

    def ingest(self, events: Sequence[ValidEvent]) -> IngestResult:
        if not events:
            return IngestResult()
        transport, schema = connect()
        with transaction.atomic():
            claimed = claim_identifiers(events)
            rows, written = [], set()
            for event in events:
                key = (event.meter.pk, event.identifier)
                if key in claimed and key not in written:
                    written.add(key)
                    rows.append(event_row(event, claimed[key]))
            # Inside the transaction: if ClickHouse refuses the rows, the claims roll back and
            # the sender's retry is not refused as a duplicate of events that were never stored.
            if rows:
                insert_events(transport, schema, rows)
        return IngestResult.of_claims(events, set(claimed))

    def find_event(self, *, meter: Meter, identifier: str) -> StoredEvent | None:
        # Identifiers are claimed in PostgreSQL, so the claim answers without ClickHouse.
        return find_claimed_event(meter=meter, identifier=identifier)

    def cancel(self, *, event: StoredEvent, at: dt.datetime) -> int:
        transport, schema = connect()
        rows = transport.query(
            f"""SELECT event_id, anyIf(value, sign > 0), anyIf(payload, sign > 0), sum(sign)
            FROM {schema.events}
            WHERE meter_id = {int(event.meter_id)} AND customer_id = {int(event.customer_id)}
                AND timestamp = {moment_sql(event.timestamp)} AND identifier = {{identifier:String}}
            GROUP BY event_id{_read_settings(schema)}""",
            {"identifier": event.identifier},
        )
        if not rows:
            raise LookupError(
                f"The event '{event.identifier}' is claimed but not in ClickHouse: was the "
                "copy (manage.py meter_events_copy) finished before the switch?"
            )
        event_id, value, payload, counted = rows[0]
        if counted > 0:  # a second cancellation of one event changes nothing
            compensation = (
                event.meter_id,
                event.customer_id,
                event.timestamp,
                event_id,
                event.identifier,
                value,
                event.received_at,
                payload,
                -1,
            )
            insert_events(transport, schema, [compensation])
        return event_id

    def purge_identifiers(self, *, received_before: dt.datetime) -> int:
        deleted, _ = MeterEventIdentifier.objects.filter(received_at__lt=received_before).delete()
        return deleted

    # --- reads --------------------------------------------------------------------------------

    def usage_many(
        self, *, pairs: Iterable[MeterCustomer], start: dt.datetime, end: dt.datetime
    ) -> dict[UsageKey, Decimal]:
        pairs = list(pairs)
        found: dict[tuple[int, int, int], UsageAggregate] = {}
        if pairs and start < end:
            meters = {meter.pk: meter for meter, _ in pairs}
            customers = {customer_id for _, customer_id in pairs}
            found = self._aggregates(meters, customers, start, end, step=None)
        empty = UsageAggregate()
        return {
            (meter.pk, customer_id): found.get((meter.pk, customer_id, 0), empty).value_for(meter)
            for meter, customer_id in pairs
        }

    def usage_by_window(
        self,
        *,
        meter: Meter,
        start: dt.datetime,
        end: dt.datetime,
        window: str,
        customer_id: int | None = None,
    ) -> list[tuple[dt.datetime, Decimal]]:
        step = HOUR if window == "hour" else DAY
        customers = None if customer_id is None else {customer_id}
        totals: dict[int, Decimal] = {}
        if start < end:
            found = self._aggregates({meter.pk: meter}, customers, start, end, step=step)
            for (_, _, bucket), part in found.items():
                totals[bucket] = totals.get(bucket, Decimal(0)) + part.value_for(meter)
        series = []
        moment, bucket = start, 0
        while moment < end:
            series.append((moment, totals.get(bucket, Decimal(0))))
            moment, bucket = moment + step, bucket + 1
        return series

    def event_counts_by_meter(self, *, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
        if start != hour_of(start) or end != hour_of(end):
            raise ValueError("Event counts by meter are read from hourly rollups: whole hours.")
        transport, schema = connect()
        rows = transport.query(
            f"""SELECT meter_id, sum(event_count) AS events FROM {schema.rollups}
            WHERE hour >= {moment_sql(start)} AND hour < {moment_sql(end)}
            GROUP BY meter_id HAVING events > 0{_read_settings(schema)}"""
        )
        return {meter_id: int(events) for meter_id, events in rows}

    def late_usage(self, *, periods: Iterable[BilledPeriod]) -> dict[int, LateUsageTotal]:
        periods = list(periods)
        found: dict[int, LateUsageTotal] = {}
        if not periods:
            return found
        transport, schema = connect()
        for first in range(0, len(periods), PERIODS_PER_STATEMENT):
            chunk = periods[first : first + PERIODS_PER_STATEMENT]
            billed = ", ".join(
                f"({int(p.key)}, {int(p.meter_id)}, {int(p.customer_id)}, "
                f"'{datetime_text(p.start)}', '{datetime_text(p.end)}', "
                f"'{datetime_text(p.billed_at)}')"
                for p in chunk
            )
            moment = r"DateTime64(6, \'UTC\')"
            rows = transport.query(
                f"""SELECT b.period_key, sum(if(e.sign > 0, e.value, -e.value)),
                    sum(toInt64(e.sign)) AS events
                FROM {schema.events} AS e
                INNER JOIN (
                    SELECT * FROM values('period_key UInt64, meter_id UInt64, customer_id UInt64,
                        period_start {moment}, period_end {moment}, billed_at {moment}', {billed})
                ) AS b ON e.meter_id = b.meter_id AND e.customer_id = b.customer_id
                WHERE e.meter_id IN ({_ints(p.meter_id for p in chunk)})
                    AND e.customer_id IN ({_ints(p.customer_id for p in chunk)})
                    AND e.timestamp >= b.period_start AND e.timestamp < b.period_end
                    AND e.received_at > b.billed_at
                GROUP BY b.period_key HAVING events > 0{_read_settings(schema)}"""
            )
            for key, quantity, events in rows:
                before = found.get(key, LateUsageTotal(Decimal(0), 0))
                found[key] = LateUsageTotal(before.quantity + quantity, before.events + events)
        return found

    # --- the one usage statement --------------------------------------------------------------

    def _aggregates(
        self,
        meters: dict[int, Meter],
        customers: set[int] | None,
        start: dt.datetime,
        end: dt.datetime,
        *,
        step: dt.timedelta | None,
    ) -> dict[tuple[int, int, int], UsageAggregate]:
        """Sum, count and last value per (meter id, customer id, window number) over
        [start, end); window number 0 when `step` is None (one window)."""
        transport, schema = connect()
        # The customer list travels as a bound parameter: thousands of literals in the
        # statement cost more to parse than the aggregation itself.
        params = {}
        of_customers = ""
        if customers is not None:
            params["customers"] = f"[{_ints(customers)}]"
            of_customers = " AND customer_id IN {customers:Array(UInt64)}"
        where = f"meter_id IN ({_ints(meters)}){of_customers}"
        first_whole = hour_of(start) if start == hour_of(start) else hour_of(start) + HOUR
        last_whole = hour_of(end)
        in_range = f"timestamp >= {moment_sql(start)} AND timestamp < {moment_sql(end)}"
        last_meters = _ints(
            pk for pk, meter in meters.items() if meter.formula == Meter.Formula.LAST
        )
        of_last = f"meter_id IN ({last_meters}){of_customers}"
        branches = []
        if first_whole < last_whole:
            hours = f"hour >= {moment_sql(first_whole)} AND hour < {moment_sql(last_whole)}"
            edges = (
                f"((timestamp >= {moment_sql(start)} AND timestamp < {moment_sql(first_whole)}) OR "
                f"(timestamp >= {moment_sql(last_whole)} AND timestamp < {moment_sql(end)}))"
            )
            # A cancellation can't be taken out of an hour's `last`: for `last` meters, the
            # whole hours that had one are read again from raw events (they are few).
            cancelled_hours = (
                f"SELECT meter_id, customer_id, hour FROM {schema.rollups} "
                f"WHERE {of_last} AND {hours} AND cancelled > 0"
            )
            last, recheck = NO_LAST, "0"
            if last_meters:
                last = (
                    f"maxIf(last, meter_id IN ({last_meters}) AND "
                    f"(meter_id, customer_id, hour) NOT IN ({cancelled_hours}))"
                )
                recheck = (
                    f"(meter_id IN ({last_meters}) AND timestamp >= {moment_sql(first_whole)} "
                    f"AND timestamp < {moment_sql(last_whole)} AND "
                    f"(meter_id, customer_id, toStartOfHour(timestamp)) IN ({cancelled_hours}))"
                )
            branches.append(
                f"""SELECT meter_id, customer_id, {_bucket("hour", start, step)} AS bucket,
                    sum(value_sum) AS s, sum(event_count) AS c, {last} AS l
                FROM {schema.rollups} WHERE {where} AND {hours}
                GROUP BY meter_id, customer_id, bucket"""
            )
            raw_where = f"({edges} OR {recheck})"
        else:
            edges = raw_where = f"({in_range})"
        # Sums and counts net out cancellations by themselves; only `last` must skip them.
        last = NO_LAST
        if last_meters:
            cancelled = (
                f"SELECT meter_id, event_id FROM {schema.events} "
                f"WHERE {of_last} AND sign < 0 AND {in_range}"
            )
            last = (
                f"maxIf((timestamp, event_id, value), meter_id IN ({last_meters}) "
                f"AND sign > 0 AND (meter_id, event_id) NOT IN ({cancelled}))"
            )
        branches.append(
            f"""SELECT meter_id, customer_id, {_bucket("timestamp", start, step)} AS bucket,
                sumIf(if(sign > 0, value, -value), {edges}) AS s,
                sumIf(toInt64(sign), {edges}) AS c, {last} AS l
            FROM {schema.events} WHERE {where} AND {raw_where}
            GROUP BY meter_id, customer_id, bucket"""
        )
        rows = transport.query(
            f"""SELECT meter_id, customer_id, bucket, sum(s), sum(c),
                tupleElement(max(l), 2), tupleElement(max(l), 3)
            FROM ({" UNION ALL ".join(branches)})
            GROUP BY meter_id, customer_id, bucket{_read_settings(schema)}""",
            params,
        )
        return {
            (meter_id, customer_id, int(bucket)): UsageAggregate(
                value_sum, int(count), last_value if last_id else None
            )
            for meter_id, customer_id, bucket, value_sum, count, last_id, last_value in rows
        }


def _bucket(column: str, start: dt.datetime, step: dt.timedelta | None) -> str:
    """The window number of a row: 0 for one window, else whole steps since `start`."""
    if step is None:
        return "0"
    seconds = int(step.total_seconds())
    return f"intDiv(toUnixTimestamp({column}) - {int(start.timestamp())}, {seconds})"


def _read_settings(schema: Schema) -> str:
    if not schema.cluster:
        return ""
    # All of a customer's rows are on one shard: the IN subqueries are answered by the shard's
    # own tables, and each shard's groups are already complete.
    return (
        "\nSETTINGS distributed_product_mode = 'local', "
        "optimize_distributed_group_by_sharding_key = 1"
    )
