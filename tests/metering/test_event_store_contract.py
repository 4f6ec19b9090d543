"""The contract every event store keeps, run against each implementation.

To check a new store, add one `pytest.param` to `STORES` (with the mark that skips it where its
database is missing): every test here then runs against it. The answers are checked against
`reference_usage.usage_from_events`, the meter's formula applied to raw events one by one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from dataclasses import replace
from decimal import Decimal

import hypothesis
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from billing_site import clock
from metering.cancellation import meter_event_cancel
from metering.ingest import meter_events_ingest
from metering.models import Meter
from metering.store import (
    EVENT_STORES,
    BilledPeriod,
    EventStore,
    LateUsageTotal,
    get_event_store,
)
from metering.validation import EventInput, ValidEvent
from tests.factories import CustomerFactory, MeterFactory
from tests.metering.clickhouse_fixtures import clickhouse_statements, needs_chdb
from tests.metering.reference_usage import (
    event_counts_from_events,
    late_usage_from_events,
    usage_from_events,
)

STORES = [
    pytest.param("orm", id="orm"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    # ClickHouse through chdb (the engine in-process), claims in Django's database.
    pytest.param("clickhouse", id="clickhouse", marks=needs_chdb),
]

NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
DAY_START = NOW - dt.timedelta(days=3)  # midnight: day windows start here
HOUR = dt.timedelta(hours=1)
SPAN_SECONDS = 3 * 24 * 3600


@pytest.fixture(params=STORES)
def store(request, settings, db) -> EventStore:
    # The services (ingest, cancel) and module-level reads use the configured store too.
    settings.METER_EVENT_STORE = request.param
    if request.param == "clickhouse":
        request.getfixturevalue("clickhouse")
    return get_event_store(request.param)


class _Statements:
    def __init__(self, django_queries: CaptureQueriesContext, store_statements: list[str]):
        self.django_queries, self.store_statements = django_queries, store_statements

    @property
    def captured_queries(self) -> list:
        return [*self.django_queries.captured_queries, *self.store_statements]


@contextlib.contextmanager
def _statements(store):
    """The queries a store sends: to Django's database, and to its own (ClickHouse)."""
    with (
        CaptureQueriesContext(connection) as django_queries,
        clickhouse_statements(store) as store_statements,
    ):
        yield _Statements(django_queries, store_statements)


def test_every_store_is_under_contract():
    assert {param.values[0] for param in STORES} == set(EVENT_STORES)


def _event(meter, customer, identifier, value, at, *, received=NOW) -> ValidEvent:
    return ValidEvent(
        index=0,
        meter=meter,
        customer_id=customer.pk,
        identifier=identifier,
        value=Decimal(value),
        timestamp=at,
        payload={"stripe_customer_id": customer.public_id, "value": str(value)},
        received_at=received,
    )


def _ingest(store, events):
    return store.ingest([replace(event, index=index) for index, event in enumerate(events)])


def _usage(store, meter, customer, start=DAY_START, end=NOW):
    return store.usage(meter=meter, customer_id=customer.pk, start=start, end=end)


# --- formulas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("sum", Decimal("123456789012.346000000001")),
        ("count", Decimal(4)),
        ("last", Decimal("0.000000000001")),
    ],
)
def test_usage_applies_the_meter_formula_exactly(store, formula, expected):
    meter = MeterFactory(formula=formula)
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=5, minutes=30)
    result = _ingest(
        store,
        [
            _event(meter, customer, "a", "123456789012.345", at),
            _event(meter, customer, "b", "0.001", at + dt.timedelta(hours=20)),
            _event(meter, customer, "c", "0.000000000001", at + dt.timedelta(hours=30)),
            _event(meter, customer, "d", "0", at - dt.timedelta(minutes=1)),
        ],
    )
    assert [event.identifier for event in result.accepted] == ["a", "b", "c", "d"]
    assert result.rejected == []
    assert _usage(store, meter, customer) == expected
    assert _usage(store, meter, customer) == usage_from_events(
        meter=meter, customer_id=customer.pk, start=DAY_START, end=NOW
    )


def test_the_last_value_is_the_latest_event_not_the_latest_sent(store):
    meter = MeterFactory(formula="last")
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=10)
    _ingest(store, [_event(meter, customer, "late-in-time", "7", at + HOUR)])
    _ingest(store, [_event(meter, customer, "early-in-time", "3", at)])
    assert _usage(store, meter, customer) == Decimal(7)
    assert _usage(store, meter, customer, end=at + dt.timedelta(minutes=1)) == Decimal(3)


