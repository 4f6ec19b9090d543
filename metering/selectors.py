"""Reads of usage: the aggregation every invoice, preview and chart is computed from.

`usage()` answers over [start, end) from hourly rollups for the whole hours and raw events for
the partial hours at either edge. `usage_from_events()` is the plain aggregation over raw
events; a property test proves the two agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Max, QuerySet, Sum

from metering.ingest import hour_of
from metering.models import Meter, MeterEvent, MeterUsageRollup

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class _Partial:
    value_sum: Decimal = Decimal(0)
    event_count: int = 0
    last_value: Decimal | None = None
    last_key: tuple[dt.datetime, int] | None = None

    def __add__(self, other: _Partial) -> _Partial:
        later = self
        if other.last_key is not None and (self.last_key is None or other.last_key > self.last_key):
            later = other
        return _Partial(
            self.value_sum + other.value_sum,
            self.event_count + other.event_count,
            later.last_value,
            later.last_key,
        )


def _count_and_sum(queryset: QuerySet, count, field: str) -> tuple[int, Decimal]:
    """COUNT and an exact SUM in one query. SQLite adds decimals as floats, so there the rows
    are added up in Python instead."""
    if connection.vendor == "sqlite":
        count_value = queryset.aggregate(n=count)["n"] or 0
        values = queryset.values_list(field, flat=True) if count_value else []
        return count_value, sum(values, Decimal(0))
    totals = queryset.aggregate(n=count, total=Sum(field))
    return totals["n"] or 0, totals["total"] or Decimal(0)


def _value(meter: Meter, part: _Partial) -> Decimal:
    if meter.formula == Meter.Formula.COUNT:
        return Decimal(part.event_count)
    if meter.formula == Meter.Formula.LAST:
        return part.last_value if part.last_value is not None else Decimal(0)
    return part.value_sum


def _from_events(meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime) -> _Partial:
    if start >= end:
        return _Partial()
    events = MeterEvent.objects.filter(
        meter=meter,
        customer_id=customer_id,
        timestamp__gte=start,
        timestamp__lt=end,
        cancelled_at__isnull=True,
    )
    event_count, value_sum = _count_and_sum(events, Count("pk"), "value")
    last = None
    if meter.formula == Meter.Formula.LAST and event_count:
        last = events.order_by("-timestamp", "-pk").values_list("value", "timestamp", "pk").first()
    return _Partial(
        value_sum,
        event_count,
        last[0] if last else None,
        (last[1], last[2]) if last else None,
    )


def _from_rollups(meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime) -> _Partial:
    if start >= end:
        return _Partial()
    rollups = MeterUsageRollup.objects.filter(
        meter=meter, customer_id=customer_id, hour__gte=start, hour__lt=end
    )
    event_count, value_sum = _count_and_sum(rollups, Sum("event_count"), "value_sum")
    last = None
    if meter.formula == Meter.Formula.LAST:
        last = (
            rollups.filter(last_timestamp__isnull=False)
            .order_by("-last_timestamp", "-last_event_id")
            .values_list("last_value", "last_timestamp", "last_event_id")
            .first()
        )
    return _Partial(
        value_sum,
        event_count,
        last[0] if last else None,
        (last[1], last[2]) if last else None,
    )


def usage(*, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime) -> Decimal:
    """The meter's formula over the customer's uncancelled events in [start, end)."""
    first_full_hour = hour_of(start) if start == hour_of(start) else hour_of(start) + HOUR
    last_full_hour = hour_of(end)
    if first_full_hour >= last_full_hour:
        return _value(meter, _from_events(meter, customer_id, start, end))
    part = (
        _from_events(meter, customer_id, start, first_full_hour)
        + _from_rollups(meter, customer_id, first_full_hour, last_full_hour)
        + _from_events(meter, customer_id, last_full_hour, end)
    )
    return _value(meter, part)


def usage_from_events(
    *, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime
) -> Decimal:
    """The plain aggregation over raw events: the reference the fast path is tested against."""
    return _value(meter, _from_events(meter, customer_id, start, end))


def usage_by_window(
    *,
    meter: Meter,
    start: dt.datetime,
    end: dt.datetime,
    window: str,
    customer_id: int | None = None,
) -> list[tuple[dt.datetime, Decimal]]:
    """Usage per hour or day over [start, end), both aligned to the window, from rollups.

    With no customer, the windows add up every customer's usage (for `last`, each customer's
    last value in the window).
    """
    step = HOUR if window == "hour" else DAY
    rollups = MeterUsageRollup.objects.filter(meter=meter, hour__gte=start, hour__lt=end)
    if customer_id is not None:
        rollups = rollups.filter(customer_id=customer_id)
    per_window: dict[tuple[dt.datetime, int], _Partial] = {}
    for row in rollups.values_list(
        "hour", "customer_id", "value_sum", "event_count", "last_value", "last_timestamp",
        "last_event_id",
    ):  # fmt: skip
        hour, row_customer, value_sum, count, last_value, last_ts, last_id = row
        window_start = start + ((hour - start) // step) * step
        part = _Partial(value_sum, count, last_value, (last_ts, last_id) if last_ts else None)
        key = (window_start, row_customer)
        per_window[key] = per_window[key] + part if key in per_window else part
    totals: dict[dt.datetime, Decimal] = {}
    for (window_start, _), part in per_window.items():
        totals[window_start] = totals.get(window_start, Decimal(0)) + _value(meter, part)
    series = []
    moment = start
    while moment < end:
        series.append((moment, totals.get(moment, Decimal(0))))
        moment += step
    return series


def meter_event_stats(meter_ids: list[int]) -> dict[int, tuple[int, dt.datetime | None]]:
    """(uncancelled event count, latest event time) per meter, from the rollups."""
    rows = (
        MeterUsageRollup.objects.filter(meter_id__in=meter_ids)
        .values("meter_id")
        .annotate(events=Sum("event_count"), last=Max("last_timestamp"))
    )
    return {row["meter_id"]: (row["events"] or 0, row["last"]) for row in rows}
