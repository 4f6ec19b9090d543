"""Every object a full flow gets back validates against Stripe's published schema for it.

The flow is what an integration does: the seed catalog, customers on a test clock, a subscription
on each seed plan, meter events, a period closed on the clock, a one-off invoice with items,
credits and their balance, a portal session, and the deletes. Every response is searched for
Stripe objects (lists' items, embedded and expanded ones), and each is validated against the
schema for its `object` (tests/api/stripe_conformance.py says where the schemas come from). The
failure names each object and field that does not validate.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.stripe_conformance import objects_in, problems, schema_name
from tests.api_client import ApiClient
from tests.helpers import ts

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingClient(ApiClient):
    """The API client, keeping every successful response's body."""

    def __init__(self, client, secret: str):
        super().__init__(client, secret)
        self.bodies: list[tuple[str, Any]] = []

    def _keep(self, label: str, response) -> dict[str, Any]:
        body = response.json()
        assert response.status_code == 200, (label, body)
        self.bodies.append((label, body))
        return body

    def get(self, path, params=None, **kwargs):
        return self._keep(f"GET {path}", super().get(path, params, **kwargs))

    def post(self, path, params=None, **kwargs):
        return self._keep(f"POST {path}", super().post(path, params, **kwargs))

    def delete(self, path, **kwargs):
        return self._keep(f"DELETE {path}", super().delete(path, **kwargs))


@pytest.fixture
def api(client, api_secret):
    return RecordingClient(client, api_secret)


def _catalog(api) -> dict[str, str]:
    tokens = api.post(
        "/v1/billing/meters",
        {
            "display_name": "Hypernian API tokens",
            "event_name": "hypernian_api_tokens",
            "default_aggregation": {"formula": "sum"},
        },
    )
    alpaca_tokens = api.post(
        "/v1/billing/meters",
        {
            "display_name": "Alpaca AI tokens",
            "event_name": "alpaca_ai_tokens",
            "default_aggregation": {"formula": "sum"},
        },
    )
    api.get("/v1/billing/meters")
    api.post(f"/v1/billing/meters/{tokens['id']}", {"display_name": "Hypernian tokens"})
    hypernian = api.post("/v1/products", {"name": "Hypernian", "description": "AI API"})
    fee = api.post(
        "/v1/prices",
        {
            "product": hypernian["id"],
            "currency": "usd",
            "unit_amount": 20000,
            "recurring": {"interval": "month"},
            "expand": ["product"],
        },
    )
    overage = api.post(
        "/v1/prices",
        {
            "product": hypernian["id"],
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 100000, "unit_amount": 0},
                {"up_to": "inf", "unit_amount_decimal": "0.1"},
            ],
            "recurring": {"interval": "month", "usage_type": "metered", "meter": tokens["id"]},
        },
    )
    alpaca = api.post(
        "/v1/prices",
        {
            "product_data": {"name": "Alpaca AI"},
            "currency": "usd",
            "unit_amount": 4,
            "transform_quantity": {"divide_by": 100, "round": "up"},
            "recurring": {
                "interval": "month",
                "usage_type": "metered",
                "meter": alpaca_tokens["id"],
            },
        },
    )
    one_time = api.post(
        "/v1/prices", {"product": hypernian["id"], "currency": "usd", "unit_amount": 5000}
    )
    api.post(f"/v1/products/{hypernian['id']}", {"default_price": fee["id"]})
    api.get("/v1/products", {"expand": ["data.default_price"]})
    api.get("/v1/prices", {"expand": ["data.product"]})
    return {
        "fee": fee["id"],
        "overage": overage["id"],
        "alpaca": alpaca["id"],
        "one_time": one_time["id"],
        "tokens": tokens["id"],
    }


def _usage(api, event_name: str, customer: str, value: int, timestamp: int, identifier: str):
    api.post(
        "/v1/billing/meter_events",
        {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "timestamp": timestamp,
            "identifier": identifier,
        },
    )