def test_of_two_events_at_the_same_instant_the_one_stored_later_is_last(store):
    meter = MeterFactory(formula="last")
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=10, minutes=20)
    _ingest(store, [_event(meter, customer, "first", "3", at)])
    _ingest(store, [_event(meter, customer, "second", "9", at)])
    _ingest(store, [_event(meter, customer, "earlier", "1", at - dt.timedelta(minutes=1))])
    # From the hourly rollups, then from raw events at the range's edge.
    assert _usage(store, meter, customer) == Decimal(9)
    assert _usage(store, meter, customer, start=at, end=at + HOUR) == Decimal(9)
    many = store.usage_many(pairs=[(meter, customer.pk)], start=at, end=at + HOUR)
    assert many == {(meter.pk, customer.pk): Decimal(9)}


def test_usage_counts_only_events_in_the_half_open_range(store):
    meter = MeterFactory()
    customer = CustomerFactory()
    start = DAY_START + dt.timedelta(hours=2, minutes=15)
    end = start + dt.timedelta(hours=26)
    _ingest(
        store,
        [
            _event(meter, customer, "before", "1", start - dt.timedelta(microseconds=1)),
            _event(meter, customer, "at-start", "10", start),
            _event(meter, customer, "middle", "100", start + dt.timedelta(hours=12)),
            _event(meter, customer, "before-end", "1000", end - dt.timedelta(microseconds=1)),
            _event(meter, customer, "at-end", "10000", end),
        ],
    )
    assert _usage(store, meter, customer, start, end) == Decimal(1110)
    assert _usage(store, meter, customer, end, start) == Decimal(0)


def test_other_meters_and_customers_do_not_count(store):
    meter, other_meter = MeterFactory(), MeterFactory()
    customer, other_customer = CustomerFactory(), CustomerFactory()
    at = DAY_START + dt.timedelta(hours=1)
    _ingest(
        store,
        [
            _event(meter, customer, "mine", "5", at),
            _event(other_meter, customer, "other-meter", "50", at),
            _event(meter, other_customer, "other-customer", "500", at),
        ],
    )
    assert _usage(store, meter, customer) == Decimal(5)


# --- exactly once -----------------------------------------------------------------------------


def test_a_stored_identifier_is_refused_as_a_duplicate_and_counted_once(store):
    meter = MeterFactory()
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=1)
    _ingest(store, [_event(meter, customer, "evt-1", "25", at)])
    result = _ingest(
        store,
        [
            _event(meter, customer, "evt-2", "1", at),
            _event(meter, customer, "evt-1", "1000", at + HOUR),
        ],
    )
    assert [event.identifier for event in result.accepted] == ["evt-2"]
    assert [(r.index, r.code, r.identifier) for r in result.rejected] == [
        (1, "duplicate_meter_event", "evt-1")
    ]
    assert _usage(store, meter, customer) == Decimal(26)


def test_one_identifier_on_two_meters_is_two_events(store):
    meter, other_meter = MeterFactory(), MeterFactory()
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=1)
    result = _ingest(
        store,
        [
            _event(meter, customer, "evt-1", "1", at),
            _event(other_meter, customer, "evt-1", "2", at),
        ],
    )
    assert len(result.accepted) == 2
    assert _usage(store, other_meter, customer) == Decimal(2)


def test_the_ingest_service_refuses_repeats_within_a_batch_and_across_batches(store):
    meter = MeterFactory()
    customer = CustomerFactory()

    def send(identifier, value):
        payload = {"stripe_customer_id": customer.public_id, "value": value}
        return EventInput(meter.event_name, payload, identifier, NOW - HOUR)

    with clock.frozen_at(NOW):
        first = meter_events_ingest(events=[send("a", "1"), send("a", "2"), send("b", "4")])
        second = meter_events_ingest(events=[send("b", "8"), send("c", "16")])
    assert [(r.index, r.code) for r in first.rejected] == [(1, "duplicate_meter_event")]
    assert [(r.index, r.code) for r in second.rejected] == [(0, "duplicate_meter_event")]
    assert _usage(store, meter, customer) == Decimal(21)


