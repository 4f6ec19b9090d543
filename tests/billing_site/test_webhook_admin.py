"""Events and webhook endpoints in the admin (issue 11, item 5): creating an endpoint shows its
secret once; enable, disable, roll and test go through confirmation pages; only superusers
reveal a secret; the event page shows the JSON and every attempt, with Resend; viewers read
and operators act; the dashboard lists failing endpoints."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from billing_site import clock
from billing_site.events import endpoints
from billing_site.events.delivery import webhook_deliveries_send_due
from billing_site.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from invoicing.services import customer_create, customer_update
from tests.admin_pages import element, section, text

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/billing_site/webhookendpoint/"
EVENTS = "/admin/billing_site/event/"
T0 = dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)


def page(endpoint: WebhookEndpoint, action: str = "change") -> str:
    return f"{ENDPOINTS}{endpoint.pk}/{action}/"


def action_page(endpoint: WebhookEndpoint, slug: str) -> str:
    return page(endpoint, f"actions/{slug}")


def event_page(event: Event) -> str:
    return f"{EVENTS}{event.pk}/change/"


def resend(client, delivery: WebhookDelivery, method: str = "post"):
    url = f"{EVENTS}{delivery.event_id}/resend/"
    return getattr(client, method)(url, {"delivery": delivery.pk})


def field_errors(response, field: str) -> list[str]:
    return response.context["adminform"].form.errors.get(field, [])


def no_secret_leaves(response, secret: str) -> bool:
    return all(secret not in morsel.value for morsel in response.cookies.values())


@pytest.fixture
def endpoint(receiver) -> WebhookEndpoint:
    return endpoints.webhook_endpoint_create(url=receiver.url, enabled_events=["*"])


@pytest.fixture
def failed_delivery(endpoint, receiver) -> WebhookDelivery:
    """customer.created sent once to `endpoint`, answered 500 (so retried later)."""
    with clock.frozen_at(T0):
        customer_create(name="Acme")
        receiver.answer(500)
        webhook_deliveries_send_due()
    return WebhookDelivery.objects.get()


# --- Creating: the secret once, bad input next to its field --------------------------------------


def test_an_operator_creates_an_endpoint_and_sees_its_secret_once(client, operator, receiver):
    response = client.post(
        f"{ENDPOINTS}add/",
        {
            "url": receiver.url,
            "description": "Provisioning service",
            "enabled_events": ["customer.created", "invoice.paid"],
        },
    )

    assert response.status_code == 200  # the page itself, not a redirect to a message
    endpoint = WebhookEndpoint.objects.get()
    secret = response.context["secret"]
    assert secret == endpoint.secret and secret.startswith("whsec_")
    assert f'value="{secret}"' in response.content.decode()
    assert "this is the only time it is shown" in text(response)
    assert "no-store" in response["Cache-Control"]
    assert no_secret_leaves(response, secret) and "messages" not in response.cookies
    assert (endpoint.enabled_events, endpoint.description, endpoint.status) == (
        ["customer.created", "invoice.paid"],
        "Provisioning service",
        "enabled",
    )
    later = client.get(page(endpoint))
    assert secret not in later.content.decode()
    assert "Reveal secret" not in text(later)  # operators can't; they roll instead
    entry = LogEntry.objects.get(object_id=str(endpoint.pk))
    assert entry.action_flag == ADDITION and secret not in entry.change_message

    # The secret shown is the one deliveries are signed with.
    customer_create(name="Acme")
    webhook_deliveries_send_due()
    delivered = receiver.requests[-1]
    event = stripe.Webhook.construct_event(
        delivered.body, delivered.headers["Stripe-Signature"], secret
    )
    assert event.type == "customer.created"


def test_all_events_sends_every_type_including_later_ones(client, operator, receiver):
    client.post(f"{ENDPOINTS}add/", {"url": receiver.url, "all_events": "on"})

    assert WebhookEndpoint.objects.get().enabled_events == ["*"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"enabled_events": ["invoice.paid", "invoice.exploded"]},
            "enabled_events",
            "'invoice.exploded' is not an event type this server sends",
        ),
        ({}, "enabled_events", "at least one event type, or '*' for every event"),
        (
            {"url": "http://user:pw@127.0.0.1:9/hooks", "all_events": "on"},
            "url",
            "credentials in the URL (user:password@) aren't allowed",
        ),
        (
            {"url": "https://169.254.169.254/latest/meta-data", "all_events": "on"},
            "url",
            "resolves to 169.254.169.254",
        ),
    ],
)
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_saved(
    client, operator, receiver, fields, field, message
):
    response = client.post(f"{ENDPOINTS}add/", {"url": receiver.url, **fields})

    assert response.status_code == 200
    assert any(message in error for error in field_errors(response, field)), field_errors(
        response, field
    )
    assert "Please correct the error below." in text(response)
    assert WebhookEndpoint.objects.count() == 0


def test_production_rules_refuse_plain_http_and_loopback_urls(client, operator, settings):
    settings.BILLING_WEBHOOK_ALLOW_LOCAL_URLS = False

    plain = client.post(f"{ENDPOINTS}add/", {"url": "http://example.com/x", "all_events": "on"})
    loopback = client.post(f"{ENDPOINTS}add/", {"url": "https://127.0.0.1/x", "all_events": "on"})

    assert "must use HTTPS" in field_errors(plain, "url")[0]
    assert "resolves to 127.0.0.1" in field_errors(loopback, "url")[0]
    assert WebhookEndpoint.objects.count() == 0


def test_an_operator_changes_the_events_through_the_service(client, operator, endpoint):
    refused = client.post(
        page(endpoint), {"url": endpoint.url, "enabled_events": ["customer.exploded"]}
    )
    assert "'customer.exploded' is not an event type" in field_errors(refused, "enabled_events")[0]
    assert WebhookEndpoint.objects.get().enabled_events == ["*"]

    changed = client.post(
        page(endpoint),
        {"url": endpoint.url, "description": "CRM", "enabled_events": ["customer.updated"]},
    )

    assert changed.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.enabled_events, endpoint.description) == (["customer.updated"], "CRM")


# --- Roles -------------------------------------------------------------------------------------


def test_a_viewer_reads_endpoints_and_events_but_cannot_act(
    client, viewer, endpoint, failed_delivery
):
    assert client.get(ENDPOINTS).status_code == 200
    endpoint_page = client.get(page(endpoint))
    assert endpoint_page.status_code == 200
    assert 'name="url"' not in endpoint_page.content.decode()  # read-only
    assert "Roll secret" not in text(endpoint_page) and "Reveal secret" not in text(endpoint_page)
    event_response = client.get(event_page(failed_delivery.event))
    assert event_response.status_code == 200
    assert "Resend" not in text(event_response)

    assert client.get(f"{ENDPOINTS}add/").status_code == 403
    for action in ("disable", "roll-secret", "send-test"):
        assert client.get(action_page(endpoint, action)).status_code == 403
        assert client.post(action_page(endpoint, action), {"post": "yes"}).status_code == 403
    assert client.post(page(endpoint, "reveal-secret")).status_code == 403
    assert resend(client, failed_delivery).status_code == 403
    assert client.post(page(endpoint, "delete"), {"post": "yes"}).status_code == 403

    assert WebhookEndpoint.objects.get().is_enabled
    assert WebhookAttempt.objects.count() == 1


def test_an_unknown_action_or_endpoint_is_refused_as_on_other_object_pages(
    client, operator, endpoint
):
    assert client.get(action_page(endpoint, "explode")).status_code == 403
    missing = client.get(f"{ENDPOINTS}999999/actions/disable/")
    assert (missing.status_code, missing["Location"]) == (302, "/admin/")


def test_only_superusers_see_and_use_reveal_secret(client, operator, admin_client, endpoint):
    assert client.post(page(endpoint, "reveal-secret")).status_code == 403

    superuser_page = admin_client.get(page(endpoint))
    assert "Reveal secret" in section(superuser_page, "endpoint-secret")
    assert endpoint.secret not in superuser_page.content.decode()
    assert admin_client.get(page(endpoint, "reveal-secret")).status_code == 405  # POST only

    revealed = admin_client.post(page(endpoint, "reveal-secret"))

    assert revealed.context["secret"] == endpoint.secret
    assert "no-store" in revealed["Cache-Control"]
    assert no_secret_leaves(revealed, endpoint.secret)
    entry = LogEntry.objects.get(object_id=str(endpoint.pk))
    assert (entry.action_flag, entry.change_message) == (CHANGE, "Revealed the signing secret.")


def test_deleting_an_endpoint_needs_the_delete_permission_and_says_what_goes(
    client, operator, admin_client, endpoint, failed_delivery
):
    assert client.get(page(endpoint, "delete")).status_code == 403  # operators don't delete

    confirmation = admin_client.get(page(endpoint, "delete"))
    assert "Deliveries (one per event sent): 1" in text(confirmation)
    assert "Attempts (their log): 1" in text(confirmation)
    admin_client.post(page(endpoint, "delete"), {"post": "yes"})

    assert WebhookEndpoint.objects.count() == WebhookAttempt.objects.count() == 0
    assert Event.objects.count() == 1  # events stay


# --- Enable, disable, roll, test: confirmation pages --------------------------------------------


def test_disable_and_enable_ask_first_then_change_the_endpoint(client, operator, endpoint):
    endpoint_page = client.get(page(endpoint))
    assert "Disable" in element(endpoint_page, "content-main")

    confirmation = client.get(action_page(endpoint, "disable"))
    assert "receives nothing" in section(confirmation, "action-explanation")
    assert WebhookEndpoint.objects.get().is_enabled  # only asked so far

    done = client.post(action_page(endpoint, "disable"), {"post": "yes"})

    assert done.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.status, endpoint.disabled_reason) == ("disabled", "manual")
    customer_create(name="Not sent")
    assert WebhookDelivery.objects.count() == 0  # a disabled endpoint receives nothing
    assert "already disabled" in text(client.get(action_page(endpoint, "disable")))

    client.post(action_page(endpoint, "enable"), {"post": "yes"})
    assert WebhookEndpoint.objects.get().is_enabled
    messages = list(
        LogEntry.objects.filter(object_id=str(endpoint.pk))
        .order_by("pk")
        .values_list("change_message", flat=True)
    )
    assert messages == ["Disabled.", "Enabled."]


def test_endpoints_are_disabled_from_the_list_after_confirmation(client, operator, endpoint):
    action = {"action": "disable_endpoints", "_selected_action": [endpoint.pk]}

    confirmation = client.post(ENDPOINTS, action)
    assert "Disable webhook endpoints: are you sure?" in text(confirmation)
    assert WebhookEndpoint.objects.get().is_enabled

    client.post(ENDPOINTS, {**action, "post": "yes"})
    assert not WebhookEndpoint.objects.get().is_enabled


def test_rolling_the_secret_shows_the_new_one_once_and_keeps_the_old_one_for_the_hours_chosen(
    client, operator, endpoint, receiver
):
    old = endpoint.secret
    refused = client.post(action_page(endpoint, "roll-secret"), {"previous_valid_for_hours": "25"})
    assert field_errors(refused, "previous_valid_for_hours")
    assert "Nothing has been saved." in text(refused)
    assert WebhookEndpoint.objects.get().secret == old

    with clock.frozen_at(T0):
        rolled = client.post(
            action_page(endpoint, "roll-secret"), {"previous_valid_for_hours": "2"}
        )

    assert rolled.status_code == 200
    new = rolled.context["secret"]
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (new, old) and new != old
    assert endpoint.previous_secret_expires_at == T0 + dt.timedelta(hours=2)
    assert "this is the only time it is shown" in text(rolled)
    assert "no-store" in rolled["Cache-Control"] and no_secret_leaves(rolled, new)
    entry = LogEntry.objects.get(object_id=str(endpoint.pk))
    assert entry.change_message.startswith("Rolled the signing secret; the old one keeps")
    assert new not in entry.change_message and old not in entry.change_message

    # Both secrets sign until the old one expires.
    with clock.frozen_at(T0 + dt.timedelta(minutes=5)):
        customer_create(name="Acme")
        webhook_deliveries_send_due()
    body, header = receiver.requests[-1].body, receiver.signature()
    for secret in (new, old):
        stripe.Webhook.construct_event(body, header, secret)


def test_a_test_event_is_sent_after_confirmation_and_logged_as_a_test(
    client, operator, endpoint, failed_delivery, receiver
):
    confirmation = client.get(action_page(endpoint, "send-test"))
    assert failed_delivery.event.public_id in section(confirmation, "endpoint-summary")

    done = client.post(action_page(endpoint, "send-test"), {"post": "yes"})

    assert done.status_code == 302
    attempt = WebhookAttempt.objects.get(trigger="test")
    assert attempt.succeeded and attempt.response_status == 200
    assert "HTTP 200" in text(client.get(done.url))  # the message, and the attempt log
    assert LogEntry.objects.get(object_id=str(endpoint.pk)).change_message.startswith(
        f"Test event customer.created ({failed_delivery.event.public_id}) sent"
    )


def test_send_test_says_when_there_is_no_event_to_send(client, operator, endpoint):
    response = client.get(action_page(endpoint, "send-test"))

    assert "no event this endpoint listens to has been recorded yet" in text(response)
    client.post(action_page(endpoint, "send-test"), {"post": "yes"})
    assert WebhookAttempt.objects.count() == 0


# --- Events: list, page, resend -----------------------------------------------------------------


def test_the_event_page_shows_the_object_the_change_the_request_and_every_attempt(
    client, operator, api, endpoint, receiver
):
    created = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="create-acme-1")
    public_id = created.json()["id"]
    with clock.frozen_at(T0):
        api.post(f"/v1/customers/{public_id}", {"name": "Acme Robotics"})
        receiver.answer(503)
        webhook_deliveries_send_due()
    created_event = Event.objects.get(type="customer.created")
    updated_event = Event.objects.get(type="customer.updated")

    created_page = client.get(event_page(created_event))
    assert "create-acme-1" in text(created_page)  # the request's idempotency key
    assert created_event.request_id in text(created_page)
    updated_page = client.get(event_page(updated_event))
    assert '"name": "Acme Robotics"' in section(updated_page, "event-object")  # pretty-printed
    assert '"name": "Acme"' in section(updated_page, "event-previous-attributes")
    deliveries = section(updated_page, "event-deliveries")
    assert receiver.url in deliveries and "Pending" in deliveries
    assert "HTTP 503: the receiver did not answer 2xx." in deliveries
    assert "Resend" in deliveries


def test_resend_posts_the_event_again_and_adds_an_attempt(
    client, operator, failed_delivery, receiver
):
    assert resend(client, failed_delivery, "get").status_code == 405  # POST only
    other_event = customer_create(name="Other")  # a delivery id must belong to the event
    other = Event.objects.get(object_id=other_event.public_id)
    wrong = client.post(f"{EVENTS}{other.pk}/resend/", {"delivery": failed_delivery.pk})
    assert wrong.status_code == 404

    response = resend(client, failed_delivery)

    assert response.status_code == 302
    assert response.url.endswith(f"#delivery-{failed_delivery.pk}")
    failed_delivery.refresh_from_db()
    assert failed_delivery.status == "succeeded"
    attempts = list(failed_delivery.attempts.order_by("pk").values_list("trigger", "succeeded"))
    assert attempts == [("automatic", False), ("resend", True)]
    assert len(receiver.requests) == 2
    entry = LogEntry.objects.get(object_id=str(failed_delivery.event_id))
    assert entry.change_message.startswith(f"Resent {failed_delivery.event.public_id} to")
    assert "Resent by staff" in section(client.get(response.url), "event-deliveries")


def test_the_event_list_filters_by_type_delivery_and_searches_by_ids(
    client, viewer, endpoint, receiver
):
    with clock.frozen_at(T0):
        customer = customer_create(name="Acme")  # customer.created, delivered below
        webhook_deliveries_send_due()
        receiver.answer(500)
        customer_update(customer=customer, name="Acme Robotics")  # fails once, retried later
        webhook_deliveries_send_due()
        endpoints.webhook_endpoint_disable(endpoint=endpoint)
        other = customer_create(name="Nobody listens")  # sent to no endpoint

    def listed(query: str) -> set[str]:
        response = client.get(f"{EVENTS}?{query}")
        assert response.status_code == 200
        return {event.type + ":" + event.object_id for event in response.context["cl"].result_list}

    acme = customer.public_id
    assert listed("delivery=failed") == {f"customer.updated:{acme}"}
    assert listed("delivery=pending") == {f"customer.updated:{acme}"}
    assert listed("delivery=delivered") == {f"customer.created:{acme}"}
    assert listed("delivery=none") == {f"customer.created:{other.public_id}"}
    assert listed("type=customer.updated") == {f"customer.updated:{acme}"}
    assert listed(f"q={acme}") == {f"customer.created:{acme}", f"customer.updated:{acme}"}
    first = Event.objects.order_by("pk").first()
    assert listed(f"q={first.public_id}") == {f"customer.created:{acme}"}
    summary = text(client.get(EVENTS))
    assert "1 succeeded" in summary and "1 pending" in summary and "No endpoint" in summary


def test_the_endpoint_list_shows_status_events_and_the_last_attempt(
    client, viewer, endpoint, failed_delivery
):
    response = client.get(f"{ENDPOINTS}?health=failing")

    assert list(response.context["cl"].result_list) == [endpoint]
    row = text(response)
    assert "All events" in row and "Enabled" in row
    assert "2026-05-04 12:00 failed (HTTP 500)" in row
    assert list(client.get(f"{ENDPOINTS}?health=ok").context["cl"].result_list) == []


# --- The dashboard --------------------------------------------------------------------------


def test_the_dashboard_counts_failing_endpoints_and_links_to_them(
    admin_client, endpoint, failed_delivery
):
    healthy = endpoints.webhook_endpoint_create(url=endpoint.url + "/ok", enabled_events=["*"])
    with clock.frozen_at(T0 + dt.timedelta(hours=5)):
        response = admin_client.get("/admin/")

    card = element(response, "card-failing-webhooks")
    assert f'<a href="{ENDPOINTS}?health=failing">1</a>' in card
    assert endpoint.url in card and "failing for 5 h" in card
    assert healthy.url + "<" not in card

    endpoints.webhook_endpoint_enable(endpoint=endpoint)  # fixed: the streak starts over
    assert "Every webhook endpoint is delivering." in section(
        admin_client.get("/admin/"), "card-failing-webhooks"
    )
