"""What the two stores on Django's database share: their tables and every read.

Both keep events in `MeterEvent`, the exactly-once guard in `MeterEventIdentifier` and hourly
pre-aggregates in `MeterUsageRollup`; they differ only in how a batch is written. Usage over
[start, end) is read from the rollups for the whole hours and from raw events for the partial
hours at either edge, so a customer with millions of events is answered from a few hundred rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from metering.models import Meter, MeterEvent, MeterEventIdentifier, MeterUsageRollup
from metering.store.base import (
    DAY,
    HOUR,
    BilledPeriod,
    EventStore,
    LateUsageTotal,
    MeterCustomer,
    StoredEvent,
    UsageAggregate,
    UsageKey,
    hour_of,
)

# Where each aggregate's inputs live in a table: (count, sum, last value, last time, last id).
# A raw event counts once; a rollup row carries its hour's count.
_EVENT_COLUMNS = (None, "value", "value", "timestamp", "pk")
_ROLLUP_COLUMNS = ("event_count", "value_sum", "last_value", "last_timestamp", "last_event_id")

# Late usage: the events of each billed period (a relation `billed` of BilledPeriod rows) that
# arrived after it was billed. The index (meter_id, customer_id, timestamp) finds them per period.
LATE_EVENTS_JOIN = f"""
JOIN {MeterEvent._meta.db_table} e ON e.meter_id = billed.meter_id
    AND e.customer_id = billed.customer_id
    AND e."timestamp" >= billed.period_start AND e."timestamp" < billed.period_end
    AND e.received_at > billed.billed_at AND e.cancelled_at IS NULL
