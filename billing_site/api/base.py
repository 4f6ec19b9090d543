"""The base view of every API endpoint: body decoding, idempotency, errors, pagination.

Who may call is decided in `billing_site.api.auth` (keys, rate limits, restricted keys); the
error shape is `billing_site.api.errors`; `Idempotency-Key` is `billing_site.api.idempotency`.

An endpoint subclasses `ApiView` and implements `get`/`post`/`delete` as
`(self, request, params: Params, **url_kwargs) -> dict`. It raises `BillingError` (or
`ApiError`) for anything the client should fix; the base view renders Stripe's error shape.
Whatever else goes wrong is still answered in that shape, never with an HTML page: a lost
database connection is a retryable 503, anything unexpected a logged 500 `api_error`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import (
    DataError,
    InterfaceError,
    OperationalError,
    connections,
    models,
    transaction,
)
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from billing_site.api.auth import (
    authenticate,
    authenticate_within_limits,
    check_resource_declared,
    refuse_without_permission,
)
from billing_site.api.errors import ApiError, error_response, from_billing_error
from billing_site.api.expand import ListPage, check_paths, expand_response
from billing_site.api.idempotency import run_idempotently
from billing_site.api.lists import filter_by_time_range
from billing_site.api.params import (
    ParameterError,
    Params,
    decode_form,
    decode_json,
    find_unstorable_text,
)
from billing_site.errors import BillingError, ErrorCode, NotFound
from billing_site.events.context import api_request_scope
from billing_site.key_permissions import READ
from billing_site.models import ApiKey

logger = logging.getLogger(__name__)


def _request_too_large() -> ApiError:
    return ApiError(
        f"Request body too large: at most {settings.BILLING_API_MAX_BODY_BYTES} bytes.",
        status=413,
    )


def _read_body(request: HttpRequest) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Checked before reading, so an oversized body is never buffered (and Django's own, larger
    # DATA_UPLOAD_MAX_MEMORY_SIZE never answers first with an HTML 400).
    if declared > settings.BILLING_API_MAX_BODY_BYTES:
        raise _request_too_large()
    try:
        body = request.body
    except RequestDataTooBig:
        raise _request_too_large() from None
    except UnreadablePostError:
        raise ApiError("The request body could not be read completely.") from None
    if len(body) > settings.BILLING_API_MAX_BODY_BYTES:
        raise _request_too_large()
    return body


def _decode_body(request: HttpRequest) -> dict[str, Any]:
    body = _read_body(request)
    content_type = request.content_type or ""
    if content_type == "application/json":
        return decode_json(body)
    if body and content_type not in ("", "application/x-www-form-urlencoded"):
        raise ApiError(
            f"Unsupported Content-Type '{content_type}': send application/x-www-form-urlencoded "
            "(as Stripe's SDKs do) or application/json.",
            status=415,
        )
    try:
        return decode_form(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError("The request body must be UTF-8 encoded.") from exc


def _refuse_unstorable_url_ids(kwargs: dict[str, Any]) -> None:
    for name, value in kwargs.items():
        param = "id" if name == "public_id" else name
        if find_unstorable_text(value, param):
            raise ApiError(
                "Invalid id in the URL: ids can't contain NUL characters or unpaired surrogates.",
                param=param,
                code=ErrorCode.PARAMETER_INVALID,
            )


def _database_unavailable(request: HttpRequest) -> JsonResponse:
    logger.warning("Database error during %s %s", request.method, request.path, exc_info=True)
    # Django discards a broken connection only when the error passed through its own cursor;
    # a dead one reached another way would fail every later request on this thread.
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        with contextlib.suppress(Exception):  # the answer below matters more than the cleanup
            if not connection.is_usable():
                connection.close()
    # A retry is safe when the request can't have been applied twice: reads, and writes sent
    # with an Idempotency-Key (which the official SDKs always send).
    safe = request.method != "POST" or bool(request.headers.get("Idempotency-Key"))
    return error_response(
        ApiError(
            "The database is unavailable right now; please retry the request shortly.",
            status=503,
            type="api_error",
            headers={"Retry-After": "1", "Stripe-Should-Retry": "true" if safe else "false"},
        )
    )


def _unexpected_error(request: HttpRequest) -> JsonResponse:
    # The logger and record shape Django uses for its own 500s, so error reporting still sees it.
    logging.getLogger("django.request").error(
        "Internal Server Error: %s",
        request.path,
        exc_info=True,
        extra={"status_code": 500, "request": request},
    )
    return error_response(
        ApiError(
            "An unexpected error occurred on our side; it has been logged.",
            status=500,
            type="api_error",
        )
    )


@method_decorator(csrf_exempt, name="dispatch")
class ApiView(View):
    """Every API response goes through `dispatch`, so every one has the same shape."""

    # HEAD is answered by `get` (Django's View sets that up), without the body.
    http_method_names = ["get", "head", "post", "delete"]
    # False only for views that validate every parameter before their single write.
    atomic = True
    # Which of settings.BILLING_API_RATE_LIMITS applies ("ingest" for meter events).
    rate_limit_group = "default"
    # The resource a restricted key needs permission on (billing_site/key_permissions.py):
    # every subclass declares it, checked at class definition. None only for endpoints that
    # reach no data at all (the unrecognized-URL 404).
    resource: ClassVar[str | None]
    # Methods that need only `read`; every other method needs `write`.
    read_methods: ClassVar[frozenset[str]] = frozenset({"GET", "HEAD"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_resource_declared(cls)

    def authenticate(self, request: HttpRequest) -> ApiKey:
        return authenticate(request)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            response = self._respond(request, kwargs)
        except ApiError as exc:
            response = error_response(exc)
        except BillingError as exc:
            response = error_response(from_billing_error(exc))
        except (OperationalError, InterfaceError):
            response = _database_unavailable(request)
        except Exception:
            response = _unexpected_error(request)
        if getattr(request, "request_id", None):
            response["Request-Id"] = request.request_id
        if request.method == "HEAD":
            response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response

    def _respond(self, request: HttpRequest, kwargs: dict[str, Any]) -> JsonResponse:
        request.api_key = authenticate_within_limits(self, request)  # type: ignore[attr-defined]
        method = (request.method or "").lower()
        handler = getattr(self, method, None) if method in self.http_method_names else None
        if handler is None:
            raise ApiError(
                f"Unrecognized request URL ({request.method}: {request.path}).", status=404
            )
        refuse_without_permission(self, request)
        _refuse_unstorable_url_ids(kwargs)
        if request.method in ("GET", "HEAD"):
            data = decode_form(request.META.get("QUERY_STRING", ""))
        else:
            data = _decode_body(request)
            query = decode_form(request.META.get("QUERY_STRING", ""))
            data = {**query, **data}
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and idempotency_key:
            return run_idempotently(
                request,
                idempotency_key,
                data,
                lambda on_success: _call(request, data, handler, kwargs, on_success=on_success),
            )
        return _run(request, data, handler, kwargs)


def _read_permission(request: HttpRequest) -> Callable[[str], bool]:
    api_key = request.api_key  # type: ignore[attr-defined]
    return lambda resource: api_key.allows(resource, READ)


def _call(
    request: HttpRequest,
    data: dict[str, Any],
    handler: Callable[..., Any],
    kwargs: dict,
    *,
    on_success: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the handler; `on_success` runs inside its transaction, after it succeeded."""
    params = Params(data)
    view = getattr(handler, "__self__", None)
    # Ingestion views check their parameters before they write, and write in one statement,
    # so they skip the request transaction (BEGIN and COMMIT are two round trips per request).
    # But a request with an Idempotency-Key (`on_success` saves its answer) writes and saves
    # in one transaction, so a worker killed in between leaves both or neither: otherwise a
    # retry would store a v2 event (which draws a new identifier) a second time.
    atomic = getattr(view, "atomic", True) or on_success is not None
    wrap = transaction.atomic() if atomic else contextlib.nullcontext()
    try:
        expand = params.expand()
        if expand and not getattr(view, "atomic", True):
            # Such views write before they answer and can't undo the write if an expansion is
            # refused; what they return (meter events) has nothing to expand.
            check_paths(expand, "")
        # Events recorded inside name this request; those of on_commit work (after `wrap`) don't.
        with wrap, api_request_scope(request):
            body = expand_response(
                handler(request, params, **kwargs), expand, can_read=_read_permission(request)
            )
            # Unknown parameters are checked after the handler read what it knows; the
            # transaction makes sure nothing it wrote survives that error.
            params.reject_unknown()
            if on_success is not None:
                on_success(200, body)
    except ApiError as exc:
        return exc.status, exc.body()
    except BillingError as exc:
        error = from_billing_error(exc)
        return error.status, error.body()
    except ValueError as exc:
        # Pure engines (rating, terms) raise ValueError subclasses carrying a param.
        param = getattr(exc, "param", None)
        if param is None:
            raise
        error = ApiError(getattr(exc, "message", str(exc)), param=param)
        return error.status, error.body()
    except (DataError, OverflowError, InvalidOperation):
        # A value past what the database column or the arithmetic can hold. Each limit belongs
        # in a rule that names its parameter; this is the net for one still missing, so the
        # client gets a 400 (and the transaction is rolled back) instead of a 500.
        logger.warning("Out-of-range value in %s %s", request.method, request.path, exc_info=True)
        error = ApiError(
            "A value in this request is outside the range this server can store or compute.",
            code=ErrorCode.PARAMETER_INVALID,
        )
        return error.status, error.body()
    return 200, body


