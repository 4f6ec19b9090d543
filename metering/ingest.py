"""Meter event ingestion: validation, exactly-once storage, hourly rollups, cancellation.

One code path serves the single-event API, the batch stream, the admin's test-event form and
the demo seeder:

1. every event is validated (one query for all meters, one for all customers in the batch);
2. in one transaction, the identifiers are claimed with INSERT ... ON CONFLICT DO NOTHING
   RETURNING, so of two concurrent senders of one identifier exactly one wins (the other waits
   for the winner's commit and then sees the conflict);
3. only the events whose identifier was claimed are stored, and their hourly rollups are
   upserted in (meter, customer, hour) order, so concurrent batches can't deadlock.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction

from billing_site import clock
from billing_site.errors import BillingError
from metering.models import (
    EVENT_VALUE_DECIMALS,
    Meter,
    MeterEvent,
    MeterEventAdjustment,
    MeterEventIdentifier,
    MeterEventSession,
    MeterUsageRollup,
)

ACCEPTANCE_WINDOW_PAST = dt.timedelta(days=35)
ACCEPTANCE_WINDOW_FUTURE = dt.timedelta(minutes=5)
CANCELLATION_WINDOW = dt.timedelta(hours=24)
IDENTIFIER_RETENTION = dt.timedelta(days=40)
MAX_SIGNIFICANT_DIGITS = 15
MAX_PAYLOAD_KEYS = 50
MAX_PAYLOAD_BYTES = 4096
MAX_IDENTIFIER_LENGTH = 100
MAX_BATCH_SIZE = 100


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    code: str
    message: str
    param: str | None = None
    identifier: str | None = None


@dataclass(frozen=True)
class AcceptedEvent:
    event_name: str
    identifier: str
    value: Decimal
    timestamp: dt.datetime
    received_at: dt.datetime
    payload: dict[str, str]


@dataclass
class IngestResult:
    accepted: list[AcceptedEvent] = field(default_factory=list)
    rejected: list[RejectedEvent] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


@dataclass(frozen=True)
class _Valid:
    index: int
    meter: Meter
    customer_id: int
    identifier: str
    value: Decimal
    timestamp: dt.datetime
    payload: dict[str, str]
    received_at: dt.datetime


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def parse_event_value(raw: Any) -> Decimal:
    """A meter event value: a decimal of at most 15 significant digits and 12 decimal places."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        raise _Reject(
            "meter_event_invalid_value",
            f"The value must be a number sent as a string (got {json.dumps(raw, default=str)}).",
        )
    text = str(raw).strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not text:
        raise _Reject(
            "meter_event_invalid_value", f"The value '{text}' is not a number, e.g. '25' or '0.5'."
        )
    _, digits, exponent = value.normalize().as_tuple()
    decimals = max(0, -int(exponent))
    significant = len(digits)  # normalized: no leading or trailing zeros
    if value != 0 and (significant > MAX_SIGNIFICANT_DIGITS or decimals > EVENT_VALUE_DECIMALS):
        raise _Reject(
            "meter_event_value_too_precise",
            f"The value '{text}' has too many digits: at most {MAX_SIGNIFICANT_DIGITS} "
            f"significant digits and {EVENT_VALUE_DECIMALS} decimal places.",
        )
    return value.normalize() if value != 0 else Decimal(0)


def _check_payload(payload: Any) -> dict[str, str]:
    if not isinstance(payload, Mapping) or not payload:
        raise _Reject(
            "meter_event_invalid_payload",
            "payload must be an object with the customer and value keys, e.g. "
            '{"stripe_customer_id": "cus_...", "value": "25"}.',
            "payload",
        )
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise _Reject(
            "payload_too_large",
            f"The payload has {len(payload)} keys; at most {MAX_PAYLOAD_KEYS} are allowed.",
            "payload",
        )
    clean: dict[str, str] = {}
    for key, value in payload.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise _Reject(
                "meter_event_invalid_payload",
                f"payload[{key}] must be a string (got {type(value).__name__}).",
                f"payload[{key}]",
            )
        clean[str(key)] = str(value)
    # Escaping can at most sextuple a character (\uXXXX), so small payloads skip the exact count.
    rough = sum(len(key) + len(value) for key, value in clean.items()) * 6 + 6 * len(clean) + 2
    size = (
        rough
        if rough <= MAX_PAYLOAD_BYTES
        else len(json.dumps(clean, separators=(",", ":")).encode())
    )
    if size > MAX_PAYLOAD_BYTES:
        raise _Reject(
            "payload_too_large",
            f"The payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are allowed.",
            "payload",
        )
    return clean


