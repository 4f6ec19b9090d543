"""Celery tasks for metering (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from metering.partitions import ensure_meter_event_partitions
from metering.store import purge_expired_identifiers


@shared_task
def meter_event_maintenance_task(inline: bool = False) -> dict:
    """Daily: keep the month partitions ahead of time and forget identifiers past retention."""
    created = ensure_meter_event_partitions()
    purged = purge_expired_identifiers()
    return {"partitions_created": created, "identifiers_purged": purged}
