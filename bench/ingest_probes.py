"""The ingest benchmark's calibration and latency probes (run by bench/run_ingest.py).

    python bench/ingest_probes.py fold SECONDS CHUNK STREAMS   # the fold ceiling, JSON
    python bench/ingest_probes.py visibility SECONDS BASE_URL API_KEY   # p50/p99, JSON

`fold`: what PostgreSQL itself can fold, with no web server: each stream COPYs CHUNK events
into a temporary staging table and runs the event store's own set-based statement
(`metering.store.postgresql.FOLD`: claim identifiers, insert events, upsert rollups) over it,
one transaction per chunk, for SECONDS. The events have the shape the load generator sends
(the seeded meters and customers in rotation, unique identifiers, timestamped now).

`visibility`: how long after the accepting response an event counts in `usage()`. Under the
benchmark's load it sends one event at a time for a customer and meter of its own, alternately
through the stream and the single-event endpoint, and polls `usage()` until the event counts.

Both run with the benchmark's DATABASE_URL and settings (see run_ingest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_db import METERS, setup_django

STAGING = """
CREATE TEMPORARY TABLE incoming (
    meter_id bigint, identifier varchar(100), customer_id bigint, value numeric,
    ts timestamptz, payload jsonb, received_at timestamptz
) ON COMMIT DELETE ROWS
"""


def fold(seconds: float, chunk: int, streams: int) -> dict:
    setup_django()
    import psycopg
    from django.db import connection

    from metering.store.postgresql import FOLD

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM metering_meter WHERE event_name = ANY(%s) ORDER BY id",
            [[name for name, _ in METERS]],
        )
        meter_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT id, public_id FROM invoicing_customer ORDER BY id")
        customers = cursor.fetchall()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # The rows as the lua scripts rotate them: every (customer, meter) pair, varying values.
    rows = [
        (meter_id, customer_id, (i * 7 + j) % 50 + 1, public_id)
        for i, (customer_id, public_id) in enumerate(customers, start=1)
        for j, meter_id in enumerate(meter_ids, start=1)
    ]
    statement = "WITH " + FOLD  # it answers one row per stored event
    errors: list[BaseException] = []
    folded = [0] * streams

    def stream(number: int) -> None:
        try:
            fold_stream(number)
        except BaseException as exc:
            errors.append(exc)
            raise

    def fold_stream(number: int) -> None:
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(STAGING)
            position, batch = (number * 997) % len(rows), 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                now = dt.datetime.now(dt.UTC).isoformat()
                lines = []
                for k in range(chunk):
                    meter_id, customer_id, value, public_id = rows[(position + k) % len(rows)]
                    payload = f'{{"stripe_customer_id": "{public_id}", "value": "{value}"}}'
                    lines.append(
                        f"{meter_id}\tc-{number}-{batch}-{k}\t{customer_id}\t{value}\t{now}\t"
                        f"{payload}\t{now}\n"
                    )
                position, batch = (position + chunk) % len(rows), batch + 1
                with conn.transaction(), conn.cursor() as cursor:
                    with cursor.copy("COPY incoming FROM STDIN") as copy:
                        copy.write("".join(lines))
                    cursor.execute(statement)
                    folded[number] += cursor.rowcount

    started = time.monotonic()
    threads = [threading.Thread(target=stream, args=(n,)) for n in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        raise SystemExit(f"fold ceiling failed: {errors[0]!r}")
    return {"events": sum(folded), "seconds": elapsed, "events_per_s": sum(folded) / elapsed}


def visibility(seconds: float, base: str, api_key: str) -> dict:
    setup_django()
    from billing_site import clock
    from invoicing.models import Customer
    from metering import services
    from metering.store import usage

    now = clock.now()
    meter = services.meter_create(
        event_name=f"bench_probe_{int(time.time())}", display_name="probe", formula="sum"
    )
    customer = Customer.objects.create(name="Bench probe", created_at=now)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=1)
    token = _post(base, "/v2/billing/meter_event_session", api_key, b"", "")["authentication_token"]
    payload = {"stripe_customer_id": customer.public_id, "value": "1"}
    lags: dict[str, list[float]] = {"batch": [], "single": []}
    deadline = time.monotonic() + seconds
    expected, number = 0, 0
    while time.monotonic() < deadline:
        number += 1
        identifier = f"v-{number}"
        if number % 2:
            kind = "batch"
            event = {"event_name": meter.event_name, "identifier": identifier, "payload": payload}
            body = json.dumps({"events": [event]}).encode()
            answer = _post(base, "/v2/billing/meter_event_stream", token, body, "application/json")
            accepted = answer.get("accepted") == 1
        else:
            kind = "single"
            body = (
                f"event_name={meter.event_name}&identifier={identifier}"
                f"&payload[stripe_customer_id]={customer.public_id}&payload[value]=1"
            ).encode()
            form = "application/x-www-form-urlencoded"
            accepted = (
                _post(base, "/v1/billing/meter_events", api_key, body, form).get("identifier")
                == identifier
            )
        accepted_at = time.monotonic()
        if not accepted:
            raise SystemExit(f"visibility probe: event {identifier} was not accepted")
        expected += 1
        while usage(meter=meter, customer_id=customer.pk, start=start, end=end) < expected:
            if time.monotonic() - accepted_at > 30:
                raise SystemExit(f"visibility probe: {identifier} not visible after 30 s")
            time.sleep(0.001)
        lags[kind].append(time.monotonic() - accepted_at)
        time.sleep(0.05)
    every = lags["batch"] + lags["single"]
    return {
        "probes": len(every),
        **{f"{kind}_p99_ms": _p99(values) * 1000 for kind, values in lags.items()},
        "p50_ms": statistics.median(every) * 1000,
        "p99_ms": _p99(every) * 1000,
        "max_ms": max(every) * 1000,
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def _post(base: str, path: str, token: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(base + path, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "fold":
        print(json.dumps(fold(float(args[0]), int(args[1]), int(args[2]))))
    elif command == "visibility":
        print(json.dumps(visibility(float(args[0]), args[1], args[2])))
    else:
        sys.exit(__doc__)