def _check_timestamp(timestamp: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if timestamp is None:
        return now
    if timestamp < now - ACCEPTANCE_WINDOW_PAST:
        raise _Reject(
            "timestamp_too_far_in_past",
            f"The timestamp {timestamp.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} is more than 35 "
            "days in the past; "
            "events older than that can't be billed.",
            "timestamp",
        )
    if timestamp > now + ACCEPTANCE_WINDOW_FUTURE:
        raise _Reject(
            "timestamp_in_future",
            f"The timestamp {timestamp.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} is more than 5 "
            "minutes in the future; "
            "check the sender's clock.",
            "timestamp",
        )
    return timestamp


def _identifier(raw: Any) -> str:
    if raw is None or raw == "":
        return uuid.uuid4().hex
    if not isinstance(raw, str) or len(raw) > MAX_IDENTIFIER_LENGTH:
        raise _Reject(
            "meter_event_invalid_identifier",
            f"identifier must be a string of at most {MAX_IDENTIFIER_LENGTH} characters.",
            "identifier",
        )
    return raw


@dataclass(frozen=True)
class EventInput:
    event_name: Any
    payload: Any
    identifier: Any = None
    timestamp: dt.datetime | None = None


def _validate(
    index: int,
    event: EventInput,
    *,
    now: dt.datetime,
    meters: Mapping[str, Meter],
    customers: Mapping[str, tuple[int, dt.datetime | None]],
) -> _Valid:
    if not isinstance(event.event_name, str) or not event.event_name:
        raise _Reject("parameter_missing", "event_name is required.", "event_name")
    meter = meters.get(event.event_name)
    if meter is None:
        raise _Reject(
            "no_meter",
            f"No meter has event_name '{event.event_name}'. Create the meter first, or check "
            "the spelling.",
            "event_name",
        )
    if not meter.is_active:
        raise _Reject(
            "archived_meter",
            f"Meter {meter.public_id} ('{meter.event_name}') is inactive and refuses events; "
            "reactivate it to record usage.",
            "event_name",
        )
    payload = _check_payload(event.payload)
    customer_public_id = payload.get(meter.customer_payload_key)
    if not customer_public_id:
        raise _Reject(
            "meter_event_no_customer_defined",
            f"The payload has no '{meter.customer_payload_key}' key, which meter "
            f"'{meter.event_name}' reads the customer id from.",
            f"payload[{meter.customer_payload_key}]",
        )
    customer = customers.get(customer_public_id)
    if customer is None:
        raise _Reject(
            "meter_event_customer_not_found",
            f"No customer with id '{customer_public_id}'.",
            f"payload[{meter.customer_payload_key}]",
        )
    raw_value = payload.get(meter.value_payload_key)
    if raw_value is None:
        if meter.formula != Meter.Formula.COUNT:
            raise _Reject(
                "meter_event_value_not_found",
                f"The payload has no '{meter.value_payload_key}' key, which meter "
                f"'{meter.event_name}' reads the value from.",
                f"payload[{meter.value_payload_key}]",
            )
        value = Decimal(1)
    else:
        try:
            value = parse_event_value(raw_value)
        except _Reject as reject:
            reject.param = f"payload[{meter.value_payload_key}]"
            raise
    customer_id, test_clock_time = customer
    # A customer on a test clock lives at the clock's time: the window is checked against it.
    customer_now = test_clock_time or now
    return _Valid(
        index=index,
        meter=meter,
        customer_id=customer_id,
        identifier=_identifier(event.identifier),
        value=value,
        timestamp=_check_timestamp(event.timestamp, customer_now),
        payload=payload,
        received_at=customer_now,
    )


def _lookups(
    events: Sequence[EventInput],
) -> tuple[dict[str, Meter], dict[str, tuple[int, dt.datetime | None]]]:
    # metering sits below invoicing: reach the customer model through the string FK.
    customer_model = MeterEvent._meta.get_field("customer").related_model

    names = {e.event_name for e in events if isinstance(e.event_name, str)}
    meters = {meter.event_name: meter for meter in _meters_named(sorted(names))}
    customer_ids: set[str] = set()
    for event in events:
        meter = meters.get(event.event_name) if isinstance(event.event_name, str) else None
        if meter is not None and isinstance(event.payload, Mapping):
            value = event.payload.get(meter.customer_payload_key)
            if isinstance(value, str):
                customer_ids.add(value)
    customers: dict[str, tuple[int, dt.datetime | None]] = {}
    if customer_ids and connection.vendor == "postgresql":
        rows = _postgresql_customer_rows(customer_model, sorted(customer_ids))
        customers = {public_id: (pk, frozen) for public_id, pk, frozen in rows}
    elif customer_ids:
        rows = customer_model.objects.filter(
            public_id__in=customer_ids, deleted_at__isnull=True
        ).values_list("public_id", "pk", "test_clock__frozen_time")
        customers = {public_id: (pk, frozen) for public_id, pk, frozen in rows}
    return meters, customers


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
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT {', '.join(_METER_COLUMNS)} FROM {Meter._meta.db_table} "
            "WHERE event_name = ANY(%b)",
            [names],
            prepare=True,
        )
        return [Meter(**dict(zip(_METER_COLUMNS, row, strict=True))) for row in cursor]


