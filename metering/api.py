"""`/v1/billing/meters`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt

from billing_site.api.auth import (
    DeferredApiKey,
    defer_authentication,
    deferred_key_refusal,
    refuse_without_permission,
)
from billing_site.api.base import ApiError, ApiView, Listing, api_actor, get_by_public_id
from billing_site.api.errors import error_response
from billing_site.api.params import Params
from billing_site.clock import from_unix, to_unix
from billing_site.db import escape_unstorable
from billing_site.errors import BillingError
from billing_site.errors import ErrorCode as SharedErrorCode
from billing_site.services import api_key_from_auth_row
from metering import services
from metering.cancellation import meter_event_cancel
from metering.errors import ErrorCode
from metering.ingest import (
    Caller,
    CallerRefused,
    meter_event_create,
    meter_event_record,
    meter_events_ingest,
    single_statement_available,
)
from metering.models import Meter, MeterEvent
from metering.sessions import (
    TOKEN_PREFIX,
    meter_event_session_authenticate,
    meter_event_session_create,
)
from metering.store import AcceptedEvent, usage, usage_by_window
from metering.validation import MAX_BATCH_SIZE, EventInput, RejectedEvent


def serialize_meter(meter: Meter) -> dict[str, Any]:
    return {
        "id": meter.public_id,
        "object": "billing.meter",
        "created": to_unix(meter.created_at),
        "customer_mapping": {"event_payload_key": meter.customer_payload_key, "type": "by_id"},
        "default_aggregation": {"formula": meter.formula},
        "display_name": meter.display_name,
        "event_name": meter.event_name,
        "event_time_window": None,
        "livemode": False,
        "status": meter.status,
        "status_transitions": {"deactivated_at": to_unix(meter.deactivated_at)},
        "updated": to_unix(meter.updated_at),
        "value_settings": {"event_payload_key": meter.value_payload_key},
    }


class MeterCollection(ApiView):
    resource = "meters"
    listing = Listing("/v1/billing/meters", "billing.meter", serialize_meter)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = Meter.objects.all()
        status = params.choice("status", Meter.Status.values)
        if status:
            queryset = queryset.filter(status=status)
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        aggregation = params.nested("default_aggregation", required=True)
        formula = aggregation.string("formula", required=True)
        aggregation.reject_unknown()
        customer_key = "stripe_customer_id"
        mapping = params.nested("customer_mapping")
        if mapping is not None:
            mapping.choice("type", ["by_id"], required=True)
            customer_key = mapping.string("event_payload_key", required=True, max_length=100)
            mapping.reject_unknown()
        value_key = "value"
        value_settings = params.nested("value_settings")
        if value_settings is not None:
            value_key = value_settings.string("event_payload_key", required=True, max_length=100)
            value_settings.reject_unknown()
        meter = services.meter_create(
            event_name=params.string("event_name", required=True, max_length=100),
            display_name=params.string("display_name", required=True, max_length=250),
            formula=formula,
            customer_payload_key=customer_key,
            value_payload_key=value_key,
        )
        return serialize_meter(meter)


class MeterDetail(ApiView):
    resource = "meters"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_meter(get_by_public_id(Meter.objects.all(), public_id, "billing.meter"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        for frozen in ("event_name", "default_aggregation", "customer_mapping", "value_settings"):
            if frozen in params:
                raise BillingError(
                    f"A meter's {frozen} can't be changed after creation; only display_name can. "
                    "Create a new meter instead.",
                    param=frozen,
                    code=SharedErrorCode.PARAMETER_IMMUTABLE,
                )
        display_name = params.string("display_name", max_length=250)
        if display_name is not None:
            meter = services.meter_update(meter=meter, display_name=display_name)
        return serialize_meter(meter)


class MeterDeactivate(ApiView):
    resource = "meters"

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        return serialize_meter(services.meter_deactivate(meter=meter))


class MeterReactivate(ApiView):
    resource = "meters"

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        return serialize_meter(services.meter_reactivate(meter=meter))


# --- meter events -----------------------------------------------------------------------------


def serialize_meter_event(event: AcceptedEvent) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": to_unix(event.received_at),
        "event_name": event.event_name,
        "identifier": event.identifier,
        "livemode": False,
        "payload": event.payload,
        "timestamp": to_unix(event.timestamp),
    }


def _unix_timestamp(params: Params, key: str) -> dt.datetime | None:
    seconds = params.integer(key, minimum=0, maximum=253402300799)
    return None if seconds is None else from_unix(seconds)


@method_decorator(csrf_exempt, name="dispatch")  # ApiView's, for the overriding dispatch
class MeterEventCollection(ApiView):
    """One event a request. On PostgreSQL, a request without an Idempotency-Key is served in one
    round trip: the key is looked up by the event's own statement (`meter_event_record`), with
    the same answers as every endpoint's authentication (401, 403, rate limits by key)."""

    resource = "meter_events"
    atomic = False  # parameters are all checked before the one write
    rate_limit_group = "ingest"

    def authenticate(self, request):
        # An idempotent request keeps the general path: its record needs the key first.
        if (
            request.method == "POST"
            and not request.headers.get("Idempotency-Key")
            and single_statement_available()
        ):
            return defer_authentication(request)
        return super().authenticate(request)

    def dispatch(self, request, *args: Any, **kwargs: Any) -> JsonResponse:
        response = super().dispatch(request, *args, **kwargs)
        if 400 <= response.status_code < 500 and isinstance(
            getattr(request, "api_key", None), DeferredApiKey
        ):
            # Refused before the statement checked the key (a malformed request): a bad key
            # is answered first, as on every endpoint.
            refusal = deferred_key_refusal(self, request)
            if refusal is not None:
                response = error_response(refusal)
                if getattr(request, "request_id", None):
                    response["Request-Id"] = request.request_id
        return response

    def post(self, request, params: Params) -> dict[str, Any]:
        event_name, payload = event_name_and_payload(params)
        identifier = params.string("identifier", max_length=100)
        timestamp = _unix_timestamp(params, "timestamp")
        params.reject_unknown()
        key = request.api_key
        if not isinstance(key, DeferredApiKey):
            return serialize_meter_event(
                meter_event_create(
                    event_name=event_name,
                    payload=payload,
                    identifier=identifier,
                    timestamp=timestamp,
                )
            )
        event = EventInput(event_name, payload, identifier, timestamp)
        try:
            recorded = meter_event_record(
                event=event, caller=Caller(key.secret_hash, self.resource)
            )
        except CallerRefused as refused:
            if refused.key_row is None:
                request.api_key = None
                raise key.refused(request) from None
            request.api_key = api_key_from_auth_row(refused.key_row)
            refuse_without_permission(self, request)
            raise  # the function and the permission rules disagree: a 500, loudly
        request.api_key = api_key_from_auth_row(recorded.key_row)
        if recorded.refusal is not None:
            raise recorded.refusal
        assert recorded.event is not None
        return serialize_meter_event(recorded.event)


