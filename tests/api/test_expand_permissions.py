"""`expand[]` shows whole objects, so a restricted key needs `read` on each object it expands:
otherwise a key allowed only invoices could read customers through `data.customer`."""

from __future__ import annotations

import pytest

from billing_site.services import api_key_create
from credits.models import CreditGrant
from tests.api_client import ApiClient
from tests.helpers import error_body, grant_credits, manual_invoice, ok_body

pytestmark = pytest.mark.django_db


def _restricted(client, permissions) -> ApiClient:
    _, secret = api_key_create(name="restricted", permissions=permissions)
    return ApiClient(client, secret)


def test_expanding_an_object_the_key_cannot_read_is_refused(client, customer):
    manual_invoice(customer)
    api = _restricted(client, {"invoices": "read"})

    listed = ok_body(api.get("/v1/invoices"))
    assert listed["data"][0]["customer"] == customer.public_id
    error = error_body(api.get("/v1/invoices", {"expand": ["data.customer"]}), 403)
    assert error["param"] == "expand"
    assert "Having the 'customers' read permission" in error["message"]
    assert customer.email not in str(error)


def test_expanding_is_allowed_with_read_on_both_resources(client, customer):
    manual_invoice(customer)
    api = _restricted(client, {"invoices": "read", "customers": "read"})

    listed = ok_body(api.get("/v1/invoices", {"expand": ["data.customer"]}))
    assert listed["data"][0]["customer"]["id"] == customer.public_id


def test_a_refused_expansion_on_a_create_writes_nothing(client, customer):
    api = _restricted(client, {"credits": "write"})
    params = {
        "customer": customer.public_id,
        "name": "Prepaid",
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 5000}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        "expand": ["customer"],
    }
    error = error_body(api.post("/v1/billing/credit_grants", params), 403)
    assert "Having the 'customers' read permission" in error["message"]
    assert not CreditGrant.objects.exists()

    del params["expand"]
    grant = ok_body(api.post("/v1/billing/credit_grants", params))
    assert grant["customer"] == customer.public_id


def test_a_full_access_key_expands_everything(api, customer):
    grant = grant_credits(customer, 5000)
    body = ok_body(
        api.get(f"/v1/billing/credit_grants/{grant.public_id}", {"expand": ["customer"]})
    )
    assert body["customer"]["id"] == customer.public_id
