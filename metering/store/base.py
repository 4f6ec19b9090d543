"""The event store interface: where validated meter events are kept and how usage is read.

An implementation stores each event exactly once per (meter, identifier), stops counting a
cancelled event, and answers usage over half-open `[start, end)` ranges with the meter's
formula (sum, count or last), exactly: values are Decimals, never floats. Nothing here knows
which database holds the events; `tests/metering/test_event_store_contract.py` runs the same
contract against every implementation.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Literal, NamedTuple

from metering.models import Meter
from metering.validation import RejectedEvent, ValidEvent, duplicate_rejection

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

Window = Literal["hour", "day"]
# (meter, customer primary key): whose usage to read. Results are keyed by (meter id, customer id).
MeterCustomer = tuple[Meter, int]
UsageKey = tuple[int, int]


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding `moment`."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


class BilledPeriod(NamedTuple):
    """A period whose usage was billed at `billed_at`, for `late_usage`: events of the meter and
    customer timestamped in [start, end) but received after `billed_at` were not billed. `key`
    is the caller's (an invoice line id) and keys the answer."""

    key: int
    meter_id: int
    customer_id: int
    start: dt.datetime
    end: dt.datetime
    billed_at: dt.datetime


class LateUsageTotal(NamedTuple):
    """The events that arrived too late for a billed period: the sum of their values (whatever
    the meter's formula) and how many there are."""

    quantity: Decimal
    events: int


@dataclass(frozen=True)
class AcceptedEvent:
    event_name: str
    identifier: str
    value: Decimal
    timestamp: dt.datetime
    received_at: dt.datetime
    payload: dict[str, str]

    @classmethod
    def of(cls, event: ValidEvent) -> AcceptedEvent:
        return cls(
            event.meter.event_name,
            event.identifier,
            event.value,
            event.timestamp,
            event.received_at,
            event.payload,
        )


@dataclass
class IngestResult:
    accepted: list[AcceptedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)

    @classmethod
    def of_claims(cls, events: Sequence[ValidEvent], claimed: set[tuple[int, str]]) -> IngestResult:
        """Events whose (meter id, identifier) the store claimed are accepted; the others were
        stored before and are refused as duplicates."""
        result = cls()
        for event in events:
            if (event.meter.pk, event.identifier) in claimed:
                result.accepted.append(AcceptedEvent.of(event))
            else:
                result.rejected.append(duplicate_rejection(event))
        return result


@dataclass(frozen=True)
class StoredEvent:
    """An event found by its identifier: what cancellation checks and then cancels."""

    meter_id: int
    customer_id: int
    identifier: str
    timestamp: dt.datetime
    received_at: dt.datetime


@dataclass(frozen=True)
class UsageAggregate:
    """What every formula needs from a set of events; two aggregates add up exactly.

    The last value is the one with the greatest (timestamp, event id): the id breaks ties
    between events sent for the same instant.
    """

    value_sum: Decimal = Decimal(0)
    event_count: int = 0
    last_value: Decimal | None = None
    last_key: tuple[dt.datetime, int] | None = None

    def __add__(self, other: UsageAggregate) -> UsageAggregate:
        later = self
        if other.last_key is not None and (self.last_key is None or other.last_key > self.last_key):
            later = other
        return UsageAggregate(
            self.value_sum + other.value_sum,
            self.event_count + other.event_count,
            later.last_value,
            later.last_key,
        )

    def value_for(self, meter: Meter) -> Decimal:
        """The meter's formula over these events (0 when there are none)."""
        if meter.formula == Meter.Formula.COUNT:
            return Decimal(self.event_count)
        if meter.formula == Meter.Formula.LAST:
            return self.last_value if self.last_value is not None else Decimal(0)
        return self.value_sum


class EventStore(ABC):
    """Where meter events live. Implementations are stateless: one instance serves all."""

    name: ClassVar[str]

    @abstractmethod
    def ingest(self, events: Sequence[ValidEvent]) -> IngestResult:
        """Store each event whose (meter, identifier) was never stored, atomically per batch;
        refuse the others as duplicates. Two concurrent senders of one identifier: one wins."""

    @abstractmethod
    def find_event(self, *, meter: Meter, identifier: str) -> StoredEvent | None:
        """The event stored under this identifier, held (locked) until the transaction ends so
        that two cancellations of one event queue up; None if there is none."""

    @abstractmethod
    def cancel(self, *, event: StoredEvent, at: dt.datetime) -> int:
        """Stop counting the event in every usage read; return the event's id."""

    @abstractmethod
    def usage_many(
        self, *, pairs: Iterable[MeterCustomer], start: dt.datetime, end: dt.datetime
    ) -> dict[UsageKey, Decimal]:
        """Usage over [start, end) for each (meter, customer id), keyed (meter id, customer id),
        0 for a pair without events, in a number of queries that doesn't grow with the pairs."""

    def usage(
        self, *, meter: Meter, customer_id: int, start: dt.datetime, end: dt.datetime
    ) -> Decimal:
        """The meter's formula over the customer's uncancelled events in [start, end)."""
        pairs = [(meter, customer_id)]
        return self.usage_many(pairs=pairs, start=start, end=end)[(meter.pk, customer_id)]

    @abstractmethod
    def usage_by_window(
        self,
        *,
        meter: Meter,
        start: dt.datetime,
        end: dt.datetime,
        window: Window,
        customer_id: int | None = None,
    ) -> list[tuple[dt.datetime, Decimal]]:
        """Usage per hour or day over [start, end), both aligned to the window (UTC).

        With no customer, each window adds up every customer's usage (for `last`, each
        customer's last value in the window).
        """

    @abstractmethod
    def late_usage(self, *, periods: Iterable[BilledPeriod]) -> dict[int, LateUsageTotal]:
        """For each billed period, its uncancelled events timestamped in [start, end) and
        received after `billed_at`, keyed by the period's key; only periods that have some.
        The number of queries doesn't grow with the periods (or grows by one per thousand or
        so, where the database limits a statement's parameters)."""

    @abstractmethod
    def event_counts_by_meter(self, *, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
        """How many uncancelled events each meter has in [start, end) (both on whole UTC
        hours), over all customers, keyed by meter id; meters without events are left out.
        For rankings such as the admin dashboard's busiest meters."""

    @abstractmethod
    def purge_identifiers(self, *, received_before: dt.datetime) -> int:
        """Forget the identifiers of events received before this time (their events stay and
        keep counting); return how many were forgotten."""
