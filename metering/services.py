"""Writes to meters. Meter-event ingestion arrives with the metering issue."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from billing_site import clock
from billing_site.errors import BillingError
from billing_site.errors import ErrorCode as SharedErrorCode
from billing_site.events.recording import record_event, record_update, snapshot
from metering.errors import ErrorCode
from metering.models import Meter

_NO_WHITESPACE = re.compile(r"^\S+$")
_PAYLOAD_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _check_payload_key(value: str, param: str) -> str:
    value = (value or "").strip()
    if not _PAYLOAD_KEY.match(value):
        raise BillingError(
            f"Invalid {param}: a payload key is 1 to 100 letters, digits, '_', '-', '.' or ':' "
            f"(got '{value}').",
            param=param,
        )
    return value


def meter_validate(
    *,
    event_name: str,
    display_name: str,
    formula: str = Meter.Formula.SUM,
    customer_payload_key: str = "stripe_customer_id",
    value_payload_key: str = "value",
) -> dict[str, str]:
    """Check a new meter's fields and return them cleaned; raises BillingError naming the field."""
    event_name = (event_name or "").strip()
    if not event_name or len(event_name) > 100 or not _NO_WHITESPACE.match(event_name):
        raise BillingError(
            f"Invalid event_name: it is 1 to 100 characters with no spaces (got '{event_name}').",
            param="event_name",
        )
    if formula not in Meter.Formula.values:
        raise BillingError(
            "Invalid default_aggregation[formula]: must be one of sum, count or last "
            f"(got '{formula}').",
            param="default_aggregation[formula]",
        )
    fields = {
        "event_name": event_name,
        "display_name": _clean_display_name(display_name),
        "formula": formula,
        "customer_payload_key": _check_payload_key(
            customer_payload_key, "customer_mapping[event_payload_key]"
        ),
        "value_payload_key": _check_payload_key(
            value_payload_key, "value_settings[event_payload_key]"
        ),
    }
    if Meter.objects.filter(event_name=event_name).exists():
        raise _duplicate_event_name(event_name)
    return fields


def meter_create(
    *,
    event_name: str,
    display_name: str,
    formula: str = Meter.Formula.SUM,
    customer_payload_key: str = "stripe_customer_id",
    value_payload_key: str = "value",
) -> Meter:
    fields = meter_validate(
        event_name=event_name,
        display_name=display_name,
        formula=formula,
        customer_payload_key=customer_payload_key,
        value_payload_key=value_payload_key,
    )
    now = clock.now()
    try:
        with transaction.atomic():
            meter = Meter.objects.create(**fields, created_at=now, updated_at=now)
            record_event("billing.meter.created", meter)
            return meter
    except IntegrityError:
        # Lost a race with a concurrent create of the same event name.
        raise _duplicate_event_name(fields["event_name"]) from None


def _clean_display_name(display_name: str) -> str:
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 250:
        raise BillingError(
            "A meter needs a display_name of at most 250 characters.", param="display_name"
        )
    return display_name


def _duplicate_event_name(event_name: str) -> BillingError:
    return BillingError(
        f"A meter with event_name '{event_name}' already exists. Event names are unique; "
        "use the existing meter or pick another name.",
        param="event_name",
        code=SharedErrorCode.RESOURCE_ALREADY_EXISTS,
    )


@transaction.atomic
def meter_update(*, meter: Meter, display_name: str) -> Meter:
    before = snapshot(meter)
    meter.display_name = _clean_display_name(display_name)
    meter.updated_at = clock.now()
    meter.save(update_fields=["display_name", "updated_at"])
    record_update("billing.meter.updated", meter, before)
    return meter


@transaction.atomic
def meter_deactivate(*, meter: Meter) -> Meter:
    if not meter.is_active:
        raise BillingError(
            f"Meter {meter.public_id} is already inactive.", code=ErrorCode.METER_INACTIVE
        )
    now = clock.now()
    meter.status = Meter.Status.INACTIVE
    meter.deactivated_at = now
    meter.updated_at = now
    meter.save(update_fields=["status", "deactivated_at", "updated_at"])
    record_event("billing.meter.deactivated", meter)
    return meter


@transaction.atomic
def meter_reactivate(*, meter: Meter) -> Meter:
    if meter.is_active:
        raise BillingError(
            f"Meter {meter.public_id} is already active.", code=ErrorCode.METER_ACTIVE
        )
    meter.status = Meter.Status.ACTIVE
    meter.deactivated_at = None
    meter.updated_at = clock.now()
    meter.save(update_fields=["status", "deactivated_at", "updated_at"])
    record_event("billing.meter.reactivated", meter)
    return meter