def _postgresql_customer_rows(customer_model, public_ids: list[str]) -> list[tuple]:
    """One prepared statement with a binary array: the ORM's IN (...) quoting a hundred ids
    client-side was a sixth of the batch path's time."""
    import psycopg

    clock_table = customer_model._meta.get_field("test_clock").related_model._meta.db_table
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT c.public_id, c.id, t.frozen_time FROM {customer_model._meta.db_table} c "
            f"LEFT JOIN {clock_table} t ON t.id = c.test_clock_id "
            "WHERE c.public_id = ANY(%b) AND c.deleted_at IS NULL",
            [public_ids],
            prepare=True,
        )
        return cursor.fetchall()


def meter_events_ingest(
    *, events: Sequence[EventInput], now: dt.datetime | None = None
) -> IngestResult:
    """Validate and store a batch. Valid events are stored even when others are rejected."""
    now = now or clock.now()
    result = IngestResult()
    meters, customers = _lookups(events)
    valid: list[_Valid] = []
    seen: set[tuple[int, str]] = set()
    for index, event in enumerate(events):
        try:
            item = _validate(index, event, now=now, meters=meters, customers=customers)
        except _Reject as reject:
            result.rejected.append(
                RejectedEvent(
                    index, reject.code, reject.message, reject.param, _safe_id(event.identifier)
                )
            )
            continue
        key = (item.meter.pk, item.identifier)
        if key in seen:
            result.rejected.append(_duplicate(item))
            continue
        seen.add(key)
        valid.append(item)
    if valid:
        if connection.vendor == "postgresql":
            # One statement claims, inserts and rolls up: atomic on its own, even in autocommit.
            claimed = _claim_store_and_roll_up_postgresql(valid)
            stored = [item for item in valid if (item.meter.pk, item.identifier) in claimed]
        else:
            with transaction.atomic():
                claimed = _claim_identifiers(valid)
                stored = [item for item in valid if (item.meter.pk, item.identifier) in claimed]
                _store(stored)
        result.rejected.extend(
            _duplicate(item) for item in valid if (item.meter.pk, item.identifier) not in claimed
        )
        result.accepted = [
            AcceptedEvent(
                item.meter.event_name,
                item.identifier,
                item.value,
                item.timestamp,
                item.received_at,
                item.payload,
            )
            for item in stored
        ]
    result.rejected.sort(key=lambda rejected: rejected.index)
    return result


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


def _safe_id(identifier: Any) -> str | None:
    return identifier if isinstance(identifier, str) and len(identifier) <= 100 else None


def _duplicate(item: _Valid) -> RejectedEvent:
    return RejectedEvent(
        item.index,
        "duplicate_meter_event",
        f"An event with identifier '{item.identifier}' was already recorded for meter "
        f"'{item.meter.event_name}'; it is counted once.",
        "identifier",
        item.identifier,
    )


