"""Monthly range partitions of the meter event table on PostgreSQL (a no-op elsewhere).

Accepted events are at most 35 days old and 5 minutes ahead, so keeping partitions from the
month of (now - 35 days) to next month guarantees every accepted event has its partition. A
DEFAULT partition catches anything else rather than failing an insert. Old partitions can be
detached and archived once their invoices are final.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection as default_connection

from billing_site import clock

TABLE = "metering_meterevent"


def _month_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: dt.datetime) -> dt.datetime:
    return (
        month.replace(year=month.year + 1, month=1)
        if month.month == 12
        else month.replace(month=month.month + 1)
    )


def months_to_keep(now: dt.datetime) -> list[dt.datetime]:
    month = _month_start(now - dt.timedelta(days=35))
    last = _next_month(_month_start(now))
    months = []
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def ensure_meter_event_partitions(*, connection=default_connection, now=None) -> list[str]:
    """Create the monthly partitions the acceptance window needs; returns the ones created."""
    if connection.vendor != "postgresql":
        return []
    created = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [TABLE],
        )
        existing = {row[0] for row in cursor.fetchall()}
        if not existing and not _is_partitioned(cursor):
            return []
        for month in months_to_keep(now or clock.now()):
            name = f"{TABLE}_{month:%Y%m}"
            if name in existing:
                continue
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} "
                "FOR VALUES FROM (%s) TO (%s)",
                [month, _next_month(month)],
            )
            created.append(name)
    return created


def _is_partitioned(cursor) -> bool:
    cursor.execute(
        "SELECT 1 FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid "
        "WHERE c.relname = %s",
        [TABLE],
    )
    return cursor.fetchone() is not None
