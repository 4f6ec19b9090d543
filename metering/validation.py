"""The rules a meter event must pass before it is stored. Pure: no database, no clock.

The caller looks up the batch's meters and customers (`metering.ingest`) and passes them in;
every refusal is a `RejectedEvent` with a Stripe error code and a message that says how to fix
the event.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from billing_site.db import escape_unstorable, is_storable_text
from metering.errors import ErrorCode
from metering.models import EVENT_VALUE_DECIMALS, EVENT_VALUE_DIGITS, Meter

ACCEPTANCE_WINDOW_PAST = dt.timedelta(days=35)
ACCEPTANCE_WINDOW_FUTURE = dt.timedelta(minutes=5)

# The values an event can carry: what the value column, numeric(27, 12), holds exactly and what
# SQLite's 64-bit floats keep exact. Any of these failing would fail the batch's statement at
# the database, so each is refused here, event by event:
# - at most 12 decimal places (the column's scale);
# - less than 10^15 in absolute value (27 - 12 = 15 integer digits): "1e15" and "1E+20" are
#   refused, 999999999999999 is the largest value;
# - at most 15 significant digits;
# - finite: NaN, Infinity and hexadecimal are not numbers. "-0" is 0.
MAX_SIGNIFICANT_DIGITS = 15
MAX_VALUE_DECIMALS = EVENT_VALUE_DECIMALS
VALUE_LIMIT = Decimal(10) ** (EVENT_VALUE_DIGITS - EVENT_VALUE_DECIMALS)
MAX_PAYLOAD_KEYS = 50
MAX_PAYLOAD_BYTES = 4096
MAX_IDENTIFIER_LENGTH = 100
MAX_BATCH_SIZE = 100


# EventInput and ValidEvent are built once per event on the batch path: plain slotted
# dataclasses, because a frozen one's __init__ costs several times as much.
@dataclass(slots=True)
class EventInput:
    """One event as sent: any field may be missing or of the wrong type."""

    event_name: Any
    payload: Any
    identifier: Any = None
    timestamp: dt.datetime | None = None


@dataclass(slots=True)
class ValidEvent:
    """An event that passed every rule: what an event store is given to store."""

    index: int  # its position in the batch, for the rejection list
    meter: Meter
    customer_id: int
    identifier: str
    value: Decimal
    timestamp: dt.datetime
    payload: dict[str, str]
    received_at: dt.datetime


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    code: str
    message: str
    param: str | None = None
    identifier: str | None = None


class EventRejected(Exception):
    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


# A customer as the rules need it: (primary key, its test clock's frozen time or None).
CustomerRef = tuple[int, dt.datetime | None]


_WIDE = Context(Emax=MAX_EMAX, Emin=MIN_EMIN)

# Plain decimals ("25", "-0.5") with at most 15 integer digits and 12 decimals: the common case,
# within every limit below except perhaps the significant digits, which `_plain_value` counts.
_PLAIN_DECIMAL = re.compile(r"-?(\d{1,15})(?:\.(\d{1,12}))?")


def parse_event_value(raw: Any) -> Decimal:
    """A meter event value within the range above (`VALUE_LIMIT`, `MAX_SIGNIFICANT_DIGITS`,
    `MAX_VALUE_DECIMALS`)."""
    if type(raw) is str:
        plain = _plain_value(raw)
        if plain is not None:
            return plain
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        raise EventRejected(
            ErrorCode.INVALID_VALUE,
            f"The value must be a number sent as a string (got {json.dumps(raw, default=str)}).",
        )
    text = str(raw).strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not text:
        raise EventRejected(
            ErrorCode.INVALID_VALUE, f"The value '{text}' is not a number, e.g. '25' or '0.5'."
        )
    # Normalised with the widest exponents: "1E1000000" is out of range, not an Overflow trap.
    _, digits, exponent = value.normalize(_WIDE).as_tuple()
    decimals = max(0, -int(exponent))
    significant = len(digits)  # normalized: no leading or trailing zeros
    if value == 0:
        return Decimal(0)  # also "-0" and "0E+99"
    if significant > MAX_SIGNIFICANT_DIGITS or decimals > MAX_VALUE_DECIMALS:
        raise EventRejected(
            ErrorCode.VALUE_TOO_PRECISE,
            f"The value '{text}' has too many digits: at most {MAX_SIGNIFICANT_DIGITS} "
            f"significant digits and {MAX_VALUE_DECIMALS} decimal places.",
        )
    if value.copy_abs() >= VALUE_LIMIT:  # copy_abs: no context, so no Overflow trap
        raise EventRejected(
            ErrorCode.INVALID_VALUE,
            f"The value '{text}' is out of range: a value must be less than 10^15 "
            "(999999999999999 at most) in absolute value.",
        )
    return value.normalize()


def _plain_value(text: str) -> Decimal | None:
    """The value of a plain decimal within the limits, without normalising through Decimal's
    slower paths; None for anything else (the general rules then decide)."""
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        return None
    whole, fraction = match.group(1).lstrip("0"), (match.group(2) or "").rstrip("0")
    digits = (whole + fraction).lstrip("0") if not whole else whole + fraction
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return None
    if not digits:
        return Decimal(0)
    return Decimal(text).normalize()


def check_payload(payload: Any) -> dict[str, str]:
    if not isinstance(payload, Mapping) or not payload:
        raise EventRejected(
            ErrorCode.INVALID_PAYLOAD,
            "payload must be an object with the customer and value keys, e.g. "
            '{"stripe_customer_id": "cus_...", "value": "25"}.',
            "payload",
        )
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise EventRejected(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The payload has {len(payload)} keys; at most {MAX_PAYLOAD_KEYS} are allowed.",
            "payload",
        )
    clean = _plain_text_payload(payload)
    if clean is None:
        clean = _checked_items(payload)
    # Escaping can at most sextuple a character (\uXXXX), so small payloads skip the exact count.
    rough = sum(len(key) + len(value) for key, value in clean.items()) * 6 + 6 * len(clean) + 2
    size = (
        rough
        if rough <= MAX_PAYLOAD_BYTES
        else len(json.dumps(clean, separators=(",", ":")).encode())
    )
    if size > MAX_PAYLOAD_BYTES:
        raise EventRejected(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are allowed.",
            "payload",
        )
    return clean


def _plain_text_payload(payload: Mapping[Any, Any]) -> dict[str, str] | None:
    """The payload itself when every key and value is storable text (what senders send), in one
    pass and one text check; None when any item needs `_checked_items` (which names it)."""
    for key, value in payload.items():
        if type(key) is not str or type(value) is not str:
            return None
    if not is_storable_text("".join(payload) + "".join(payload.values())):
        return None
    return dict(payload)


def _checked_items(payload: Mapping[Any, Any]) -> dict[str, str]:
    """Each item checked in order: the first that is not text a column can store is refused."""
    clean: dict[str, str] = {}
    for raw_key, value in payload.items():
        key = str(raw_key)
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            param = _payload_param(key)
            raise EventRejected(
                ErrorCode.INVALID_PAYLOAD,
                f"{param} must be a string (got {type(value).__name__}).",
                param,
            )
        text = _payload_text(value, key)
        if not (is_storable_text(key) and is_storable_text(text)):
            param = _payload_param(key)
            raise EventRejected(
                ErrorCode.INVALID_PAYLOAD,
                f"{param} can't be stored: payload keys and values can't contain NUL "
                "characters (\\u0000) or unpaired surrogates.",
                param,
            )
        clean[key] = text
    return clean


def _payload_param(key: str) -> str:
    """The error param naming a payload key (built only for a refusal: not per key)."""
    return f"payload[{escape_unstorable(key)}]"


def _payload_text(value: str | int | Decimal, key: str) -> str:
    try:
        return str(value)
    except ValueError:  # an integer past Python's 4,300-digit conversion limit
        param = _payload_param(key)
        raise EventRejected(
            ErrorCode.INVALID_PAYLOAD, f"{param} is too long a number.", param
        ) from None


def check_timestamp(timestamp: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """The event's time (now when it has none), inside the window that can still be billed."""
    if timestamp is None:
        return now
    if timestamp < now - ACCEPTANCE_WINDOW_PAST:
        raise EventRejected(
            ErrorCode.TIMESTAMP_TOO_FAR_IN_PAST,
            f"The timestamp {_utc_label(timestamp)} is more than 35 days in the past; events "
            "older than that can't be billed.",
            "timestamp",
        )
    if timestamp > now + ACCEPTANCE_WINDOW_FUTURE:
        raise EventRejected(
            ErrorCode.TIMESTAMP_IN_FUTURE,
            f"The timestamp {_utc_label(timestamp)} is more than 5 minutes in the future; check "
            "the sender's clock.",
            "timestamp",
        )
    return timestamp


