"""The one list of due work: beat (CELERY_BEAT_SCHEDULE) and `run_billing` run the same jobs."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils.module_loading import import_string

from billing_site import clock
from billing_site.models import IdempotencyKey
from billing_site.services import api_key_create
from credits.models import CreditBalanceTransaction, CreditGrant
from credits.services import credit_grant_create, grant_balances
from metering.models import MeterEventIdentifier
from tests.factories import CustomerFactory, MeterFactory

pytestmark = pytest.mark.django_db

APPS = ["billing_site", "metering", "catalog", "credits", "invoicing"]
UTC = dt.UTC


def _periodic_tasks_in_apps() -> set[str]:
    """Every task in an app's tasks.py that takes `inline`: the apps' periodic jobs."""
    found = set()
    for app in APPS:
        try:
            module = importlib.import_module(f"{app}.tasks")
        except ModuleNotFoundError:
            continue
        for name, obj in vars(module).items():
            run = getattr(obj, "run", None)
            if run is not None and "inline" in inspect.signature(run).parameters:
                found.add(f"{app}.tasks.{name}")
    return found


def _run_like_beat() -> None:
    """What beat does once every job is due: call each scheduled task (eager without a broker)."""
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        import_string(entry["task"]).delay()


def test_every_periodic_job_is_scheduled_and_every_scheduled_task_is_a_periodic_job():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == _periodic_tasks_in_apps()
    # Each app that owns periodic work has its job in the list.
    assert {task.split(".")[0] for task in scheduled} == {
        "billing_site",
        "metering",
        "credits",
        "invoicing",
    }


def test_run_billing_runs_exactly_the_scheduled_tasks(monkeypatch):
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        task = import_string(entry["task"])

        def record(*args, _name=name, **kwargs):
            ran.append((_name, kwargs))
            return {}

        monkeypatch.setattr(task, "run", record)
    call_command("run_billing")
    assert ran == [(name, {"inline": True}) for name in settings.CELERY_BEAT_SCHEDULE]


def _expiring_grant(now: dt.datetime) -> CreditGrant:
    return credit_grant_create(
        customer=CustomerFactory(),
        amount=5000,
        currency="usd",
        category="promotional",
        effective_at=now,
        expires_at=now + dt.timedelta(days=1),
        now=now,
    )


def test_beat_expires_credit_grants_past_their_expiry():
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        grant = _expiring_grant(start)
    with clock.frozen_at(start + dt.timedelta(days=1, minutes=1)):
        _run_like_beat()
    grant.refresh_from_db()
    assert grant.expired_at == start + dt.timedelta(days=1)
    assert CreditBalanceTransaction.objects.filter(
        grant=grant, reason=CreditBalanceTransaction.Reason.CREDITS_EXPIRED, amount=5000
    ).exists()
    assert grant_balances([grant.pk])[grant.pk] == 0


def test_run_billing_purges_identifiers_and_idempotency_records_past_retention():
    now = dt.datetime(2026, 6, 1, tzinfo=UTC)
    meter = MeterFactory()
    for identifier, age in (("old", dt.timedelta(days=41)), ("recent", dt.timedelta(days=39))):
        MeterEventIdentifier.objects.create(
            meter=meter,
            identifier=identifier,
            customer_id=1,
            event_timestamp=now - age,
            received_at=now - age,
        )
    api_key, _ = api_key_create(name="purge")
    for key, age in (("old", dt.timedelta(hours=25)), ("recent", dt.timedelta(hours=23))):
        IdempotencyKey.objects.create(
            api_key=api_key,
            key=key,
            request_method="POST",
            request_path="/v1/customers",
            request_fingerprint="x" * 64,
            response_status=200,
            response_body={},
            created_at=now - age,
        )
    with clock.frozen_at(now):
        call_command("run_billing")
    assert list(MeterEventIdentifier.objects.values_list("identifier", flat=True)) == ["recent"]
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