class MeterEventAdjustmentCollection(ApiView):
    resource = "meter_events"

    def post(self, request, params: Params) -> dict[str, Any]:
        event_name, identifier = cancellation_params(params)
        meter_event_cancel(
            event_name=event_name, identifier=identifier, cancelled_by=api_actor(request)
        )
        return cancellation_body("billing.meter_event_adjustment", event_name, identifier)


def event_name_and_payload(params: Params) -> tuple[str, Any]:
    """The event name and payload of one meter event, v1 or v2 (both required)."""
    event_name = params.string("event_name", required=True, max_length=100)
    # The event rules refuse text the database can't store with the payload's own code.
    payload = params.raw("payload", check_text=False)
    if payload is None or payload == "":
        raise BillingError(
            "Missing required param: payload (with the meter's customer and value keys).",
            param="payload",
            code=SharedErrorCode.PARAMETER_MISSING,
        )
    return event_name, payload


def cancellation_params(params: Params) -> tuple[str, str]:
    """The event name and identifier of a cancel adjustment, v1 or v2 (the only type)."""
    event_name = params.string("event_name", required=True, max_length=100)
    params.choice("type", ["cancel"], required=True)
    cancel = params.nested("cancel", required=True)
    identifier = cancel.string("identifier", required=True, max_length=100)
    cancel.reject_unknown()
    return event_name, identifier


