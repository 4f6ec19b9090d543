"""Billing benchmark on PostgreSQL: period close + finalize at scale, and preview latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_cycle python bench/billing.py

1. Creates SUBSCRIPTIONS customers, each on the Hypernian plan (a flat fee plus a graduated
   metered price) with usage in the period, then times the billing run that closes every period
   and finalizes every invoice, with WORKERS processes side by side (as Celery workers would).
2. Gives one customer 10 million events in the current period (generated in SQL, with their
   hourly rollups), then times the upcoming-invoice preview through the API stack (Django test
   client: URL routing, auth, the preview service, serialisation; no network), PREVIEWS times.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import statistics
import time
from urllib.parse import urlencode

from bench_db import recreate, setup_django

SUBSCRIPTIONS = int(os.environ.get("BENCH_SUBSCRIPTIONS", "10000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
PREVIEW_EVENTS = int(os.environ.get("BENCH_PREVIEW_EVENTS", "10000000"))
PREVIEWS = int(os.environ.get("BENCH_PREVIEWS", "200"))


def _django() -> None:
    setup_django("billing_site.settings.local")


def _setup(period_start: dt.datetime) -> None:
    from django.core.management import call_command

    from billing_site import clock
    from catalog.models import Price
    from invoicing.demo import seed_catalog
    from invoicing.models import Customer
    from invoicing.services import ItemInput, subscription_create
    from metering.ingest import meter_events_ingest
    from metering.validation import EventInput

    call_command("migrate", verbosity=0)
    seed_catalog()
    fee = Price.objects.get(lookup_key="hypernian_monthly_fee")
    tokens = Price.objects.get(lookup_key="hypernian_api_tokens")
    started = time.perf_counter()
    with clock.frozen_at(period_start):
        customers = Customer.objects.bulk_create(
            Customer(name=f"Bench {i}", created_at=period_start) for i in range(SUBSCRIPTIONS)
        )
        for customer in customers:
            subscription_create(
                customer=customer, items=[ItemInput(price=fee), ItemInput(price=tokens)]
            )
    with clock.frozen_at(period_start + dt.timedelta(days=20)):
        for first in range(0, len(customers), 100):
            meter_events_ingest(
                events=[
                    EventInput(
                        "hypernian_api_tokens",
                        {"stripe_customer_id": customer.public_id, "value": str(90000 + i * 7)},
                        f"bench-{customer.pk}",
                        period_start + dt.timedelta(days=10, seconds=i),
                    )
                    for i, customer in enumerate(customers[first : first + 100])
                ]
            )
    print(
        f"setup: {SUBSCRIPTIONS} subscriptions with usage in {time.perf_counter() - started:.1f} s"
    )


def _close_worker(args) -> tuple[int, int]:
    ids, at = args
    _django()
    from django.db import connection

    from invoicing.services.billing_run import close_subscription_periods

    connection.close()
    closed = sum(close_subscription_periods(subscription_id=pk, at=at) for pk in ids)
    return closed, len(ids)


def _finalize_worker(args) -> int:
    ids, at = args
    _django()
    from django.db import connection

    from invoicing.services.billing_run import finalize_due_draft

    connection.close()
    return sum(finalize_due_draft(invoice_id=pk, at=at) for pk in ids)


def _billing_run(run_at: dt.datetime) -> dict:
    from django.db import connection

    from invoicing.models import Invoice
    from invoicing.services.billing_run import due_draft_ids, due_subscription_ids

    subscription_ids = due_subscription_ids(at=run_at)
    connection.close()
    chunks = [subscription_ids[i::WORKERS] for i in range(WORKERS)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        closed = sum(c for c, _ in pool.map(_close_worker, [(chunk, run_at) for chunk in chunks]))
        close_seconds = time.perf_counter() - started
        draft_ids = due_draft_ids(at=run_at)
        connection.close()
        drafts = [draft_ids[i::WORKERS] for i in range(WORKERS)]
        finalized = sum(pool.map(_finalize_worker, [(chunk, run_at) for chunk in drafts]))
    total = time.perf_counter() - started
    numbers = sorted(
        int(number.split("-")[1])
        for number in Invoice.objects.exclude(number=None).values_list("number", flat=True)
    )
    return {
        "closed": closed,
        "finalized": finalized,
        "close_s": close_seconds,
        "finalize_s": total - close_seconds,
        "total_s": total,
        "gapless": numbers == list(range(1, len(numbers) + 1)),
        "invoices": len(numbers),
    }


def _seed_heavy_customer(period_start: dt.datetime, now: dt.datetime):
    """10 million events for one customer in the current period, written straight in SQL.

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
    body = first.json()
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
        "max_ms": timings[-1],
        "amount_due": body["amount_due"],
        "usage_line": [line for line in body["lines"]["data"] if "usage" in line["description"]],
    }


def main() -> None:
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database (it is dropped and recreated).")
    recreate()
    _django()
    from billing_site import clock

    now = clock.now().replace(microsecond=0)
    period_start = (now - dt.timedelta(days=31)).replace(hour=0, minute=0, second=0)
    _setup(period_start)
    run_at = now + dt.timedelta(hours=3)
    result = _billing_run(run_at)
    print(
        f"billing run: closed {result['closed']} periods in {result['close_s']:.1f} s, "
        f"finalized {result['finalized']} invoices in {result['finalize_s']:.1f} s, "
        f"total {result['total_s']:.1f} s with {WORKERS} worker processes "
        f"(goal <= 30 s); numbers gapless: {result['gapless']} ({result['invoices']} invoices)"
    )
    heavy_start = now.replace(day=1, hour=0, minute=0, second=0)
    if (now - heavy_start) < dt.timedelta(days=2):
        heavy_start -= dt.timedelta(days=20)
    customer, subscription = _seed_heavy_customer(heavy_start, now)
    latency = _preview_latency(customer, subscription)
    usage = latency["usage_line"][0]
    print(
        f"preview with {PREVIEW_EVENTS:,} events in the period: p50 {latency['p50_ms']:.1f} ms, "
        f"p95 {latency['p95_ms']:.1f} ms, max {latency['max_ms']:.1f} ms over {PREVIEWS} "
        f"requests (goal p95 <= 50 ms); usage so far {usage['quantity_decimal']} tokens = "
        f"{usage['amount']} cents"
    )


if __name__ == "__main__":
    main()
