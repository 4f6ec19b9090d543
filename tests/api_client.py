"""A thin wrapper over Django's test client that speaks the API the way Stripe's SDK does."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode


def encode(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's bracket form encoding: {"tiers": [{"up_to": "inf"}]} -> tiers[0][up_to]=inf."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs.extend(encode(value, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    pairs.extend(encode(item, f"{name}[{index}]"))
                else:
                    pairs.append((f"{name}[{index}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class ApiClient:
    def __init__(self, client, secret: str):
        self.client = client
        self.secret = secret

    def _headers(self, idempotency_key: str | None = None, secret: str | None = None) -> dict:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret or self.secret}"}
        if idempotency_key:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        return headers

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs):
        query = urlencode(encode(params or {}))
        return self.client.get(f"{path}?{query}" if query else path, **self._headers(**kwargs))

    def post(self, path: str, params: dict[str, Any] | None = None, **kwargs):
        return self.client.post(
            path,
            data=urlencode(encode(params or {})),
            content_type="application/x-www-form-urlencoded",
            **self._headers(**kwargs),
        )

    def subscribe(self, customer, *prices, **extra):
        """POST /v1/subscriptions for `customer` with one item per price (and `extra` params)."""
        items = [{"price": price.public_id} for price in prices]
        return self.post(
            "/v1/subscriptions", {"customer": customer.public_id, "items": items, **extra}
        )

    def post_json(self, path: str, body: Any, **kwargs):
        return self.client.post(
            path, data=json.dumps(body), content_type="application/json", **self._headers(**kwargs)
        )

    def delete(self, path: str, **kwargs):
        return self.client.delete(path, **self._headers(**kwargs))


def sdk_client(live_server, secret: str):
    """Stripe's official SDK talking to the live test server with `secret` (an API key, or a
    meter event session's token), failing at once instead of retrying."""
    import stripe

    return stripe.StripeClient(
        secret,
        base_addresses={"api": live_server.url, "meter_events": live_server.url},
        max_network_retries=0,
    )


def sdk_customer_on_test_clock(stripe_client, name: str, frozen_time: int):
    """A test clock frozen at `frozen_time` and a customer `name` on it, through the SDK."""
    test_clock = stripe_client.v1.test_helpers.test_clocks.create({"frozen_time": frozen_time})
    customer = stripe_client.v1.customers.create({"name": name, "test_clock": test_clock.id})
    return test_clock, customer


def sdk_advance(stripe_client, test_clock: str, frozen_time: int) -> None:
    """Advance a test clock through the SDK: it answers "advancing", then is ready at
    `frozen_time` (advances run to the end before the next request is answered)."""
    clocks = stripe_client.v1.test_helpers.test_clocks
    assert clocks.advance(test_clock, {"frozen_time": frozen_time}).status == "advancing"
    ready = clocks.retrieve(test_clock)
    assert (ready.status, ready.frozen_time) == ("ready", frozen_time)


def sdk_usage(stripe_client, event_name: str, customer: str, value, timestamp: int, identifier):
    """One v1 meter event for `customer` (a cus_ id) through the SDK."""
    stripe_client.v1.billing.meter_events.create(
        {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": str(value)},
            "timestamp": timestamp,
            "identifier": identifier,
        }
    )


def sdk_subscribe(stripe_client, customer: str, *prices: str, **options):
    """Subscribe `customer` (a cus_ id) to `prices` (price ids), one item each, through the SDK;
    `options` are the SDK's request options (idempotency_key=...)."""
    params = {"customer": customer, "items": [{"price": price} for price in prices]}
    return stripe_client.v1.subscriptions.create(params, options or None)


def sdk_hypernian_subscriber(stripe_client, demo_prices: dict[str, str], **options):
    """Northwind on a test clock frozen at 2026-01-01, subscribed to the demo Hypernian plan (the
    monthly fee and the metered API tokens); returns (test_clock, customer, subscription)."""
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
    test_clock, customer = sdk_customer_on_test_clock(stripe_client, "Northwind", start)
    subscription = sdk_subscribe(
        stripe_client,
        customer.id,
        demo_prices["hypernian_monthly_fee"],
        demo_prices["hypernian_api_tokens"],
        **options,
    )
    return test_clock, customer, subscription