def _run(request, data, handler, kwargs) -> JsonResponse:
    status, body = _call(request, data, handler, kwargs)
    return JsonResponse(body, status=status)


def api_actor(request: HttpRequest) -> str:
    """Who the audit trail says made a change through the API: the key's name."""
    return f"api ({request.api_key.name})"  # type: ignore[attr-defined]


def get_by_public_id(
    queryset: models.QuerySet,
    public_id: str,
    resource: str,
    *,
    param: str | None = None,
    field: str = "public_id",
) -> Any:
    """The object with this id, or `NotFound`: a 404 for an id in the URL, a 400 naming `param`
    for an id in the request's parameters. `field` is for resources with a second id (an
    invoice item is a line with an `ii_` id)."""
    try:
        return queryset.get(**{field: public_id})
    except queryset.model.DoesNotExist:
        raise NotFound(resource, public_id, param=param) from None


def get_by_param(
    queryset: models.QuerySet,
    params: Params,
    key: str,
    resource: str,
    *,
    required: bool = False,
) -> Any:
    """The object whose public id the parameter `key` holds; None if it is optional and absent."""
    public_id = params.string(key, required=required)
    if public_id is None:
        return None
    return get_by_public_id(queryset, public_id, resource, param=params.name(key))


def paginate(
    queryset: models.QuerySet,
    params: Params,
    *,
    url: str,
    resource: str,
    serialize: Callable[[Any], dict[str, Any]],
    oldest_first: bool = False,
    cursor_field: str = "public_id",
    created_field: str | None = "created_at",
) -> dict[str, Any]:
    """Stripe list pagination by the integer primary key (stable and indexed).

    Lists are newest first, except where order means something else (an invoice's lines).
    `cursor_field` is the column holding the ids clients send as cursors (the id they were
    shown). Every list takes Stripe's `created` filter (`created[gte]=...`), on the column
    `created_field` that the objects' `created` shows.
    """
    if created_field:
        queryset = filter_by_time_range(queryset, params, "created", created_field)
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
        cursor = _cursor_pk(model, cursor_field, starting_after, resource, "starting_after")
        page = list(queryset.filter(**{after: cursor}).order_by(forward)[: limit + 1])
    elif ending_before:
        cursor = _cursor_pk(model, cursor_field, ending_before, resource, "ending_before")
        page = list(queryset.filter(**{before: cursor}).order_by(backward)[: limit + 1])
    else:
        page = list(queryset.order_by(forward)[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    if ending_before:
        page.reverse()
    return ListPage(
        {
            "object": "list",
            "data": [serialize(item) for item in page],
            "has_more": has_more,
            "url": url,
        },
        item_type=resource,
    )


@dataclass(frozen=True)
class Listing:
    """What a list endpoint pages through, declared once on its view: the URL its lists name,
    the object name a cursor is looked up as ("No such customer: ..."), and how one item is
    rendered. `page` is `paginate` with these."""

    url: str
    object: str
    serialize: Callable[[Any], dict[str, Any]]
    cursor_field: str = "public_id"

    def page(self, queryset: models.QuerySet, params: Params) -> dict[str, Any]:
        return paginate(
            queryset,
            params,
            url=self.url,
            resource=self.object,
            serialize=self.serialize,
            cursor_field=self.cursor_field,
        )


def _cursor_pk(
    model: type[models.Model], field: str, public_id: str, resource: str, param: str
) -> int:
    rows = model._default_manager.filter(**{field: public_id})
    pk = rows.values_list("pk", flat=True).first()
    if pk is None:
        raise NotFound(resource, public_id, param=param)
    return pk


class UnrecognizedUrl(ApiView):
    """Anything under /v1/ that no endpoint matched gets Stripe's JSON 404, not an HTML page."""

    resource = None  # any valid key gets the 404: there is nothing to protect

    def _unrecognized(self, request, params: Params, **kwargs: Any) -> dict[str, Any]:
        raise ApiError(f"Unrecognized request URL ({request.method}: {request.path}).", status=404)

    get = post = delete = _unrecognized
