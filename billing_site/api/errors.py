"""The API's error answer: Stripe's error shape, and how a service's `BillingError` maps to it.

Raised from anywhere under `ApiView.dispatch` (authentication, body decoding, a handler), an
`ApiError` becomes a JSON response with its status and headers (`error_response`).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from billing_site.api.params import escape_unstorable
from billing_site.errors import BillingError, NotFound


class ApiError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        # Messages quote what the client sent; a NUL in them couldn't be stored as an
        # idempotent response, so it is quoted as `\u0000`.
        error: dict[str, Any] = {"type": self.type, "message": escape_unstorable(self.message)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = escape_unstorable(self.param)
        return {"error": error}


def error_response(error: ApiError) -> JsonResponse:
    return JsonResponse(error.body(), status=error.status, headers=error.headers)


def from_billing_error(exc: BillingError) -> ApiError:
    """A service's refusal as the API answers it: 404 for a missing object named in the URL,
    400 for everything else (a missing object named by a parameter included)."""
    status = 404 if isinstance(exc, NotFound) and exc.param is None else 400
    return ApiError(exc.message, status=status, code=exc.code, param=exc.param)
