"""The reference answer for usage: a meter's formula applied to raw events, one by one.

It shares no code with the event stores on purpose, so a bug in their aggregation can't hide
in the answer they are checked against.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from metering.models import Meter, MeterEvent


def usage_from_events(
    *, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime
) -> Decimal:
    """The meter's formula over the customer's uncancelled events in [start, end)."""
    events = list(
        MeterEvent.objects.filter(
            meter=meter,
            customer_id=customer_id,
            timestamp__gte=start,
            timestamp__lt=end,
            cancelled_at__isnull=True,
        ).values_list("value", "timestamp", "pk")
    )
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
    events = MeterEvent.objects.filter(
        meter_id=meter_id, customer_id=customer_id, cancelled_at__isnull=True
    )
    values = [
        value
        for value, timestamp, received_at in events.values_list("value", "timestamp", "received_at")
        if start <= timestamp < end and received_at > billed_at
    ]
    return sum(values, Decimal(0)), len(values)


def event_counts_from_events(*, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Uncancelled events per meter id in [start, end), counted one by one."""
    counts: dict[int, int] = {}
    for meter_id, timestamp in MeterEvent.objects.filter(cancelled_at__isnull=True).values_list(
        "meter_id", "timestamp"
    ):
        if start <= timestamp < end:
            counts[meter_id] = counts.get(meter_id, 0) + 1
    return counts
