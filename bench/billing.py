"""Billing benchmark on PostgreSQL: the set-based billing run at scale, and preview latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_cycle python bench/billing.py

1. Sets up BENCH_SUBSCRIPTIONS customers (default 10,000; up to 100,000) set-based (bulk
   inserts, not one service call per row, so 100,000 take minutes): half on the Hypernian plan
   (a 200 USD fee plus graduated tokens, with its first invoice finalized and numbered), half on
   Alpaca AI (package-priced tokens); usage through the ingest service (events and hourly
   rollups), and a credit grant for one customer in BENCH_GRANT_EVERY.
2. Times the billing run as Celery runs it: the due subscriptions in chunks of
   BILLING_RUN_CHUNK_SIZE, BENCH_WORKERS processes taking chunks side by side; first every
   close, then every finalize. Prints close, finalize, total, per subscription, the peak RSS of
   a worker process, and checks the outcome (every period billed once, numbers gapless, credits
   within the grants).
3. Gives one customer BENCH_PREVIEW_EVENTS events (10 million; 0 skips it) in the current
   period and times the upcoming-invoice preview through the API stack, BENCH_PREVIEWS times.

The figures print as issue 14's table: measured, required and goal.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import resource
import statistics
import time
from urllib.parse import urlencode

from bench_db import recreate, setup_django

SUBSCRIPTIONS = int(os.environ.get("BENCH_SUBSCRIPTIONS", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
GRANT_EVERY = int(os.environ.get("BENCH_GRANT_EVERY", "10"))
PREVIEW_EVENTS = int(os.environ.get("BENCH_PREVIEW_EVENTS", "10000000"))
PREVIEWS = int(os.environ.get("BENCH_PREVIEWS", "200"))
BATCH = 2000

# Issue 14's budgets, per subscription: 30 s (goal 10 s) for 10,000, 5 min (goal 100 s) for
# 100,000 are both 3 ms (goal 1 ms) a subscription.
REQUIRED_MS, GOAL_MS = 3.0, 1.0
# Measured on this machine before the set-based run (`make bench-billing`, 10,000).
BEFORE = {10000: "418 s (close 237, finalize 182)"}


def _django() -> None:
    setup_django("billing_site.settings.local")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# --- set-based setup --------------------------------------------------------------------------


def _setup(period_start: dt.datetime) -> None:
    from django.core.management import call_command
    from django.db import transaction

    from billing_site import clock
    from catalog.models import Price
    from invoicing.demo import seed_catalog
    from invoicing.models import Customer

    call_command("migrate", verbosity=0)
    seed_catalog()
    prices = {
        key: Price.objects.select_related("product", "meter")
        .prefetch_related("tiers")
        .get(lookup_key=key)
        for key in ("hypernian_monthly_fee", "hypernian_api_tokens", "alpaca_ai_tokens")
    }
    started = time.perf_counter()
    with clock.frozen_at(period_start):
        for first in range(0, SUBSCRIPTIONS, BATCH):
            count = min(BATCH, SUBSCRIPTIONS - first)
            with transaction.atomic():
                customers = Customer.objects.bulk_create(
                    Customer(name=f"Bench {first + i}", created_at=period_start)
                    for i in range(count)
                )
                _subscribe(customers, first, prices, period_start)
                _grant(customers, first, period_start)
    subscribed = time.perf_counter()
    _usage(period_start)
    print(
        f"setup: {SUBSCRIPTIONS:,} subscriptions in {subscribed - started:.1f} s, their usage "
        f"in {time.perf_counter() - subscribed:.1f} s"
    )


def _subscribe(customers, first: int, prices, period_start: dt.datetime) -> None:
    """What `subscription_create` writes, in bulk: subscriptions, items, and for the plan with
    a fee its first invoice (the fee in advance, finalized, numbered)."""
    from django.conf import settings

    from invoicing.models import (
        Invoice,
        InvoiceLineItem,
        InvoiceNumberSequence,
        Subscription,
        SubscriptionItem,
    )
    from invoicing.periods import period_containing
    from invoicing.services.lines import PlanItem, line_items, plan_period_lines

    period = period_containing(period_start, "month", 1, period_start)
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            customer=customer,
            currency="USD",
            interval="month",
            interval_count=1,
            billing_cycle_anchor=period_start,
            current_period_start=period.start,
            current_period_end=period.end,
            created_at=period_start,
        )
        for customer in customers
    )
    plans = [
        ["hypernian_monthly_fee", "hypernian_api_tokens"]
        if (first + i) % 2 == 0
        else ["alpaca_ai_tokens"]
        for i in range(len(subscriptions))
    ]
    items = SubscriptionItem.objects.bulk_create(
        SubscriptionItem(subscription=s, price=prices[key], quantity=1, created_at=period_start)
        for s, plan in zip(subscriptions, plans, strict=True)
        for key in plan
    )
    fees = [item for item in items if not item.price.is_metered]
    prefix = settings.BILLING_INVOICE_NUMBER_PREFIX
    sequence, _ = InvoiceNumberSequence.objects.select_for_update().get_or_create(prefix=prefix)
    invoices, lines = [], []
    for offset, item in enumerate(fees):
        invoice = Invoice(
            customer_id=item.subscription.customer_id,
            subscription=item.subscription,
            billing_period_key="create",
            billing_reason=Invoice.BillingReason.SUBSCRIPTION_CREATE,
            currency="USD",
            status=Invoice.Status.OPEN,
            number=f"{prefix}-{sequence.next_number + offset:04d}",
            period_start=period.start,
            period_end=period.end,
            created_at=period_start,
            finalized_at=period_start,
        )
        planned = plan_period_lines(
            items=[PlanItem.of(item)], usage_period=None, usage={}, fee_period=period
        )
        rows = line_items(invoice, planned, at=period_start)
        invoice.subtotal = invoice.total = invoice.amount_due = sum(r.amount for r in rows)
        invoices.append(invoice)
        lines.extend(rows)
    Invoice.objects.bulk_create(invoices)
    InvoiceLineItem.objects.bulk_create(lines)
    sequence.next_number += len(invoices)
    sequence.save(update_fields=["next_number"])


def _grant(customers, first: int, period_start: dt.datetime) -> None:
    """One customer in GRANT_EVERY gets 50.00 USD of promotional credits for all usage."""
    from credits.models import CreditBalanceTransaction as T
    from credits.models import CreditGrant

    grants = CreditGrant.objects.bulk_create(
        CreditGrant(
            customer=customer,
            name="Bench credits",
            currency="USD",
            amount=5000,
            category=CreditGrant.Category.PROMOTIONAL,
            applies_to_all_metered=True,
            effective_at=period_start,
            created_at=period_start,
            updated_at=period_start,
        )
        for i, customer in enumerate(customers)
        if (first + i) % GRANT_EVERY == 0
    )
    T.objects.bulk_create(
        T(
            grant=grant,
            customer_id=grant.customer_id,
            type=T.Type.CREDIT,
            reason=T.Reason.CREDITS_GRANTED,
            amount=grant.amount,
            effective_at=period_start,
            created_at=period_start,
        )
        for grant in grants
    )


def _usage(period_start: dt.datetime) -> None:
    """Two events per customer, hours apart, through the ingest service (events, identifiers
    and hourly rollups as the API writes them)."""
    from billing_site import clock
    from invoicing.models import Subscription
    from metering.ingest import meter_events_ingest
    from metering.validation import EventInput

    rows = list(
        Subscription.objects.order_by("pk").values_list(
            "customer__public_id", "items__price__lookup_key"
        )
    )
    metered = [(customer, key) for customer, key in rows if key != "hypernian_monthly_fee"]
    events = [
        EventInput(
            key,
            {"stripe_customer_id": customer, "value": str(45000 + (i * 7) % 20000)},
            f"bench-{i}-{half}",
            period_start + dt.timedelta(days=10, hours=half * 5, seconds=i % 3600),
        )
        for i, (customer, key) in enumerate(metered)
        for half in (0, 1)
    ]
    with clock.frozen_at(period_start + dt.timedelta(days=20)):
        for first in range(0, len(events), BATCH):
            result = meter_events_ingest(events=events[first : first + BATCH])
            assert not result.rejected, result.rejected[:3]


# --- the billing run --------------------------------------------------------------------------


def _close_worker(args) -> tuple[int, float]:
    chunk, at = args
    from invoicing.services.billing_run import close_chunk

    return close_chunk(subscription_ids=chunk, at=at), _peak_rss_mb()


def _finalize_worker(args) -> tuple[int, float]:
    chunk, at = args
    from invoicing.services.billing_run import finalize_chunk

    return finalize_chunk(invoice_ids=chunk, at=at), _peak_rss_mb()


def _worker_init() -> None:
    from django.db import connection

    connection.close()  # each worker process opens its own connection


def _billing_run(run_at: dt.datetime) -> dict:
    from django.db import connection

    from invoicing.services.billing_run import chunked, due_draft_ids, due_subscription_ids

    subscription_ids = due_subscription_ids(at=run_at)
    connection.close()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(WORKERS, initializer=_worker_init) as pool:
        work = [(chunk, run_at) for chunk in chunked(subscription_ids)]
        closes = pool.map(_close_worker, work, chunksize=1)
        close_seconds = time.perf_counter() - started
        draft_ids = due_draft_ids(at=run_at)
        connection.close()
        work = [(chunk, run_at) for chunk in chunked(draft_ids)]
        finals = pool.map(_finalize_worker, work, chunksize=1)
    total = time.perf_counter() - started
    return {
        "closed": sum(closed for closed, _ in closes),
        "finalized": sum(finalized for finalized, _ in finals),
        "close_s": close_seconds,
        "finalize_s": total - close_seconds,
        "total_s": total,
        "worker_rss_mb": max(rss for _, rss in closes + finals),
        **_check(),
    }


def _check() -> dict:
    from django.db.models import Count, Sum

    from credits.models import CreditBalanceTransaction as T
    from invoicing.models import Invoice

    numbers = sorted(
        int(number.split("-")[1])
        for number in Invoice.objects.exclude(number=None).values_list("number", flat=True)
    )
    per_period = Invoice.objects.filter(billing_reason="subscription_cycle").aggregate(
        invoices=Count("pk"), subscriptions=Count("subscription", distinct=True)
    )
    spent = T.objects.filter(reason=T.Reason.CREDITS_APPLIED).aggregate(s=Sum("amount"))["s"]
    granted = T.objects.filter(reason=T.Reason.CREDITS_GRANTED).aggregate(s=Sum("amount"))["s"]
    return {
        "gapless": numbers == list(range(1, len(numbers) + 1)),
        "invoices": len(numbers),
        "once_per_period": per_period["invoices"] == per_period["subscriptions"] == SUBSCRIPTIONS,
        "credits_spent": spent or 0,
        "credits_granted": granted or 0,
    }


# --- preview latency --------------------------------------------------------------------------


def _seed_heavy_customer(period_start: dt.datetime, now: dt.datetime):
    """PREVIEW_EVENTS events for one customer in the current period, written straight in SQL.

    The ingest path would take minutes; this fixture writes the same rows and rollups the ingest
    path writes, in one statement each.
    """
    from django.db import connection

    from billing_site import clock
    from catalog.models import Price
    from invoicing.models import Customer
    from invoicing.services import ItemInput, subscription_create
    from metering.models import Meter

    fee = Price.objects.get(lookup_key="hypernian_monthly_fee")
    tokens = Price.objects.get(lookup_key="hypernian_api_tokens")
    customer = Customer.objects.create(name="Heavy user", created_at=period_start)
    with clock.frozen_at(period_start):
        subscription = subscription_create(
            customer=customer, items=[ItemInput(price=fee), ItemInput(price=tokens)]
        )
    meter = Meter.objects.get(event_name="hypernian_api_tokens")
    span = (now - period_start).total_seconds()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metering_meterevent
                (meter_id, customer_id, identifier, value, "timestamp", received_at, payload)
            SELECT %s, %s, 'heavy-' || n, 3, %s + (n * %s / %s) * interval '1 second', %s,
                   '{}'::jsonb
            FROM generate_series(1, %s) AS n
            """,
            [meter.pk, customer.pk, period_start, span, PREVIEW_EVENTS, now, PREVIEW_EVENTS],
        )
        cursor.execute(
            """
            INSERT INTO metering_meterusagerollup
                (meter_id, customer_id, hour, value_sum, event_count, last_value,
                 last_timestamp, last_event_id)
            SELECT meter_id, customer_id, date_trunc('hour', "timestamp", 'UTC'), sum(value),
                   count(*), (array_agg(value ORDER BY "timestamp" DESC, id DESC))[1],
                   max("timestamp"), max(id)
            FROM metering_meterevent WHERE customer_id = %s GROUP BY 1, 2, 3
            """,
            [customer.pk],
        )
        cursor.execute("ANALYZE metering_meterevent")
    seconds = time.perf_counter() - started
    print(f"setup: {PREVIEW_EVENTS:,} events for one customer in {seconds:.1f} s")
    return customer, subscription


