"""Recording meter events: one path for the single-event API, the batch stream, the admin's
test-event form and the demo seeder.

1. the batch's meters and customers are read in one query each;
2. every event is checked by the rules in `metering.validation` (an identifier repeated within
   the batch counts once);
3. the valid events go to the configured event store (`metering.store`), which stores each
   (meter, identifier) exactly once and refuses the rest as duplicates.

A single event sent with an API key not yet looked up (`meter_event_record`, on the PostgreSQL
store) takes one round trip instead: the SQL function of migration 0003 checks the key, finds
the meter and the customer and writes, or writes nothing and returns what it found, from which
the same rules name the refusal. Keys are never cached: a revoked key is refused at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from billing_site import clock
from billing_site.db import execute_prepared, is_storable_text
from billing_site.errors import BillingError
from billing_site.services import LAST_USED_RESOLUTION
from metering.models import Meter, MeterEvent
from metering.store import event_store
from metering.store.base import AcceptedEvent, IngestResult
from metering.validation import (
    ACCEPTANCE_WINDOW_FUTURE,
    ACCEPTANCE_WINDOW_PAST,
    CustomerRef,
    EventInput,
    EventRejected,
    check_payload,
    duplicate_rejection,
    event_identifier,
    parse_event_value,
    validate_batch,
    validate_event,
)

logger = logging.getLogger(__name__)


def meter_events_ingest(
    *, events: Sequence[EventInput], now: dt.datetime | None = None
) -> IngestResult:
    """Validate and store a batch. Valid events are stored even when others are rejected."""
    now = now or clock.now()
    meters, customers = _lookups(events)
    valid, rejected = validate_batch(events, now=now, meters=meters, customers=customers)
    result = event_store().ingest(valid) if valid else IngestResult()
    result.rejected = sorted(rejected + result.rejected, key=lambda reject: reject.index)
    return result


@dataclass(frozen=True)
class Caller:
    """The API key a single event arrives with, checked in the event's own statement: the
    secret's hash, and the resource it needs `write` on."""

    secret_hash: str
    resource: str


class CallerRefused(Exception):
    """The caller's key is unknown or revoked (`reason` "invalid"), or a restricted key without
    write on the resource ("forbidden"; `key_row` is the key's auth row). Nothing was written."""

    def __init__(self, reason: str, key_row: tuple | None = None):
        super().__init__(reason)
        self.reason = reason
        self.key_row = key_row


@dataclass
class Recorded:
    """What `meter_event_record` did: the event stored, or the refusal to raise (nothing was
    stored), and the caller's key as `billing_site.services.api_key_from_auth_row` reads it."""

    key_row: tuple
    event: AcceptedEvent | None = None
    refusal: BillingError | None = None


def meter_event_create(
    *,
    event_name: Any,
    payload: Any,
    identifier: Any = None,
    timestamp: dt.datetime | None = None,
) -> AcceptedEvent:
    """Store one event or raise BillingError with the reason; nothing is stored on error."""
    result = meter_events_ingest(events=[EventInput(event_name, payload, identifier, timestamp)])
    if result.rejected:
        rejected = result.rejected[0]
        raise BillingError(rejected.message, param=rejected.param, code=rejected.code)
    return result.accepted[0]


def single_statement_available() -> bool:
    """Whether `meter_event_record` can check a key and store an event in one round trip."""
    return event_store().name == "postgresql"


_RECORD_ONE = (
    "SELECT * FROM metering_meter_event_record(%b::text, %b::text, %b::interval, "
    "%b::timestamptz, %b::text, %b::jsonb, %b::jsonb, %b::text, %b::timestamptz, %b::interval, "
    "%b::interval)"
)


