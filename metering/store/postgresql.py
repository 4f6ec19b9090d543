"""The event store on PostgreSQL: one prepared statement per batch.

The statement claims the identifiers (INSERT ... ON CONFLICT DO NOTHING RETURNING: of two
concurrent senders of one identifier exactly one wins, the other waits for the winner's commit
and then sees the conflict), inserts the events whose identifier it claimed into the
partitioned `metering_meterevent`, and upserts their hourly rollups. One statement is atomic on
its own, even in autocommit. Reads and cancellation are the shared relational ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from billing_site.db import execute_prepared
from metering.store.base import BilledPeriod, IngestResult, LateUsageTotal
from metering.store.relational import (
    BILLED_COLUMNS,
    LATE_EVENTS_JOIN,
    RelationalEventStore,
    add_late_usage,
)
from metering.validation import ValidEvent

# The set-based fold of a relation `incoming` (meter_id, identifier, customer_id, value, ts,
# payload, received_at): claim the identifiers, insert the events whose identifier was claimed,
# upsert their hourly rollups; it answers (meter_id, identifier) of each stored event. The
# benchmark's ceiling (bench/ingest_probes.py) runs this same fold over a COPY-filled table.
FOLD = """
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

# Arrays (unnest) keep the statement text constant, so the server plans it once per connection
# whatever the batch size; the payloads travel as one JSON array (one encoding call per batch,
# not one per event). Rows are fed in (meter, identifier) and (meter, customer, hour) order:
# every transaction takes its row locks in the same order, so concurrent batches wait instead
# of deadlocking.
_INGEST = (
    """
WITH incoming AS (
    SELECT i.meter_id, i.identifier, i.customer_id, i.value, i.ts, p.payload, i.received_at
    FROM unnest(
        %(meter_ids)b::bigint[], %(identifiers)b::varchar[], %(customer_ids)b::bigint[],
        %(values)b::numeric[], %(timestamps)b::timestamptz[], %(received)b::timestamptz[]
    ) WITH ORDINALITY AS i (meter_id, identifier, customer_id, value, ts, received_at, n)
    JOIN jsonb_array_elements(%(payloads)b::jsonb) WITH ORDINALITY AS p (payload, n) USING (n)
),"""
    + FOLD
)


# Late usage for any number of billed periods in one statement: they travel as arrays.
_LATE_USAGE = f"""
SELECT billed.period_key, sum(e.value), count(*)
FROM unnest(
    %b::bigint[], %b::bigint[], %b::bigint[], %b::timestamptz[], %b::timestamptz[],
    %b::timestamptz[]
) AS billed ({BILLED_COLUMNS})
{LATE_EVENTS_JOIN}
GROUP BY billed.period_key
"""


class PostgresEventStore(RelationalEventStore):
    name = "postgresql"

    def ingest(self, events: Sequence[ValidEvent]) -> IngestResult:
        if not events:
            return IngestResult()
        # Server-side binding: the arrays travel as parameters instead of being quoted into
        # the statement by Django's client-side cursor, which costs more than the insert itself.
        rows = execute_prepared(
            _INGEST,
            {
                "meter_ids": [item.meter.pk for item in events],
                "identifiers": [item.identifier for item in events],
                "customer_ids": [item.customer_id for item in events],
                "values": [item.value for item in events],
                "timestamps": [item.timestamp for item in events],
                "payloads": json.dumps([item.payload for item in events]),
                "received": [item.received_at for item in events],
            },
        )
        claimed = {(meter_id, identifier) for meter_id, identifier, _ in rows}
        return IngestResult.of_claims(events, claimed)

    def late_usage(self, *, periods: Iterable[BilledPeriod]) -> dict[int, LateUsageTotal]:
        columns = [list(column) for column in zip(*periods, strict=True)]
        found: dict[int, LateUsageTotal] = {}
        if columns:
            add_late_usage(found, execute_prepared(_LATE_USAGE, columns))
        return found
