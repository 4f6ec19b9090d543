"""Database side of the ingest benchmark: create the bench database, seed it, verify counts.

    python bench/bench_db.py recreate   # DROP + CREATE the database named in DATABASE_URL
    python bench/bench_db.py seed OUT_DIR  # meters, customers, an API key -> OUT_DIR/seed.json
    python bench/bench_db.py sql "SQL"  # run one statement (experiments: drop an index...)
    python bench/bench_db.py counts     # JSON: event rows per run prefix, rollup totals

Runs with the production settings and the DATABASE_URL of the benchmark (see ingest.sh).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
METERS = [("bench_api_calls", "sum"), ("bench_tokens", "sum")]
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMER_COUNT", "1000"))


def recreate() -> None:
    """DROP and CREATE the database named in DATABASE_URL (the benchmarks start empty)."""
    import psycopg
    from psycopg import sql

    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = urlunsplit((url.scheme, url.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"created database {name}")


def setup_django(settings: str = "billing_site.settings.production") -> None:
    """Django set up from the project root, with `settings` unless DJANGO_SETTINGS_MODULE says
    otherwise (bench/billing.py uses it too)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import django

    django.setup()


def seed(out_dir: str) -> None:
    setup_django()
    from billing_site import clock
    from billing_site.services import api_key_create
    from invoicing.models import Customer
    from metering import services

    for event_name, formula in METERS:
        services.meter_create(event_name=event_name, display_name=event_name, formula=formula)
    now = clock.now()
    customers = Customer.objects.bulk_create(
        [Customer(name=f"Bench customer {i}", created_at=now) for i in range(CUSTOMERS)]
    )
    _, secret = api_key_create(name="bench-ingest")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "customers.txt").write_text("".join(c.public_id + "\n" for c in customers))
    (out / "seed.json").write_text(
        json.dumps({"api_key": secret, "meters": [name for name, _ in METERS]})
    )
    print(f"seeded {len(METERS)} meters, {len(customers)} customers, 1 API key")


def counts() -> None:
    setup_django()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT split_part(identifier, '-', 1), count(*) FROM metering_meterevent GROUP BY 1"
        )
        by_run = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM metering_meterevent")
        (events,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM metering_metereventidentifier")
        (identifiers,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(sum(event_count), 0) FROM metering_meterusagerollup")
        (rolled_up,) = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT coalesce(sum(value), 0) FROM metering_meterevent) "
            "= (SELECT coalesce(sum(value_sum), 0) FROM metering_meterusagerollup)"
        )
        (sums_match,) = cursor.fetchone()
    print(
        json.dumps(
            {
                "by_run": by_run,
                "events": events,
                "identifiers": identifiers,
                "rollup_event_count": int(rolled_up),
                "rollup_sums_match": sums_match,
            }
        )
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "recreate":
        recreate()
    elif command == "seed":
        seed(*args)
    elif command == "sql":
        setup_django()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(args[0])
    elif command == "counts":
        counts()
    else:
        sys.exit(__doc__)