# PostgreSQL does the whole batch in one statement: claim the identifiers, insert the events
# whose identifier was claimed, and upsert their hourly rollups. Arrays (unnest) keep the
# statement text constant, so the driver and server don't re-parse a new query per batch size.
# Rows are fed in (meter, identifier) and (meter, customer, hour) order: every transaction
# takes its row locks in the same order, so concurrent batches wait instead of deadlocking.
_POSTGRESQL_INGEST = """
WITH incoming AS (
    SELECT * FROM unnest(
        %(meter_ids)b::bigint[], %(identifiers)b::varchar[], %(customer_ids)b::bigint[],
        %(values)b::numeric[], %(timestamps)b::timestamptz[], %(payloads)b::jsonb[],
        %(received)b::timestamptz[]
    ) AS i (meter_id, identifier, customer_id, value, ts, payload, received_at)
),
claimed AS (
    INSERT INTO metering_metereventidentifier
        (meter_id, identifier, customer_id, event_timestamp, received_at)
    SELECT meter_id, identifier, customer_id, ts, received_at FROM incoming
    ORDER BY meter_id, identifier
    ON CONFLICT (meter_id, identifier) DO NOTHING
    RETURNING meter_id, identifier
),
inserted AS (
    INSERT INTO metering_meterevent
        (meter_id, customer_id, identifier, value, "timestamp", received_at, payload)
    SELECT i.meter_id, i.customer_id, i.identifier, i.value, i.ts, i.received_at, i.payload
    FROM incoming i JOIN claimed c USING (meter_id, identifier)
    RETURNING id, meter_id, customer_id, identifier, value, "timestamp"
),
rolled_up AS (
    INSERT INTO metering_meterusagerollup AS r
        (meter_id, customer_id, hour, value_sum, event_count, last_value, last_timestamp,
         last_event_id)
    SELECT meter_id, customer_id, date_trunc('hour', "timestamp", 'UTC'), sum(value), count(*),
        (array_agg(value ORDER BY "timestamp" DESC, id DESC))[1], max("timestamp"),
        (array_agg(id ORDER BY "timestamp" DESC, id DESC))[1]
    FROM inserted
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (meter_id, customer_id, hour) DO UPDATE SET
        value_sum = r.value_sum + excluded.value_sum,
        event_count = r.event_count + excluded.event_count,
        last_value = CASE WHEN (excluded.last_timestamp, excluded.last_event_id)
            > (r.last_timestamp, r.last_event_id) OR r.last_timestamp IS NULL
            THEN excluded.last_value ELSE r.last_value END,
        last_timestamp = GREATEST(r.last_timestamp, excluded.last_timestamp),
        last_event_id = CASE WHEN (excluded.last_timestamp, excluded.last_event_id)
            > (r.last_timestamp, r.last_event_id) OR r.last_timestamp IS NULL
            THEN excluded.last_event_id ELSE r.last_event_id END
    RETURNING 1
)
SELECT meter_id, identifier, (SELECT count(*) FROM rolled_up) FROM inserted
"""


def _claim_store_and_roll_up_postgresql(valid: list[_Valid]) -> set[tuple[int, str]]:
    params = {
        "meter_ids": [item.meter.pk for item in valid],
        "identifiers": [item.identifier for item in valid],
        "customer_ids": [item.customer_id for item in valid],
        "values": [item.value for item in valid],
        "timestamps": [item.timestamp for item in valid],
        "payloads": [json.dumps(item.payload) for item in valid],
        "received": [item.received_at for item in valid],
    }
    import psycopg

    connection.ensure_connection()
    # Server-side binding: the arrays travel as parameters instead of being quoted into the
    # statement by Django's client-side cursor, which costs more than the insert itself.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_POSTGRESQL_INGEST, params, prepare=True)
        return {(meter_id, identifier) for meter_id, identifier, _ in cursor.fetchall()}


def _claim_identifiers(valid: list[_Valid]) -> set[tuple[int, str]]:
    ops = connection.ops
    rows = sorted(valid, key=lambda item: (item.meter.pk, item.identifier))
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for item in rows:
        params += [
            item.meter.pk,
            item.identifier,
            item.customer_id,
            ops.adapt_datetimefield_value(item.timestamp),
            ops.adapt_datetimefield_value(item.received_at),
        ]
    table = MeterEventIdentifier._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (meter_id, identifier, customer_id, event_timestamp, "
            f"received_at) VALUES {placeholders} "
            "ON CONFLICT (meter_id, identifier) DO NOTHING RETURNING meter_id, identifier",
            params,
        )
        return {(meter_id, identifier) for meter_id, identifier in cursor.fetchall()}


