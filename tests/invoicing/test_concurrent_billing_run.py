"""Billing workers at once on PostgreSQL: one invoice per period, gapless numbers, credits
spent once, nothing partial after kill -9, and a poisoned subscription blocks nobody."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from billing_site import clock
from invoicing.models import Invoice
from invoicing.services import ItemInput, subscription_create
from metering.ingest import meter_events_ingest
from metering.validation import EventInput
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ProductFactory,
    hypernian_usage_price,
    licensed_price,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_two_workers_closing_periods_at_once_bill_each_period_once(transactional_db):
    now = clock.now()
    start = now - dt.timedelta(days=40)
    meter = MeterFactory()
    product = ProductFactory()
    fee = licensed_price(product=product, unit_amount=20000)
    tokens = hypernian_usage_price(product=product, meter=meter)
    customers = [CustomerFactory() for _ in range(25)]
    with clock.frozen_at(start):
        for customer in customers:
            subscription_create(
                customer=customer, items=[ItemInput(price=fee), ItemInput(price=tokens)]
            )
    with clock.frozen_at(start + dt.timedelta(days=10)):
        meter_events_ingest(
            events=[
                EventInput(
                    meter.event_name,
                    {"stripe_customer_id": customer.public_id, "value": "150000"},
                    f"usage-{index}",
                    start + dt.timedelta(days=5),
                )
                for index, customer in enumerate(customers)
            ]
        )
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_billing"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=180) == 0, worker.stderr.read()

    cycle = Invoice.objects.filter(billing_reason="subscription_cycle")
    assert cycle.count() == 25
    assert {invoice.subscription_id for invoice in cycle} == {
        invoice.subscription_id
        for invoice in Invoice.objects.filter(billing_reason="subscription_create")
    }
    assert all(invoice.status == "open" and invoice.total == 25000 for invoice in cycle)
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:04d}" for n in range(1, 51)]


# --- the set-based run: chunks, a poisoned subscription, kill -9 --------------------------------


def _env(**extra) -> dict[str, str]:
    database = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        **extra,
    }


def _billing_process(chunk_size: int) -> subprocess.Popen:
    """`billing_run()` in its own process, as `run_billing` or a Celery worker runs it."""
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from invoicing.services import billing_run; print(billing_run())",
        ],
        cwd=PROJECT_ROOT,
        env=_env(BILLING_RUN_CHUNK_SIZE=str(chunk_size)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _subscribed(count: int, *, usage: str = "150000"):
    """`count` customers on a 200.00 USD fee plus tokens, each with `usage` tokens last period."""
    start = clock.now() - dt.timedelta(days=40)
    meter = MeterFactory()
    product = ProductFactory()
    fee = licensed_price(product=product, unit_amount=20000)
    tokens = hypernian_usage_price(product=product, meter=meter)
    customers = [CustomerFactory() for _ in range(count)]
    with clock.frozen_at(start):
        subscriptions = [
            subscription_create(
                customer=customer, items=[ItemInput(price=fee), ItemInput(price=tokens)]
            )
            for customer in customers
        ]
    with clock.frozen_at(start + dt.timedelta(days=10)):
        meter_events_ingest(
            events=[
                EventInput(
                    meter.event_name,
                    {"stripe_customer_id": customer.public_id, "value": usage},
                    f"usage-{index}",
                    start + dt.timedelta(days=5),
                )
                for index, customer in enumerate(customers)
            ]
        )
    return customers, subscriptions


def _kill_when_blocked(worker: subprocess.Popen, blocker) -> None:
    """Wait until the worker's transaction waits on the blocker's lock, then kill -9 it, let
    the lock go and wait until PostgreSQL has rolled the orphaned transaction back."""
    watcher = _connect(autocommit=True)  # fresh statistics on every query
    try:
        deadline = time.monotonic() + 60
        waiting = None
        while waiting is None:
            assert worker.poll() is None, worker.stderr.read()
            assert time.monotonic() < deadline, "the billing run never reached the lock"
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            waiting = row[0] if row else None
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        blocker.rollback()  # the orphaned backend gets the lock and finds its client gone
        query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
        while watcher.execute(query, [waiting]).fetchone():
            assert time.monotonic() < deadline + 30, "the killed run's transaction lingers"
            time.sleep(0.05)
    finally:
        if worker.poll() is None:
            worker.kill()
        blocker.close()
        watcher.close()


def _connect(*, autocommit: bool = False):
    import psycopg

    database = connection.settings_dict
    return psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        dbname=database["NAME"],
        autocommit=autocommit,
    )


def _assert_every_period_billed_once(subscriptions) -> None:
    cycle = Invoice.objects.filter(billing_reason="subscription_cycle")
    assert sorted(cycle.values_list("subscription_id", flat=True)) == sorted(
        s.pk for s in subscriptions
    )
    assert all(invoice.status == "open" for invoice in cycle)
    for invoice in cycle:
        assert invoice.subtotal == sum(invoice.lines.values_list("amount", flat=True)) == 25000
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:04d}" for n in range(1, 2 * len(subscriptions) + 1)]


@pytest.mark.postgres
def test_kill_9_in_the_middle_of_a_close_chunk_leaves_no_partial_invoice(transactional_db):
    _, subscriptions = _subscribed(12)
    # The third chunk (subscriptions 11 and 12) waits on a row the test holds: an uncommitted
    # invoice for subscription 11's period (the one-per-period key), while chunks 1-5 commit.
    target = subscriptions[10]
    blocker = _connect()
    blocker.execute(
        "INSERT INTO invoicing_invoice (public_id, customer_id, subscription_id, "
        "billing_period_key, status, billing_reason, currency, collection_method, subtotal, "
        "total_credits, total, amount_due, amount_paid, created_at, paid_out_of_band, "
        "description, metadata) VALUES ('in_blocker', %s, %s, %s, 'draft', "
        "'subscription_cycle', 'USD', 'charge_automatically', 0, 0, 0, 0, 0, now(), false, '', "
        "'{}')",
        [target.customer_id, target.pk, target.current_period_start.isoformat()],
    )
    worker = _billing_process(chunk_size=2)
    _kill_when_blocked(worker, blocker)

    cycle = Invoice.objects.filter(billing_reason="subscription_cycle")
    closed = set(cycle.values_list("subscription_id", flat=True))
    assert closed == {s.pk for s in subscriptions[:10]}  # five chunks committed, whole
    assert all(invoice.lines.count() == 2 and invoice.status == "draft" for invoice in cycle)
    for subscription in subscriptions:
        before = subscription.current_period_end
        subscription.refresh_from_db()
        assert (subscription.current_period_end > before) == (subscription.pk in closed)

    rerun = _billing_process(chunk_size=2)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read()
    _assert_every_period_billed_once(subscriptions)


@pytest.mark.postgres
def test_kill_9_in_the_middle_of_a_finalize_chunk_spends_no_credit_and_takes_no_number(
    transactional_db,
):
    from credits.models import CreditBalanceTransaction, CreditGrant
    from credits.services import credit_grant_create

    customers, subscriptions = _subscribed(6)
    grants = [
        credit_grant_create(customer=customers[index], amount=3000, currency="usd", category="paid")
        for index in (0, 4)
    ]
    # Drafts finalize in chunks of 2; the third chunk (customers 5 and 6) waits on customer 5's
    # grant, which the test holds locked, after chunks 1-2 committed.
    blocker = _connect()
    blocker.execute("SELECT id FROM credits_creditgrant WHERE id = %s FOR UPDATE", [grants[1].pk])
    worker = _billing_process(chunk_size=2)
    _kill_when_blocked(worker, blocker)

    cycle = Invoice.objects.filter(billing_reason="subscription_cycle").order_by("pk")
    assert [invoice.status for invoice in cycle] == ["open"] * 4 + ["draft"] * 2
    assert [invoice.number for invoice in cycle][4:] == [None, None]
    applied = CreditBalanceTransaction.objects.filter(reason="credits_applied")
    assert list(applied.values_list("grant_id", "amount")) == [(grants[0].pk, 3000)]

    rerun = _billing_process(chunk_size=2)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read()
    _assert_every_period_billed_once(subscriptions)
    assert sorted(applied.values_list("grant_id", "amount")) == sorted(
        (grant.pk, 3000) for grant in CreditGrant.objects.all()
    )
    credited = Invoice.objects.get(
        subscription=subscriptions[4], billing_reason="subscription_cycle"
    )
    assert (credited.total_credits, credited.amount_due) == (3000, 25000 - 3000)


@pytest.mark.postgres
def test_two_chunked_runs_with_a_poisoned_subscription_bill_the_rest_once(transactional_db):
    from catalog.models import Price
    from invoicing.models import BillingRunFailure

    _, subscriptions = _subscribed(9)
    poisoned = subscriptions[4]
    fee = poisoned.items.order_by("pk").first().price
    bad = licensed_price(unit_amount=100)
    poisoned.items.filter(price=fee).update(price=bad)
    Price.objects.filter(pk=bad.pk).update(unit_amount_decimal=None)

    workers = [_billing_process(chunk_size=3) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=180) == 0, worker.stderr.read()

    healthy = [s for s in subscriptions if s != poisoned]
    cycle = Invoice.objects.filter(billing_reason="subscription_cycle")
    assert sorted(cycle.values_list("subscription_id", flat=True)) == sorted(s.pk for s in healthy)
    assert all(invoice.status == "open" and invoice.total == 25000 for invoice in cycle)
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:04d}" for n in range(1, 18)]  # 9 first invoices + 8 renewals
    failures = BillingRunFailure.objects.all()
    assert {(f.subscription_id, f.step) for f in failures} == {(poisoned.pk, "close period")}
    assert 1 <= failures.count() <= 2  # each run that reached it records it


@pytest.mark.postgres
def test_chunks_and_single_drafts_finalizing_at_once_never_spend_a_credit_twice(
    transactional_db,
):
    from credits.models import CreditBalanceTransaction
    from credits.services import credit_grant_create
    from invoicing.services.billing_chunks import invoices_finalize_chunk
    from invoicing.services.billing_run import close_subscription_periods, finalize_due_draft

    customer = CustomerFactory()
    meter = MeterFactory()
    tokens = hypernian_usage_price(meter=meter)
    start = clock.now() - dt.timedelta(days=40)
    for amount, priority in ((7_000, 1), (4_000, 2)):
        credit_grant_create(
            customer=customer, amount=amount, currency="usd", category="paid", priority=priority
        )
    with clock.frozen_at(start):
        subscriptions = [
            subscription_create(customer=customer, items=[ItemInput(price=tokens)])
            for _ in range(8)
        ]
    with clock.frozen_at(start + dt.timedelta(days=10)):
        meter_events_ingest(
            events=[
                EventInput(
                    meter.event_name,
                    {"stripe_customer_id": customer.public_id, "value": "125000"},
                    "usage",
                    start + dt.timedelta(days=5),
                )
            ]
        )  # each subscription of the customer bills the same usage: 2,500 cents
    at = clock.now()
    for subscription in subscriptions:
        close_subscription_periods(subscription_id=subscription.pk, at=at)
    drafts = list(
        Invoice.objects.filter(status="draft").order_by("pk").values_list("pk", flat=True)
    )
    work = [
        lambda: invoices_finalize_chunk(invoice_ids=drafts[0:3], at=at),
        lambda: invoices_finalize_chunk(invoice_ids=drafts[3:6], at=at),
        lambda: finalize_due_draft(invoice_id=drafts[6], at=at),
        lambda: finalize_due_draft(invoice_id=drafts[7], at=at),
    ]
    barrier = threading.Barrier(len(work))
    errors = []

    def run(job):
        try:
            barrier.wait()
            job()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Invoice.objects.filter(status="draft").count() == 0
    applied = CreditBalanceTransaction.objects.filter(reason="credits_applied")
    assert sum(applied.values_list("amount", flat=True)) == 11_000  # of 20,000 of usage
    assert sum(Invoice.objects.filter(pk__in=drafts).values_list("amount_due", flat=True)) == 9_000
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:04d}" for n in range(1, 9)]
