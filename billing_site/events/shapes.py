"""The Stripe-shaped JSON of events and webhook endpoints: what the API lists and what a
webhook POSTs are the same object."""

from __future__ import annotations

from typing import Any

from billing_site.clock import to_unix
from billing_site.events.models import Event, WebhookEndpoint


def serialize_event(event: Event, *, pending_webhooks: int) -> dict[str, Any]:
    return {
        "id": event.public_id,
        "object": "event",
        "api_version": event.api_version,
        "created": to_unix(event.created_at),
        "data": event.data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": event.request_id, "idempotency_key": event.request_idempotency_key},
        "type": event.type,
    }


def serialize_webhook_endpoint(
    endpoint: WebhookEndpoint, *, secret: str | None = None
) -> dict[str, Any]:
    """`secret` is given only in the answer that created the endpoint."""
    body: dict[str, Any] = {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "api_version": endpoint.api_version,
        "application": None,
        "created": to_unix(endpoint.created_at),
        "description": endpoint.description or None,
        "enabled_events": list(endpoint.enabled_events),
        "livemode": False,
        "metadata": endpoint.metadata,
        "status": endpoint.status,
        "url": endpoint.url,
    }
    if secret is not None:
        body["secret"] = secret
    return body