def _run_full_flow(api) -> None:
    prices = _catalog(api)
    clock = api.post("/v1/test_helpers/test_clocks", {"frozen_time": ts(2026, 1, 1)})
    northwind = api.post(
        "/v1/customers", {"name": "Northwind", "email": "ap@nw.test", "test_clock": clock["id"]}
    )
    bluebird = api.post("/v1/customers", {"name": "Bluebird", "test_clock": clock["id"]})
    api.get("/v1/customers", {"expand": ["data.test_clock"]})
    hypernian = api.post(
        "/v1/subscriptions",
        {
            "customer": northwind["id"],
            "items": [{"price": prices["fee"]}, {"price": prices["overage"]}],
            "expand": ["latest_invoice", "customer"],
        },
    )
    alpaca = api.post(
        "/v1/subscriptions",
        {
            "customer": bluebird["id"],
            "items": [{"price": prices["alpaca"]}],
            "billing_mode": {"type": "flexible"},
        },
    )
    api.get(f"/v1/subscriptions/{hypernian['id']}", {"expand": ["items.data.price.product"]})
    api.get("/v1/subscription_items", {"subscription": alpaca["id"]})
    grant = api.post(
        "/v1/billing/credit_grants",
        {
            "customer": northwind["id"],
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 1000}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "promotional",
            "name": "Welcome credit",
        },
    )
    api.get(f"/v1/billing/credit_grants/{grant['id']}", {"expand": ["customer"]})

    api.post(
        f"/v1/test_helpers/test_clocks/{clock['id']}/advance", {"frozen_time": ts(2026, 1, 16)}
    )
    _usage(api, "hypernian_api_tokens", northwind["id"], 150000, ts(2026, 1, 10), "nw-1")
    _usage(api, "alpaca_ai_tokens", bluebird["id"], 12345, ts(2026, 1, 12), "bb-1")
    # A customer on the real clock sends an event and cancels it (within 24 hours of receipt).
    cascade = api.post("/v1/customers", {"name": "Cascade"})
    api.post(
        "/v1/billing/meter_events",
        {"event_name": "alpaca_ai_tokens", "identifier": "cc-1",
         "payload": {"stripe_customer_id": cascade["id"], "value": "99"}},
    )  # fmt: skip
    api.post(
        "/v1/billing/meter_event_adjustments",
        {"event_name": "alpaca_ai_tokens", "type": "cancel", "cancel": {"identifier": "cc-1"}},
    )
    api.get(
        f"/v1/billing/meters/{prices['tokens']}/event_summaries",
        {"customer": northwind["id"], "start_time": ts(2026, 1, 1), "end_time": ts(2026, 2, 1)},
    )
    api.post("/v1/invoices/create_preview", {"customer": northwind["id"]})
    api.post(
        "/v1/invoices/create_preview", {"customer": bluebird["id"], "subscription": alpaca["id"]}
    )

    # The period closes on the clock and the renewals finalize after their grace period.
    api.post(
        f"/v1/test_helpers/test_clocks/{clock['id']}/advance",
        {"frozen_time": ts(2026, 2, 1, 0, 30)},
    )
    api.get("/v1/invoices", {"status": "draft", "expand": ["data.subscription"]})
    api.post(
        f"/v1/test_helpers/test_clocks/{clock['id']}/advance", {"frozen_time": ts(2026, 2, 1, 2)}
    )
    renewed = api.get(f"/v1/subscriptions/{hypernian['id']}", {"expand": ["latest_invoice"]})
    invoice = renewed["latest_invoice"]
    api.get(f"/v1/invoices/{invoice['id']}", {"expand": ["customer", "subscription"]})
    api.get(f"/v1/invoices/{invoice['id']}/lines")
    api.post(f"/v1/invoices/{invoice['id']}/pay", {"paid_out_of_band": True})
    api.get(
        "/v1/billing/credit_balance_summary",
        {
            "customer": northwind["id"],
            "filter": {
                "type": "applicability_scope",
                "applicability_scope": {"price_type": "metered"},
            },
        },
    )
    api.get(
        "/v1/billing/credit_balance_transactions",
        {"customer": northwind["id"], "expand": ["data.credit_grant"]},
    )

    # A one-off invoice with items, finalized and paid; another voided, one uncollectible.
    one_off = api.post(
        "/v1/invoices",
        {"customer": northwind["id"], "description": "Onboarding", "currency": "usd"},
    )
    api.post(
        "/v1/invoiceitems",
        {
            "customer": northwind["id"],
            "invoice": one_off["id"],
            "amount": 15000,
            "description": "Setup",
        },
    )
    api.post(
        "/v1/invoiceitems",
        {
            "customer": northwind["id"],
            "invoice": one_off["id"],
            "price": prices["one_time"],
            "quantity": 2,
        },
    )
    api.get("/v1/invoiceitems", {"invoice": one_off["id"], "expand": ["data.invoice"]})
    api.post(f"/v1/invoices/{one_off['id']}/finalize")
    api.post(f"/v1/invoices/{one_off['id']}/pay", {"paid_out_of_band": True})
    to_void = api.post("/v1/invoices", {"customer": bluebird["id"]})
    api.post(
        "/v1/invoiceitems",
        {
            "customer": bluebird["id"],
            "invoice": to_void["id"],
            "amount": 900,
            "expand": ["customer"],
        },
    )
    api.post(f"/v1/invoices/{to_void['id']}/finalize")
    api.post(f"/v1/invoices/{to_void['id']}/void")
    draft = api.post("/v1/invoices", {"customer": bluebird["id"]})
    api.delete(f"/v1/invoices/{draft['id']}")
    api.get("/v1/invoices", {"customer": northwind["id"]})

    api.post(
        "/v1/billing_portal/sessions",
        {"customer": northwind["id"], "return_url": "https://example.com/account"},
    )
    api.post("/v2/billing/meter_event_session")
    api.delete(f"/v1/subscriptions/{alpaca['id']}")
    api.get("/v1/subscriptions", {"status": "all", "expand": ["data.latest_invoice"]})
    api.delete(f"/v1/customers/{bluebird['id']}")
    api.delete(f"/v1/test_helpers/test_clocks/{clock['id']}")
    throwaway = api.post("/v1/products", {"name": "Throwaway"})
    api.delete(f"/v1/products/{throwaway['id']}")


