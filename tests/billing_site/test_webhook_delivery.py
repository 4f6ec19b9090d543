"""Webhook delivery against a real HTTP receiver: retries, giving up, disabling, what a bad
receiver gets (a hang, a 500, a redirect, 10 MB), rolled secrets, and the outbound URL rules."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import stripe
from django.db import transaction

from billing_site import clock
from billing_site.events import endpoints
from billing_site.events.delivery import (
    webhook_deliveries_send_due,
    webhook_delivery_resend,
    webhook_endpoint_send_test,
)
from billing_site.events.selectors import failing_webhook_endpoints, latest_event_for
from billing_site.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from invoicing.services import customer_create, customer_update
from tests.billing_site.webhook_receiver import HANG, HUGE

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _endpoint(url: str, events=("*",)) -> WebhookEndpoint:
    return endpoints.webhook_endpoint_create(url=url, enabled_events=list(events))


def _send_due(seconds: float = 0):
    with clock.frozen_at(at(seconds)):
        return webhook_deliveries_send_due()


def _event_at(seconds: float = 0, name: str = "Acme"):
    with clock.frozen_at(at(seconds)):
        return customer_create(name=name)


def _attempts(delivery: WebhookDelivery) -> list[tuple]:
    return list(
        delivery.attempts.order_by("pk").values_list("response_status", "succeeded", "error")
    )


# --- retries, giving up, disabling -------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_same_event_again_until_it_answers_2xx(
    receiver, settings
):
    settings.BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS = [1, 2]
    endpoint = _endpoint(receiver.url)
    receiver.answer(500, 503, 200)
    _event_at(0)

    assert _send_due(0).webhook_attempts_failed == 1
    assert _send_due(0.5).webhook_attempts_failed == 0  # not due again yet
    assert _send_due(1).webhook_attempts_failed == 1  # 1 s after the first failure
    assert _send_due(2.5).webhooks_delivered == 0  # the second wait is 2 s
    assert _send_due(3).webhooks_delivered == 1

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count, delivery.delivered_at) == (
        "succeeded",
        3,
        at(3),
    )
    assert [(status, ok) for status, ok, _ in _attempts(delivery)] == [
        (500, False),
        (503, False),
        (200, True),
    ]
    assert _attempts(delivery)[0][2] == "HTTP 500: the receiver did not answer 2xx."
    # Every attempt carries the same event, each signed afresh.
    ids = {
        stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], endpoint.secret).id
        for r in receiver.requests
    }
    assert ids == {Event.objects.get().public_id}
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.status == "enabled"
    assert _send_due(60).webhooks_delivered == 0  # delivered: never sent again


def test_a_delivery_is_given_up_after_the_retry_window_and_the_endpoint_disabled(
    receiver, settings
):
    settings.BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS = [4]
    settings.BILLING_WEBHOOK_RETRY_WINDOW_SECONDS = 10
    settings.BILLING_WEBHOOK_DISABLE_AFTER_SECONDS = 8
    endpoint = _endpoint(receiver.url)
    receiver.answer(500, 500, 500, 500)
    _event_at(0)

    _send_due(0)
    _send_due(4)
    assert WebhookEndpoint.objects.get().status == "enabled"  # failing for 4 s only
    assert list(failing_webhook_endpoints()) == [endpoint]  # staff see it already
    summary = _send_due(8)
    # The next try would be at 12 s, past the 10 s window: given up.
    assert summary.webhook_deliveries_given_up == 1
    assert summary.webhook_endpoints_disabled == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == (
        "failed",
        3,
        None,
    )
    endpoint.refresh_from_db()
    assert (endpoint.status, endpoint.disabled_reason, endpoint.disabled_at) == (
        "disabled",
        "failing",
        at(8),
    )
    assert list(failing_webhook_endpoints()) == [endpoint]
    # A disabled endpoint gets nothing: no delivery for new events, nothing sent.
    _event_at(9, name="Later")
    _send_due(20)
    assert len(receiver.requests) == 3
    assert WebhookDelivery.objects.count() == 1


def test_an_endpoint_with_a_success_in_between_is_not_disabled(receiver, settings):
    settings.BILLING_WEBHOOK_RETRY_SCHEDULE_SECONDS = [100]
    settings.BILLING_WEBHOOK_DISABLE_AFTER_SECONDS = 8
    _endpoint(receiver.url)
    receiver.answer(500, 200, 500)
    _event_at(0, "a")
    _send_due(0)  # fails: failing since 0
    _event_at(5, "b")
    _send_due(5)  # succeeds: the streak ends
    _event_at(6, "c")
    _send_due(6)  # fails: failing since 6
    assert _send_due(12).webhook_endpoints_disabled == 0
    assert WebhookEndpoint.objects.get().failing_since == at(6)
    assert _send_due(14).webhook_endpoints_disabled == 1


def test_an_endpoint_disabled_through_the_api_receives_nothing_until_enabled(api, receiver):
    created = api.post(
        "/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["customer.created"]}
    ).json()
    disabled = api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": True}).json()
    assert disabled["status"] == "disabled"
    api.post("/v1/customers", {"name": "Unheard"})
    webhook_deliveries_send_due()
    assert receiver.requests == []
    assert WebhookDelivery.objects.count() == 0

    assert api.post(f"/v1/webhook_endpoints/{created['id']}", {"disabled": False}).json()[
        "status"
    ] == ("enabled")
    api.post("/v1/customers", {"name": "Heard"})
    webhook_deliveries_send_due()
    [request] = receiver.requests
    assert json.loads(request.body)["data"]["object"]["name"] == "Heard"


# --- receivers that misbehave ------------------------------------------------------------------


def test_a_receiver_that_hangs_times_out_and_the_change_that_caused_it_is_not_slowed(
    api, receiver, settings
):
    settings.BILLING_WEBHOOK_TIMEOUT_SECONDS = 1
    _endpoint(receiver.url)
    receiver.answer(HANG, HANG)
    started = time.monotonic()
    assert api.post("/v1/customers", {"name": "Fast"}).status_code == 200
    api.post("/v1/customers", {"name": "Also fast"})
    assert time.monotonic() - started < 1  # nothing is sent from the request

    started = time.monotonic()
    summary = webhook_deliveries_send_due()
    # Two hanging receivers cost one timeout, not two: they are waited for side by side.
    assert time.monotonic() - started < 1.8
    assert summary.webhook_attempts_failed == 2
    attempt = WebhookAttempt.objects.first()
    assert (attempt.response_status, attempt.error) == (None, "Timed out after 1 s.")
    assert attempt.latency_ms >= 1000
    assert WebhookDelivery.objects.filter(status="pending").count() == 2


def test_a_redirect_is_not_followed(receiver):
    _endpoint(receiver.url)
    receiver.answer(("redirect", receiver.url + "/elsewhere"))
    _event_at(0)
    _send_due(0)
    assert [r.path for r in receiver.requests] == ["/hooks"]
    attempt = WebhookAttempt.objects.get()
    assert (attempt.response_status, attempt.succeeded) == (302, False)
    assert attempt.error == (f"Redirects are not followed (HTTP 302 to {receiver.url}/elsewhere).")
    assert WebhookDelivery.objects.get().status == "pending"  # retried later


def test_a_huge_answer_is_read_only_up_to_the_cap(receiver, settings):
    _endpoint(receiver.url)
    receiver.answer(HUGE)
    _event_at(0)
    started = time.monotonic()
    _send_due(0)
    assert time.monotonic() - started < 5
    attempt = WebhookAttempt.objects.get()
    assert (attempt.response_status, attempt.succeeded, attempt.response_truncated) == (
        200,
        True,
        True,
    )
    assert attempt.response_body == "x" * 1024  # the first bytes, for the log
    assert settings.BILLING_WEBHOOK_RESPONSE_READ_BYTES == 64 * 1024


def test_a_receiver_that_is_not_listening_is_logged_as_unreachable(receiver):
    _endpoint(receiver.url)
    receiver.stop()
    _event_at(0)
    _send_due(0)
    attempt = WebhookAttempt.objects.get()
    assert attempt.response_status is None
    assert attempt.error == "Could not connect: the connection was refused or unreachable."


# --- signatures --------------------------------------------------------------------------------


def test_a_rolled_secret_signs_alongside_the_new_one_until_it_expires(receiver):
    with clock.frozen_at(at(0)):
        endpoint = _endpoint(receiver.url)
        old = endpoint.secret
        new = endpoints.webhook_endpoint_roll_secret(
            endpoint=endpoint, previous_valid_for=dt.timedelta(hours=1)
        )
    assert new != old and new.startswith("whsec_")
    _event_at(1)
    _send_due(1)
    request = receiver.requests[-1]
    header = request.headers["Stripe-Signature"]
    assert header.count("v1=") == 2
    for secret in (new, old):
        event = stripe.Webhook.construct_event(request.body, header, secret)
        assert event.type == "customer.created"
    # An hour later the old secret no longer signs.
    _event_at(3601, name="Later")
    _send_due(3601)
    header = receiver.requests[-1].headers["Stripe-Signature"]
    assert header.count("v1=") == 1
    stripe.Webhook.construct_event(receiver.requests[-1].body, header, new)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.requests[-1].body, header, old)


def test_staff_resend_and_test_send_are_logged_as_such(receiver):
    endpoint = _endpoint(receiver.url)
    receiver.answer(500)
    _event_at(0)
    _send_due(0)
    delivery = WebhookDelivery.objects.get()
    with clock.frozen_at(at(1)):
        resent = webhook_delivery_resend(delivery=delivery)
    assert (resent.trigger, resent.succeeded) == ("resend", True)
    assert WebhookDelivery.objects.get().status == "succeeded"

    other = _endpoint(receiver.url, events=["invoice.paid"])
    assert latest_event_for(other) is None  # nothing it listens to yet
    assert latest_event_for(endpoint) == Event.objects.get()
    with clock.frozen_at(at(2)):
        tried = webhook_endpoint_send_test(endpoint=other, event=Event.objects.get())
    assert (tried.trigger, tried.succeeded) == ("test", True)
    stripe.Webhook.construct_event(
        receiver.requests[-1].body, receiver.requests[-1].headers["Stripe-Signature"], other.secret
    )
    assert len(receiver.requests) == 3
    assert endpoint.deliveries.count() == other.deliveries.count() == 1


# --- the outbox --------------------------------------------------------------------------------


def test_a_change_that_rolls_back_leaves_no_event_and_sends_nothing(api, receiver):
    _endpoint(receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        customer = customer_create(name="Ghost")
        customer_update(customer=customer, name="Still a ghost")
        raise RuntimeError("the change failed after the events were recorded")
    # An API request refused after the service wrote (an unknown parameter) rolls back too.
    refused = api.post("/v1/customers", {"name": "Typo", "nmae": "x"})
    assert refused.status_code == 400
    assert Event.objects.count() == 0 and WebhookDelivery.objects.count() == 0
    webhook_deliveries_send_due()
    assert receiver.requests == []


@pytest.fixture
def with_a_broker():
    """Celery as configured with CELERY_BROKER_URL set: tasks go to the broker."""
    from billing_site.celery import app as celery_app

    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield celery_app
    celery_app.conf.task_always_eager = eager


def test_with_a_broker_one_task_per_delivery_is_queued_after_commit(
    api, receiver, monkeypatch, django_capture_on_commit_callbacks, with_a_broker
):
    celery_app = with_a_broker
    queued = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: queued.append((name, *args)))
    everything = _endpoint(receiver.url)
    customers = _endpoint(receiver.url, events=["customer.created"])
    _endpoint(receiver.url, events=["invoice.paid"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.post("/v1/customers", {"name": "Queued"})
        assert queued == []  # nothing before commit
    for callback in callbacks:
        callback()
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert {d.endpoint_id for d in deliveries} == {everything.pk, customers.pk}
    assert sorted(queued) == [("billing_site.tasks.deliver_webhook_task", d.pk) for d in deliveries]
    assert receiver.requests == []  # the workers send, not the request

    with django_capture_on_commit_callbacks(execute=True):
        api.post("/v1/customers", {"name": "Refused", "unknown": "x"})
    assert len(queued) == 2


# --- the outbound URL rules --------------------------------------------------------------------


@pytest.fixture
def production_rules(settings):
    settings.BILLING_WEBHOOK_ALLOW_LOCAL_URLS = False
    settings.BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    return settings


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/stripe", "webhook endpoints must use HTTPS"),
        ("ftp://hooks.example.com/", "use an https:// URL"),
        ("https://user:secret@hooks.example.com/", "credentials in the URL"),
        ("https://127.0.0.1:8443/hooks", "127.0.0.1, a loopback address"),
        ("https://localhost/hooks", "a loopback address"),
        ("https://[::1]/hooks", "::1, a loopback address"),
        ("https://10.1.2.3/hooks", "10.1.2.3, a private address"),
        ("https://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        ("https://[::ffff:169.254.169.254]/", "a cloud metadata address"),
        ("https://0.0.0.0/", "not a routable unicast address"),
    ],
)
def test_production_rules_refuse_unsafe_urls_naming_why(api, production_rules, url, message):
    response = api.post("/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "url" and message in error["message"], error
    assert WebhookEndpoint.objects.count() == 0


def test_private_addresses_are_allowed_by_a_setting_but_metadata_addresses_never(
    production_rules,
):
    production_rules.BILLING_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert _endpoint("https://10.1.2.3/hooks").url == "https://10.1.2.3/hooks"
    with pytest.raises(endpoints.outbound.UnsafeUrl, match="link-local"):
        _endpoint("https://169.254.10.20/hooks")
    production_rules.BILLING_WEBHOOK_ALLOW_LOCAL_URLS = True
    with pytest.raises(endpoints.outbound.UnsafeUrl, match="metadata"):
        _endpoint("http://169.254.169.254/")


def test_the_rules_are_checked_again_before_each_delivery(receiver, settings):
    _endpoint(receiver.url)  # allowed under the local rules
    _event_at(0)
    settings.BILLING_WEBHOOK_ALLOW_LOCAL_URLS = False  # as if DNS now pointed somewhere else
    _send_due(0)
    assert receiver.requests == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.error == "Invalid URL: webhook endpoints must use HTTPS (https://...)."


def test_unknown_event_types_are_refused_naming_the_bad_one(api, receiver):
    response = api.post(
        "/v1/webhook_endpoints",
        {"url": receiver.url, "enabled_events": ["invoice.paid", "invoice.exploded"]},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "enabled_events[1]"
    assert "'invoice.exploded' is not an event type" in error["message"]
    missing = api.post("/v1/webhook_endpoints", {"url": receiver.url})
    assert missing.json()["error"]["param"] == "enabled_events"