"""
BILLED_COLUMNS = "period_key, meter_id, customer_id, period_start, period_end, billed_at"


class RelationalEventStore(EventStore):
    # --- reads --------------------------------------------------------------------------------

    def usage_many(
        self, *, pairs: Iterable[MeterCustomer], start: dt.datetime, end: dt.datetime
    ) -> dict[UsageKey, Decimal]:
        pairs = list(pairs)
        found: dict[UsageKey, UsageAggregate] = {}
        if pairs and start < end:
            meters = {meter.pk: meter for meter, _ in pairs}
            wanted = {(meter.pk, customer_id) for meter, customer_id in pairs}
            by_pair = {
                "meter_id__in": sorted(meters),
                "customer_id__in": sorted({customer_id for _, customer_id in pairs}),
            }
            with_last = sorted(pk for pk, meter in meters.items() if _needs_last(meter))
            first_full_hour = hour_of(start) if start == hour_of(start) else hour_of(start) + HOUR
            last_full_hour = hour_of(end)
            if first_full_hour < last_full_hour:
                edges = Q(timestamp__gte=start, timestamp__lt=first_full_hour) | Q(
                    timestamp__gte=last_full_hour, timestamp__lt=end
                )
                rollups = MeterUsageRollup.objects.filter(
                    **by_pair, hour__gte=first_full_hour, hour__lt=last_full_hour
                )
                _add(found, _aggregates(rollups, _ROLLUP_COLUMNS, with_last), wanted)
            else:
                edges = Q(timestamp__gte=start, timestamp__lt=end)
            events = MeterEvent.objects.filter(edges, **by_pair, cancelled_at__isnull=True)
            _add(found, _aggregates(events, _EVENT_COLUMNS, with_last), wanted)
        empty = UsageAggregate()
        return {
            (meter.pk, customer_id): found.get((meter.pk, customer_id), empty).value_for(meter)
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
        rollups = MeterUsageRollup.objects.filter(meter=meter, hour__gte=start, hour__lt=end)
        if customer_id is not None:
            rollups = rollups.filter(customer_id=customer_id)
        per_window: dict[tuple[dt.datetime, int], UsageAggregate] = {}
        for row in rollups.values_list("hour", "customer_id", *_ROLLUP_COLUMNS):
            hour, row_customer, count, value_sum, last_value, last_ts, last_id = row
            window_start = start + ((hour - start) // step) * step
            part = UsageAggregate(
                value_sum, count, last_value, (last_ts, last_id) if last_ts else None
            )
            key = (window_start, row_customer)
            per_window[key] = per_window[key] + part if key in per_window else part
        totals: dict[dt.datetime, Decimal] = {}
        for (window_start, _), part in per_window.items():
            totals[window_start] = totals.get(window_start, Decimal(0)) + part.value_for(meter)
        series = []
        moment = start
        while moment < end:
            series.append((moment, totals.get(moment, Decimal(0))))
            moment += step
        return series

    def event_counts_by_meter(self, *, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
        if start != hour_of(start) or end != hour_of(end):
            raise ValueError("Event counts by meter are read from hourly rollups: whole hours.")
        rows = (
            MeterUsageRollup.objects.filter(hour__gte=start, hour__lt=end)
            .order_by()
            .values("meter_id")
            .annotate(events=Sum("event_count"))
            .filter(events__gt=0)
            .values_list("meter_id", "events")
        )
        return dict(rows)

    def late_usage(self, *, periods: Iterable[BilledPeriod]) -> dict[int, LateUsageTotal]:
        periods = list(periods)
        found: dict[int, LateUsageTotal] = {}
        # One statement for as many periods as the database takes parameters (SQLite: 999).
        per_statement = (connection.features.max_query_params or 6000) // len(BilledPeriod._fields)
        for first in range(0, len(periods), per_statement):
            add_late_usage(found, _late_usage_rows(periods[first : first + per_statement]))
        return found

    # --- cancellation -------------------------------------------------------------------------

    def find_event(self, *, meter: Meter, identifier: str) -> StoredEvent | None:
        return find_claimed_event(meter=meter, identifier=identifier)

    def cancel(self, *, event: StoredEvent, at: dt.datetime) -> int:
        # The timestamp leads PostgreSQL to the one partition that holds the event.
        event_id = MeterEvent.objects.values_list("pk", flat=True).get(
            meter_id=event.meter_id,
            customer_id=event.customer_id,
            timestamp=event.timestamp,
            identifier=event.identifier,
        )
        MeterEvent.objects.filter(
            pk=event_id, timestamp=event.timestamp, cancelled_at__isnull=True
        ).update(cancelled_at=at)
        rebuild_rollup(
            meter_id=event.meter_id, customer_id=event.customer_id, hour=hour_of(event.timestamp)
        )
        return event_id

    def purge_identifiers(self, *, received_before: dt.datetime) -> int:
        deleted, _ = MeterEventIdentifier.objects.filter(received_at__lt=received_before).delete()
        return deleted


def find_claimed_event(*, meter: Meter, identifier: str) -> StoredEvent | None:
    """The event claimed under this identifier, found by its claim (which every store keeps in
    Django's database) and locked until the transaction ends."""
    claim = (
        MeterEventIdentifier.objects.select_for_update()
        .filter(meter=meter, identifier=identifier)
        .first()
    )
    if claim is None:
        return None
    return StoredEvent(
        meter_id=meter.pk,
        customer_id=claim.customer_id,
        identifier=identifier,
        timestamp=claim.event_timestamp,
        received_at=claim.received_at,
    )


def rebuild_rollup(*, meter_id: int, customer_id: int, hour: dt.datetime) -> None:
    """Recompute one hourly bucket from its raw events (after a cancellation)."""
    rollup = (
        MeterUsageRollup.objects.select_for_update()
        .filter(meter_id=meter_id, customer_id=customer_id, hour=hour)
        .first()
    )
    if rollup is None:
        return
    events = MeterEvent.objects.filter(
        meter_id=meter_id,
        customer_id=customer_id,
        timestamp__gte=hour,
        timestamp__lt=hour + HOUR,
        cancelled_at__isnull=True,
    )
    values = list(events.values_list("value", flat=True))
    last = events.order_by("-timestamp", "-pk").values_list("value", "timestamp", "pk").first()
    rollup.value_sum = sum(values, Decimal(0))
    rollup.event_count = len(values)
    rollup.last_value, rollup.last_timestamp, rollup.last_event_id = last or (None, None, None)
    rollup.save()


def _late_usage_rows(periods: list[BilledPeriod]) -> list[tuple]:
    """(period key, value sum, event count) per period with late events. SQLite adds decimals
    as floats, so there each event is a row (late events are few) and Python adds them up."""
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    for period in periods:
        key, meter_id, customer_id, start, end, billed_at = period
        params += [key, meter_id, customer_id, adapt(start), adapt(end), adapt(billed_at)]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(periods))
    if connection.vendor == "sqlite":
        select, group = "billed.period_key, e.value, 1", ""
    else:
        select, group = "billed.period_key, SUM(e.value), COUNT(*)", "GROUP BY billed.period_key"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH billed ({BILLED_COLUMNS}) AS (VALUES {values}) "
            f"SELECT {select} FROM billed {LATE_EVENTS_JOIN} {group}",
            params,
        )
        return cursor.fetchall()


