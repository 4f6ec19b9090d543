"""Cancelling a meter event (Stripe's meter_event_adjustments): within 24 hours of its receipt,
once, with an audit row saying who cancelled it. The event stops counting in every usage read.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from billing_site import clock
from billing_site.errors import BillingError
from metering.errors import ErrorCode
from metering.models import Meter, MeterEventAdjustment
from metering.store import event_store

CANCELLATION_WINDOW = dt.timedelta(hours=24)


@transaction.atomic
def meter_event_cancel(
    *, event_name: str, identifier: str, cancelled_by: str = "api"
) -> MeterEventAdjustment:
    """Cancel an event by identifier, within 24 hours of its receipt. It stops counting."""
    meter = Meter.objects.filter(event_name=event_name).first()
    if meter is None:
        raise BillingError(
            f"No meter has event_name '{event_name}'.", param="event_name", code=ErrorCode.NO_METER
        )
    store = event_store()
    event = store.find_event(meter=meter, identifier=identifier)
    if event is None:
        raise BillingError(
            f"No meter event with identifier '{identifier}' for meter '{event_name}'.",
            param="cancel[identifier]",
            code=ErrorCode.NO_EVENT,
        )
    now = clock.now()
    if MeterEventAdjustment.objects.filter(meter=meter, identifier=identifier).exists():
        raise BillingError(
            f"The meter event '{identifier}' is already cancelled.",
            param="cancel[identifier]",
            code=ErrorCode.ALREADY_CANCELLED,
        )
    if event.received_at < now - CANCELLATION_WINDOW:
        raise BillingError(
            f"The meter event '{identifier}' was received at "
            f"{event.received_at:%Y-%m-%d %H:%M UTC}; events can only be cancelled within 24 "
            "hours of receipt.",
            param="cancel[identifier]",
            code=ErrorCode.CANCELLATION_WINDOW_PASSED,
        )
    event_id = store.cancel(event=event, at=now)
    return MeterEventAdjustment.objects.create(
        meter=meter,
        event_id=event_id,
        identifier=identifier,
        created_at=now,
        created_by=cancelled_by[:150],
    )
