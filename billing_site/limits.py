"""The limits on amounts, quantities and times: the one home of each bound.

Every service checks its input against these before it writes anything (the API and the admin
call the same services, so both refuse the same values with the same message). What is stored
therefore always fits its column (PostgreSQL `bigint`, `integer`, `numeric`) and every date
computed from a stored time stays inside the years Python can hold (1-9999). Nothing can
overflow later, at a month end, where no one is there to fix the input.

Amounts are minor units (cents for USD, yen for JPY):

- `MAX_AMOUNT_DIGITS`: a price's unit and flat amounts have at most 12 digits before the decimal
  point (and at most 12 after it): below 10^12 minor units, i.e. 9,999,999,999.99 USD a unit.
- `MAX_AMOUNT`: an invoice line, an invoice's total and a credit grant: at most 999,999,999,999
  minor units (9,999,999,999.99 USD; Stripe's own limit is 99,999,999.99 USD). A `bigint` holds
  9.2 x 10^18, so even sums of millions of such amounts fit.
- `MAX_QUANTITY`: a licensed subscription item's quantity and an invoice item's quantity.
- `MAX_DIVIDE_BY`: the package size of `transform_quantity`.
- `MAX_TIER_UP_TO`: a tier's `up_to` (a `bigint` column).

Metered usage has no input to refuse (it is the sum of a period's events), so a usage line can
rate past `MAX_AMOUNT`; `invoicing.services.lines.rate_line` caps it at the limit and flags it,
and the invoice is held as a draft for staff to review (see the README's "Limits").

Times are between `EARLIEST_TIME` (1970-01-01, Unix time 0) and `LATEST_TIME` (9000-01-01, not
included), UTC. The margin of nearly a thousand years before 9999 holds every time billing
computes from a stored one: a billing period is at most three years, a test clock moves at most
two years at a time, and a due date comes at most 365 days after finalization.

Request rate limits are elsewhere (`billing_site/api/rate_limits.py`), as are the limits of a
request body and of meter event values (`metering/validation.py`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from billing_site.errors import BillingError

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_AMOUNT",
    "MAX_AMOUNT_DIGITS",
    "MAX_DIVIDE_BY",
    "MAX_QUANTITY",
    "MAX_TIER_UP_TO",
    "check_amount",
    "check_quantity",
    "check_time",
]

MAX_AMOUNT_DIGITS = 12
MAX_AMOUNT = 10**MAX_AMOUNT_DIGITS - 1
MAX_QUANTITY = 1_000_000
MAX_DIVIDE_BY = 1_000_000_000  # fits the `integer` column with room to spare
MAX_TIER_UP_TO = 2**63 - 1

EARLIEST_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def check_amount(amount: int | Decimal, *, param: str, what: str = "The amount") -> None:
    """Refuse an amount of minor units past `MAX_AMOUNT` (the caller refuses negatives)."""
    if amount > MAX_AMOUNT:
        raise BillingError(
            f"{what} can be at most {MAX_AMOUNT:,} minor units (9,999,999,999.99 in a currency "
            f"with cents), got {_number(amount)}.",
            param=param,
        )


def check_quantity(quantity: int | Decimal, *, param: str) -> None:
    """Refuse a quantity past `MAX_QUANTITY` (the caller refuses zero and negatives)."""
    if quantity > MAX_QUANTITY:
        raise BillingError(
            f"quantity can be at most {MAX_QUANTITY:,}, got {_number(quantity)}.", param=param
        )


def check_time(moment: dt.datetime, *, param: str) -> None:
    """Refuse a time before 1970 or from the year 9000 on."""
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise BillingError(
            f"{param} must be from {EARLIEST_TIME:%Y-%m-%d} up to (not including) "
            f"{LATEST_TIME:%Y-%m-%d} UTC, got {moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC: "
            "billing periods and due dates computed from a later time would pass the last "
            "year a date can hold.",
            param=param,
        )


def _number(value: int | Decimal) -> str:
    """Quote a refused number, cut short so a huge input can't flood the message."""
    text = f"{value:,}"
    return text if len(text) <= 40 else f"{text[:37]}..."