# --- cancellation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("formula", "before", "after"), [("sum", 30, 10), ("last", 20, 10)])
def test_a_cancelled_event_stops_counting(store, formula, before, after):
    meter = MeterFactory(formula=formula)
    customer = CustomerFactory()
    at = DAY_START + dt.timedelta(hours=4)
    _ingest(
        store,
        [
            _event(meter, customer, "keep", "10", at),
            _event(meter, customer, "drop", "20", at + dt.timedelta(minutes=5)),
        ],
    )
    assert _usage(store, meter, customer) == Decimal(before)
    found = store.find_event(meter=meter, identifier="drop")
    assert (found.customer_id, found.timestamp) == (customer.pk, at + dt.timedelta(minutes=5))
    store.cancel(event=found, at=NOW)
    assert _usage(store, meter, customer) == Decimal(after)
    # Both the whole-hour path and the edge path agree once the event is cancelled.
    edge = at + dt.timedelta(minutes=1)
    assert _usage(store, meter, customer, start=edge) == Decimal(0)
    assert store.find_event(meter=meter, identifier="never-sent") is None


def test_the_cancel_service_goes_through_the_configured_store(store):
    meter = MeterFactory()
    customer = CustomerFactory()
    _ingest(store, [_event(meter, customer, "drop", "20", NOW - HOUR)])
    with clock.frozen_at(NOW):
        adjustment = meter_event_cancel(event_name=meter.event_name, identifier="drop")
    assert adjustment.identifier == "drop"
    assert _usage(store, meter, customer) == Decimal(0)


def test_purged_identifiers_are_forgotten_but_their_events_still_count(store):
    meter = MeterFactory()
    customer = CustomerFactory()
    old, recent = NOW - dt.timedelta(days=2), NOW - HOUR
    _ingest(store, [_event(meter, customer, "old", "1", old, received=old)])
    _ingest(store, [_event(meter, customer, "recent", "2", recent, received=recent)])
    assert store.purge_identifiers(received_before=NOW - dt.timedelta(days=1)) == 1
    assert store.find_event(meter=meter, identifier="old") is None
    assert store.find_event(meter=meter, identifier="recent") is not None
    assert _usage(store, meter, customer, start=NOW - dt.timedelta(days=3)) == Decimal(3)


# --- usage for many pairs ---------------------------------------------------------------------

# Values stay within 15 significant digits in total so SQLite's float decimals stay exact too.
values = st.decimals(min_value=-1000, max_value=100000, places=3, allow_nan=False)
# Half the moments fall on a whole hour, where the rollup/raw-event split is easiest to get wrong.
moments = st.one_of(
    st.integers(min_value=0, max_value=SPAN_SECONDS // 3600).map(lambda hours: hours * 3600),
    st.integers(min_value=0, max_value=SPAN_SECONDS - 1),
).map(lambda seconds: DAY_START + dt.timedelta(seconds=seconds))
# (meter index, customer index, moment, value); customer 3 never has events.
events_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), moments, values), max_size=30
)


@hypothesis.settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=events_strategy,
    cancelled=st.sets(st.integers(0, 29)),
    bounds=st.tuples(moments, moments),
)
def test_usage_many_equals_usage_for_every_pair(store, events, cancelled, bounds):
    meters = [MeterFactory(formula=formula) for formula in ("sum", "count", "last")]
    customers = [CustomerFactory() for _ in range(4)]
    _ingest(
        store,
        [
            _event(meters[m], customers[c], f"e{index}", value, at)
            for index, (m, c, at, value) in enumerate(events)
        ],
    )
    for index in sorted(cancelled):
        if index < len(events):
            found = store.find_event(meter=meters[events[index][0]], identifier=f"e{index}")
            store.cancel(event=found, at=NOW)
    start, end = sorted(bounds)
    pairs = [(meter, customer.pk) for meter, customer in itertools.product(meters, customers)]
    for window_start, window_end in ((start, end), (DAY_START, NOW), (start, NOW)):
        many = store.usage_many(pairs=pairs, start=window_start, end=window_end)
        assert set(many) == {(meter.pk, customer_id) for meter, customer_id in pairs}
        for meter, customer_id in pairs:
            expected = usage_from_events(
                meter=meter, customer_id=customer_id, start=window_start, end=window_end
            )
            assert many[(meter.pk, customer_id)] == expected
            single = store.usage(
                meter=meter, customer_id=customer_id, start=window_start, end=window_end
            )
            assert single == expected


