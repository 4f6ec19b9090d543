"""A worker killed mid-request must not leave its Idempotency-Key "in progress" for 24 hours.

Run on PostgreSQL with a real second process: it starts a customer update that blocks on a row
lock, is killed with SIGKILL, and the client's retries then behave as documented: 409 while the
request could still be running, taken over (and applied once) after the staleness window.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from billing_site import clock
from billing_site.models import IdempotencyKey
from billing_site.services import api_key_create
from invoicing.models import Customer
from tests.factories import CustomerFactory

PROJECT_ROOT = Path(__file__).resolve().parents[2]

REQUEST_IN_ANOTHER_PROCESS = """
import django, sys
django.setup()
from django.test import Client
Client().post(
    "/v1/customers/" + sys.argv[1],
    "name=Renamed",
    content_type="application/x-www-form-urlencoded",
    HTTP_AUTHORIZATION="Bearer " + sys.argv[2],
    HTTP_IDEMPOTENCY_KEY="rename-1",
)
"""


def _database_url() -> str:
    database = connection.settings_dict
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.postgres
def test_a_retry_takes_over_a_request_whose_worker_was_killed(transactional_db, client):
    _, secret = api_key_create(name="sdk")
    customer = CustomerFactory(name="Original")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "HTTP_IDEMPOTENCY_KEY": "rename-1"}

    # Hold the customer's row lock from a third connection, so the request blocks mid-way.
    with psycopg.connect(_database_url(), autocommit=False) as blocker:
        blocker.execute(
            f"SELECT 1 FROM {Customer._meta.db_table} WHERE id = %s FOR UPDATE", [customer.pk]
        )
        worker = subprocess.Popen(
            [sys.executable, "-c", REQUEST_IN_ANOTHER_PROCESS, customer.public_id, secret],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "DATABASE_URL": _database_url(),
                "DJANGO_SETTINGS_MODULE": "billing_site.settings.test",
            },
        )
        _wait_for(lambda: IdempotencyKey.objects.filter(key="rename-1").exists())
        time.sleep(0.3)  # the handler is now waiting for the lock
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        blocker.rollback()

    record = IdempotencyKey.objects.get(key="rename-1")
    assert record.response_status is None  # what the killed worker left behind
    customer.refresh_from_db()
    assert customer.name == "Original"  # its transaction died with it

    path = f"/v1/customers/{customer.public_id}"
    body = "name=Renamed"
    form = "application/x-www-form-urlencoded"
    # Within the staleness window the first request might still be running: 409, retryable.
    busy = client.post(path, body, content_type=form, **headers)
    assert busy.status_code == 409
    assert busy.json()["error"]["type"] == "idempotency_error"

    later = record.created_at + dt.timedelta(seconds=settings.BILLING_STALE_REQUEST_SECONDS + 1)
    with clock.frozen_at(later):
        taken_over = client.post(path, body, content_type=form, **headers)
        replayed = client.post(path, body, content_type=form, **headers)
    assert taken_over.status_code == 200, taken_over.content
    assert taken_over.json()["name"] == "Renamed"
    assert replayed.status_code == 200
    assert replayed["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.get(key="rename-1").response_status == 200
    customer.refresh_from_db()
    assert customer.name == "Renamed"


@pytest.mark.django_db
def test_a_stale_record_is_taken_over_by_one_retry_only(api):
    first = api.post("/v1/customers", {"name": "A"}, idempotency_key="k-stale")
    assert first.status_code == 200
    record = IdempotencyKey.objects.get(key="k-stale")
    # Pretend the first request never finished (its worker died) long ago.
    IdempotencyKey.objects.filter(pk=record.pk).update(
        response_status=None, response_body=None, created_at=clock.now() - dt.timedelta(hours=1)
    )
    retry = api.post("/v1/customers", {"name": "A"}, idempotency_key="k-stale")
    assert retry.status_code == 200
    assert retry.json()["id"] != first.json()["id"]  # the lost request was run again, once
    again = api.post("/v1/customers", {"name": "A"}, idempotency_key="k-stale")
    assert again.json()["id"] == retry.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
