"""The set-based billing run bills exactly what the one-at-a-time path bills.

For random catalogs (per unit, package, graduated, volume; fees and usage), subscriptions
(shared customers, cancel at period end), usage (with late events in the grace period) and
credit grants (priorities, categories, scopes), closing and finalizing in chunks gives the
same invoices as closing and finalizing one subscription and one draft at a time: the same
lines, amounts, credits, numbers in the same order, the same ledger and the same events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_site import clock
from billing_site.events.models import Event
from catalog.rating import PriceTerms, Tier, TransformQuantity
from catalog.services import Recurring, price_create
from credits.models import CreditBalanceTransaction
from credits.services import credit_grant_create
from invoicing.models import Invoice, InvoiceEvent, Subscription
from invoicing.services import ItemInput, subscription_create
from invoicing.services.billing_chunks import invoices_finalize_chunk, subscriptions_close_chunk
from invoicing.services.billing_run import (
    chunked,
    close_subscription_periods,
    due_draft_ids,
    due_subscription_ids,
    finalize_due_draft,
)
from metering.ingest import meter_events_ingest
from metering.validation import EventInput
from tests.factories import CustomerFactory, MeterFactory, ProductFactory

START = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)  # anchors on the 31st: Apr 30, May 31
END = dt.datetime(2026, 4, 30, tzinfo=dt.UTC)


class _Rollback(Exception):
    pass


amounts = st.decimals(min_value=0, max_value=500, places=3, allow_nan=False)


@st.composite
def metered_terms(draw) -> PriceTerms:
    kind = draw(st.sampled_from(["per_unit", "package", "graduated", "volume"]))
    if kind == "per_unit":
        return PriceTerms(billing_scheme="per_unit", unit_amount=draw(amounts))
    if kind == "package":
        return PriceTerms(
            billing_scheme="per_unit",
            unit_amount=draw(amounts),
            transform_quantity=TransformQuantity(
                divide_by=draw(st.integers(1, 1000)), round=draw(st.sampled_from(["up", "down"]))
            ),
        )
    bounds = sorted(draw(st.sets(st.integers(1, 100_000), min_size=1, max_size=3)))
    tiers = tuple(
        Tier(
            up_to=Decimal(bound) if bound is not None else None,
            unit_amount=draw(amounts),
            flat_amount=Decimal(draw(st.integers(0, 5000))),
        )
        for bound in [*bounds, None]
    )
    return PriceTerms(billing_scheme="tiered", tiers_mode=kind, tiers=tiers)


scenarios = st.fixed_dictionaries(
    {
        "metered": st.lists(metered_terms(), min_size=1, max_size=3),
        "fees": st.lists(st.integers(0, 50_000), min_size=0, max_size=2),
        "customers": st.integers(1, 3),
        "subscriptions": st.lists(
            st.tuples(
                st.integers(0, 2),  # customer (modulo the customers)
                st.sets(st.integers(0, 4), min_size=1, max_size=4),  # prices (modulo)
                st.integers(1, 5),  # fee quantity
                st.booleans(),  # cancel at period end
            ),
            min_size=1,
            max_size=6,
        ),
        "usage": st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(-50, 300_000)),
            max_size=8,
        ),
        "late_usage": st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 300_000)),
            max_size=3,
        ),
        "grants": st.lists(
            st.tuples(
                st.integers(0, 2),  # customer
                st.integers(1, 20_000),  # amount
                st.integers(0, 100),  # priority
                st.sampled_from(["paid", "promotional"]),
                st.one_of(st.none(), st.integers(0, 2)),  # scoped to one metered price, or all
            ),
            max_size=4,
        ),
        "chunk_size": st.integers(1, 4),
    }
)


def _build(scenario):
    with clock.frozen_at(START - dt.timedelta(days=1)):
        product = ProductFactory()
        meters, metered = [], []
        for terms in scenario["metered"]:
            meter = MeterFactory()
            meters.append(meter)
            metered.append(
                price_create(
                    product=product,
                    currency="usd",
                    terms=terms,
                    recurring=Recurring(interval="month", usage_type="metered", meter=meter),
                )
            )
        fees = [
            price_create(
                product=product,
                currency="usd",
                terms=PriceTerms(billing_scheme="per_unit", unit_amount=Decimal(amount)),
                recurring=Recurring(interval="month"),
            )
            for amount in scenario["fees"]
        ]
        customers = [CustomerFactory() for _ in range(scenario["customers"])]
        for customer, amount, priority, category, scope in scenario["grants"]:
            credit_grant_create(
                customer=customers[customer % len(customers)],
                amount=amount,
                currency="usd",
                category=category,
                priority=priority,
                prices=None if scope is None else [metered[scope % len(metered)]],
            )
    prices = metered + fees
    with clock.frozen_at(START):
        for customer, chosen, quantity, cancel in scenario["subscriptions"]:
            picked = sorted({index % len(prices) for index in chosen})
            subscription_create(
                customer=customers[customer % len(customers)],
                items=[
                    ItemInput(
                        price=prices[index], quantity=None if index < len(metered) else quantity
                    )
                    for index in picked
                ],
                cancel_at_period_end=cancel,
            )
    _send(scenario["usage"], meters, customers, "usage", at=END - dt.timedelta(days=1))
    return meters, customers


def _send(usage, meters, customers, prefix, *, at):
    with clock.frozen_at(at):
        result = meter_events_ingest(
            events=[
                EventInput(
                    meters[meter % len(meters)].event_name,
                    {
                        "stripe_customer_id": customers[customer % len(customers)].public_id,
                        "value": str(value),
                    },
                    f"{prefix}-{index}",
                    END - dt.timedelta(days=2, seconds=index),
                )
                for index, (customer, meter, value) in enumerate(usage)
            ]
        )
    assert result.rejected == []


def _one_at_a_time(at_close, at_finalize, late):
    for subscription_id in due_subscription_ids(at=at_close):
        close_subscription_periods(subscription_id=subscription_id, at=at_close)
    late()
    for invoice_id in due_draft_ids(at=at_finalize):
        finalize_due_draft(invoice_id=invoice_id, at=at_finalize)


def _in_chunks(at_close, at_finalize, late, size):
    for chunk in chunked(due_subscription_ids(at=at_close), size):
        subscriptions_close_chunk(subscription_ids=chunk, at=at_close)
    late()
    for chunk in chunked(due_draft_ids(at=at_finalize), size):
        invoices_finalize_chunk(invoice_ids=chunk, at=at_finalize)


def _billed():
    """Everything a customer or staff would compare, keyed so both runs line up (invoices by
    subscription and period; their public ids are random)."""
    invoices = {}
    for invoice in Invoice.objects.filter(billing_reason__startswith="subscription_c").order_by(
        "pk"
    ):
        key = (invoice.subscription_id, invoice.billing_period_key)
        invoices[key] = (
            invoice.billing_reason,
            invoice.status,
            invoice.number,
            invoice.subtotal,
            invoice.total_credits,
            invoice.total,
            invoice.amount_due,
            invoice.due_date,
            invoice.finalize_after,
            invoice.finalized_at,
            invoice.paid_at,
            [
                (
                    line.kind,
                    line.subscription_item_id,
                    line.description,
                    line.quantity,
                    line.amount,
                    line.unrounded_amount,
                    line.tier_breakdown,
                    line.credits_applied,
                    line.period_start,
                    line.period_end,
                )
                for line in invoice.lines.order_by("pk")
            ],
            list(
                InvoiceEvent.objects.filter(invoice=invoice)
                .order_by("pk")
                .values_list("from_status", "to_status", "actor", "note")
            ),
            sorted(
                CreditBalanceTransaction.objects.filter(invoice=invoice).values_list(
                    "grant_id", "type", "reason", "amount", "invoice_line__description"
                )
            ),
        )
    subscriptions = list(
        Subscription.objects.order_by("pk").values_list(
            "pk", "status", "current_period_start", "current_period_end", "ended_at"
        )
    )
    # The same events, to the field, but for the ids of the objects each run creates anew.
    events = sorted((event.type, _without_new_ids(event.data)) for event in Event.objects.all())
    return invoices, subscriptions, events


def _without_new_ids(data) -> str:
    """The event's data with the ids of objects each run creates anew (its invoices) blanked."""
    text = json.dumps(data, sort_keys=True)
    return re.sub(r"(?<![A-Za-z])(in|il|cbtxn)_[A-Za-z0-9]{10,}", "<id>", text)


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_the_set_based_run_bills_exactly_what_one_at_a_time_bills(scenario):
    at_close = END + dt.timedelta(minutes=30)
    at_finalize = END + dt.timedelta(hours=2)
    outcomes = []
    try:
        with transaction.atomic():
            meters, customers = _build(scenario)

            def late():
                _send(scenario["late_usage"], meters, customers, "late", at=at_close)

            for run in (
                lambda: _one_at_a_time(at_close, at_finalize, late),
                lambda: _in_chunks(at_close, at_finalize, late, scenario["chunk_size"]),
            ):
                savepoint = transaction.savepoint()
                with clock.frozen_at(at_finalize):
                    run()
                outcomes.append(_billed())
                transaction.savepoint_rollback(savepoint)
            raise _Rollback
    except _Rollback:
        pass
    one_at_a_time, set_based = outcomes
    assert set_based[0] == one_at_a_time[0]
    assert set_based[1] == one_at_a_time[1]
    assert set_based[2] == one_at_a_time[2]
    # The run did bill something: every subscription's period was closed.
    closed = [key for key in set_based[0] if key[1] != "create"]
    assert len(closed) == len(scenario["subscriptions"])