def meter_event_record(*, event: EventInput, caller: Caller) -> Recorded:
    """`meter_event_create` for an API request whose key has not been looked up yet: the key,
    the meter, the customer and the write in one round trip (`single_statement_available`).
    Raises CallerRefused for the key; a refused event is returned as `refusal`."""
    now = clock.now()
    event_name = event.event_name if _searchable(event.event_name) and event.event_name else None
    # What needs no database is checked here; the function writes only if all of it passed.
    try:
        payload: dict[str, str] | None = check_payload(event.payload)
    except EventRejected:
        payload = None
    numbers = _numbers(payload or {})
    try:
        identifier: str | None = event_identifier(event.identifier)
    except EventRejected:
        identifier = None
    (outcome, *key_row), meter_row, (customer_id, clock_time) = _split(
        execute_prepared(
            _RECORD_ONE,
            [
                caller.secret_hash,
                caller.resource,
                LAST_USED_RESOLUTION,
                now,
                event_name,
                None if payload is None else json.dumps(payload),
                json.dumps({key: str(number) for key, number in numbers.items()}),
                identifier,
                event.timestamp,
                ACCEPTANCE_WINDOW_PAST,
                ACCEPTANCE_WINDOW_FUTURE,
            ],
        )[0]
    )
    if outcome == "key_invalid":
        raise CallerRefused("invalid")
    if outcome == "key_forbidden":
        raise CallerRefused("forbidden", tuple(key_row))
    if outcome == "accepted":
        assert event_name is not None and payload is not None and identifier is not None
        received_at = clock_time or now
        value = numbers.get(meter_row[_METER_ROW_FIELDS.index("value_payload_key")], Decimal(1))
        accepted = AcceptedEvent(
            event_name,
            identifier,
            value,
            event.timestamp or received_at,
            received_at,
            payload,
        )
        return Recorded(tuple(key_row), event=accepted)
    # Refused, or a duplicate: the rules name the reason from what the function found.
    meter = None
    if meter_row[0] is not None:
        meter = Meter(event_name=event_name, **dict(zip(_METER_ROW_FIELDS, meter_row, strict=True)))
    meters = {meter.event_name: meter} if meter is not None else {}
    customer_public_id = (payload or {}).get(meter.customer_payload_key) if meter else None
    customers = {customer_public_id: (customer_id, clock_time)} if customer_id else {}
    try:
        valid = validate_event(0, event, now=now, meters=meters, customers=customers)
    except EventRejected as reject:
        refusal = BillingError(reject.message, param=reject.param, code=reject.code)
        return Recorded(tuple(key_row), refusal=refusal)
    if outcome == "duplicate":
        rejected = duplicate_rejection(valid)
        refusal = BillingError(rejected.message, param=rejected.param, code=rejected.code)
        return Recorded(tuple(key_row), refusal=refusal)
    # The function and the rules disagree (which the tests say never happens): nothing was
    # written and the key was checked, so the general path decides.
    logger.error("Single-event function refused an event the rules accept: %r", event)
    result = meter_events_ingest(events=[event], now=now)
    if result.rejected:
        rejected = result.rejected[0]
        refusal = BillingError(rejected.message, param=rejected.param, code=rejected.code)
        return Recorded(tuple(key_row), refusal=refusal)
    return Recorded(tuple(key_row), event=result.accepted[0])


_METER_ROW_FIELDS = (
    "id",
    "public_id",
    "display_name",
    "formula",
    "customer_payload_key",
    "value_payload_key",
    "status",
)


def _split(row: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    """The function's row: (outcome and the key's auth row), the meter, (customer, clock)."""
    return row[:6], row[6:13], row[13:15]


def _numbers(payload: Mapping[str, str]) -> dict[str, Decimal]:
    """The payload values that are valid event values, by key: the function reads the meter's
    value key from these (a value key missing here but present in the payload is refused)."""
    numbers = {}
    for key, text in payload.items():
        if text[:1].isalpha():  # a customer id, not a number (Decimal reads only NaN, Infinity)
            continue
        try:
            numbers[key] = parse_event_value(text)
        except EventRejected:
            continue
    return numbers


def _lookups(events: Sequence[EventInput]) -> tuple[dict[str, Meter], dict[str, CustomerRef]]:
    # Text the database can't hold (a NUL) would fail the lookup for the whole batch: such an
    # event finds nothing here and is refused by the rules on its own.
    names = {e.event_name for e in events if _searchable(e.event_name)}
    meters = {meter.event_name: meter for meter in _meters_named(sorted(names))}
    customer_ids: set[str] = set()
    for event in events:
        meter = meters.get(event.event_name) if _searchable(event.event_name) else None
        if meter is not None and isinstance(event.payload, Mapping):
            value = event.payload.get(meter.customer_payload_key)
            if _searchable(value):
                customer_ids.add(value)
    return meters, _customers_with_public_ids(sorted(customer_ids))


def _searchable(value: Any) -> bool:
    return isinstance(value, str) and is_storable_text(value)


_METER_COLUMNS = (
    "id",
    "public_id",
    "event_name",
    "display_name",
    "formula",
    "customer_payload_key",
    "value_payload_key",
    "status",
)


def _meters_named(names: list[str]) -> list[Meter]:
    if not names:
        return []
    if connection.vendor != "postgresql":
        return list(Meter.objects.filter(event_name__in=names))
    rows = execute_prepared(
        f"SELECT {', '.join(_METER_COLUMNS)} FROM {Meter._meta.db_table} "
        "WHERE event_name = ANY(%b)",
        [names],
    )
    return [Meter(**dict(zip(_METER_COLUMNS, row, strict=True))) for row in rows]


def _customers_with_public_ids(public_ids: list[str]) -> dict[str, CustomerRef]:
    """Live customers by public id, with their test clock's time. On PostgreSQL one prepared
    statement with a binary array: the ORM's IN (...) quoting a hundred ids client-side was a
    sixth of the batch path's time."""
    if not public_ids:
        return {}
    # metering sits below invoicing: reach the customer model through the string FK.
    customer_model = MeterEvent._meta.get_field("customer").related_model
    if connection.vendor == "postgresql":
        clock_table = customer_model._meta.get_field("test_clock").related_model._meta.db_table
        rows = execute_prepared(
            f"SELECT c.public_id, c.id, t.frozen_time FROM {customer_model._meta.db_table} c "
            f"LEFT JOIN {clock_table} t ON t.id = c.test_clock_id "
            "WHERE c.public_id = ANY(%b) AND c.deleted_at IS NULL",
            [public_ids],
        )
    else:
        rows = customer_model.objects.filter(
            public_id__in=public_ids, deleted_at__isnull=True
        ).values_list("public_id", "pk", "test_clock__frozen_time")
    return {public_id: (pk, frozen) for public_id, pk, frozen in rows}
