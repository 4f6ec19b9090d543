"""The fast usage path (hourly rollups + raw edges) equals a plain aggregation over raw events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_site import clock
from metering.cancellation import meter_event_cancel
from metering.ingest import meter_events_ingest
from metering.models import MeterUsageRollup
from metering.store import usage, usage_by_window
from metering.validation import EventInput
from tests.factories import CustomerFactory, MeterFactory
from tests.metering.reference_usage import usage_from_events

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
WINDOW_START = NOW - dt.timedelta(days=3)

# Values stay within 15 significant digits in total so SQLite's float decimals stay exact too.
values = st.decimals(min_value=-1000, max_value=100000, places=3, allow_nan=False)
offsets = st.integers(min_value=0, max_value=3 * 24 * 3600 - 1)
event_lists = st.lists(st.tuples(offsets, values), min_size=0, max_size=40)


def _ingest(meter, customer, events, *, prefix: str, received: dt.datetime):
    batch = [
        EventInput(
            meter.event_name,
            {"stripe_customer_id": customer.public_id, "value": str(value)},
            f"{prefix}-{index}",
            WINDOW_START + dt.timedelta(seconds=offset),
        )
        for index, (offset, value) in enumerate(events)
    ]
    result = meter_events_ingest(events=batch, now=received)
    assert not result.rejected, result.rejected


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    formula=st.sampled_from(["sum", "count", "last"]),
    on_time=event_lists,
    late=event_lists,
    cancelled=st.sets(st.integers(min_value=0, max_value=39)),
    bounds=st.tuples(offsets, offsets),
)
def test_fast_usage_equals_plain_aggregation(formula, on_time, late, cancelled, bounds):
    meter = MeterFactory(formula=formula)
    customer = CustomerFactory()
    with clock.frozen_at(NOW):
        _ingest(meter, customer, on_time, prefix="on-time", received=NOW)
        for index in sorted(cancelled):
            if index < len(on_time):
                meter_event_cancel(event_name=meter.event_name, identifier=f"on-time-{index}")
        # Late arrivals: received later, for hours whose rollups already exist.
        _ingest(meter, customer, late, prefix="late", received=NOW + dt.timedelta(minutes=2))

    start, end = sorted(WINDOW_START + dt.timedelta(seconds=b) for b in bounds)
    end += dt.timedelta(seconds=1)
    for window_start, window_end in ((start, end), (WINDOW_START, NOW), (start, NOW)):
        fast = usage(meter=meter, customer_id=customer.pk, start=window_start, end=window_end)
        plain = usage_from_events(
            meter=meter, customer_id=customer.pk, start=window_start, end=window_end
        )
        assert fast == plain

    hourly = usage_by_window(
        meter=meter, start=WINDOW_START, end=NOW, window="hour", customer_id=customer.pk
    )
    for hour, value in hourly:
        plain = usage_from_events(
            meter=meter, customer_id=customer.pk, start=hour, end=hour + dt.timedelta(hours=1)
        )
        assert value == plain


@pytest.mark.django_db
def test_rollups_answer_without_scanning_whole_hours():
    meter = MeterFactory()
    customer = CustomerFactory()
    with clock.frozen_at(NOW):
        _ingest(
            meter,
            customer,
            [(hour * 3600 + 5, Decimal(1)) for hour in range(48)] * 1,
            prefix="e",
            received=NOW,
        )
    assert MeterUsageRollup.objects.filter(meter=meter).count() == 48
    # Corrupting a rollup changes the fast answer: proof that whole hours come from rollups.
    MeterUsageRollup.objects.filter(meter=meter).update(value_sum=Decimal(2))
    assert usage(meter=meter, customer_id=customer.pk, start=WINDOW_START, end=NOW) == 96
    assert (
        usage_from_events(meter=meter, customer_id=customer.pk, start=WINDOW_START, end=NOW) == 48
    )