# --- a poisoned subscription ------------------------------------------------------------------


def poisoned_catalog(customers: int, *, poisoned_at: int):
    """`customers` subscriptions to a 150.00 USD fee, one of them (at `poisoned_at`) to a price
    whose row was corrupted after it was subscribed to: rating it raises."""
    from catalog.models import Price
    from tests.factories import licensed_price

    fee, bad = licensed_price(unit_amount=15000), licensed_price(unit_amount=100)
    with clock.frozen_at(START):
        subscriptions = [
            subscription_create(
                customer=CustomerFactory(),
                items=[ItemInput(price=bad if index == poisoned_at else fee)],
            )
            for index in range(customers)
        ]
    Price.objects.filter(pk=bad.pk).update(unit_amount_decimal=None)
    return subscriptions, subscriptions[poisoned_at]


@pytest.mark.django_db
def test_a_poisoned_subscription_in_a_chunk_is_billed_by_nobody_and_blocks_nobody():
    from invoicing.models import BillingRunFailure
    from invoicing.services import billing_run

    subscriptions, poisoned = poisoned_catalog(7, poisoned_at=4)
    first_numbers = set(Invoice.objects.values_list("number", flat=True))

    summary = billing_run(at=END + dt.timedelta(hours=2), chunk_size=3)

    # Its chunk fell back to one at a time: its neighbours were closed and finalized.
    assert (summary.periods_closed, summary.invoices_finalized) == (6, 6)
    assert summary.failures == [
        f"subscription {poisoned.pk}: A per_unit price needs a unit_amount."
    ]
    cycle = Invoice.objects.filter(billing_reason="subscription_cycle")
    assert sorted(cycle.values_list("subscription_id", flat=True)) == sorted(
        s.pk for s in subscriptions if s != poisoned
    )
    assert all((i.status, i.total, i.lines.count()) == ("open", 15000, 1) for i in cycle)
    numbers = sorted(cycle.values_list("number", flat=True))
    assert numbers == [f"INV-{n:04d}" for n in range(8, 14)]  # after the 7 first invoices
    assert len(first_numbers) == 7
    failure = BillingRunFailure.objects.get()
    assert (failure.subscription_id, failure.step) == (poisoned.pk, "close period")
    assert "unit_amount" in failure.error
    poisoned.refresh_from_db()
    assert poisoned.current_period_start == START  # not advanced: its period stays unbilled

    # The next run bills nobody twice and tries the poisoned one again (recorded again).
    again = billing_run(at=END + dt.timedelta(hours=3), chunk_size=3)
    assert (again.periods_closed, again.invoices_finalized, len(again.failures)) == (0, 0, 1)
    assert cycle.count() == 6
    assert BillingRunFailure.objects.filter(subscription=poisoned).count() == 2
