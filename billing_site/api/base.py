"""The base view of every API endpoint: auth, body decoding, idempotency, errors, pagination.

An endpoint subclasses `ApiView` and implements `get`/`post`/`delete` as
`(self, request, params: Params, **url_kwargs) -> dict`. It raises `BillingError` (or
`ApiError`) for anything the client should fix; the base view renders Stripe's error shape.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from billing_site import clock
from billing_site.api.params import ParameterError, Params, decode_form
from billing_site.errors import BillingError, NotFound
from billing_site.models import ApiKey, IdempotencyKey
from billing_site.services import api_key_authenticate

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def error_response(error: ApiError) -> JsonResponse:
    return JsonResponse(error.body(), status=error.status)


def _from_billing_error(exc: BillingError) -> ApiError:
    status = 404 if isinstance(exc, NotFound) and exc.param is None else 400
    return ApiError(exc.message, status=status, code=exc.code, param=exc.param)


def _authenticate(request: HttpRequest) -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        import base64
        import binascii

        try:
            credential = base64.b64decode(credential).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    credential = credential.strip()
    if not credential:
        raise ApiError(
            "You did not provide an API key. Send it in the Authorization header "
            "('Authorization: Bearer sk_...').",
            status=401,
        )
    api_key = api_key_authenticate(secret=credential)
    if api_key is None:
        shown = credential[:7] + "*" * max(0, len(credential) - 11) + credential[-4:]
        raise ApiError(f"Invalid API Key provided: {shown}", status=401, code="api_key_invalid")
    return api_key


def _decode_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > settings.BILLING_API_MAX_BODY_BYTES:
        raise ApiError(
            f"Request body too large: at most {settings.BILLING_API_MAX_BODY_BYTES} bytes.",
            status=413,
        )
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            # Decimal, not float: values like 0.1 must arrive exactly.
            data = json.loads(request.body or b"{}", parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(f"Invalid JSON body: {exc}.") from exc
        if not isinstance(data, dict):
            raise ApiError("Invalid JSON body: the top level must be an object.")
        return data
    if request.body and content_type not in ("", "application/x-www-form-urlencoded"):
        raise ApiError(
            f"Unsupported Content-Type '{content_type}': send application/x-www-form-urlencoded "
            "(as Stripe's SDKs do) or application/json.",
            status=415,
        )
    try:
        return decode_form(request.body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError("The request body must be UTF-8 encoded.") from exc


@method_decorator(csrf_exempt, name="dispatch")
class ApiView(View):
    """Every API response goes through `dispatch`, so every one has the same shape."""

    http_method_names = ["get", "post", "delete"]
    # False only for views that validate every parameter before their single write.
    atomic = True

    def authenticate(self, request: HttpRequest) -> ApiKey:
        return _authenticate(request)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            request.api_key = self.authenticate(request)  # type: ignore[attr-defined]
            method = (request.method or "").lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                raise ApiError(
                    f"Unrecognized request URL ({request.method}: {request.path}).", status=404
                )
            if request.method == "GET":
                data = decode_form(request.META.get("QUERY_STRING", ""))
            else:
                data = _decode_body(request)
                query = decode_form(request.META.get("QUERY_STRING", ""))
                data = {**query, **data}
            idempotency_key = request.headers.get("Idempotency-Key")
            if request.method == "POST" and idempotency_key:
                return _run_idempotently(request, idempotency_key, data, handler, kwargs)
            return _run(request, data, handler, kwargs)
        except ApiError as exc:
            return error_response(exc)
        except BillingError as exc:
            return error_response(_from_billing_error(exc))


def _call(
    request: HttpRequest, data: dict[str, Any], handler: Callable[..., Any], kwargs: dict
) -> tuple[int, dict[str, Any]]:
    params = Params(data)
    view = getattr(handler, "__self__", None)
    # Ingestion views check their parameters before they write, and write in one statement,
    # so they skip the request transaction (BEGIN and COMMIT are two round trips per request).
    wrap = transaction.atomic() if getattr(view, "atomic", True) else contextlib.nullcontext()
    try:
        with wrap:
            body = handler(request, params, **kwargs)
            # Unknown parameters are checked after the handler read what it knows; the
            # transaction makes sure nothing it wrote survives that error.
            params.reject_unknown()
    except ApiError as exc:
        return exc.status, exc.body()
    except BillingError as exc:
        error = _from_billing_error(exc)
        return error.status, error.body()
    except ValueError as exc:
        # Pure engines (rating, terms) raise ValueError subclasses carrying a param.
        param = getattr(exc, "param", None)
        if param is None:
            raise
        error = ApiError(getattr(exc, "message", str(exc)), param=param)
        return error.status, error.body()
    return 200, body


def _run(request, data, handler, kwargs) -> JsonResponse:
    status, body = _call(request, data, handler, kwargs)
    return JsonResponse(body, status=status)


def _fingerprint(request: HttpRequest, data: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "params": data},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run_idempotently(request, key: str, data, handler, kwargs) -> JsonResponse:
    if len(key) > 255:
        raise ApiError("Idempotency-Key must be at most 255 characters.", param="Idempotency-Key")
    api_key = request.api_key
    fingerprint = _fingerprint(request, data)
    now = clock.now()
    ttl = dt.timedelta(hours=settings.BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyKey.objects.filter(api_key=api_key, key=key, created_at__lt=now - ttl).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(
                api_key=api_key,
                key=key,
                request_method=request.method,
                request_path=request.path[:255],
                request_fingerprint=fingerprint,
                created_at=now,
            )
    except IntegrityError:
        record = IdempotencyKey.objects.get(api_key=api_key, key=key)
        if record.request_fingerprint != fingerprint:
            raise ApiError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
                code="idempotency_key_in_use",
            ) from None
        if record.response_status is None:
            raise ApiError(
                "There is currently another in-progress request using this Idempotency-Key. "
                "Retry this request after it finishes.",
                status=409,
                type="idempotency_error",
                code="idempotency_key_in_use",
            ) from None
        response = JsonResponse(record.response_body, status=record.response_status)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        status, body = _call(request, data, handler, kwargs)
    except Exception:
        # Nothing was committed by the handler, so a retry must be able to run it again.
        record.delete()
        raise
    IdempotencyKey.objects.filter(pk=record.pk).update(response_status=status, response_body=body)
    response = JsonResponse(body, status=status)
    response["Idempotency-Key"] = key
    return response


def get_by_public_id(
    queryset: models.QuerySet, public_id: str, resource: str, *, param: str | None = None
) -> Any:
    try:
        return queryset.get(public_id=public_id)
    except queryset.model.DoesNotExist:
        raise NotFound(resource, public_id, param=param) from None


def paginate(
    queryset: models.QuerySet,
    params: Params,
    *,
    url: str,
    resource: str,
    serialize: Callable[[Any], dict[str, Any]],
    oldest_first: bool = False,
) -> dict[str, Any]:
    """Stripe list pagination by the integer primary key (stable and indexed).

    Lists are newest first, except where order means something else (an invoice's lines).
    """
    limit = params.integer("limit", minimum=1, maximum=100) or 10
    starting_after = params.string("starting_after")
    ending_before = params.string("ending_before")
    if starting_after and ending_before:
        raise ParameterError(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    model = queryset.model
    forward, backward = ("pk", "-pk") if oldest_first else ("-pk", "pk")
    after, before = ("pk__gt", "pk__lt") if oldest_first else ("pk__lt", "pk__gt")
    if starting_after:
        cursor = _cursor_pk(model, starting_after, resource, "starting_after")
        page = list(queryset.filter(**{after: cursor}).order_by(forward)[: limit + 1])
    elif ending_before:
        cursor = _cursor_pk(model, ending_before, resource, "ending_before")
        page = list(queryset.filter(**{before: cursor}).order_by(backward)[: limit + 1])
    else:
        page = list(queryset.order_by(forward)[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    if ending_before:
        page.reverse()
    return {
        "object": "list",
        "data": [serialize(item) for item in page],
        "has_more": has_more,
        "url": url,
    }


def _cursor_pk(model: type[models.Model], public_id: str, resource: str, param: str) -> int:
    pk = model._default_manager.filter(public_id=public_id).values_list("pk", flat=True).first()
    if pk is None:
        raise NotFound(resource, public_id, param=param)
    return pk


class UnrecognizedUrl(ApiView):
    """Anything under /v1/ that no endpoint matched gets Stripe's JSON 404, not an HTML page."""

    def _unrecognized(self, request, params: Params, **kwargs: Any) -> dict[str, Any]:
        raise ApiError(f"Unrecognized request URL ({request.method}: {request.path}).", status=404)

    get = post = delete = _unrecognized
