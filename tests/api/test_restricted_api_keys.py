"""Restricted API keys (issue 10, row 10): `rk_...` keys with per-resource read/write permissions,
refused like Stripe refuses them (403, `invalid_request_error`, naming the permission needed)."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe

from billing_site import clock
from billing_site.key_permissions import PRESETS
from billing_site.models import ApiKey, IdempotencyKey
from billing_site.services import api_key_create, api_key_revoke
from invoicing.models import Customer, Invoice
from metering.models import MeterEvent, MeterEventSession
from tests.api_client import ApiClient
from tests.factories import CustomerFactory, MeterFactory, ProductFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen_at(NOW):
        yield


def restricted(client, permissions, name="restricted") -> tuple[ApiClient, ApiKey]:
    key, secret = api_key_create(name=name, permissions=permissions)
    assert secret.startswith("rk_")
    return ApiClient(client, secret), key


def assert_refused(response, resource: str, access: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "does not have the required permissions for this endpoint" in error["message"]
    assert f"Having the '{resource}' {access} permission would allow" in error["message"]


def test_a_read_only_key_lists_and_retrieves_but_its_writes_are_refused_and_write_nothing(client):
    customer = CustomerFactory(name="Acme")
    product = ProductFactory()
    api, key = restricted(client, PRESETS["read_only"])

    assert api.get("/v1/customers").json()["data"][0]["id"] == customer.public_id
    assert api.get(f"/v1/customers/{customer.public_id}").json()["name"] == "Acme"
    assert api.get(f"/v1/products/{product.public_id}").status_code == 200
    assert api.get("/v1/invoices").status_code == 200
    assert api.get("/v1/billing/meters").status_code == 200
    assert api.get("/v1/events").status_code == 200
    assert api.client.head("/v1/customers", **api._headers()).status_code == 200

    created = api.post("/v1/customers", {"name": "Sneaky"}, idempotency_key="retry-1")
    changed = api.post(f"/v1/customers/{customer.public_id}", {"name": "Renamed"})
    deleted = api.delete(f"/v1/customers/{customer.public_id}")
    invoice = api.post("/v1/invoices", {"customer": customer.public_id})

    assert_refused(created, "customers", "write")
    assert created.json()["error"]["message"].startswith(f"The provided key '{key.secret_prefix}…'")
    assert_refused(changed, "customers", "write")
    assert_refused(deleted, "customers", "write")
    assert_refused(invoice, "invoices", "write")
    customer.refresh_from_db()
    assert (customer.name, customer.deleted_at) == ("Acme", None)
    assert list(Customer.objects.values_list("name", flat=True)) == ["Acme"]
    assert not Invoice.objects.exists()
    assert not IdempotencyKey.objects.exists()  # refused before the request was recorded


def test_a_read_only_key_may_preview_an_invoice_which_writes_nothing(client):
    api, _ = restricted(client, PRESETS["read_only"])

    response = api.post("/v1/invoices/create_preview", {"customer": "cus_missing"})

    assert response.status_code == 400  # past the permission check, to the parameter check
    assert response.json()["error"]["param"] == "customer"


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="alpaca_ai_tokens")


def test_an_ingest_only_key_sends_meter_events_but_reads_nothing(client, meter):
    customer = CustomerFactory()
    api, _ = restricted(client, PRESETS["ingest_only"])
    payload = {"stripe_customer_id": customer.public_id, "value": "25"}

    sent = api.post(
        "/v1/billing/meter_events", {"event_name": meter.event_name, "payload": payload}
    )

    assert sent.status_code == 200, sent.json()
    assert MeterEvent.objects.count() == 1
    assert_refused(api.get("/v1/customers"), "customers", "read")
    assert_refused(api.get(f"/v1/billing/meters/{meter.public_id}"), "meters", "read")
    summaries = api.get(
        f"/v1/billing/meters/{meter.public_id}/event_summaries",
        {"customer": customer.public_id, "start_time": 0, "end_time": 3600},
    )
    assert_refused(summaries, "meters", "read")  # usage is read through meters, not ingest
    assert_refused(api.post("/v1/products", {"name": "Nope"}), "products", "write")


def test_an_ingest_only_key_streams_a_batch_through_a_v2_session(client, meter):
    customer = CustomerFactory()
    api, _ = restricted(client, PRESETS["ingest_only"])

    session = api.post_json("/v2/billing/meter_event_session", {})
    assert session.status_code == 200, session.json()
    stream = ApiClient(client, session.json()["authentication_token"])
    events = [
        {
            "event_name": meter.event_name,
            "identifier": f"batch-{index}",
            "payload": {"stripe_customer_id": customer.public_id, "value": "10"},
        }
        for index in range(3)
    ]
    result = stream.post_json("/v2/billing/meter_event_stream", {"events": events})

    assert result.status_code == 200, result.json()
    assert result.json()["accepted"] == 3
    assert MeterEvent.objects.count() == 3


def test_a_key_without_meter_event_write_can_neither_open_a_stream_session_nor_send(client, meter):
    api, _ = restricted(client, {"meter_events": "read", "meters": "write"})
    customer = CustomerFactory()
    payload = {"stripe_customer_id": customer.public_id, "value": "25"}

    session = api.post_json("/v2/billing/meter_event_session", {})
    single = api.post(
        "/v1/billing/meter_events", {"event_name": meter.event_name, "payload": payload}
    )
    adjustment = api.post(
        "/v1/billing/meter_event_adjustments",
        {"event_name": meter.event_name, "type": "cancel", "cancel": {"identifier": "x"}},
    )

    assert_refused(session, "meter_events", "write")
    assert_refused(single, "meter_events", "write")
    assert_refused(adjustment, "meter_events", "write")
    assert not MeterEventSession.objects.exists()
    assert not MeterEvent.objects.exists()


def test_each_resource_gets_exactly_its_own_permission_and_write_includes_read(client):
    customer = CustomerFactory()
    api, _ = restricted(client, {"customers": "write", "invoices": "read"})

    created = api.post("/v1/customers", {"name": "Allowed"})
    listed = api.get("/v1/customers")  # write includes read

    assert created.status_code == 200, created.json()
    assert listed.status_code == 200
    assert api.get("/v1/invoices").status_code == 200
    assert api.get("/v1/invoiceitems").status_code == 200  # invoice items are invoices
    assert_refused(api.post("/v1/invoices", {"customer": customer.public_id}), "invoices", "write")
    assert_refused(api.get("/v1/products"), "products", "read")
    assert_refused(api.get("/v1/prices"), "products", "read")  # prices are products
    assert_refused(api.get("/v1/subscriptions"), "subscriptions", "read")
    assert_refused(api.get("/v1/subscription_items"), "subscriptions", "read")
    assert_refused(api.get("/v1/billing/credit_grants"), "credits", "read")
    assert_refused(api.get("/v1/test_helpers/test_clocks"), "test_clocks", "read")
    assert_refused(
        api.post("/v1/billing_portal/sessions", {"customer": customer.public_id}),
        "billing_portal",
        "write",
    )
    assert_refused(api.get("/v1/webhook_endpoints"), "webhook_endpoints", "read")


def test_an_unknown_url_is_still_a_404_for_a_restricted_key(client):
    api, _ = restricted(client, PRESETS["ingest_only"])

    assert api.get("/v1/nothing_here").status_code == 404


def test_a_revoked_restricted_key_and_its_stream_sessions_get_401(client, meter):
    api, key = restricted(client, PRESETS["ingest_only"])
    token = api.post_json("/v2/billing/meter_event_session", {}).json()["authentication_token"]

    api_key_revoke(api_key=key)

    refused = api.post("/v1/billing/meter_events", {"event_name": meter.event_name})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_invalid"
    stream = ApiClient(client, token).post_json("/v2/billing/meter_event_stream", {"events": []})
    assert stream.status_code == 401


def test_a_wrong_restricted_key_is_masked_in_the_error(client):
    wrong = "rk_" + "x" * 40 + "abcd"

    response = ApiClient(client, wrong).get("/v1/customers")

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert wrong not in message
    assert "rk_xxxx" in message and message.endswith("abcd")


def test_the_stripe_sdk_raises_its_permission_error(live_server, transactional_db):
    _, secret = api_key_create(name="sdk", permissions=PRESETS["read_only"])
    sdk = stripe.StripeClient(
        secret, base_addresses={"api": live_server.url}, max_network_retries=0
    )

    assert sdk.v1.customers.list().data == []
    with pytest.raises(stripe.PermissionError) as refused:
        sdk.v1.customers.create({"name": "Sneaky"})

    assert refused.value.http_status == 403
    assert "'customers' write permission" in refused.value.user_message
    assert not Customer.objects.exists()
