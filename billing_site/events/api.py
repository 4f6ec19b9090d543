"""`/v1/events` and `/v1/webhook_endpoints`."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Count, Q, QuerySet

from billing_site.api.base import ApiError, ApiView, get_by_public_id, paginate
from billing_site.api.lists import filter_by_time_range
from billing_site.api.params import Params
from billing_site.errors import ErrorCode
from billing_site.events import endpoints as services
from billing_site.events.models import Event, WebhookDelivery, WebhookEndpoint
from billing_site.events.selectors import event_delivery_success
from billing_site.events.shapes import serialize_event, serialize_webhook_endpoint

MAX_TYPES = 20

# --- events -----------------------------------------------------------------------------------


def _events() -> QuerySet[Event]:
    return Event.objects.annotate(
        pending_webhooks=Count(
            "deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)
        )
    )


def _serialize_event(event: Event) -> dict[str, Any]:
    return serialize_event(event, pending_webhooks=event.pending_webhooks)  # type: ignore[attr-defined]


def _type_filter(pattern: str) -> Q:
    """Stripe's `type` filter: one name, or a group with `*` as a wildcard (`invoice.*`)."""
    if "*" not in pattern:
        return Q(type=pattern)
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return Q(type__regex=regex)


class EventCollection(ApiView):
    resource = "events"

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = _events()
        event_type = params.string("type", max_length=100)
        types = params.list_of("types")
        if event_type and types:
            raise ApiError(
                "You may only specify one of these parameters: type, types.", param="types"
            )
        if event_type:
            queryset = queryset.filter(_type_filter(event_type))
        if types:
            if len(types) > MAX_TYPES:
                raise ApiError(f"types can list at most {MAX_TYPES} event types.", param="types")
            if any(not isinstance(name, str) for name in types):
                raise ApiError("types must be a list of event type names.", param="types")
            queryset = queryset.filter(type__in=types)
        queryset = filter_by_time_range(queryset, params, "created", "created_at")
        delivered = params.boolean("delivery_success")
        if delivered is not None:
            queryset = queryset.filter(event_delivery_success(delivered))
        return paginate(
            queryset, params, url="/v1/events", resource="event", serialize=_serialize_event
        )


class EventDetail(ApiView):
    resource = "events"
    http_method_names = ["get", "head"]

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return _serialize_event(get_by_public_id(_events(), public_id, "event"))


# --- webhook endpoints ------------------------------------------------------------------------


def _enabled_events(params: Params, *, required: bool) -> list[Any] | None:
    events = params.list_of("enabled_events")
    if events is None and required:
        raise ApiError(
            "Missing required param: enabled_events (event types, or '*' for every event).",
            param="enabled_events",
            code=ErrorCode.PARAMETER_MISSING,
        )
    return events


class WebhookEndpointCollection(ApiView):
    resource = "webhook_endpoints"

    def get(self, request, params: Params) -> dict[str, Any]:
        return paginate(
            WebhookEndpoint.objects.all(),
            params,
            url="/v1/webhook_endpoints",
            resource="webhook_endpoint",
            serialize=serialize_webhook_endpoint,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        if params.boolean("connect"):
            raise ApiError(
                "Connect webhook endpoints aren't supported: there are no connected accounts.",
                param="connect",
            )
        endpoint = services.webhook_endpoint_create(
            url=params.string("url", required=True, max_length=services.MAX_URL_LENGTH),
            enabled_events=_enabled_events(params, required=True),
            description=params.string("description", allow_blank=True) or "",
            metadata=params.new_metadata(),
            api_version=params.string("api_version", max_length=40),
        )
        # The only answer that ever shows the secret.
        return serialize_webhook_endpoint(endpoint, secret=endpoint.secret)


class WebhookEndpointDetail(ApiView):
    resource = "webhook_endpoints"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        endpoint = get_by_public_id(WebhookEndpoint.objects.all(), public_id, "webhook_endpoint")
        return serialize_webhook_endpoint(endpoint)

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        endpoint = get_by_public_id(WebhookEndpoint.objects.all(), public_id, "webhook_endpoint")
        changes: dict[str, Any] = {}
        if "url" in params:
            changes["url"] = params.string("url", max_length=services.MAX_URL_LENGTH)
        if "enabled_events" in params:
            changes["enabled_events"] = _enabled_events(params, required=True)
        if "description" in params:
            changes["description"] = params.string("description", allow_blank=True) or ""
        metadata = params.updated_metadata(endpoint.metadata)
        if metadata is not None:
            changes["metadata"] = metadata
        endpoint = services.webhook_endpoint_update(
            endpoint=endpoint, disabled=params.boolean("disabled"), **changes
        )
        return serialize_webhook_endpoint(endpoint)

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        endpoint = get_by_public_id(WebhookEndpoint.objects.all(), public_id, "webhook_endpoint")
        services.webhook_endpoint_delete(endpoint=endpoint)
        return {"id": public_id, "object": "webhook_endpoint", "deleted": True}
