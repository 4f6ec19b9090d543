"""`GET /v1/events` (Stripe's filters and pagination) and `/v1/webhook_endpoints`."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_site import clock
from billing_site.events.delivery import webhook_deliveries_send_due
from billing_site.models import Event, WebhookEndpoint
from invoicing.services import customer_create, customer_update
from tests.billing_site.event_shapes import assert_event_shape, assert_stripe_shape
from tests.helpers import error_body, ok_body

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T0 = dt.datetime(2026, 5, 1, tzinfo=UTC)


def _types(response) -> list[str]:
    return [event["type"] for event in ok_body(response)["data"]]


@pytest.fixture
def history():
    """Four events a day apart: customer created, updated, created, updated."""
    for day, name in enumerate(["Acme", "Globex"]):
        with clock.frozen_at(T0 + dt.timedelta(days=2 * day)):
            customer = customer_create(name=name)
        with clock.frozen_at(T0 + dt.timedelta(days=2 * day + 1)):
            customer_update(customer=customer, name=f"{name} Inc.")
    return list(Event.objects.order_by("pk"))


def test_events_are_listed_newest_first_with_stripe_pagination(api, history):
    page = ok_body(api.get("/v1/events", {"limit": 3}))
    assert [e["id"] for e in page["data"]] == [e.public_id for e in reversed(history[1:])]
    assert (page["has_more"], page["url"]) == (True, "/v1/events")
    rest = ok_body(api.get("/v1/events", {"starting_after": page["data"][-1]["id"]}))
    assert [e["id"] for e in rest["data"]] == [history[0].public_id]
    for event in page["data"] + rest["data"]:
        assert_event_shape(event)
    assert ok_body(api.get(f"/v1/events/{history[0].public_id}")) == rest["data"][0]
    missing = error_body(api.get("/v1/events/evt_missing"), 404)
    assert missing["message"] == "No such event: 'evt_missing'"


def test_events_filter_by_type_types_and_created(api, history):
    assert _types(api.get("/v1/events", {"type": "customer.updated"})) == ["customer.updated"] * 2
    assert len(_types(api.get("/v1/events", {"type": "customer.*"}))) == 4
    assert _types(api.get("/v1/events", {"type": "invoice.*"})) == []
    assert (
        _types(api.get("/v1/events", {"types": ["customer.created", "invoice.paid"]}))
        == ["customer.created"] * 2
    )
    both = error_body(api.get("/v1/events", {"type": "customer.created", "types": ["x"]}))
    assert both["param"] == "types"

    day = int(T0.timestamp()) + 86400
    ranged = ok_body(api.get("/v1/events", {"created": {"gte": day, "lt": day + 2 * 86400}}))[
        "data"
    ]
    assert [e["id"] for e in ranged] == [history[2].public_id, history[1].public_id]
    exact = ok_body(api.get("/v1/events", {"created": day + 2 * 86400}))["data"]
    assert [e["id"] for e in exact] == [history[3].public_id]
    assert ok_body(api.get("/v1/events", {"created": {"gt": day * 2}}))["data"] == []
    assert (
        error_body(api.get("/v1/events", {"created": {"after": day}}))["param"] == "created[after]"
    )


def test_events_filter_by_delivery_success_and_count_pending_webhooks(api, receiver):
    endpoint = ok_body(
        api.post(
            "/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["customer.created"]}
        )
    )
    customer_create(name="Delivered")
    receiver.answer(500)
    webhook_deliveries_send_due()  # the only delivery fails: still pending
    [event] = ok_body(api.get("/v1/events", {"type": "customer.created"}))["data"]
    assert event["pending_webhooks"] == 1
    assert ok_body(api.get("/v1/events", {"delivery_success": False}))["data"] == [event]
    assert ok_body(api.get("/v1/events", {"delivery_success": True}))["data"] == []

    with clock.frozen_at(clock.now() + dt.timedelta(hours=1)):
        webhook_deliveries_send_due()
    [event] = ok_body(api.get("/v1/events", {"delivery_success": True}))["data"]
    assert event["pending_webhooks"] == 0
    # The body that was POSTed said how many deliveries were still to go, itself included.
    assert b'"pending_webhooks": 1' in receiver.requests[-1].body
    assert WebhookEndpoint.objects.get().public_id == endpoint["id"]


def test_webhook_endpoints_are_created_listed_updated_and_deleted(api, receiver):
    created = ok_body(
        api.post(
            "/v1/webhook_endpoints",
            {
                "url": receiver.url,
                "enabled_events": ["invoice.paid", "invoice.paid", "customer.created"],
                "description": "Provisioning",
                "metadata": {"team": "growth"},
            },
        )
    )
    assert_stripe_shape("webhook_endpoint", created)
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == 38
    assert created["enabled_events"] == ["invoice.paid", "customer.created"]
    assert (created["status"], created["livemode"], created["api_version"]) == (
        "enabled",
        False,
        None,
    )
    path = f"/v1/webhook_endpoints/{created['id']}"
    shown = ok_body(api.get(path))
    assert "secret" not in shown and shown == {k: v for k, v in created.items() if k != "secret"}
    assert ok_body(api.get("/v1/webhook_endpoints"))["data"] == [shown]

    updated = ok_body(
        api.post(
            path,
            {
                "enabled_events": ["*"],
                "url": receiver.url + "/v2",
                "description": "",
                "metadata": {"team": ""},
            },
        )
    )
    assert (updated["enabled_events"], updated["url"], updated["description"]) == (
        ["*"],
        receiver.url + "/v2",
        None,
    )
    assert updated["metadata"] == {}
    assert ok_body(api.post(path, {"disabled": True}))["status"] == "disabled"

    assert ok_body(api.delete(path)) == {
        "id": created["id"],
        "object": "webhook_endpoint",
        "deleted": True,
    }
    assert (
        error_body(api.get(path), 404)["message"] == f"No such webhook_endpoint: '{created['id']}'"
    )


def test_webhook_endpoint_bad_input_changes_nothing(api, receiver, settings):
    def refused(params: dict, path: str = "/v1/webhook_endpoints") -> dict:
        return error_body(api.post(path, params))

    assert refused({"enabled_events": ["*"]})["param"] == "url"
    assert refused({"url": receiver.url, "enabled_events": []})["param"] == "enabled_events"
    version = refused({"url": receiver.url, "enabled_events": ["*"], "api_version": "2020-08-27"})
    assert version["param"] == "api_version"
    assert settings.BILLING_API_VERSION in version["message"]
    assert refused({"url": receiver.url, "enabled_events": ["*"], "connect": True})["param"] == (
        "connect"
    )
    assert refused({"url": receiver.url, "enabled_events": ["*"], "secret": "whsec_x"})[
        "param"
    ] == ("secret")
    assert WebhookEndpoint.objects.count() == 0

    created = ok_body(
        api.post("/v1/webhook_endpoints", {"url": receiver.url, "enabled_events": ["*"]})
    )
    path = f"/v1/webhook_endpoints/{created['id']}"
    settings.BILLING_WEBHOOK_ALLOW_LOCAL_URLS = False
    assert refused({"url": "http://hooks.example.com/"}, path)["param"] == "url"
    assert refused({"enabled_events": ["nope"]}, path)["param"] == "enabled_events[0]"
    assert WebhookEndpoint.objects.get().url == receiver.url
