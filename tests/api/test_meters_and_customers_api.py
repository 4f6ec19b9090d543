"""`/v1/billing/meters` and `/v1/customers`."""

from __future__ import annotations

import pytest

from invoicing.models import Customer
from metering.models import Meter

pytestmark = pytest.mark.django_db


def _meter(api, **params):
    body = {
        "display_name": "Tokens",
        "event_name": "tokens",
        "default_aggregation": {"formula": "sum"},
    }
    return api.post("/v1/billing/meters", {**body, **params})


def test_a_meter_gets_stripe_s_default_payload_keys(api):
    body = _meter(api).json()
    assert body["customer_mapping"] == {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    assert body["value_settings"] == {"event_payload_key": "value"}
    assert body["status_transitions"] == {"deactivated_at": None}


def test_a_duplicate_event_name_is_refused(api):
    _meter(api)
    response = _meter(api, display_name="Other")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "event_name"
    assert "already exists" in response.json()["error"]["message"]
    assert Meter.objects.count() == 1


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"default_aggregation": {"formula": "avg"}}, "default_aggregation[formula]"),
        ({"default_aggregation": ""}, "default_aggregation"),
        ({"event_name": "has spaces"}, "event_name"),
        ({"event_name": "x" * 101}, "event_name"),
        (
            {"customer_mapping": {"event_payload_key": "c", "type": "by_email"}},
            "customer_mapping[type]",
        ),
        ({"value_settings": {"event_payload_key": ""}}, "value_settings[event_payload_key]"),
    ],
)
def test_bad_meters_are_refused(api, params, param):
    response = _meter(api, **params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not Meter.objects.exists()


def test_only_the_display_name_of_a_meter_can_change(api):
    meter = _meter(api).json()
    response = api.post(f"/v1/billing/meters/{meter['id']}", {"event_name": "renamed"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_immutable"
    assert Meter.objects.get().event_name == "tokens"
    renamed = api.post(f"/v1/billing/meters/{meter['id']}", {"display_name": "API tokens"}).json()
    assert renamed["display_name"] == "API tokens"


def test_deactivating_and_reactivating_a_meter(api):
    meter = _meter(api).json()
    assert api.post(f"/v1/billing/meters/{meter['id']}/deactivate").json()["status"] == "inactive"
    again = api.post(f"/v1/billing/meters/{meter['id']}/deactivate")
    assert again.status_code == 400
    assert "already inactive" in again.json()["error"]["message"]
    listed = api.get("/v1/billing/meters", {"status": "inactive"}).json()["data"]
    assert [m["id"] for m in listed] == [meter["id"]]
    assert api.post(f"/v1/billing/meters/{meter['id']}/reactivate").json()["status"] == "active"
    assert api.get("/v1/billing/meters", {"status": "inactive"}).json()["data"] == []


def test_customer_lifecycle(api):
    created = api.post("/v1/customers", {"name": "Acme", "email": "ap@acme.test"}).json()
    assert created["object"] == "customer"
    assert (
        api.get("/v1/customers", {"email": "AP@acme.test"}).json()["data"][0]["id"] == created["id"]
    )

    updated = api.post(f"/v1/customers/{created['id']}", {"name": "Acme Inc", "email": ""}).json()
    assert (updated["name"], updated["email"]) == ("Acme Inc", None)

    deleted = api.delete(f"/v1/customers/{created['id']}").json()
    assert deleted == {"id": created["id"], "object": "customer", "deleted": True}
    # The row stays for invoices that refer to it, but the API treats it as deleted.
    assert Customer.objects.get(public_id=created["id"]).deleted_at is not None
    assert api.get(f"/v1/customers/{created['id']}").json()["deleted"] is True
    response = api.post(f"/v1/customers/{created['id']}", {"name": "Zombie"})
    assert response.status_code == 404
    assert Customer.objects.get(public_id=created["id"]).name == "Acme Inc"


def test_a_bad_email_is_refused(api):
    response = api.post("/v1/customers", {"email": "not an email"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "email"
    assert not Customer.objects.exists()