def cancellation_body(object_name: str, event_name: str, identifier: str) -> dict[str, Any]:
    return {
        "object": object_name,
        "cancel": {"identifier": identifier},
        "event_name": event_name,
        "livemode": False,
        "status": "complete",
        "type": "cancel",
    }


_WINDOWS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
MAX_SUMMARY_WINDOWS = 24 * 366


class MeterEventSummaries(ApiView):
    resource = "meters"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        customer_public_id = params.string("customer", required=True)
        customer = get_customer(customer_public_id, param="customer")
        start = _unix_timestamp(params, "start_time")
        end = _unix_timestamp(params, "end_time")
        if start is None:
            raise BillingError("Missing required param: start_time.", param="start_time")
        if end is None:
            raise BillingError("Missing required param: end_time.", param="end_time")
        if start >= end:
            raise BillingError("start_time must be before end_time.", param="start_time")
        window = params.choice("value_grouping_window", list(_WINDOWS))
        step = _WINDOWS[window] if window else dt.timedelta(minutes=1)
        for key, moment in (("start_time", start), ("end_time", end)):
            if (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) % step:
                unit = window or "minute"
                raise BillingError(
                    f"{key} must be aligned to {unit} boundaries (UTC) "
                    f"{'with value_grouping_window=' + window if window else ''}".strip()
                    + ".",
                    param=key,
                )
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        starting_after = params.string("starting_after")
        if window:
            if (end - start) / step > MAX_SUMMARY_WINDOWS:
                raise BillingError(
                    f"At most {MAX_SUMMARY_WINDOWS} windows can be summarised at once; narrow "
                    "start_time and end_time.",
                    param="end_time",
                )
            series = usage_by_window(
                meter=meter, start=start, end=end, window=window, customer_id=customer.pk
            )
            windows = [(moment, moment + step, value) for moment, value in series]
        else:
            value = usage(meter=meter, customer_id=customer.pk, start=start, end=end)
            windows = [(start, end, value)]
        windows.reverse()  # newest first, as every list
        if starting_after:
            cursor = _summary_cursor(starting_after)
            windows = [w for w in windows if to_unix(w[0]) < cursor]
        page = windows[:limit]
        return {
            "object": "list",
            "data": [
                {
                    "id": f"mtrusg_{to_unix(window_start)}_{meter.public_id.removeprefix('mtr_')}",
                    "object": "billing.meter_event_summary",
                    "aggregated_value": float(value) if value != int(value) else int(value),
                    "end_time": to_unix(window_end),
                    "livemode": False,
                    "meter": meter.public_id,
                    "start_time": to_unix(window_start),
                }
                for window_start, window_end, value in page
            ],
            "has_more": len(windows) > limit,
            "url": f"/v1/billing/meters/{meter.public_id}/event_summaries",
        }


def _summary_cursor(summary_id: str) -> int:
    try:
        return int(summary_id.split("_")[1])
    except (IndexError, ValueError):
        raise BillingError(
            f"Invalid starting_after: '{summary_id}' is not a meter event summary id.",
            param="starting_after",
        ) from None


def get_customer(public_id: str, *, param: str):
    customer_model = MeterEvent._meta.get_field("customer").related_model
    customer = customer_model.objects.filter(public_id=public_id, deleted_at__isnull=True).first()
    if customer is None:
        raise BillingError(
            f"No such customer: '{public_id}'", param=param, code=SharedErrorCode.RESOURCE_MISSING
        )
    return customer


