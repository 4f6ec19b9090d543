"""Monthly range partitions of the meter event table on PostgreSQL (a no-op elsewhere).

Accepted events are at most 35 days old and 5 minutes ahead. Maintenance (after `migrate`, and
daily: `metering.tasks.meter_event_maintenance_task`) keeps a partition for every month from the
month of (now - 35 days) to the month after next, so the months ahead exist more than a month
before their first event: a maintenance run missed for weeks loses nothing.

A DEFAULT partition catches any other event rather than failing its insert: a test clock's
events far from today, or a month whose partition wasn't created in time. PostgreSQL refuses to
create a month's partition while DEFAULT holds rows of that month ("updated partition
constraint for default partition would be violated"), so in that case the rows are moved, in
one transaction: detach DEFAULT, create the month's partition, copy the month's rows into it
(INSERT ... SELECT), delete them from DEFAULT, re-attach DEFAULT. The parent table is locked for
that transaction: ingestion and usage reads wait for it instead of failing. On any error the
transaction rolls back and nothing has changed; the next run tries again.

Old partitions can be detached and archived once their invoices are final.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import connection as default_connection
from django.db import transaction

from billing_site import clock
from metering.models import MeterEvent
from metering.validation import ACCEPTANCE_WINDOW_PAST

logger = logging.getLogger(__name__)

TABLE = MeterEvent._meta.db_table
MONTHS_AHEAD = 2  # the current month, the next and the one after
# How long maintenance waits for the table lock before giving up until its next run: queries
# queue behind a waiting lock, so a long report must not stall ingestion for long.
LOCK_TIMEOUT = "5s"


@dataclass
class PartitionMaintenance:
    """What a maintenance run did: partitions created, rows moved out of DEFAULT into them, and
    the months it couldn't create (with the error), to try again on the next run."""

    created: list[str] = field(default_factory=list)
    moved_from_default: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _month_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: dt.datetime) -> dt.datetime:
    return (
        month.replace(year=month.year + 1, month=1)
        if month.month == 12
        else month.replace(month=month.month + 1)
    )


def months_to_keep(now: dt.datetime) -> list[dt.datetime]:
    """The first instant of every month that needs a partition: from the oldest month an
    accepted event can fall in to `MONTHS_AHEAD` months after the current one."""
    month = _month_start(now - ACCEPTANCE_WINDOW_PAST)
    last = _month_start(now)
    for _ in range(MONTHS_AHEAD):
        last = _next_month(last)
    months = []
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def partition_name(month: dt.datetime) -> str:
    return f"{TABLE}_{month:%Y%m}"


def ensure_meter_event_partitions(
    *, connection=default_connection, now: dt.datetime | None = None
) -> PartitionMaintenance:
    """Create the monthly partitions `months_to_keep` lists, each in its own transaction; rows
    DEFAULT holds for a month being created move into it. Never raises for one month: a month
    that fails is logged and listed in `failures`, and the others are still created."""
    report = PartitionMaintenance()
    if connection.vendor != "postgresql":
        return report
    with connection.cursor() as cursor:
        default = _default_partition(cursor)
        if default is None and not _is_partitioned(cursor):
            return report
        existing = _partitions(cursor)
    for month in months_to_keep(now or clock.now()):
        name = partition_name(month)
        if name in existing:
            continue
        try:
            moved = _create_partition(connection, name, month, _next_month(month), default)
        except Exception as exc:
            logger.exception("Could not create the meter event partition %s", name)
            report.failures.append(f"partition {name}: {type(exc).__name__}: {exc}")
            continue
        if moved is None:
            continue  # created meanwhile by another run
        report.created.append(name)
        if moved:
            logger.warning("Moved %d meter events of %s out of the DEFAULT partition", moved, name)
            report.moved_from_default[name] = moved
    return report


def _create_partition(
    connection, name: str, start: dt.datetime, end: dt.datetime, default: str | None
) -> int | None:
    """Create the partition for [start, end); return how many rows moved out of DEFAULT (None
    if the partition exists already)."""
    create = f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)"
    in_month = '"timestamp" >= %s AND "timestamp" < %s'
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Creating a partition needs this lock anyway; taking it first (parent before
        # partitions, like every insert) means inserts wait for this transaction instead of
        # slipping a row of this month into DEFAULT between the check and the create.
        cursor.execute(f"LOCK TABLE ONLY {TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return None
        if default is None:
            cursor.execute(create, [start, end])
            return 0
        cursor.execute(f"SELECT count(*) FROM {default} WHERE {in_month}", [start, end])
        stranded = cursor.fetchone()[0]
        if not stranded:
            cursor.execute(create, [start, end])
            return 0
        columns = ", ".join(
            connection.ops.quote_name(f.column) for f in MeterEvent._meta.concrete_fields
        )
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {default}")
        cursor.execute(create, [start, end])
        cursor.execute(
            f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {default} WHERE {in_month}",
            [start, end],
        )
        cursor.execute(f"DELETE FROM {default} WHERE {in_month}", [start, end])
        cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION {default} DEFAULT")
        return stranded


def _partitions(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return {row[0] for row in cursor.fetchall()}


def _default_partition(cursor) -> str | None:
    cursor.execute(
        "SELECT c.relname FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partdefid "
        "WHERE pt.partrelid = to_regclass(%s)",
        [TABLE],
    )
    row = cursor.fetchone()
    return row[0] if row else None


def _is_partitioned(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
    return cursor.fetchone() is not None
