"""The error every service raises when a request breaks a billing rule.

The API turns it into a 400 in Stripe's error shape and the admin shows it next to the field
named by `param` (Stripe's bracket notation, e.g. `tiers[1][up_to]`).
"""

from __future__ import annotations


class ErrorCode:
    """Codes shared by every app (Stripe's names). Each app's own codes are in its errors.py."""

    PARAMETER_INVALID = "parameter_invalid"
    PARAMETER_MISSING = "parameter_missing"
    PARAMETER_UNKNOWN = "parameter_unknown"
    PARAMETER_IMMUTABLE = "parameter_immutable"
    RESOURCE_MISSING = "resource_missing"
    RESOURCE_IN_USE = "resource_in_use"
    RESOURCE_ALREADY_EXISTS = "resource_already_exists"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    URL_INVALID = "url_invalid"
    RATE_LIMIT = "rate_limit"
    API_KEY_INVALID = "api_key_invalid"
    EMAIL_INVALID = "email_invalid"


class BillingError(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class NotFound(BillingError):
    def __init__(self, resource: str, public_id: str, *, param: str | None = None):
        super().__init__(
            f"No such {resource}: '{public_id}'", param=param, code=ErrorCode.RESOURCE_MISSING
        )
        self.resource = resource
        self.public_id = public_id
