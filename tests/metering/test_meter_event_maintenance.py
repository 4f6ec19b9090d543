"""The daily metering maintenance: month partitions kept ahead and healed when a month was missed
(events caught by the DEFAULT partition move into the month's new partition), identifiers and
stream sessions purged after their retention, each step independent of the others."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from billing_site import clock
from billing_site.jobs import run_scheduled_jobs
from billing_site.services import api_key_create
from metering.ingest import meter_events_ingest
from metering.models import MeterEvent, MeterEventIdentifier, MeterEventSession
from metering.partitions import months_to_keep, partition_name
from metering.sessions import SESSION_RETENTION, meter_event_session_create
from metering.store import IDENTIFIER_RETENTION, event_store, usage
from metering.tasks import meter_event_maintenance_task
from metering.validation import (
    ACCEPTANCE_WINDOW_FUTURE,
    ACCEPTANCE_WINDOW_PAST,
    EventInput,
    ValidEvent,
)
from tests.factories import CustomerFactory, MeterFactory

UTC = dt.UTC
# Years past any partition the test database was created with: every month here is "missed".
NOW = dt.datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
MARCH = dt.datetime(2031, 3, 1, tzinfo=UTC)
APRIL = dt.datetime(2031, 4, 1, tzinfo=UTC)


# --- which months are kept ---------------------------------------------------------------------


def test_partitions_cover_the_acceptance_window_and_the_month_after_next():
    months = months_to_keep(dt.datetime(2026, 11, 21, 9, 30, tzinfo=UTC))
    assert [f"{month:%Y-%m}" for month in months] == ["2026-10", "2026-11", "2026-12", "2027-01"]


def _month_of(moment: dt.datetime) -> dt.datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@given(st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2090, 1, 1)))
def test_every_accepted_event_has_its_partition_with_a_month_of_margin_ahead(naive_now):
    now = naive_now.replace(tzinfo=UTC)
    months = months_to_keep(now)
    assert months[0] == _month_of(now - ACCEPTANCE_WINDOW_PAST)
    # The latest event accepted now, a whole month later, still falls in a kept month.
    assert _month_of(now + ACCEPTANCE_WINDOW_FUTURE + dt.timedelta(days=31)) in months
    assert all(_month_of(a + dt.timedelta(days=32)) == b for a, b in itertools.pairwise(months))


# --- a missed month heals itself (PostgreSQL: a real DEFAULT partition) ------------------------


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def _exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


@pytest.fixture
def stranded(db):
    """Events of a month whose partition was never created: PostgreSQL put them in DEFAULT.
    Plus one event of a far month (a test clock's) that belongs in DEFAULT and stays there."""
    assert not _exists(partition_name(MARCH))
    meter = MeterFactory(formula="sum")
    customers = [CustomerFactory(), CustomerFactory()]
    events = [
        EventInput(
            meter.event_name,
            {"stripe_customer_id": customers[i % 2].public_id, "value": f"{i}.5"},
            f"evt-{i}",
            MARCH + dt.timedelta(hours=7 * i, minutes=i),
        )
        for i in range(30)
    ]
    with clock.frozen_at(NOW):
        assert len(meter_events_ingest(events=events).accepted) == 30
    far_away = dt.datetime(2040, 1, 1, tzinfo=UTC)
    far = ValidEvent(0, meter, customers[0].pk, "far", Decimal(1), far_away, {}, far_away)
    assert event_store().ingest([far]).accepted
    assert _count("metering_meterevent_default") == 31
    usages = {
        customer.pk: usage(meter=meter, customer_id=customer.pk, start=MARCH, end=APRIL)
        for customer in customers
    }
    return {"meter": meter, "customers": customers, "usages": usages}


@pytest.mark.postgres
def test_maintenance_moves_the_events_default_caught_into_the_month_s_new_partition(stranded):
    with clock.frozen_at(NOW):
        summary = meter_event_maintenance_task(inline=True)

    assert summary["failures"] == []
    assert partition_name(MARCH) in summary["partitions_created"]
    assert partition_name(APRIL) in summary["partitions_created"]
    assert summary["events_moved_from_default"] == 30
    assert _count(partition_name(MARCH)) == 30
    # DEFAULT keeps only what belongs to no partition: the far test-clock event.
    assert _count("metering_meterevent_default") == 1
    assert MeterEvent.objects.count() == 31
    meter = stranded["meter"]
    for customer in stranded["customers"]:
        assert (
            usage(meter=meter, customer_id=customer.pk, start=MARCH, end=APRIL)
            == stranded["usages"][customer.pk]
        )
    # Ids and every column moved unchanged.
    assert MeterEvent.objects.get(identifier="evt-3").value == Decimal("3.5")

    # Events keep arriving for the month, into its partition; the next run has nothing to do.
    with clock.frozen_at(NOW):
        late = EventInput(
            meter.event_name,
            {"stripe_customer_id": stranded["customers"][0].public_id, "value": "1"},
            "evt-late",
            NOW,
        )
        assert meter_events_ingest(events=[late]).accepted
        again = meter_event_maintenance_task(inline=True)
    assert (again["partitions_created"], again["failures"]) == ([], [])
    assert _count(partition_name(MARCH)) == 31
    assert _count("metering_meterevent_default") == 1


@pytest.mark.postgres
def test_migrate_succeeds_when_default_holds_events_of_a_month_it_creates(stranded):
    with clock.frozen_at(NOW):
        call_command("migrate", verbosity=0)

    assert _exists(partition_name(MARCH))
    assert _count(partition_name(MARCH)) == 30
    assert _count("metering_meterevent_default") == 1
    assert MeterEvent.objects.count() == 31


# --- the purges: retention, and independent of the partitions step ----------------------------


def test_expired_stream_sessions_are_purged_a_day_after_they_expire(db):
    key, _ = api_key_create(name="sdk")
    sessions = {}
    for label, created in [
        ("long expired", NOW - SESSION_RETENTION - dt.timedelta(hours=1)),
        ("just expired", NOW - dt.timedelta(hours=2)),
        ("live", NOW - dt.timedelta(minutes=1)),
    ]:
        with clock.frozen_at(created):
            sessions[label], _ = meter_event_session_create(api_key=key)

    with clock.frozen_at(NOW):
        summary = meter_event_maintenance_task(inline=True)

    assert summary["sessions_purged"] == 1
    assert set(MeterEventSession.objects.values_list("pk", flat=True)) == {
        sessions["just expired"].pk,
        sessions["live"].pk,
    }


def _old_identifier_and_session() -> None:
    meter, customer = MeterFactory(), CustomerFactory()
    received = NOW - IDENTIFIER_RETENTION - dt.timedelta(days=1)
    MeterEventIdentifier.objects.create(
        meter=meter,
        identifier="old",
        customer_id=customer.pk,
        event_timestamp=received,
        received_at=received,
    )
    with clock.frozen_at(received):
        meter_event_session_create(api_key=api_key_create(name="sdk")[0])


def test_the_purges_run_and_the_failure_is_reported_when_partition_maintenance_fails(
    db, monkeypatch
):
    _old_identifier_and_session()

    def broken(**kwargs):
        raise RuntimeError("could not obtain lock on relation metering_meterevent")

    monkeypatch.setattr("metering.tasks.ensure_meter_event_partitions", broken)
    with clock.frozen_at(NOW):
        summary = meter_event_maintenance_task(inline=True)

    assert summary["identifiers_purged"] == 1
    assert summary["sessions_purged"] == 1
    assert summary["failures"] == [
        "partitions: RuntimeError: could not obtain lock on relation metering_meterevent"
    ]
    assert not MeterEventIdentifier.objects.exists()
    assert not MeterEventSession.objects.exists()


def test_the_due_work_run_billing_runs_includes_the_purges(db):
    _old_identifier_and_session()
    with clock.frozen_at(NOW):
        [result] = [
            result
            for result in run_scheduled_jobs()
            if result.task == "metering.tasks.meter_event_maintenance_task"
        ]
    assert result.failures == []
    assert (result.summary["identifiers_purged"], result.summary["sessions_purged"]) == (1, 1)
    assert not MeterEventSession.objects.exists()