def add_late_usage(found: dict[int, LateUsageTotal], rows: Iterable[tuple]) -> None:
    """Add (period key, quantity, events) rows to the totals found so far."""
    for key, quantity, events in rows:
        quantity_before, events_before = found.get(key, (Decimal(0), 0))
        found[key] = LateUsageTotal(
            quantity_before + _exact_decimal(quantity), events_before + events
        )


def _exact_decimal(value: Decimal | int | float) -> Decimal:
    """A value from a raw cursor. SQLite returns floats: every stored value has at most 15
    significant digits, which the shortest repr of its float gives back exactly."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _needs_last(meter: Meter) -> bool:
    return meter.formula == Meter.Formula.LAST


def _add(
    found: dict[UsageKey, UsageAggregate],
    parts: dict[UsageKey, UsageAggregate],
    wanted: set[UsageKey],
) -> None:
    # The query filters meters and customers separately, so it can return pairs nobody asked for.
    for key, part in parts.items():
        if key in wanted:
            found[key] = found[key] + part if key in found else part


def _aggregates(
    rows: QuerySet, columns: tuple[str | None, str, str, str, str], with_last: list[int]
) -> dict[UsageKey, UsageAggregate]:
    """Count, exact sum and (for `last` meters) the latest value per (meter, customer): two
    queries at most, whatever the number of pairs."""
    count_column, sum_column, last_value, last_time, last_id = columns
    parts: dict[UsageKey, UsageAggregate] = {}
    if connection.vendor == "sqlite":
        # SQLite adds decimals as 64-bit floats: fetch the rows and add them up in Python.
        counts = [count_column] if count_column else []
        for meter_id, customer_id, value, *count in rows.values_list(
            "meter_id", "customer_id", sum_column, *counts
        ):
            part = UsageAggregate(value, count[0] if count else 1)
            key = (meter_id, customer_id)
            parts[key] = parts[key] + part if key in parts else part
    else:
        counted = Sum(count_column) if count_column else Count("pk")
        for row in (
            rows.order_by()
            .values("meter_id", "customer_id")
            .annotate(count=counted, total=Sum(sum_column))
        ):
            parts[(row["meter_id"], row["customer_id"])] = UsageAggregate(
                row["total"] or Decimal(0), row["count"] or 0
            )
    if with_last:
        latest = Window(
            RowNumber(),
            partition_by=[F("meter_id"), F("customer_id")],
            order_by=[F(last_time).desc(), F(last_id).desc()],
        )
        for meter_id, customer_id, value, moment, row_id in (
            rows.filter(meter_id__in=with_last, **{f"{last_time}__isnull": False})
            .order_by()
            .annotate(latest=latest)
            .filter(latest=1)
            .values_list("meter_id", "customer_id", last_value, last_time, last_id)
        ):
            key = (meter_id, customer_id)
            last = UsageAggregate(last_value=value, last_key=(moment, row_id))
            parts[key] = parts[key] + last if key in parts else last
    return parts
