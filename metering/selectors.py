"""Meter-level reads for the admin's meter list. Usage itself is read through `metering.store`."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max, Sum

from metering.models import MeterUsageRollup


def meter_event_stats(meter_ids: list[int]) -> dict[int, tuple[int, dt.datetime | None]]:
    """(uncancelled event count, latest event time) per meter, from the rollups."""
    rows = (
        MeterUsageRollup.objects.filter(meter_id__in=meter_ids)
        .values("meter_id")
        .annotate(events=Sum("event_count"), last=Max("last_timestamp"))
    )
    return {row["meter_id"]: (row["events"] or 0, row["last"]) for row in rows}