def test_usage_many_reads_a_fixed_number_of_queries_whatever_the_number_of_pairs(store):
    meters = [MeterFactory(formula=formula) for formula in ("sum", "count", "last")]
    customers = [CustomerFactory() for _ in range(10)]
    _ingest(
        store,
        [
            _event(meter, customer, f"{meter.pk}-{customer.pk}-{hour}", "2", moment)
            for meter in meters
            for customer in customers
            for hour in range(0, 72, 7)
            for moment in [DAY_START + dt.timedelta(hours=hour, minutes=hour)]
        ],
    )
    start, end = DAY_START + dt.timedelta(minutes=30), NOW - dt.timedelta(minutes=30)
    with _statements(store) as one_pair:
        store.usage_many(pairs=[(meters[2], customers[0].pk)], start=start, end=end)
    pairs = [(meter, customer.pk) for meter in meters for customer in customers]
    with _statements(store) as thirty_pairs:
        many = store.usage_many(pairs=pairs, start=start, end=end)
    assert len(thirty_pairs.captured_queries) == len(one_pair.captured_queries) <= 4
    assert many[(meters[1].pk, customers[9].pk)] == Decimal(10)  # hours 7 to 70


def test_usage_many_of_no_pairs_or_an_empty_range_reads_nothing(store):
    meter = MeterFactory()
    customer = CustomerFactory()
    with _statements(store) as queries:
        assert store.usage_many(pairs=[], start=DAY_START, end=NOW) == {}
        assert store.usage_many(pairs=[(meter, customer.pk)], start=NOW, end=NOW) == {
            (meter.pk, customer.pk): Decimal(0)
        }
    assert queries.captured_queries == []


# --- usage by window --------------------------------------------------------------------------


@pytest.mark.parametrize("formula", [Meter.Formula.SUM, Meter.Formula.COUNT, Meter.Formula.LAST])
@pytest.mark.parametrize("window", ["hour", "day"])
def test_usage_by_window_matches_each_window_s_usage(store, formula, window):
    meter = MeterFactory(formula=formula)
    customers = [CustomerFactory(), CustomerFactory()]
    _ingest(
        store,
        [
            _event(
                meter, customers[n % 2], f"e{n}", str(n), DAY_START + n * dt.timedelta(minutes=97)
            )
            for n in range(40)
        ],
    )
    step = HOUR if window == "hour" else dt.timedelta(days=1)
    for customer in [*customers, None]:
        series = store.usage_by_window(
            meter=meter,
            start=DAY_START,
            end=NOW,
            window=window,
            customer_id=customer.pk if customer else None,
        )
        assert [moment for moment, _ in series][:2] == [DAY_START, DAY_START + step]
        for moment, value in series:
            expected = sum(
                (
                    usage_from_events(
                        meter=meter, customer_id=c.pk, start=moment, end=moment + step
                    )
                    for c in ([customer] if customer else customers)
                ),
                Decimal(0),
            )
            assert value == expected, (customer, moment)


# --- late usage: events received after their period was billed -------------------------------


def test_late_usage_is_what_arrived_after_billing_inside_each_period(store):
    meters = [MeterFactory(formula="sum"), MeterFactory(formula="count")]
    customer, other = CustomerFactory(), CustomerFactory()
    start, end = DAY_START, DAY_START + dt.timedelta(days=1)
    billed = end + HOUR
    late = billed + dt.timedelta(microseconds=1)
    _ingest(
        store,
        [
            _event(meters[0], customer, "on-time", "100", start + HOUR, received=start + HOUR),
            _event(meters[0], customer, "in-grace", "50", end - HOUR, received=billed),  # billed
            _event(meters[0], customer, "late-1", "7", start, received=late),
            _event(meters[0], customer, "late-2", "0.5", end - HOUR, received=NOW),
            _event(meters[0], customer, "after-period", "9", end, received=NOW),
            _event(meters[0], customer, "cancelled", "3", end - HOUR, received=NOW),
            _event(meters[0], other, "other-customer", "4", start + HOUR, received=NOW),
            _event(meters[1], customer, "other-meter", "1", start + HOUR, received=NOW),
        ],
    )
    store.cancel(event=store.find_event(meter=meters[0], identifier="cancelled"), at=NOW)
    periods = [
        BilledPeriod(11, meters[0].pk, customer.pk, start, end, billed),
        BilledPeriod(12, meters[1].pk, customer.pk, start, end, billed),
        BilledPeriod(13, meters[0].pk, other.pk, start, end, NOW),  # nothing after NOW
        BilledPeriod(14, meters[1].pk, other.pk, start, end, billed),  # no events at all
    ]

    found = store.late_usage(periods=periods)

    assert found == {
        11: LateUsageTotal(Decimal("7.5"), 2),
        12: LateUsageTotal(Decimal(1), 1),  # the values' sum, whatever the formula
    }
    assert found[11] == late_usage_from_events(
        meter_id=meters[0].pk, customer_id=customer.pk, start=start, end=end, billed_at=billed
    )


