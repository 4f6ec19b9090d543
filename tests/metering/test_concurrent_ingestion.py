"""Exactly-once under real concurrency: several processes send the same identifiers at once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from billing_site import clock
from metering.models import MeterEvent, MeterEventIdentifier, MeterUsageRollup
from metering.store import usage
from tests.factories import CustomerFactory, MeterFactory
from tests.metering.reference_usage import usage_from_events

SENDER = textwrap.dedent(
    """
    import json, sys, requests
    url, secret, batches = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
    token = requests.post(
        f"{url}/v2/billing/meter_event_session",
        headers={"Authorization": f"Bearer {secret}"}, timeout=60,
    ).json()["authentication_token"]
    accepted = 0
    for batch in batches:
        response = requests.post(
            f"{url}/v2/billing/meter_event_stream", json={"events": batch},
            headers={"Authorization": f"Bearer {token}"}, timeout=60,
        )
        response.raise_for_status()
        accepted += response.json()["accepted"]
    print(accepted)
    """
)


@pytest.mark.postgres
def test_the_same_identifiers_from_several_processes_are_counted_once(
    live_server, transactional_db
):
    from billing_site.services import api_key_create

    _, secret = api_key_create(name="concurrency")
    meter = MeterFactory()
    customers = [CustomerFactory() for _ in range(3)]
    now = clock.now()
    events = [
        {
            "event_name": meter.event_name,
            "identifier": f"evt-{i}",
            "timestamp": (now - dt.timedelta(minutes=i % 90)).isoformat(),
            "payload": {"stripe_customer_id": customers[i % 3].public_id, "value": "2.5"},
        }
        for i in range(400)
    ]
    batches = [events[i : i + 100] for i in range(0, 400, 100)]
    senders = []
    for number in range(4):
        # Each process sends every batch, in its own order, so the same rows collide.
        order = batches[number:] + batches[:number]
        process = subprocess.Popen(
            [sys.executable, "-c", SENDER, live_server.url, secret],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process.stdin.write(json.dumps(order))
        process.stdin.close()
        senders.append(process)
    accepted = []
    for process in senders:
        assert process.wait(timeout=120) == 0, process.stderr.read()
        accepted.append(int(process.stdout.read()))

    assert sum(accepted) == 400
    assert MeterEvent.objects.count() == 400
    assert MeterEventIdentifier.objects.count() == 400
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(minutes=1)
    for customer in customers:
        expected = Decimal("2.5") * sum(1 for i in range(400) if i % 3 == customers.index(customer))
        fast = usage(meter=meter, customer_id=customer.pk, start=start, end=end)
        assert fast == expected
        assert usage_from_events(meter=meter, customer_id=customer.pk, start=start, end=end) == fast
    assert sum(r.event_count for r in MeterUsageRollup.objects.filter(meter=meter)) == 400