def _utc_label(moment: dt.datetime) -> str:
    try:
        return f"{moment.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    except OverflowError:  # year 1 at +05:00 or 9999-12-31 at -05:00 has no UTC date
        return moment.isoformat()


def event_identifier(raw: Any) -> str:
    """The sender's identifier, or a random one: an event without one can't be deduplicated."""
    if raw is None or raw == "":
        return uuid.uuid4().hex
    if not _is_identifier(raw):
        raise EventRejected(
            ErrorCode.INVALID_IDENTIFIER,
            f"identifier must be a string of at most {MAX_IDENTIFIER_LENGTH} characters, "
            "without NUL characters (\\u0000) or unpaired surrogates.",
            "identifier",
        )
    return raw


def _is_identifier(raw: Any) -> bool:
    return isinstance(raw, str) and len(raw) <= MAX_IDENTIFIER_LENGTH and is_storable_text(raw)


def validate_event(
    index: int,
    event: EventInput,
    *,
    now: dt.datetime,
    meters: Mapping[str, Meter],
    customers: Mapping[str, CustomerRef],
) -> ValidEvent:
    """Apply every rule in the order a sender fixes them; raise EventRejected at the first."""
    if not isinstance(event.event_name, str) or not event.event_name:
        raise EventRejected(ErrorCode.PARAMETER_MISSING, "event_name is required.", "event_name")
    if not is_storable_text(event.event_name):
        raise EventRejected(
            ErrorCode.PARAMETER_INVALID,
            "event_name can't contain NUL characters (\\u0000) or unpaired surrogates.",
            "event_name",
        )
    meter = meters.get(event.event_name)
    if meter is None:
        raise EventRejected(
            ErrorCode.NO_METER,
            f"No meter has event_name '{event.event_name}'. Create the meter first, or check "
            "the spelling.",
            "event_name",
        )
    if not meter.is_active:
        raise EventRejected(
            ErrorCode.ARCHIVED_METER,
            f"Meter {meter.public_id} ('{meter.event_name}') is inactive and refuses events; "
            "reactivate it to record usage.",
            "event_name",
        )
    payload = check_payload(event.payload)
    customer_public_id = payload.get(meter.customer_payload_key)
    if not customer_public_id:
        raise EventRejected(
            ErrorCode.NO_CUSTOMER_DEFINED,
            f"The payload has no '{meter.customer_payload_key}' key, which meter "
            f"'{meter.event_name}' reads the customer id from.",
            f"payload[{meter.customer_payload_key}]",
        )
    customer = customers.get(customer_public_id)
    if customer is None:
        raise EventRejected(
            ErrorCode.CUSTOMER_NOT_FOUND,
            f"No customer with id '{customer_public_id}'.",
            f"payload[{meter.customer_payload_key}]",
        )
    raw_value = payload.get(meter.value_payload_key)
    if raw_value is None:
        if meter.formula != Meter.Formula.COUNT:
            raise EventRejected(
                ErrorCode.VALUE_NOT_FOUND,
                f"The payload has no '{meter.value_payload_key}' key, which meter "
                f"'{meter.event_name}' reads the value from.",
                f"payload[{meter.value_payload_key}]",
            )
        value = Decimal(1)
    else:
        try:
            value = parse_event_value(raw_value)
        except EventRejected as reject:
            reject.param = f"payload[{meter.value_payload_key}]"
            raise
    customer_id, test_clock_time = customer
    # A customer on a test clock lives at the clock's time: the window is checked against it.
    customer_now = test_clock_time or now
    return ValidEvent(
        index=index,
        meter=meter,
        customer_id=customer_id,
        identifier=event_identifier(event.identifier),
        value=value,
        timestamp=check_timestamp(event.timestamp, customer_now),
        payload=payload,
        received_at=customer_now,
    )


