"""PostgreSQL and ClickHouse (chdb, in-process) side by side, on the same events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_stores \
        python bench/event_stores.py

1. Loads BENCH_EVENTS events (default 10 million; BENCH_EVENTS=100000000 for 100 million)
   for BENCH_CUSTOMERS customers (default 10,000) over one month into both stores, set-based:
   generate_series in PostgreSQL (with its hourly rollups), numbers() in ClickHouse (its
   materialized view builds the rollups). Same rows on both sides; the totals are compared.
2. Times, through each store's interface (`metering.store`): the usage of one customer's month
   (the preview's read), BENCH_READS times, and the GROUP BY for every customer's period in one
   `usage_many` (the billing run's read), BENCH_GROUP_READS times.
3. Times ingest through each store's `ingest` (claims, write, rollups; no HTTP), in batches of
   100 as the stream endpoint sends them: BENCH_INGEST_EVENTS events.

The PostgreSQL database is dropped and recreated; so is the chdb directory
(BENCH_CLICKHOUSE_DIR, default /tmp/billing_bench_chdb).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import time
from decimal import Decimal

from bench_db import recreate, setup_django

EVENTS = int(os.environ.get("BENCH_EVENTS", "10000000"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
READS = int(os.environ.get("BENCH_READS", "50"))
GROUP_READS = int(os.environ.get("BENCH_GROUP_READS", "5"))
INGEST_EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "20000"))
CLICKHOUSE_DIR = os.environ.get("BENCH_CLICKHOUSE_DIR", "/tmp/billing_bench_chdb")


def _setup(period_start: dt.datetime, period_end: dt.datetime):
    from django.core.management import call_command

    from billing_site import clock
    from invoicing.models import Customer
    from metering import services

    call_command("migrate", verbosity=0)
    call_command("clickhouse_migrate", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    with clock.frozen_at(period_start):
        meter = services.meter_create(
            event_name="bench_tokens", display_name="Bench tokens", formula="sum"
        )
        customers = Customer.objects.bulk_create(
            Customer(name=f"Bench {i}", created_at=period_start) for i in range(CUSTOMERS)
        )
    ids = sorted(customer.pk for customer in customers)
    assert ids[-1] - ids[0] + 1 == len(ids), "customer ids are not contiguous"
    return meter, ids


def _load_postgresql(meter, first_customer: int, start: dt.datetime, span: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metering_meterevent
                (meter_id, customer_id, identifier, value, "timestamp", received_at, payload)
            SELECT %s, %s + n %% %s, 'b-' || n, (n %% 1000) / 100.0,
                   %s + ((n * %s) / %s) * interval '1 second', %s, '{}'::jsonb
            FROM generate_series(0::bigint, %s - 1) AS n
            """,
            [meter.pk, first_customer, CUSTOMERS, start, span, EVENTS, start, EVENTS],
        )
        cursor.execute(
            """
            INSERT INTO metering_meterusagerollup
                (meter_id, customer_id, hour, value_sum, event_count, last_value,
                 last_timestamp, last_event_id)
            SELECT meter_id, customer_id, date_trunc('hour', "timestamp", 'UTC'), sum(value),
                   count(*), (array_agg(value ORDER BY "timestamp" DESC, id DESC))[1],
                   max("timestamp"), max(id)
            FROM metering_meterevent GROUP BY 1, 2, 3
            """
        )
        cursor.execute("ANALYZE metering_meterevent")
        cursor.execute("ANALYZE metering_meterusagerollup")
    return time.perf_counter() - started


def _load_clickhouse(meter, first_customer: int, start: dt.datetime, span: int) -> float:
    from metering.store.clickhouse.store import connect, moment_sql

    transport, schema = connect()
    started = time.perf_counter()
    transport.command(
        f"""INSERT INTO {schema.events}
            (meter_id, customer_id, timestamp, event_id, identifier, value, received_at,
             payload, sign)
        SELECT {meter.pk}, {first_customer} + number % {CUSTOMERS},
            {moment_sql(start)} + toIntervalSecond(intDiv(number * {span}, {EVENTS})),
            number + 1, concat('b-', toString(number)),
            toDecimal128(number % 1000, 12) / 100, {moment_sql(start)}, '{{}}', 1
        FROM numbers({EVENTS})"""
    )
    return time.perf_counter() - started


