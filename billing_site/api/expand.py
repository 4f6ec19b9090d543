"""Stripe's `expand[]`: replace an id in a response by the object it names.

Every endpoint accepts it (retrieve, list with the `data.` prefix, create, update, actions),
because it is applied in one place, to the response a handler returns (`ApiView` calls
`expand_response`). What can be expanded is declared once per object type, by the app that owns
the type, from its `AppConfig.ready()` (billing_site imports no app):

    register_expandable(
        "subscription",
        load=subscriptions_to_serialize, serialize=serialize_subscription,
        fields={"customer": Id("customer"), "latest_invoice": Id("invoice"),
                "items": ListOf("subscription_item")},
    )

`Id(type)` is a field holding an id (or null) of another object; `Nested(type)` and
`ListOf(type)` are objects embedded in the response that a path may pass through
(`items.data.price.product`); `Included()` is an expandable field this server always returns
(a price's `tiers`), accepted and left as it is.

A path is checked against these declarations before any object is loaded, so an unexpandable
path is refused the same way whatever the data; then each step loads all the ids it found in
one query (a page of 100 invoices expanding `data.customer` costs one query, not 100).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models

from billing_site.errors import BillingError

# Stripe's limit: at most four expanded levels, not counting the `data` of a list.
MAX_DEPTH = 4
# More paths than this is not a real integration: each may cost a query.
MAX_PATHS = 30


@dataclass(frozen=True)
class Id:
    """A field holding the id (or null) of an object of `type`."""

    type: str


@dataclass(frozen=True)
class Nested:
    """An object of `type` embedded in the response (a subscription item's price)."""

    type: str


@dataclass(frozen=True)
class ListOf:
    """A list object embedded in the response, whose `data` holds objects of `type`."""

    type: str


@dataclass(frozen=True)
class Included:
    """A field Stripe returns only when expanded and this server always returns."""


Ref = Id | Nested | ListOf | Included


@dataclass(frozen=True)
class _Expandable:
    fields: dict[str, Ref]
    load: Callable[[], models.QuerySet] | None
    serialize: Callable[[Any], dict[str, Any]] | None
    id_field: str
    resource: str | None


# Whether the request's key may read a resource (`billing_site.key_permissions`): an expansion
# shows the whole object, so it needs the same `read` permission as retrieving it.
CanRead = Callable[[str], bool]


_registry: dict[str, _Expandable] = {}


def register_expandable(
    object_type: str,
    *,
    fields: dict[str, Ref] | None = None,
    load: Callable[[], models.QuerySet] | None = None,
    serialize: Callable[[Any], dict[str, Any]] | None = None,
    id_field: str = "public_id",
    resource: str | None = None,
) -> None:
    """Declare `object_type` (its `object` value): which of its fields can be expanded or
    passed through (`fields`, dotted paths allowed), and, for a type that other objects name
    by id, how to load (`load().filter(<id_field>__in=ids)`) and render it, and the API
    resource a restricted key needs `read` on to see it expanded."""
    if load is not None and resource is None:
        raise TypeError(f"Expandable '{object_type}' loads objects but names no resource.")
    _registry[object_type] = _Expandable(fields or {}, load, serialize, id_field, resource)


class ListPage(dict):
    """A list response that knows what its items are, so `data.<field>` is checked even when
    the page is empty. It is a plain dict to everything else (JSON, the idempotency record)."""

    def __init__(self, *args: Any, item_type: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_type = item_type


def requested_paths(raw: Any) -> list[str]:
    """The `expand` parameter as a list of paths (already decoded from `expand[]=...`)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(path, str) for path in raw):
        raise BillingError("expand must be a list of strings (expand[]=customer).", param="expand")
    if len(raw) > MAX_PATHS:
        raise BillingError(f"You can expand at most {MAX_PATHS} paths at once.", param="expand")
    return [path for path in raw if path]


def _cannot_expand(path: str) -> BillingError:
    return BillingError(f"This property cannot be expanded ({path}).", param="expand")


def _root_type(body: dict[str, Any]) -> Ref | None:
    if isinstance(body, ListPage):
        return ListOf(body.item_type)
    object_type = body.get("object")
    return Nested(object_type) if isinstance(object_type, str) else None


def _plan(path: str, root: Ref | None, can_read: CanRead | None = None) -> list[tuple[str, Ref]]:
    """The steps of `path` from the response's type: (dotted key, what it holds). With
    `can_read`, a step into an object the key may not read is refused before anything loads."""
    segments = path.split(".")
    if sum(segment != "data" for segment in segments) > MAX_DEPTH:
        raise BillingError(
            f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
            param="expand",
        )
    steps: list[tuple[str, Ref]] = []
    current, index = root, 0
    while index < len(segments):
        if isinstance(current, ListOf):
            if segments[index] != "data":
                raise _cannot_expand(path)
            current = Nested(current.type)
            steps.append(("data", current))
            index += 1
            continue
        if not isinstance(current, Id | Nested):
            raise _cannot_expand(path)
        declared = _registry.get(current.type)
        fields = declared.fields if declared else {}
        # The longest declared key wins: `parent.subscription_details.subscription`.
        for end in range(len(segments), index, -1):
            key = ".".join(segments[index:end])
            if key in fields:
                break
        else:
            raise _cannot_expand(path)
        current = fields[key]
        if isinstance(current, Id) and can_read is not None:
            _require_read(path, current.type, can_read)
        steps.append((key, current))
        index = end
    return steps


def _require_read(path: str, object_type: str, can_read: CanRead) -> None:
    declared = _registry.get(object_type)
    resource = declared.resource if declared else None
    if resource is not None and not can_read(resource):
        # Imported here: billing_site.api.errors imports this module (through params).
        from billing_site.api.errors import ApiError

        raise ApiError(
            f"The provided key does not have the required permissions to expand {path}. "
            f"Having the '{resource}' read permission would allow this request to continue.",
            param="expand",
            status=403,
        )


def _slots(node: dict[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """The dict holding the last segment of dotted `key` inside `node`, and that segment."""
    *parents, last = key.split(".")
    for parent in parents:
        node = node.get(parent)  # type: ignore[assignment]
        if not isinstance(node, dict):
            return None
    return node, last


def _load(object_type: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    declared = _registry.get(object_type)
    if declared is None or declared.load is None or declared.serialize is None:
        return {}
    rows = declared.load().filter(**{f"{declared.id_field}__in": ids})
    return {getattr(row, declared.id_field): declared.serialize(row) for row in rows}


def _walk(body: dict[str, Any], steps: list[tuple[str, Ref]]) -> None:
    nodes: list[dict[str, Any]] = [body]
    for key, ref in steps:
        if isinstance(ref, Included):
            return
        if key == "data":
            nodes = [item for node in nodes for item in node.get("data") or []]
            continue
        slots = [slot for node in nodes if (slot := _slots(node, key)) is not None]
        if isinstance(ref, Id):
            # A deleted object (`{"id", "object", "deleted": true}`) has no such field.
            pending = [
                (holder, name) for holder, name in slots if isinstance(holder.get(name), str)
            ]
            loaded = _load(ref.type, {holder[name] for holder, name in pending})
            for holder, name in pending:
                holder[name] = loaded.get(holder[name], holder[name])
        # One object named by several items (a customer on every invoice of a page) is loaded
        # once and shared, so it is walked once.
        unique = {
            id(value): value
            for holder, name in slots
            if isinstance(value := holder.get(name), dict)
        }
        nodes = list(unique.values())
        if not nodes:
            return


def check_paths(paths: list[str], object_type: str) -> None:
    """Refuse unexpandable paths of an `object_type` response before anything runs (for views
    that write outside a transaction, and so can't undo their write once it is expanded)."""
    for path in paths:
        _plan(path, Nested(object_type))


def expand_response(body: Any, paths: list[str], can_read: CanRead | None = None) -> Any:
    """`body` with each of `paths` expanded in place; an unexpandable path is refused, and so
    is a path into an object the key can't read (`can_read`; None: full access)."""
    if not paths:
        return body
    root = _root_type(body) if isinstance(body, dict) else None
    # Shorter paths first, so `latest_invoice` is expanded before `latest_invoice.customer`
    # (which would expand it anyway: each step passes through objects already expanded).
    ordered = sorted(set(paths), key=lambda p: p.count("."))
    plans = [_plan(path, root, can_read) for path in ordered]
    for steps in plans:
        _walk(body, steps)
    return body
