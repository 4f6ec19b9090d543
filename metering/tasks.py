"""Celery tasks for metering (thin: each calls services)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

from metering.partitions import PartitionMaintenance, ensure_meter_event_partitions
from metering.sessions import meter_event_sessions_purge
from metering.store import purge_expired_identifiers

logger = logging.getLogger(__name__)


@shared_task
def meter_event_maintenance_task(inline: bool = False) -> dict:
    """Daily: keep the month partitions ahead of time (moving events the DEFAULT partition
    caught into them), forget identifiers past retention and purge expired stream sessions.

    Each step runs even if the one before failed: a partition that can't be created must not
    stop the purges. Failures are logged and listed in `failures` (`run_billing` reports them).
    """
    failures: list[str] = []
    partitions = _step("partitions", ensure_meter_event_partitions, failures)
    partitions = partitions or PartitionMaintenance()
    failures += partitions.failures
    return {
        "partitions_created": partitions.created,
        "events_moved_from_default": sum(partitions.moved_from_default.values()),
        "identifiers_purged": _step("identifier purge", purge_expired_identifiers, failures) or 0,
        "sessions_purged": _step("session purge", meter_event_sessions_purge, failures) or 0,
        "failures": failures,
    }


def _step(name: str, run: Callable[[], Any], failures: list[str]) -> Any:
    try:
        return run()
    except Exception as exc:
        logger.exception("Meter event maintenance: the %s failed", name)
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
        return None
