"""Two billing workers at once on PostgreSQL: one invoice per period, gapless numbers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
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