def _preview_latency(customer, subscription) -> dict:
    from django.test import Client

    from billing_site.services import api_key_create

    _, secret = api_key_create(name="bench preview")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    payload = urlencode({"customer": customer.public_id, "subscription": subscription.public_id})
    form = "application/x-www-form-urlencoded"
    first = client.post("/v1/invoices/create_preview", payload, content_type=form)
    assert first.status_code == 200, first.content
    timings = []
    for _ in range(PREVIEWS):
        started = time.perf_counter()
        response = client.post("/v1/invoices/create_preview", payload, content_type=form)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    timings.sort()
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[int(len(timings) * 0.95) - 1],
    }


# --- the report -------------------------------------------------------------------------------


def _table(result: dict, preview: dict | None) -> str:
    n = SUBSCRIPTIONS
    per_sub_ms = result["total_s"] * 1000 / n
    rows = [
        ("measure", "before", "measured", "required", "goal"),
        ("---",) * 5,
        (
            f"close + finalize {n:,} subscriptions",
            BEFORE.get(n, "—"),
            f"**{result['total_s']:.1f} s** (close {result['close_s']:.1f}, finalize "
            f"{result['finalize_s']:.1f})",
            f"≤ {n * REQUIRED_MS / 1000:,.0f} s",
            f"≤ {n * GOAL_MS / 1000:,.0f} s",
        ),
        ("per subscription", "—", f"{per_sub_ms:.2f} ms", f"≤ {REQUIRED_MS} ms", f"≤ {GOAL_MS} ms"),
        (
            f"billing run memory (peak RSS of a worker, {n:,} subscriptions)",
            "—",
            f"{result['worker_rss_mb']:.0f} MB",
            "≤ 500 MB",
            "≤ 200 MB",
        ),
    ]
    if preview:
        rows.append(
            (
                f"preview p95, {PREVIEW_EVENTS:,} events in the period",
                "19 ms",
                f"{preview['p95_ms']:.1f} ms (p50 {preview['p50_ms']:.1f})",
                "≤ 50 ms",
                "≤ 20 ms",
            )
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def main() -> None:
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database (it is dropped and recreated).")
    recreate()
    _django()
    from django.conf import settings

    from billing_site import clock

    now = clock.now().replace(microsecond=0)
    period_start = (now - dt.timedelta(days=31)).replace(hour=0, minute=0, second=0)
    _setup(period_start)
    run_at = now + dt.timedelta(hours=3)
    result = _billing_run(run_at)
    ok = result["gapless"] and result["once_per_period"]
    ok = ok and result["credits_spent"] <= result["credits_granted"]
    print(
        f"billing run: closed {result['closed']:,} periods in {result['close_s']:.1f} s, "
        f"finalized {result['finalized']:,} invoices in {result['finalize_s']:.1f} s, total "
        f"{result['total_s']:.1f} s ({result['total_s'] * 1000 / SUBSCRIPTIONS:.2f} ms a "
        f"subscription) with {WORKERS} worker processes, chunks of "
        f"{settings.BILLING_RUN_CHUNK_SIZE}; peak RSS of a worker {result['worker_rss_mb']:.0f} "
        f"MB; numbers gapless: {result['gapless']} ({result['invoices']:,} invoices), one "
        f"invoice per period: {result['once_per_period']}, credits spent "
        f"{result['credits_spent']:,} of {result['credits_granted']:,} cents granted"
    )
    preview = None
    if PREVIEW_EVENTS:
        heavy_start = now.replace(day=1, hour=0, minute=0, second=0)
        if (now - heavy_start) < dt.timedelta(days=2):
            heavy_start -= dt.timedelta(days=20)
        customer, subscription = _seed_heavy_customer(heavy_start, now)
        preview = _preview_latency(customer, subscription)
    print()
    print(_table(result, preview))
    if not ok:
        raise SystemExit("The billing run's outcome is wrong (see the line above).")


if __name__ == "__main__":
    main()