def _store(items: list[_Valid]) -> None:
    if not items:
        return
    events = MeterEvent.objects.bulk_create(
        [
            MeterEvent(
                meter=item.meter,
                customer_id=item.customer_id,
                identifier=item.identifier,
                value=item.value,
                timestamp=item.timestamp,
                received_at=item.received_at,
                payload=item.payload,
            )
            for item in items
        ]
    )
    _add_to_rollups(events)


@dataclass
class _Bucket:
    value_sum: Decimal = Decimal(0)
    event_count: int = 0
    last_value: Decimal | None = None
    last_key: tuple[dt.datetime, int] | None = None


def _add_to_rollups(events: list[MeterEvent]) -> None:
    buckets: dict[tuple[int, int, dt.datetime], _Bucket] = defaultdict(_Bucket)
    for event in events:
        bucket = buckets[(event.meter_id, event.customer_id, hour_of(event.timestamp))]
        bucket.value_sum += event.value
        bucket.event_count += 1
        key = (event.timestamp, event.pk)
        if bucket.last_key is None or key > bucket.last_key:
            bucket.last_key, bucket.last_value = key, event.value
    if connection.vendor == "sqlite":
        _add_to_rollups_in_python(buckets)
        return
    ops = connection.ops
    table = MeterUsageRollup._meta.db_table
    placeholders = []
    params: list[Any] = []
    # Fixed lock order: concurrent batches touching the same buckets wait, never deadlock.
    for (meter_id, customer_id, hour), bucket in sorted(buckets.items()):
        assert bucket.last_key is not None
        placeholders.append("(%s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            meter_id,
            customer_id,
            ops.adapt_datetimefield_value(hour),
            ops.adapt_decimalfield_value(bucket.value_sum),
            bucket.event_count,
            ops.adapt_decimalfield_value(bucket.last_value),
            ops.adapt_datetimefield_value(bucket.last_key[0]),
            bucket.last_key[1],
        ]
    newer = (
        f"(excluded.last_timestamp > {table}.last_timestamp OR {table}.last_timestamp IS NULL "
        f"OR (excluded.last_timestamp = {table}.last_timestamp "
        f"AND excluded.last_event_id > {table}.last_event_id))"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (meter_id, customer_id, hour, value_sum, event_count, "
            f"last_value, last_timestamp, last_event_id) VALUES {', '.join(placeholders)} "
            "ON CONFLICT (meter_id, customer_id, hour) DO UPDATE SET "
            f"value_sum = {table}.value_sum + excluded.value_sum, "
            f"event_count = {table}.event_count + excluded.event_count, "
            f"last_value = CASE WHEN {newer} THEN excluded.last_value "
            f"ELSE {table}.last_value END, "
            f"last_timestamp = CASE WHEN {newer} THEN excluded.last_timestamp "
            f"ELSE {table}.last_timestamp END, "
            f"last_event_id = CASE WHEN {newer} THEN excluded.last_event_id "
            f"ELSE {table}.last_event_id END",
            params,
        )


def _add_to_rollups_in_python(buckets: dict[tuple[int, int, dt.datetime], _Bucket]) -> None:
    """SQLite adds decimals as floats; it also has one writer at a time, and this transaction
    already holds the write lock (it wrote the identifiers), so read-modify-write is safe."""
    for (meter_id, customer_id, hour), bucket in sorted(buckets.items()):
        assert bucket.last_key is not None
        rollup, created = MeterUsageRollup.objects.get_or_create(
            meter_id=meter_id,
            customer_id=customer_id,
            hour=hour,
            defaults={
                "value_sum": bucket.value_sum,
                "event_count": bucket.event_count,
                "last_value": bucket.last_value,
                "last_timestamp": bucket.last_key[0],
                "last_event_id": bucket.last_key[1],
            },
        )
        if created:
            continue
        rollup.value_sum += bucket.value_sum
        rollup.event_count += bucket.event_count
        if rollup.last_timestamp is None or bucket.last_key > (
            rollup.last_timestamp,
            rollup.last_event_id,
        ):
            rollup.last_value = bucket.last_value
            rollup.last_timestamp, rollup.last_event_id = bucket.last_key
        rollup.save()


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
        timestamp__lt=hour + dt.timedelta(hours=1),
        cancelled_at__isnull=True,
    )
    values = list(events.values_list("value", flat=True))
    last = events.order_by("-timestamp", "-pk").values_list("value", "timestamp", "pk").first()
    rollup.value_sum = sum(values, Decimal(0))
    rollup.event_count = len(values)
    rollup.last_value, rollup.last_timestamp, rollup.last_event_id = last or (None, None, None)
    rollup.save()