# Every type the flow must have met, so the test can't pass by checking nothing.
EXPECTED_TYPES = {
    "customer", "deleted_customer", "product", "deleted_product", "price", "billing.meter",
    "billing.meter_event", "billing.meter_event_adjustment", "billing.meter_event_summary",
    "subscription", "subscription_item", "invoice", "deleted_invoice", "line_item",
    "invoiceitem", "test_helpers.test_clock", "deleted_test_clock", "billing.credit_grant",
    "billing.credit_balance_summary", "billing.credit_balance_transaction",
    "billing_portal.session", "v2.billing.meter_event_session",
}  # fmt: skip


def test_every_object_of_a_full_flow_validates_against_stripes_schema(api):
    _run_full_flow(api)
    seen: set[str] = set()
    failures: dict[tuple[str, str, str], str] = {}
    for label, body in api.bodies:
        for where, obj in objects_in(body):
            seen.add(schema_name(obj))
            for problem in problems(obj):
                failures.setdefault(problem, f"{label} → {where} ({obj.get('id')})")
    assert seen >= EXPECTED_TYPES, f"the flow never returned: {sorted(EXPECTED_TYPES - seen)}"
    # One line per object type, field and problem, with the first response that showed it.
    assert not failures, f"{len(failures)} fields don't validate:\n" + "\n".join(
        f"{name}.{path}: {message}  [{first}]"
        for (name, path, message), first in sorted(failures.items())
    )
