"""The reference answer for usage: a meter's formula applied to raw events, one by one.

It shares no code with the event stores on purpose, so a bug in their aggregation can't hide
in the answer they are checked against.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings

from metering.models import Meter, MeterEvent


class RawEvent(NamedTuple):
    meter_id: int
    customer_id: int
    identifier: str
    value: Decimal
    timestamp: dt.datetime
    pk: int
    received_at: dt.datetime
    cancelled: bool


def stored_events(*, with_cancelled: bool = True) -> list[RawEvent]:
    """Every stored event, row by row, from wherever the configured store keeps them."""
    if settings.METER_EVENT_STORE == "clickhouse":
        from tests.metering.clickhouse_fixtures import clickhouse_raw_events

        events = [RawEvent(*row) for row in clickhouse_raw_events()]
    else:
        rows = MeterEvent.objects.order_by("pk").values_list(
            "meter_id", "customer_id", "identifier", "value", "timestamp", "pk", "received_at"
        )
        cancelled = set(
            MeterEvent.objects.filter(cancelled_at__isnull=False).values_list("pk", flat=True)
        )
        events = [RawEvent(*row, cancelled=row[5] in cancelled) for row in rows]
    return [event for event in events if with_cancelled or not event.cancelled]


def _uncancelled_events(**filters) -> list[RawEvent]:
    return [
        event
        for event in stored_events(with_cancelled=False)
        if all(getattr(event, name) == value for name, value in filters.items())
    ]


def usage_from_events(
    *, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime
) -> Decimal:
    """The meter's formula over the customer's uncancelled events in [start, end)."""
    events = [
        (event.value, event.timestamp, event.pk)
        for event in _uncancelled_events(meter_id=meter.pk, customer_id=customer_id)
        if start <= event.timestamp < end
    ]
    if meter.formula == Meter.Formula.COUNT:
        return Decimal(len(events))
    if meter.formula == Meter.Formula.LAST:
        # The latest event wins; the id breaks ties between events sent for the same instant.
        return max(events, key=lambda event: (event[1], event[2]))[0] if events else Decimal(0)
    return sum((value for value, _, _ in events), Decimal(0))


def late_usage_from_events(
    *, meter_id: int, customer_id: int, start: dt.datetime, end: dt.datetime, billed_at: dt.datetime
) -> tuple[Decimal, int]:
    """(sum of values, count) of the uncancelled events in [start, end) received after
    `billed_at`, added up one by one."""
    values = [
        event.value
        for event in _uncancelled_events(meter_id=meter_id, customer_id=customer_id)
        if start <= event.timestamp < end and event.received_at > billed_at
    ]
    return sum(values, Decimal(0)), len(values)


def event_counts_from_events(*, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Uncancelled events per meter id in [start, end), counted one by one."""
    counts: dict[int, int] = {}
    for event in _uncancelled_events():
        if start <= event.timestamp < end:
            counts[event.meter_id] = counts.get(event.meter_id, 0) + 1
    return counts
