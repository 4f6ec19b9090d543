"""The exactly-once guard of the ORM and ClickHouse stores: identifiers claimed in Django's
database (the PostgreSQL store claims inside its one set-based statement).

The claim is a `MeterEventIdentifier` row (unique per meter and identifier, purged after
`IDENTIFIER_RETENTION`), inserted with ON CONFLICT DO NOTHING RETURNING: of two concurrent
senders of one identifier exactly one gets the row. On ClickHouse the row's id becomes the
event's id: it grows with the order events are stored, which is what the `last` formula's
tie-break needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from billing_site.db import execute_prepared
from metering.models import MeterEventIdentifier
from metering.validation import ValidEvent

TABLE = MeterEventIdentifier._meta.db_table
COLUMNS = "meter_id, identifier, customer_id, event_timestamp, received_at"
# Rows are fed in (meter, identifier) order so concurrent batches take their locks in one order.
_CLAIM_POSTGRESQL = f"""
INSERT INTO {TABLE} ({COLUMNS})
SELECT * FROM unnest(
    %b::bigint[], %b::varchar[], %b::bigint[], %b::timestamptz[], %b::timestamptz[]
) AS incoming ({COLUMNS})
ORDER BY meter_id, identifier
ON CONFLICT (meter_id, identifier) DO NOTHING
RETURNING id, meter_id, identifier
"""
# SQLite takes 999 parameters a statement: 5 a row.
_ROWS_PER_STATEMENT = 150


def claim_identifiers(events: Sequence[ValidEvent]) -> dict[tuple[int, str], int]:
    """Claim each event's (meter id, identifier); return the ones this call got, with the
    claim's id. Run it in the transaction that also writes the events."""
    rows = sorted(events, key=lambda item: (item.meter.pk, item.identifier))
    if connection.vendor == "postgresql":
        columns = [
            [item.meter.pk for item in rows],
            [item.identifier for item in rows],
            [item.customer_id for item in rows],
            [item.timestamp for item in rows],
            [item.received_at for item in rows],
        ]
        returned = execute_prepared(_CLAIM_POSTGRESQL, columns)
    else:
        returned = []
        for first in range(0, len(rows), _ROWS_PER_STATEMENT):
            returned += _claim_portably(rows[first : first + _ROWS_PER_STATEMENT])
    return {(meter_id, identifier): claim_id for claim_id, meter_id, identifier in returned}


def _claim_portably(rows: Sequence[ValidEvent]) -> list[tuple]:
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = []
    for item in rows:
        params += [
            item.meter.pk,
            item.identifier,
            item.customer_id,
            adapt(item.timestamp),
            adapt(item.received_at),
        ]
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES {placeholders} "
            "ON CONFLICT (meter_id, identifier) DO NOTHING RETURNING id, meter_id, identifier",
            params,
        )
        return cursor.fetchall()
