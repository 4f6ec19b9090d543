"""`/v1/billing/meters`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiView, get_by_public_id, paginate
from billing_site.api.params import Params
from billing_site.clock import to_unix
from billing_site.errors import BillingError
from metering import services
from metering.models import Meter


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
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = Meter.objects.all()
        status = params.choice("status", Meter.Status.values)
        if status:
            queryset = queryset.filter(status=status)
        return paginate(
            queryset,
            params,
            url="/v1/billing/meters",
            resource="billing.meter",
            serialize=serialize_meter,
        )

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
                    code="parameter_immutable",
                )
        display_name = params.string("display_name", max_length=250)
        if display_name is not None:
            meter = services.meter_update(meter=meter, display_name=display_name)
        return serialize_meter(meter)


class MeterDeactivate(ApiView):
    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        return serialize_meter(services.meter_deactivate(meter=meter))


class MeterReactivate(ApiView):
    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        meter = get_by_public_id(Meter.objects.all(), public_id, "billing.meter")
        return serialize_meter(services.meter_reactivate(meter=meter))
