"""The period calculator: from a subscription's billing cycle anchor to its billing periods.

Plain values in, plain values out: no ORM, no clock, no Django (STYLE.md item 3), so the
calendar rules can be property-tested without a database.

Rules (DESIGN.md, "Subscriptions"):

* Periods are half-open ``[start, end)`` and every datetime is aware; arithmetic is done
  in UTC, and results are returned in UTC (STYLE.md item 6).
* Boundaries come from the anchor by *calendar* arithmetic, each one computed from the
  anchor itself. Adding period lengths one after the other would drift: an anchor on
  Jan 31 would give Feb 28, then Mar 28, Apr 28... instead of Feb 28, Mar 31, Apr 30.
* Months and years keep the anchor's day of month, clamped to the month's last day when
  the month is shorter, and keep the anchor's time of day. Days and weeks are exact
  multiples of 24 hours, which in UTC is the same as calendar days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "INTERVALS",
    "MAX_INTERVAL_COUNT",
    "Period",
    "next_period",
    "period_boundary",
    "period_containing",
    "validate_interval",
]

INTERVALS = ("day", "week", "month", "year")

# A billing period can be at most three years long, whatever unit it is written in.
# The same limits are enforced on prices by catalog.services; they are repeated here
# because this module must stay importable without Django, and catalog must not import
# invoicing (imports flow catalog -> invoicing).
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}

# Days and weeks are fixed lengths; months and years are counted in calendar months.
_DAYS_PER_UNIT = {"day": 1, "week": 7}
_MONTHS_PER_UNIT = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Period:
    """One billing period. ``start`` is inclusive and ``end`` is exclusive."""

    start: datetime  # inclusive, aware, normalized to UTC
    end: datetime  # exclusive, aware, normalized to UTC

    def __post_init__(self) -> None:
        # Normalize so that two equal periods also print the same, whatever zone the
        # caller used; object.__setattr__ is the documented way to do this in a frozen
        # dataclass.
        object.__setattr__(self, "start", _as_utc(self.start, "start"))
        object.__setattr__(self, "end", _as_utc(self.end, "end"))
        if not self.start < self.end:
            raise ValueError(
                f"A period must end after it starts (start {self.start.isoformat()}, "
                f"end {self.end.isoformat()})."
            )

    def __contains__(self, moment: object) -> bool:
        # Half-open: a moment exactly on ``end`` belongs to the next period, so usage on a
        # boundary is billed once, never twice.
        if not isinstance(moment, datetime):
            return False
        return self.start <= _as_utc(moment, "moment") < self.end


def validate_interval(interval: str, interval_count: int) -> None:
    """Raise ``ValueError`` unless ``interval_count`` x ``interval`` is a valid billing period."""
    if interval not in INTERVALS:
        raise ValueError(
            f"Unknown billing interval {interval!r}: expected one of {', '.join(INTERVALS)}."
        )
    # bool is a subclass of int, but True as a count is always a caller's mistake.
    if not isinstance(interval_count, int) or isinstance(interval_count, bool):
        raise ValueError(
            f"interval_count must be a whole number (got {type(interval_count).__name__} "
            f"{interval_count!r})."
        )
    if interval_count < 1:
        raise ValueError(f"interval_count must be at least 1 (got {interval_count}).")
    maximum = MAX_INTERVAL_COUNT[interval]
    if interval_count > maximum:
        raise ValueError(
            f"A billing period can be at most three years: {interval_count} {interval}s is "
            f"too long (the maximum is {maximum} {interval}s)."
        )


def period_boundary(anchor: datetime, interval: str, interval_count: int, index: int) -> datetime:
    """The ``index``-th boundary from ``anchor`` (``index`` may be negative), in UTC.

    Boundary 0 is the anchor itself; boundary ``k`` starts the ``k``-th period.
    """
    validate_interval(interval, interval_count)
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"index must be a whole number (got {index!r}).")
    anchor = _as_utc(anchor, "anchor")
    if interval in _DAYS_PER_UNIT:
        days = _DAYS_PER_UNIT[interval] * interval_count * index
        try:
            return anchor + timedelta(days=days)
        except OverflowError:
            raise _out_of_range(anchor, interval, interval_count, index) from None
    months = _MONTHS_PER_UNIT[interval] * interval_count * index
    return _add_months(anchor, months, interval, interval_count, index)


def period_containing(
    anchor: datetime, interval: str, interval_count: int, moment: datetime
) -> Period:
    """The period ``[boundary(k), boundary(k + 1))`` that contains ``moment``.

    ``moment`` may be before the anchor, in which case ``k`` is negative. The index is
    computed directly rather than by walking from the anchor, so the cost does not grow
    with the distance between the two.
    """
    validate_interval(interval, interval_count)
    anchor = _as_utc(anchor, "anchor")
    moment = _as_utc(moment, "moment")
    if interval in _DAYS_PER_UNIT:
        # Fixed-length steps: floor division of timedeltas is exact and floors towards
        # minus infinity, which is what a moment before the anchor needs.
        step = timedelta(days=_DAYS_PER_UNIT[interval] * interval_count)
        k = (moment - anchor) // step
    else:
        step_months = _MONTHS_PER_UNIT[interval] * interval_count
        elapsed_months = _month_number(moment) - _month_number(anchor)
        k = elapsed_months // step_months
        # Now k * step <= elapsed < (k + 1) * step. Boundary k + 1 falls in a later calendar
        # month than the moment, so it is certainly after it. Boundary k falls in the
        # moment's month or an earlier one; only when it is the same month can it be later
        # in that month than the moment (anchor on the 20th, moment on the 5th), and then
        # the period before is the one. So one step back is the only correction needed.
        if period_boundary(anchor, interval, interval_count, k) > moment:
            k -= 1
    return Period(
        start=period_boundary(anchor, interval, interval_count, k),
        end=period_boundary(anchor, interval, interval_count, k + 1),
    )


def next_period(period: Period, anchor: datetime, interval: str, interval_count: int) -> Period:
    """The period that starts where ``period`` ends.

    ``period.end`` must be a boundary of this anchor's schedule: a mismatched anchor or
    interval would silently shift every later invoice, so it is rejected. ``period.start``
    is not checked, so a shorter first period that ends on the anchor is accepted.
    """
    following = period_containing(anchor, interval, interval_count, period.end)
    if following.start != period.end:
        raise ValueError(
            f"The period ending {period.end.isoformat()} does not end on a boundary of a "
            f"{interval_count} {interval} schedule anchored at "
            f"{_as_utc(anchor, 'anchor').isoformat()}."
        )
    return following


def _as_utc(value: datetime, name: str) -> datetime:
    # A naive datetime has no defined instant, and guessing a zone would move a period
    # boundary by hours, so it is refused rather than assumed to be UTC.
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime (got {type(value).__name__}).")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime (got naive {value.isoformat()}); "
            "billing times are in UTC."
        )
    return value.astimezone(UTC)


def _month_number(moment: datetime) -> int:
    # Months since year 0, so that month differences are plain integer subtraction.
    return moment.year * 12 + (moment.month - 1)


def _add_months(
    anchor: datetime, months: int, interval: str, interval_count: int, index: int
) -> datetime:
    year, month_zero_based = divmod(_month_number(anchor) + months, 12)
    if not 1 <= year <= 9999:
        raise _out_of_range(anchor, interval, interval_count, index)
    month = month_zero_based + 1
    # Clamp to the month's last day: Jan 31 -> Feb 28 (29 in a leap year), but the next
    # boundary is computed from the anchor again, so it is back to Mar 31.
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def _out_of_range(anchor: datetime, interval: str, interval_count: int, index: int) -> ValueError:
    return ValueError(
        f"Boundary {index} of a {interval_count} {interval} schedule anchored at "
        f"{anchor.isoformat()} is outside the supported years 1-9999."
    )
