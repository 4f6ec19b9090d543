"""What the limits mean for billing itself (billing_site/limits.py).

- Metered usage has no input to refuse: a usage line that rates past the per-line limit is capped
  at the limit, and its draft is held for review (listed in the billing run failures, never
  finalized by the billing run). The subscription moves on to its next period: one customer's
  usage never fails the billing run forever (before, the line's amount overflowed `bigint` and
  the period close failed on every run).
- Every period computed from a time inside the limits stays inside datetime's range, up to a
  test clock advanced to the last second accepted.
- The values at the limits fit their columns (run on PostgreSQL for the real sizes).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_site import clock
from billing_site.limits import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_AMOUNT,
    MAX_DIVIDE_BY,
    MAX_QUANTITY,
    MAX_TIER_UP_TO,
)
from catalog.money import round_to_minor_unit
from catalog.rating import PriceTerms, Tier, TransformQuantity, rate
from catalog.services import Recurring, price_create
from credits.services import credit_grant_create
from invoicing.models import BillingRunFailure, CustomerEvent, Invoice, Subscription
from invoicing.periods import MAX_INTERVAL_COUNT, next_period, period_boundary, period_containing
from invoicing.services import (
    ItemInput,
    billing_run,
    invoice_finalize,
    subscription_cancel_now,
    subscription_create,
    test_clock_advance,
    test_clock_create,
    test_clock_start_advance,
)
from invoicing.services.invoices import HELD_FOR_REVIEW
from invoicing.services.lines import CAPPED_NOTE, rate_line
from metering.ingest import meter_events_ingest
from metering.validation import EventInput
from tests import helpers
from tests.factories import CustomerFactory, MeterFactory, ProductFactory, licensed_price
from tests.helpers import NOV_1, OCT_1

UTC = dt.UTC
DEC_1 = dt.datetime(2026, 12, 1, tzinfo=UTC)
LARGEST_PRICE = Decimal(999_999_999_999)  # 9,999,999,999.99 USD a unit
BIG_EVENT = "99999999999999"  # 14 digits: a value the event store accepts


def metered_price(unit_amount: Decimal = LARGEST_PRICE):
    meter = MeterFactory()
    return price_create(
        product=ProductFactory(name="API calls"),
        currency="usd",
        terms=PriceTerms(billing_scheme="per_unit", unit_amount=unit_amount),
        recurring=Recurring(interval="month", usage_type="metered", meter=meter),
    )


def send(price, customer, value: str, *, timestamp, received, identifier: str) -> None:
    result = meter_events_ingest(
        events=[
            EventInput(
                price.meter.event_name,
                {"stripe_customer_id": customer.public_id, "value": value},
                identifier,
                timestamp,
            )
        ],
        now=received,
    )
    assert not result.rejected, result.rejected


def subscribe(customer, *prices) -> Subscription:
    return helpers.subscribe(customer, *prices, at=OCT_1)


@pytest.fixture
def subscribed_to_the_largest_price():
    """A customer subscribed on OCT_1 to a metered price of the largest unit amount: any usage
    past one unit is past the per-line limit. Returns (customer, price, subscription)."""
    customer = CustomerFactory()
    calls = metered_price()
    return customer, calls, subscribe(customer, calls)


# --- usage past the per-line limit ------------------------------------------------------------


@pytest.mark.django_db
def test_usage_past_the_line_limit_is_capped_held_for_review_and_the_subscription_moves_on(
    subscribed_to_the_largest_price,
):
    customer, calls, subscription = subscribed_to_the_largest_price
    for index in range(2):
        send(
            calls,
            customer,
            BIG_EVENT,
            timestamp=OCT_1 + dt.timedelta(days=2),
            received=OCT_1 + dt.timedelta(days=3),
            identifier=f"e{index}",
        )

    summary = billing_run(at=NOV_1 + dt.timedelta(hours=2))

    assert (summary.periods_closed, summary.invoices_finalized, summary.failures) == (1, 0, [])
    held = subscription.invoices.get(billing_reason="subscription_cycle")
    line = held.lines.get()
    assert (held.status, held.finalize_after, held.total) == ("draft", None, MAX_AMOUNT)
    assert (line.quantity, line.amount) == (Decimal("199999999999998"), MAX_AMOUNT)
    assert line.description.endswith(CAPPED_NOTE)
    failure = BillingRunFailure.objects.get()
    assert failure.step == HELD_FOR_REVIEW
    assert f"Invoice {held.label} is held as a draft for review" in failure.error
    assert "API calls: usage Oct 1, 2026 to Oct 31, 2026" in failure.error
    assert "over the limit of 9,999,999,999.99 USD per line" in failure.error
    subscription.refresh_from_db()
    assert (subscription.current_period_start, subscription.status) == (NOV_1, "active")

    # The next runs go on as usual: no failure again, the next period closes and finalizes.
    summary = billing_run(at=DEC_1 + dt.timedelta(hours=2))
    assert (summary.periods_closed, summary.invoices_finalized, summary.failures) == (1, 1, [])
    assert BillingRunFailure.objects.count() == 1
    held.refresh_from_db()
    assert held.status == "draft"

    # Staff decide: finalizing it bills the line at the limit (void it if the usage was wrong).
    finalized = invoice_finalize(invoice=held, actor="staff", at=DEC_1 + dt.timedelta(hours=3))
    # INV-0001 is November's; a metered-only subscription has no first invoice (flexible mode).
    assert (finalized.status, finalized.total, finalized.number) == ("open", MAX_AMOUNT, "INV-0002")


@pytest.mark.django_db
def test_late_usage_in_the_grace_period_past_the_limit_holds_the_draft_instead_of_finalizing(
    subscribed_to_the_largest_price,
):
    customer, calls, subscription = subscribed_to_the_largest_price
    send(calls, customer, "1", timestamp=OCT_1, received=OCT_1, identifier="on-time")
    billing_run(at=NOV_1)
    draft = subscription.invoices.get(billing_reason="subscription_cycle")
    assert (draft.total, draft.finalize_after) == (MAX_AMOUNT, NOV_1 + dt.timedelta(hours=1))
    send(
        calls,
        customer,
        "5",
        timestamp=NOV_1 - dt.timedelta(minutes=1),
        received=NOV_1 + dt.timedelta(minutes=30),
        identifier="late",
    )

    summary = billing_run(at=NOV_1 + dt.timedelta(hours=2))

    assert (summary.invoices_finalized, summary.failures) == (0, [])
    draft.refresh_from_db()
    assert (draft.status, draft.finalize_after, draft.number) == ("draft", None, None)
    line = draft.lines.get()
    assert (line.quantity, line.amount) == (6, MAX_AMOUNT)
    assert line.description.endswith(CAPPED_NOTE)
    assert BillingRunFailure.objects.get().step == HELD_FOR_REVIEW
    billing_run(at=NOV_1 + dt.timedelta(hours=3))  # held: not picked up again
    assert BillingRunFailure.objects.count() == 1


@pytest.mark.django_db
def test_cancel_with_invoice_now_past_the_limit_cancels_and_holds_the_final_invoice(
    subscribed_to_the_largest_price,
):
    customer, calls, subscription = subscribed_to_the_largest_price
    send(calls, customer, "2", timestamp=OCT_1, received=OCT_1, identifier="two-units")

    with clock.frozen_at(OCT_1 + dt.timedelta(days=9)):
        subscription_cancel_now(subscription=subscription, invoice_now=True, actor="tests")

    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    final = subscription.invoices.get(billing_reason="subscription_cancel")
    assert (final.status, final.total) == ("draft", MAX_AMOUNT)
    assert BillingRunFailure.objects.get().step == HELD_FOR_REVIEW
    note = CustomerEvent.objects.get(action="subscription_canceled").note
    assert note.endswith(f"usage so far held for review on {final.label}")


@pytest.mark.django_db
def test_a_test_clock_advances_through_a_period_whose_usage_is_past_the_limit():
    with clock.frozen_at(OCT_1):
        test_clock = test_clock_create(frozen_time=OCT_1, name="Big usage")
    customer = CustomerFactory(test_clock=test_clock)
    calls = metered_price()
    subscribe(customer, calls)
    send(calls, customer, "3", timestamp=OCT_1, received=OCT_1, identifier="three-units")

    target = DEC_1 + dt.timedelta(hours=2)
    test_clock = test_clock_start_advance(test_clock=test_clock, frozen_time=target)
    test_clock = test_clock_advance(test_clock=test_clock, frozen_time=target)

    assert (test_clock.status, test_clock.frozen_time) == ("ready", target)
    statuses = sorted(customer.invoices.values_list("billing_reason", "status"))
    # Metered only: no first invoice (flexible billing mode).
    assert statuses == [
        ("subscription_cycle", "draft"),  # October, held
        ("subscription_cycle", "paid"),  # November: no usage
    ]


@given(
    unit_amount=st.decimals(min_value=0, max_value=LARGEST_PRICE, places=12),
    quantity=st.decimals(min_value=0, max_value=Decimal(10) ** 15, places=3),
)
def test_a_rated_line_never_passes_the_limit_and_is_exact_below_it(unit_amount, quantity):
    terms = PriceTerms(billing_scheme="per_unit", unit_amount=unit_amount)
    price = _UnsavedPrice(terms)

    rated = rate_line(price, quantity)  # type: ignore[arg-type]

    exact = rate(terms, quantity).amount
    assert rated.amount <= MAX_AMOUNT
    assert rated.over_limit == (round_to_minor_unit(exact) > MAX_AMOUNT)
    if not rated.over_limit:
        assert (rated.amount, rated.unrounded_amount) == (round_to_minor_unit(exact), exact)
    else:
        assert (rated.amount, rated.over_limit_amount) == (MAX_AMOUNT, exact)


class _UnsavedPrice:
    """What `rate_line` reads of a price: its terms."""

    def __init__(self, terms: PriceTerms) -> None:
        self.terms = terms


# --- times ------------------------------------------------------------------------------------


@given(
    anchor=st.datetimes(
        min_value=EARLIEST_TIME.replace(tzinfo=None),
        max_value=(LATEST_TIME - dt.timedelta(seconds=1)).replace(tzinfo=None),
        timezones=st.just(UTC),
    ),
    interval=st.sampled_from(sorted(MAX_INTERVAL_COUNT)),
    data=st.data(),
)
def test_every_period_computed_from_a_time_inside_the_limits_stays_in_range(anchor, interval, data):
    count = data.draw(st.integers(min_value=1, max_value=MAX_INTERVAL_COUNT[interval]))
    # The latest "now" a subscription can see: a clock at the last second accepted.
    moment = data.draw(
        st.datetimes(
            min_value=anchor.replace(tzinfo=None),
            max_value=(LATEST_TIME - dt.timedelta(seconds=1)).replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    # What subscription_create, the period close and the first invoice compute from them.
    period_boundary(moment, interval, count, -1)
    period = period_containing(anchor, interval, count, moment)
    following = next_period(period, anchor, interval, count)
    next_period(following, anchor, interval, count)


@pytest.mark.django_db
def test_a_yearly_subscription_on_a_clock_at_the_last_second_accepted_keeps_billing():
    start = dt.datetime(8998, 6, 1, tzinfo=UTC)
    with clock.frozen_at(OCT_1):
        test_clock = test_clock_create(frozen_time=start)
    customer = CustomerFactory(test_clock=test_clock)
    subscription = subscribe(customer, licensed_price(interval="year"))

    last = LATEST_TIME - dt.timedelta(seconds=1)
    test_clock = test_clock_start_advance(test_clock=test_clock, frozen_time=last)
    test_clock = test_clock_advance(test_clock=test_clock, frozen_time=last)

    assert test_clock.status == "ready"
    subscription.refresh_from_db()
    assert subscription.current_period_end == dt.datetime(9000, 6, 1, tzinfo=UTC)
    assert sorted(customer.invoices.values_list("billing_reason", "status")) == [
        ("subscription_create", "open"),
        ("subscription_cycle", "open"),  # June 8999, billed at the period close
    ]


# --- the limits fit their columns -------------------------------------------------------------


@pytest.mark.django_db
def test_values_at_the_limits_are_stored_and_read_back_exactly(db):
    from django.db import connection

    customer = CustomerFactory()
    package = price_create(
        product=ProductFactory(),
        currency="usd",
        terms=PriceTerms(
            billing_scheme="per_unit",
            unit_amount=LARGEST_PRICE - MAX_QUANTITY,
            transform_quantity=TransformQuantity(divide_by=MAX_DIVIDE_BY, round="up"),
        ),
        recurring=Recurring(interval="month"),
    )
    tiered = price_create(
        product=ProductFactory(),
        currency="usd",
        terms=PriceTerms(
            billing_scheme="tiered",
            tiers_mode="volume",
            tiers=(
                Tier(up_to=Decimal(MAX_TIER_UP_TO), unit_amount=Decimal(0)),
                Tier(up_to=None, unit_amount=Decimal(0)),
            ),
        ),
    )
    seats = licensed_price(unit_amount=1)
    with clock.frozen_at(LATEST_TIME - dt.timedelta(seconds=1)):
        subscription = subscription_create(
            customer=customer,
            items=[ItemInput(price=package), ItemInput(price=seats, quantity=MAX_QUANTITY)],
        )
    grant = credit_grant_create(
        customer=customer, amount=MAX_AMOUNT, currency="usd", category="paid", now=OCT_1
    )

    package.refresh_from_db()
    assert package.transform_divide_by == MAX_DIVIDE_BY
    assert tiered.tiers.first().up_to == MAX_TIER_UP_TO
    assert sorted(subscription.items.values_list("quantity", flat=True)) == [1, MAX_QUANTITY]
    first = Invoice.objects.get(subscription=subscription)
    assert first.total == MAX_AMOUNT  # one package and a million seats: the most an invoice holds
    assert first.period_end.year == 9000
    grant.refresh_from_db()
    assert grant.amount == MAX_AMOUNT
    if connection.vendor == "postgresql":
        # SQLite keeps decimals as 64-bit floats (15 significant digits): PostgreSQL only.
        largest = price_create(
            product=ProductFactory(),
            currency="usd",
            terms=PriceTerms(
                billing_scheme="per_unit", unit_amount=Decimal("999999999999.999999999999")
            ),
        )
        largest.refresh_from_db()
        assert largest.unit_amount_decimal == Decimal("999999999999.999999999999")