# --- v2 meter event stream --------------------------------------------------------------------


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MeterEventSessionCreate(ApiView):
    resource = "meter_events"
    http_method_names = ["post"]

    def post(self, request, params: Params) -> dict[str, Any]:
        session, token = meter_event_session_create(api_key=request.api_key)
        return {
            "id": session.public_id,
            "object": "v2.billing.meter_event_session",
            "authentication_token": token,
            "created": _iso(session.created_at),
            "expires_at": _iso(session.expires_at),
            "livemode": False,
        }


def _stream_timestamp(raw: Any) -> dt.datetime | str | None:
    """An RFC 3339 timestamp; returns the error message when it can't be read."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            moment = dt.datetime.fromisoformat(raw)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    return (
        f"timestamp must be an RFC 3339 time with a zone, e.g. 2026-11-21T10:00:00Z (got {raw!r})."
    )


class MeterEventStream(ApiView):
    """The batch path: up to 100 events, each accepted or rejected with its index and reason."""

    resource = "meter_events"
    http_method_names = ["post"]
    atomic = False  # parameters are all checked before the one write
    rate_limit_group = "ingest"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
            raise ApiError(
                "The meter event stream needs a session token: create one with "
                "POST /v2/billing/meter_event_session and send it as 'Authorization: Bearer "
                "mes_tok_...'.",
                status=401,
            )
        api_key = meter_event_session_authenticate(token=token.strip())
        if api_key is None:
            raise ApiError(
                "This meter event session token is invalid or expired (tokens last 15 "
                "minutes); create a new session.",
                status=401,
                code=ErrorCode.SESSION_EXPIRED,
            )
        return api_key

    def post(self, request, params: Params) -> dict[str, Any]:
        # Each event is refused on its own (text the database can't store included): one
        # poison event must not fail the batch, or the sender's retries would never succeed.
        raw_events = params.raw("events", check_text=False)
        params.reject_unknown()
        if not isinstance(raw_events, list) or not raw_events:
            raise BillingError(
                'events must be a non-empty JSON array: {"events": [{"event_name": ..., '
                '"payload": {...}}]}.',
                param="events",
            )
        if len(raw_events) > MAX_BATCH_SIZE:
            raise BillingError(
                f"A request can carry at most {MAX_BATCH_SIZE} events (got "
                f"{len(raw_events)}); split the batch.",
                param="events",
            )
        inputs: list[EventInput] = []
        early_rejects: list[RejectedEvent] = []
        for index, raw in enumerate(raw_events):
            if not isinstance(raw, dict):
                early_rejects.append(
                    RejectedEvent(index, "invalid_event", "Each event must be an object.")
                )
                inputs.append(EventInput(None, None))
                continue
            unknown = set(raw) - {"event_name", "payload", "identifier", "timestamp"}
            timestamp = _stream_timestamp(raw.get("timestamp"))
            if unknown:
                name = escape_unstorable(sorted(unknown)[0])
                early_rejects.append(
                    RejectedEvent(
                        index, "parameter_unknown", f"Received unknown parameter: {name}", name
                    )
                )
            elif isinstance(timestamp, str):
                early_rejects.append(
                    RejectedEvent(index, "invalid_timestamp", timestamp, "timestamp")
                )
            else:
                inputs.append(
                    EventInput(
                        raw.get("event_name"), raw.get("payload"), raw.get("identifier"), timestamp
                    )
                )
                continue
            inputs.append(EventInput(None, None))
        skip = {reject.index for reject in early_rejects}
        kept = [(index, event) for index, event in enumerate(inputs) if index not in skip]
        result = meter_events_ingest(events=[event for _, event in kept])
        rejected = early_rejects + [
            RejectedEvent(
                kept[reject.index][0], reject.code, reject.message, reject.param, reject.identifier
            )
            for reject in result.rejected
        ]
        rejected.sort(key=lambda reject: reject.index)
        return {
            "object": "v2.billing.meter_event_stream_result",
            "accepted": len(result.accepted),
            "rejected": [
                {
                    "index": reject.index,
                    "identifier": reject.identifier,
                    "error": {
                        "code": reject.code,
                        "message": reject.message,
                        "param": reject.param,
                    },
                }
                for reject in rejected
            ],
        }
