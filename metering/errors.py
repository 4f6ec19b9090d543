"""Error codes of metering's rules (Stripe's names where Stripe has one)."""

from __future__ import annotations

from billing_site.errors import ErrorCode as SharedErrorCode


class ErrorCode:
    PARAMETER_MISSING = SharedErrorCode.PARAMETER_MISSING
    PARAMETER_INVALID = SharedErrorCode.PARAMETER_INVALID
    RESOURCE_MISSING = SharedErrorCode.RESOURCE_MISSING
    # Meters.
    METER_INACTIVE = "meter_inactive"
    METER_ACTIVE = "meter_active"
    # Refused meter events.
    NO_METER = "no_meter"
    ARCHIVED_METER = "archived_meter"
    INVALID_PAYLOAD = "meter_event_invalid_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NO_CUSTOMER_DEFINED = "meter_event_no_customer_defined"
    CUSTOMER_NOT_FOUND = "meter_event_customer_not_found"
    VALUE_NOT_FOUND = "meter_event_value_not_found"
    INVALID_VALUE = "meter_event_invalid_value"
    VALUE_TOO_PRECISE = "meter_event_value_too_precise"
    INVALID_IDENTIFIER = "meter_event_invalid_identifier"
    TIMESTAMP_TOO_FAR_IN_PAST = "timestamp_too_far_in_past"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    DUPLICATE = "duplicate_meter_event"
    # Cancellations.
    NO_EVENT = SharedErrorCode.RESOURCE_MISSING
    ALREADY_CANCELLED = "meter_event_already_cancelled"
    CANCELLATION_WINDOW_PASSED = "meter_event_cancellation_window_passed"
    # The v2 stream.
    SESSION_EXPIRED = "billing_meter_event_session_expired"
