"""A thin wrapper over Django's test client that speaks the API the way Stripe's SDK does."""

from __future__ import annotations

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