def _timed(call, times: int) -> list[float]:
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def _summary(durations: list[float]) -> str:
    ordered = sorted(durations)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered):8.1f} ms  p95 {p95:8.1f} ms"


def _ingest_rate(store, meter, customer_ids: list[int], now: dt.datetime) -> float:
    from metering.validation import ValidEvent

    events = [
        ValidEvent(
            index=n % 100,
            meter=meter,
            customer_id=customer_ids[n % len(customer_ids)],
            identifier=f"{store.name}-{n}",
            value=Decimal(n % 7),
            timestamp=now - dt.timedelta(seconds=n),
            payload={"value": str(n % 7)},
            received_at=now,
        )
        for n in range(INGEST_EVENTS)
    ]
    started = time.perf_counter()
    for first in range(0, len(events), 100):
        result = store.ingest(events[first : first + 100])
        assert len(result.accepted) == len(events[first : first + 100])
    return INGEST_EVENTS / (time.perf_counter() - started)


def main() -> None:
    recreate()
    shutil.rmtree(CLICKHOUSE_DIR, ignore_errors=True)
    os.environ["CLICKHOUSE_URL"] = f"chdb://{CLICKHOUSE_DIR}"
    setup_django("billing_site.settings.local")
    from billing_site import clock
    from metering.store import get_event_store

    now = clock.now().replace(microsecond=0)
    period_start = now.replace(day=1, hour=0, minute=0, second=0)
    period_end = (period_start + dt.timedelta(days=32)).replace(day=1)
    span = int((period_end - period_start).total_seconds())
    meter, customer_ids = _setup(period_start, period_end)
    stores = {
        "postgresql": get_event_store("postgresql"),
        "clickhouse": get_event_store("clickhouse"),
    }
    print(f"{EVENTS:,} events, {CUSTOMERS:,} customers, one month ({period_start:%Y-%m})")
    loads = {
        "postgresql": _load_postgresql(meter, customer_ids[0], period_start, span),
        "clickhouse": _load_clickhouse(meter, customer_ids[0], period_start, span),
    }
    # A period that doesn't start on the hour: both stores read two edges from raw events.
    start, end = period_start + dt.timedelta(minutes=7), period_end - dt.timedelta(minutes=7)
    pairs = [(meter, customer_id) for customer_id in customer_ids]
    answers = {
        name: store.usage_many(pairs=pairs, start=start, end=end) for name, store in stores.items()
    }
    assert answers["postgresql"] == answers["clickhouse"], "the stores disagree"
    total = sum(answers["postgresql"].values(), Decimal(0))
    print(f"both stores agree on all {CUSTOMERS:,} customers' usage (total {total})\n")
    one = customer_ids[len(customer_ids) // 2]
    print(f"{'':44}{'PostgreSQL':>30}{'ClickHouse (chdb)':>34}")
    rows = {}
    for name, store in stores.items():
        rows[name] = (
            f"{EVENTS / loads[name]:,.0f} events/s ({loads[name]:.1f} s)",
            _summary(
                _timed(
                    lambda s=store: s.usage(meter=meter, customer_id=one, start=start, end=end),
                    READS,
                )
            ),
            _summary(
                _timed(lambda s=store: s.usage_many(pairs=pairs, start=start, end=end), GROUP_READS)
            ),
            f"{_ingest_rate(store, meter, customer_ids, now):,.0f} events/s",
        )
    labels = [
        "bulk load, set-based (incl. hourly rollups)",
        "usage, one customer's month",
        f"usage_many, {CUSTOMERS:,} customers' periods",
        "ingest() in batches of 100 (claims + rollups)",
    ]
    for index, label in enumerate(labels):
        print(f"{label:44}{rows['postgresql'][index]:>30}{rows['clickhouse'][index]:>34}")


if __name__ == "__main__":
    main()