@hypothesis.settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(st.tuples(st.integers(0, 1), moments, moments, values), max_size=25),
    periods=st.lists(st.tuples(st.integers(0, 1), moments, moments, moments), max_size=8),
)
def test_late_usage_equals_the_events_added_up_one_by_one(store, events, periods):
    meter = MeterFactory()
    customers = [CustomerFactory(), CustomerFactory()]
    _ingest(
        store,
        [
            _event(meter, customers[c], f"e{index}", value, at, received=received)
            for index, (c, at, received, value) in enumerate(events)
        ],
    )
    asked = [
        BilledPeriod(key, meter.pk, customers[c].pk, *sorted([a, b]), billed_at)
        for key, (c, a, b, billed_at) in enumerate(periods)
    ]
    found = store.late_usage(periods=asked)
    for period in asked:
        quantity, count = late_usage_from_events(
            meter_id=period.meter_id,
            customer_id=period.customer_id,
            start=period.start,
            end=period.end,
            billed_at=period.billed_at,
        )
        assert found.get(period.key) == (LateUsageTotal(quantity, count) if count else None)


def test_late_usage_reads_a_fixed_number_of_queries_whatever_the_number_of_periods(store):
    meter = MeterFactory()
    customers = [CustomerFactory() for _ in range(5)]
    _ingest(
        store,
        [
            _event(meter, customer, f"{customer.pk}-{n}", "1", DAY_START + n * HOUR, received=NOW)
            for customer in customers
            for n in range(10)
        ],
    )

    def periods(count: int) -> list[BilledPeriod]:
        return [
            BilledPeriod(
                key,
                meter.pk,
                customers[key % 5].pk,
                DAY_START + (key % 7) * HOUR,
                DAY_START + (key % 7 + 3) * HOUR,
                NOW - HOUR,
            )
            for key in range(count)
        ]

    with _statements(store) as one:
        assert store.late_usage(periods=periods(1)) == {0: LateUsageTotal(Decimal(3), 3)}
    with _statements(store) as hundred:
        assert len(store.late_usage(periods=periods(100))) == 100
    with _statements(store) as thousand:
        store.late_usage(periods=periods(1000))
    assert len(hundred.captured_queries) == len(one.captured_queries) == 1
    assert len(thousand.captured_queries) <= 10  # a few on databases that cap parameters
    with _statements(store) as none:
        assert store.late_usage(periods=[]) == {}
    assert none.captured_queries == []


# --- event counts by meter: rankings ----------------------------------------------------------


def test_event_counts_by_meter_count_every_customer_s_uncancelled_events_in_the_range(store):
    meters = [MeterFactory(formula=formula) for formula in ("sum", "count", "last")]
    quiet = MeterFactory()
    customers = [CustomerFactory(), CustomerFactory()]
    _ingest(
        store,
        [
            _event(
                meters[n % 3],
                customers[n % 2],
                f"e{n}",
                "2",
                DAY_START + n * dt.timedelta(minutes=53),
            )
            for n in range(60)
        ],
    )
    for identifier in ("e0", "e3", "e6"):
        store.cancel(event=store.find_event(meter=meters[0], identifier=identifier), at=NOW)
    start, end = DAY_START + 5 * HOUR, DAY_START + 40 * HOUR

    counts = store.event_counts_by_meter(start=start, end=end)

    assert counts == event_counts_from_events(start=start, end=end)
    assert quiet.pk not in counts
    whole = store.event_counts_by_meter(start=DAY_START, end=NOW)
    assert whole == {meters[0].pk: 17, meters[1].pk: 20, meters[2].pk: 20}
