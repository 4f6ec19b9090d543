"""Usage reads and the configured event store: what code outside `metering` calls.

    from metering.store import usage, usage_many, usage_by_window
    from metering.store import late_usage, event_counts_by_meter

Writes go through the services that apply the rules first: `metering.ingest.meter_events_ingest`
(validation, then `EventStore.ingest`) and `metering.cancellation.meter_event_cancel`.

The setting `METER_EVENT_STORE` picks the implementation (see `EVENT_STORES`); each one passes
`tests/metering/test_event_store_contract.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string

from billing_site import clock
from metering.models import Meter
from metering.store.base import (
    AcceptedEvent,
    BilledPeriod,
    EventStore,
    IngestResult,
    LateUsageTotal,
    MeterCustomer,
    StoredEvent,
    UsageKey,
    Window,
    hour_of,
)
from metering.validation import ACCEPTANCE_WINDOW_PAST

__all__ = [
    "EVENT_STORES",
    "IDENTIFIER_RETENTION",
    "AcceptedEvent",
    "BilledPeriod",
    "EventStore",
    "IngestResult",
    "LateUsageTotal",
    "StoredEvent",
    "event_counts_by_meter",
    "event_store",
    "get_event_store",
    "hour_of",
    "late_usage",
    "purge_expired_identifiers",
    "usage",
    "usage_by_window",
    "usage_many",
]

# The implementations by their METER_EVENT_STORE name (settings/base.py lists the same names).
EVENT_STORES = {
    "postgresql": "metering.store.postgresql.PostgresEventStore",
    "orm": "metering.store.orm.OrmEventStore",
    "clickhouse": "metering.store.clickhouse.ClickHouseEventStore",
}

# Identifiers are remembered a little longer than events are accepted: an event older than the
# acceptance window is refused anyway, so exactly-once holds without keeping them forever.
IDENTIFIER_RETENTION = ACCEPTANCE_WINDOW_PAST + dt.timedelta(days=5)


@functools.cache
def get_event_store(name: str) -> EventStore:
    return import_string(EVENT_STORES[name])()


def event_store() -> EventStore:
    """The store named by the METER_EVENT_STORE setting."""
    return get_event_store(settings.METER_EVENT_STORE)


def usage(*, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime) -> Decimal:
    """The meter's formula over the customer's uncancelled events in [start, end)."""
    return event_store().usage(meter=meter, customer_id=customer_id, start=start, end=end)


def usage_many(
    *, pairs: Iterable[MeterCustomer], start: dt.datetime, end: dt.datetime
) -> dict[UsageKey, Decimal]:
    """`usage` for many (meter, customer id) pairs in a few queries, keyed (meter id, customer
    id); a pair without events is 0."""
    return event_store().usage_many(pairs=pairs, start=start, end=end)


def usage_by_window(
    *,
    meter: Meter,
    start: dt.datetime,
    end: dt.datetime,
    window: Window,
    customer_id: int | None = None,
) -> list[tuple[dt.datetime, Decimal]]:
    """Usage per hour or day over [start, end), both aligned to the window, for summaries and
    charts. With no customer, each window adds up every customer's usage."""
    return event_store().usage_by_window(
        meter=meter, start=start, end=end, window=window, customer_id=customer_id
    )


def late_usage(*, periods: Iterable[BilledPeriod]) -> dict[int, LateUsageTotal]:
    """Usage that arrived after its period was billed: for each period, the uncancelled events
    timestamped in it and received after `billed_at`, keyed by the period's key (only periods
    that have some), in a fixed number of queries."""
    return event_store().late_usage(periods=periods)


def event_counts_by_meter(*, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Uncancelled events per meter id in [start, end) (whole UTC hours), all customers
    together; meters without events are left out."""
    return event_store().event_counts_by_meter(start=start, end=end)


def purge_expired_identifiers(*, now: dt.datetime | None = None) -> int:
    """Forget identifiers past the retention (longer than the acceptance window)."""
    cutoff = (now or clock.now()) - IDENTIFIER_RETENTION
    return event_store().purge_identifiers(received_before=cutoff)
