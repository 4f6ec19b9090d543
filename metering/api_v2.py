"""`POST /v2/billing/meter_events` and `POST /v2/billing/meter_event_adjustments`: Stripe's v2
shapes of the single event and of its cancellation.

Both take a JSON body and the secret key as `Authorization: Bearer sk_...` (the official SDK's
`client.v2.billing.meter_events.create(...)`), answer with RFC 3339 times, and refuse with the
error shape v1 uses, which v2 shares (`{"error": {"type", "code", "message"}}`). The rules are
those of v1: `metering.ingest.meter_event_create` and `metering.cancellation.meter_event_cancel`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from billing_site.api.base import ApiError, ApiView, api_actor
from billing_site.api.params import Params
from billing_site.errors import ErrorCode as SharedErrorCode
from metering.api import (
    _iso,
    _stream_timestamp,
    cancellation_body,
    cancellation_params,
    event_name_and_payload,
)
from metering.cancellation import meter_event_cancel
from metering.ingest import meter_event_create
from metering.models import MeterEventAdjustment


class V2MeterEventCreate(ApiView):
    resource = "meter_events"
    http_method_names = ["post"]
    atomic = False  # parameters are all checked before the one write
    rate_limit_group = "ingest"

    def post(self, request, params: Params) -> dict[str, Any]:
        event_name, payload = event_name_and_payload(params)
        identifier = params.raw("identifier", check_text=False)
        timestamp = _stream_timestamp(params.raw("timestamp"))
        if isinstance(timestamp, str):
            raise ApiError(timestamp, param="timestamp", code=SharedErrorCode.PARAMETER_INVALID)
        params.reject_unknown()
        event = meter_event_create(
            event_name=event_name, payload=payload, identifier=identifier, timestamp=timestamp
        )
        return {
            "object": "v2.billing.meter_event",
            "created": _iso(event.received_at),
            "event_name": event.event_name,
            "identifier": event.identifier,
            "livemode": False,
            "payload": event.payload,
            "timestamp": _iso(event.timestamp),
        }


def _adjustment_id(adjustment: MeterEventAdjustment) -> str:
    # Stable for the row without storing a column: v2 adjustments are never retrieved by id.
    digest = hashlib.sha256(f"{adjustment.pk}:{adjustment.created_at.isoformat()}".encode())
    return f"mtr_adj_{digest.hexdigest()[:24]}"


class V2MeterEventAdjustmentCreate(ApiView):
    resource = "meter_events"
    http_method_names = ["post"]

    def post(self, request, params: Params) -> dict[str, Any]:
        event_name, identifier = cancellation_params(params)
        params.reject_unknown()
        adjustment = meter_event_cancel(
            event_name=event_name, identifier=identifier, cancelled_by=api_actor(request)
        )
        return {
            "id": _adjustment_id(adjustment),
            **cancellation_body("v2.billing.meter_event_adjustment", event_name, identifier),
            "created": _iso(adjustment.created_at),
        }
