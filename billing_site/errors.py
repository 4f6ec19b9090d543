"""The error every service raises when a request breaks a billing rule.

The API turns it into a 400 in Stripe's error shape and the admin shows it next to the field
named by `param` (Stripe's bracket notation, e.g. `tiers[1][up_to]`).
"""

from __future__ import annotations


class BillingError(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class NotFound(BillingError):
    def __init__(self, resource: str, public_id: str, *, param: str | None = None):
        super().__init__(f"No such {resource}: '{public_id}'", param=param, code="resource_missing")
        self.resource = resource
        self.public_id = public_id
