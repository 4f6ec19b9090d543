"""Delivery with a broker: Redis and a real Celery worker (in this process, in a thread).

Runs where Redis listens on 127.0.0.1:6379 (CI and the development machines do), otherwise
skips saying so. The worker has its own queue, so test runs sharing that Redis don't meet.
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest
import stripe
from celery import Celery
from celery.contrib.testing.worker import start_worker

from billing_site.events import endpoints, recording
from billing_site.models import WebhookAttempt, WebhookDelivery
from invoicing.services import customer_create

REDIS = ("127.0.0.1", 6379)
BROKER_URL = "redis://127.0.0.1:6379/14"


def _redis_is_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not _redis_is_up(), reason="needs Redis at 127.0.0.1:6379 (CI has it)"),
]


@pytest.fixture
def worker(monkeypatch):
    """The project's Celery configuration pointed at Redis, with a worker consuming it.
    `record_event` queues through this app, as it does through the real one when
    CELERY_BROKER_URL is set."""
    from billing_site.celery import app as project_app

    queue = f"webhooks-test-{uuid.uuid4().hex}"
    app = Celery("billing_site_broker_test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=BROKER_URL,
        task_always_eager=False,
        task_default_queue=queue,
        task_ignore_result=True,
        broker_connection_retry_on_startup=False,
    )
    import billing_site.tasks  # noqa: F401  (its shared tasks join every app)

    app.finalize()
    assert "billing_site.tasks.deliver_webhook_task" in app.tasks
    monkeypatch.setattr(recording, "celery_app", app)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        # The test worker made its app the current one; the rest of the suite runs eagerly.
        project_app.set_current()
        project_app.set_default()
    import redis

    connection = redis.Redis.from_url(BROKER_URL)
    connection.delete(queue, *connection.keys(f"_kombu.binding.{queue}*"))


def _wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the worker did not deliver in time"
        time.sleep(0.05)


def test_a_worker_delivers_each_event_once_queued_at_commit(worker, receiver):
    endpoint = endpoints.webhook_endpoint_create(url=receiver.url, enabled_events=["*"])
    started = time.monotonic()
    customer = customer_create(name="Brokered")
    # The change returned at once: the POST happens in the worker.
    assert time.monotonic() - started < 1
    _wait_for(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    event = stripe.Webhook.construct_event(
        request.body, request.headers["Stripe-Signature"], endpoint.secret
    )
    assert (event.type, event.data.object.id) == ("customer.created", customer.public_id)
    _wait_for(lambda: WebhookDelivery.objects.filter(status="succeeded").exists())
    assert WebhookAttempt.objects.get().succeeded
    time.sleep(0.3)
    assert len(receiver.requests) == 1


def test_a_failed_attempt_is_left_for_the_periodic_job_to_retry(worker, receiver, settings):
    settings.BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS = [0]
    endpoints.webhook_endpoint_create(url=receiver.url, enabled_events=["customer.created"])
    receiver.answer(500)
    customer_create(name="Retried")
    _wait_for(lambda: WebhookAttempt.objects.count() == 1)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None

    # Beat's job queues the due retry to the worker.
    from billing_site.tasks import deliver_webhooks_task

    assert deliver_webhooks_task.run(inline=False)["webhook_deliveries_queued"] == 1
    _wait_for(lambda: WebhookDelivery.objects.get().status == "succeeded")
    assert [r.headers["Stripe-Signature"] != "" for r in receiver.requests] == [True, True]
