"""Celery beat runs the billing cycle; its schedules live in the database, editable in the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from billing_site import clock
from billing_site.celery import app
from invoicing.models import Invoice
from invoicing.services import ItemInput, subscription_create
from invoicing.tasks import billing_run_task
from metering.tasks import meter_event_maintenance_task
from tests.factories import CustomerFactory, licensed_price

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the scheduler closes stale connections itself
def test_beat_installs_the_billing_schedules_into_the_database():
    from django_celery_beat.schedulers import DatabaseScheduler

    DatabaseScheduler(app=app)
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert tasks["billing-run"] == "invoicing.tasks.billing_run_task"
    assert tasks["meter-event-maintenance"] == "metering.tasks.meter_event_maintenance_task"
    assert PeriodicTask.objects.get(name="billing-run").interval.every == 60


def test_the_billing_run_task_closes_and_finalizes_due_periods():
    price = licensed_price(unit_amount=1500)
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    with clock.frozen_at(start):
        subscription_create(customer=CustomerFactory(), items=[ItemInput(price=price)])
    with clock.frozen_at(start + dt.timedelta(days=30, minutes=30)):
        assert billing_run_task() == {"subscriptions": 1, "drafts": 0}
        assert Invoice.objects.get(billing_reason="subscription_cycle").status == "draft"
    with clock.frozen_at(start + dt.timedelta(days=30, hours=2)):
        assert billing_run_task() == {"subscriptions": 0, "drafts": 1}
        assert billing_run_task() == {"subscriptions": 0, "drafts": 0}
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (renewal.status, renewal.total) == ("open", 1500)


def test_meter_event_maintenance_task_runs():
    result = meter_event_maintenance_task()
    assert result["identifiers_purged"] == 0
