"""The period calculator: calendar boundaries from a billing cycle anchor, half-open periods."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from invoicing.periods import (
    INTERVALS,
    MAX_INTERVAL_COUNT,
    Period,
    next_period,
    period_boundary,
    period_containing,
    validate_interval,
)
from tests.helpers import utc


def boundaries(anchor: datetime, interval: str, count: int, indexes: range) -> list[datetime]:
    return [period_boundary(anchor, interval, count, k) for k in indexes]


# ---------------------------------------------------------------------------------------
# Table tests
# ---------------------------------------------------------------------------------------


def test_anchor_on_the_31st_bills_on_the_last_day_of_shorter_months_without_drifting():
    anchor = utc(2026, 1, 31)
    assert boundaries(anchor, "month", 1, range(6)) == [
        utc(2026, 1, 31),
        utc(2026, 2, 28),
        utc(2026, 3, 31),  # back to the 31st: computed from the anchor, not from Feb 28
        utc(2026, 4, 30),
        utc(2026, 5, 31),
        utc(2026, 6, 30),
    ]


def test_anchor_on_the_31st_bills_on_feb_29_in_a_leap_year():
    assert period_boundary(utc(2028, 1, 31), "month", 1, 1) == utc(2028, 2, 29)
    assert period_boundary(utc(2028, 1, 31), "month", 1, 2) == utc(2028, 3, 31)


def test_anchor_on_the_30th_clamps_only_in_february():
    assert boundaries(utc(2026, 1, 30), "month", 1, range(1, 5)) == [
        utc(2026, 2, 28),
        utc(2026, 3, 30),
        utc(2026, 4, 30),
        utc(2026, 5, 30),
    ]


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        (utc(2026, 11, 30), [utc(2027, 2, 28), utc(2027, 5, 30), utc(2027, 8, 30)]),
        (utc(2027, 11, 30), [utc(2028, 2, 29), utc(2028, 5, 30), utc(2028, 8, 30)]),
    ],
    ids=["non-leap", "leap"],
)
def test_quarterly_from_nov_30_clamps_february_and_returns_to_the_30th(anchor, expected):
    assert boundaries(anchor, "month", 3, range(1, 4)) == expected


def test_yearly_from_feb_29_bills_on_feb_28_until_the_next_leap_year():
    assert boundaries(utc(2024, 2, 29), "year", 1, range(5)) == [
        utc(2024, 2, 29),
        utc(2025, 2, 28),
        utc(2026, 2, 28),
        utc(2027, 2, 28),
        utc(2028, 2, 29),
    ]


def test_two_yearly_from_feb_29_skips_to_every_other_year():
    assert boundaries(utc(2024, 2, 29), "year", 2, range(1, 3)) == [
        utc(2026, 2, 28),
        utc(2028, 2, 29),
    ]


def test_weekly_and_daily_boundaries_are_exact_multiples_of_days():
    anchor = utc(2026, 2, 26, 9, 30)
    assert boundaries(anchor, "week", 2, range(-1, 3)) == [
        utc(2026, 2, 12, 9, 30),
        utc(2026, 2, 26, 9, 30),
        utc(2026, 3, 12, 9, 30),
        utc(2026, 3, 26, 9, 30),
    ]
    assert boundaries(anchor, "day", 3, range(1, 3)) == [
        utc(2026, 3, 1, 9, 30),  # 2026 is not a leap year: Feb 26 + 3 days is Mar 1
        utc(2026, 3, 4, 9, 30),
    ]


def test_the_anchors_time_of_day_is_kept_on_every_boundary():
    anchor = utc(2026, 1, 31, 15, 45, 10)
    assert boundaries(anchor, "month", 1, range(1, 4)) == [
        utc(2026, 2, 28, 15, 45, 10),
        utc(2026, 3, 31, 15, 45, 10),
        utc(2026, 4, 30, 15, 45, 10),
    ]
    assert period_boundary(anchor, "year", 1, 1) == utc(2027, 1, 31, 15, 45, 10)
    assert period_boundary(anchor, "week", 1, 1) == utc(2026, 2, 7, 15, 45, 10)


def test_a_moment_exactly_on_a_boundary_belongs_to_the_period_starting_there():
    anchor = utc(2026, 1, 31, 15, 45, 10)
    on_boundary = utc(2026, 2, 28, 15, 45, 10)
    period = period_containing(anchor, "month", 1, on_boundary)
    assert period == Period(start=on_boundary, end=utc(2026, 3, 31, 15, 45, 10))
    assert on_boundary in period
    # ... and not to the period that ends there.
    previous = period_containing(anchor, "month", 1, on_boundary - timedelta(microseconds=1))
    assert previous == Period(start=anchor, end=on_boundary)
    assert on_boundary not in previous


def test_a_moment_earlier_in_the_anchor_day_of_month_falls_in_the_previous_period():
    # Same calendar month as boundary 2 (Mar 20 12:00) but before it.
    period = period_containing(utc(2026, 1, 20, 12), "month", 1, utc(2026, 3, 20, 11, 59))
    assert period == Period(start=utc(2026, 2, 20, 12), end=utc(2026, 3, 20, 12))


def test_a_moment_before_the_anchor_falls_in_a_period_counted_backwards():
    anchor = utc(2026, 3, 31)
    assert period_containing(anchor, "month", 1, utc(2026, 3, 1)) == Period(
        start=utc(2026, 2, 28), end=anchor
    )
    assert period_containing(anchor, "month", 1, utc(2025, 12, 31)) == Period(
        start=utc(2025, 12, 31), end=utc(2026, 1, 31)
    )
    assert period_containing(anchor, "week", 1, utc(2026, 3, 30)) == Period(
        start=utc(2026, 3, 24), end=anchor
    )


def test_next_period_starts_where_the_previous_one_ends():
    anchor = utc(2026, 1, 31)
    first = period_containing(anchor, "month", 1, anchor)
    second = next_period(first, anchor, "month", 1)
    third = next_period(second, anchor, "month", 1)
    assert [first, second, third] == [
        Period(utc(2026, 1, 31), utc(2026, 2, 28)),
        Period(utc(2026, 2, 28), utc(2026, 3, 31)),
        Period(utc(2026, 3, 31), utc(2026, 4, 30)),
    ]


def test_next_period_accepts_a_short_first_period_that_ends_on_the_anchor():
    anchor = utc(2026, 2, 1)
    stub = Period(start=utc(2026, 1, 17, 8), end=anchor)
    assert next_period(stub, anchor, "month", 1) == Period(anchor, utc(2026, 3, 1))


def test_next_period_rejects_a_period_that_does_not_end_on_the_schedule():
    period = Period(start=utc(2026, 1, 31), end=utc(2026, 2, 28))
    with pytest.raises(ValueError, match="does not end on a boundary"):
        next_period(period, utc(2026, 1, 15), "month", 1)


def test_non_utc_inputs_are_converted_and_results_are_in_utc():
    plus_five = timezone(timedelta(hours=5))
    # 2026-01-31 02:00 +05:00 is 2026-01-30 21:00 UTC: the calendar is the UTC one.
    anchor = datetime(2026, 1, 31, 2, tzinfo=plus_five)
    boundary = period_boundary(anchor, "month", 1, 1)
    assert boundary == utc(2026, 2, 28, 21)
    assert boundary.tzinfo is UTC
    period = Period(start=anchor, end=boundary)
    assert period.start.tzinfo is UTC
    assert period.start == utc(2026, 1, 30, 21)


@pytest.mark.parametrize(
    "call",
    [
        lambda: period_boundary(datetime(2026, 1, 31), "month", 1, 1),
        lambda: period_containing(utc(2026, 1, 31), "month", 1, datetime(2026, 2, 5)),
        lambda: Period(start=datetime(2026, 1, 1), end=utc(2026, 2, 1)),
    ],
    ids=["anchor", "moment", "period"],
)
def test_naive_datetimes_are_refused_with_a_message_that_says_so(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_a_period_must_end_after_it_starts():
    with pytest.raises(ValueError, match="must end after it starts"):
        Period(start=utc(2026, 2, 1), end=utc(2026, 2, 1))


@pytest.mark.parametrize(
    ("interval", "count", "message"),
    [
        ("month", 37, "at most three years: 37 months is too long"),
        ("year", 4, "at most three years: 4 years is too long"),
        ("week", 157, "at most three years: 157 weeks is too long"),
        ("day", 1096, "at most three years: 1096 days is too long"),
        ("month", 0, "at least 1"),
        ("day", -1, "at least 1"),
        ("fortnight", 1, "Unknown billing interval 'fortnight'"),
        ("month", True, "whole number"),
        ("month", 1.0, "whole number"),
    ],
)
def test_validate_interval_rejects_invalid_periods_with_a_clear_message(interval, count, message):
    with pytest.raises(ValueError, match=message):
        validate_interval(interval, count)


@pytest.mark.parametrize(("interval", "maximum"), sorted(MAX_INTERVAL_COUNT.items()))
def test_validate_interval_accepts_one_up_to_three_years(interval, maximum):
    validate_interval(interval, 1)
    validate_interval(interval, maximum)


def test_invalid_intervals_are_rejected_by_the_calculators_too():
    with pytest.raises(ValueError, match="Unknown billing interval"):
        period_containing(utc(2026, 1, 1), "fortnight", 1, utc(2026, 1, 2))


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[datetime, str, int]:
    anchor = draw(moments)
    interval = draw(st.sampled_from(INTERVALS))
    # Bias towards small counts (the common case) while still reaching the maximum.
    count = draw(
        st.one_of(
            st.integers(1, 3),
            st.integers(1, MAX_INTERVAL_COUNT[interval]),
            st.just(MAX_INTERVAL_COUNT[interval]),
        )
    )
    return anchor, interval, count


# At most +-40 periods of at most three years each keeps every boundary inside 1-9999.
indexes = st.integers(-40, 40)


@given(schedules(), indexes)
def test_periods_tile_time_with_no_gaps_or_overlaps(schedule, k):
    anchor, interval, count = schedule
    period = Period(
        start=period_boundary(anchor, interval, count, k),
        end=period_boundary(anchor, interval, count, k + 1),
    )
    following = next_period(period, anchor, interval, count)
    assert following.start == period.end
    assert following.end == period_boundary(anchor, interval, count, k + 2)
    # Each boundary is the period_containing answer for itself: no overlap at the edges.
    assert period_containing(anchor, interval, count, period.start) == period
    last_instant = period.end - timedelta(microseconds=1)
    assert period_containing(anchor, interval, count, last_instant) == period


@given(schedules(), moments)
def test_period_containing_contains_the_moment(schedule, moment):
    anchor, interval, count = schedule
    period = period_containing(anchor, interval, count, moment)
    assert period.start <= moment < period.end
    assert moment in period
    # It is one of the schedule's periods: its start is a boundary and its end the next one.
    assert next_period(period, anchor, interval, count).start == period.end


@given(schedules(), moments)
def test_a_moment_in_another_time_zone_gets_the_same_period(schedule, moment):
    anchor, interval, count = schedule
    elsewhere = moment.astimezone(timezone(timedelta(hours=-9, minutes=-30)))
    assert period_containing(anchor, interval, count, elsewhere) == period_containing(
        anchor, interval, count, moment
    )


@given(moments, st.sampled_from(["month", "year"]), st.integers(1, 36), indexes)
def test_calendar_boundaries_keep_the_anchors_day_and_time_without_drift(
    anchor, interval, count, k
):
    assume(interval == "month" or count <= MAX_INTERVAL_COUNT["year"])
    boundary = period_boundary(anchor, interval, count, k)
    months = k * count * (12 if interval == "year" else 1)
    expected_month_number = anchor.year * 12 + anchor.month - 1 + months
    assert (boundary.year, boundary.month - 1) == divmod(expected_month_number, 12)
    last_day = calendar.monthrange(boundary.year, boundary.month)[1]
    assert boundary.day == min(anchor.day, last_day)
    assert boundary.timetz() == anchor.timetz()


@given(moments, st.sampled_from(["day", "week"]), st.integers(1, 1095), indexes)
def test_day_and_week_boundaries_are_exact_multiples_of_the_step(anchor, interval, count, k):
    assume(count <= MAX_INTERVAL_COUNT[interval])
    days = count * (7 if interval == "week" else 1)
    assert period_boundary(anchor, interval, count, k) - anchor == timedelta(days=days * k)


@given(moments, st.integers(1, 36), indexes)
def test_month_periods_last_between_28_and_31_days_per_month(anchor, count, k):
    period = Period(
        start=period_boundary(anchor, "month", count, k),
        end=period_boundary(anchor, "month", count, k + 1),
    )
    length = period.end - period.start
    assert timedelta(days=28 * count) <= length <= timedelta(days=31 * count)


@given(moments, st.integers(1, 3), indexes)
def test_year_periods_last_365_or_366_days_per_year(anchor, count, k):
    length = period_boundary(anchor, "year", count, k + 1) - period_boundary(
        anchor, "year", count, k
    )
    assert timedelta(days=365 * count) <= length <= timedelta(days=366 * count)


@given(
    st.one_of(
        st.sampled_from(INTERVALS).flatmap(
            lambda interval: st.tuples(
                st.just(interval), st.integers(MAX_INTERVAL_COUNT[interval] + 1, 10_000)
            )
        ),
        st.tuples(st.sampled_from(INTERVALS), st.integers(-10_000, 0)),
        st.tuples(st.text().filter(lambda s: s not in INTERVALS), st.integers(1, 3)),
    )
)
def test_validate_interval_rejects_anything_longer_than_three_years_or_not_a_period(case):
    interval, count = case
    with pytest.raises(ValueError):
        validate_interval(interval, count)