def validate_batch(
    events: Sequence[EventInput],
    *,
    now: dt.datetime,
    meters: Mapping[str, Meter],
    customers: Mapping[str, CustomerRef],
) -> tuple[list[ValidEvent], list[RejectedEvent]]:
    """Each event checked on its own; an identifier repeated within the batch counts once."""
    valid: list[ValidEvent] = []
    rejected: list[RejectedEvent] = []
    seen: set[tuple[int, str]] = set()
    for index, event in enumerate(events):
        try:
            item = validate_event(index, event, now=now, meters=meters, customers=customers)
        except EventRejected as reject:
            rejected.append(
                RejectedEvent(
                    index,
                    reject.code,
                    reject.message,
                    reject.param,
                    _echoable_identifier(event.identifier),
                )
            )
            continue
        key = (item.meter.pk, item.identifier)
        if key in seen:
            rejected.append(duplicate_rejection(item))
            continue
        seen.add(key)
        valid.append(item)
    return valid, rejected


def duplicate_rejection(item: ValidEvent) -> RejectedEvent:
    return RejectedEvent(
        item.index,
        ErrorCode.DUPLICATE,
        f"An event with identifier '{item.identifier}' was already recorded for meter "
        f"'{item.meter.event_name}'; it is counted once.",
        "identifier",
        item.identifier,
    )


def _echoable_identifier(identifier: Any) -> str | None:
    """The identifier as the rejection list may repeat it back (only a valid one)."""
    return identifier if _is_identifier(identifier) else None