@transaction.atomic
def meter_event_cancel(
    *, event_name: str, identifier: str, cancelled_by: str = "api"
) -> MeterEventAdjustment:
    """Cancel an event by identifier, within 24 hours of its receipt. It stops counting."""
    meter = Meter.objects.filter(event_name=event_name).first()
    if meter is None:
        raise BillingError(
            f"No meter has event_name '{event_name}'.", param="event_name", code="no_meter"
        )
    claim = (
        MeterEventIdentifier.objects.select_for_update()
        .filter(meter=meter, identifier=identifier)
        .first()
    )
    if claim is None:
        raise BillingError(
            f"No meter event with identifier '{identifier}' for meter '{event_name}'.",
            param="cancel[identifier]",
            code="resource_missing",
        )
    now = clock.now()
    if MeterEventAdjustment.objects.filter(meter=meter, identifier=identifier).exists():
        raise BillingError(
            f"The meter event '{identifier}' is already cancelled.",
            param="cancel[identifier]",
            code="meter_event_already_cancelled",
        )
    if claim.received_at < now - CANCELLATION_WINDOW:
        raise BillingError(
            f"The meter event '{identifier}' was received at "
            f"{claim.received_at:%Y-%m-%d %H:%M UTC}; events can only be cancelled within 24 "
            "hours of receipt.",
            param="cancel[identifier]",
            code="meter_event_cancellation_window_passed",
        )
    event = MeterEvent.objects.get(
        meter=meter,
        customer_id=claim.customer_id,
        timestamp=claim.event_timestamp,
        identifier=identifier,
    )
    MeterEvent.objects.filter(
        pk=event.pk, timestamp=event.timestamp, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    adjustment = MeterEventAdjustment.objects.create(
        meter=meter,
        event_id=event.pk,
        identifier=identifier,
        created_at=now,
        created_by=cancelled_by[:150],
    )
    rebuild_rollup(
        meter_id=meter.pk, customer_id=claim.customer_id, hour=hour_of(claim.event_timestamp)
    )
    return adjustment


def purge_expired_identifiers(*, now: dt.datetime | None = None) -> int:
    """Forget identifiers past the retention (longer than the acceptance window)."""
    cutoff = (now or clock.now()) - IDENTIFIER_RETENTION
    deleted, _ = MeterEventIdentifier.objects.filter(received_at__lt=cutoff).delete()
    return deleted


SESSION_LIFETIME = dt.timedelta(minutes=15)


def meter_event_session_create(*, api_key) -> tuple[MeterEventSession, str]:
    """A stream token valid for 15 minutes; returns the session and the token (shown once)."""
    import hashlib
    import secrets

    token = "mes_tok_" + secrets.token_urlsafe(32)
    now = clock.now()
    session = MeterEventSession.objects.create(
        api_key=api_key,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    return session, token


def meter_event_session_authenticate(*, token: str):
    """The API key behind a live session token, or None. On the hot path of every stream
    request, so PostgreSQL gets one prepared statement instead of the ORM's query."""
    import hashlib

    from billing_site.models import ApiKey

    token_hash = hashlib.sha256(token.encode()).hexdigest()
    if connection.vendor != "postgresql":
        session = (
            MeterEventSession.objects.select_related("api_key")
            .filter(
                token_hash=token_hash,
                expires_at__gt=clock.now(),
                api_key__revoked_at__isnull=True,
            )
            .first()
        )
        return session.api_key if session else None
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT k.id, k.name FROM {MeterEventSession._meta.db_table} s "
            f"JOIN {ApiKey._meta.db_table} k ON k.id = s.api_key_id "
            "WHERE s.token_hash = %b AND s.expires_at > %b AND k.revoked_at IS NULL",
            [token_hash, clock.now()],
            prepare=True,
        )
        row = cursor.fetchone()
    return ApiKey(id=row[0], name=row[1]) if row else None
