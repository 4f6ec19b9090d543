"""How an event's `data.object` is rendered: the API's own serializer for that object.

The serializers live in each app's API modules, which services may not import; each app
registers its serializers here from `AppConfig.ready()`, and `record_event` looks them up by the
object's class. A model's object is re-read through the registered queryset first, so the event
holds what the database holds at that moment in the transaction, with the same related rows the
API loads, whatever the caller's instance has cached or changed in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


@dataclass(frozen=True)
class _Registration:
    serialize: Callable[[Any], dict[str, Any]]
    queryset: Callable[[], models.QuerySet] | None


_registry: dict[type, _Registration] = {}


def register_object_serializer(
    cls: type | str,
    serialize: Callable[[Any], dict[str, Any]],
    *,
    queryset: Callable[[], models.QuerySet] | None = None,
) -> None:
    """Render objects of `cls` (a class, or a model label such as "invoicing.Invoice") with
    `serialize`; for a model, re-read each one from `queryset()` (default: the model's
    manager) before serializing."""
    if isinstance(cls, str):
        cls = apps.get_model(cls)
    if queryset is None and isinstance(cls, type) and issubclass(cls, models.Model):
        queryset = cls._default_manager.all
    _registry[cls] = _Registration(serialize, queryset)


def _registration(cls: type) -> _Registration:
    registration = _registry.get(cls)
    if registration is None:
        raise LookupError(
            f"No event serializer is registered for {cls.__name__}; register one with "
            "billing_site.events.objects.register_object_serializer in its app's ready()."
        )
    return registration


def serialize_object(obj: Any) -> dict[str, Any]:
    """The object as the API would serialize it now, as plain JSON values."""
    registration = _registration(type(obj))
    if registration.queryset is not None and getattr(obj, "pk", None) is not None:
        obj = registration.queryset().get(pk=obj.pk)
    return as_json(registration.serialize(obj))


def serialize_objects(objs: Sequence[Any]) -> list[dict[str, Any]]:
    """`serialize_object` for many saved objects of one class, in their order: re-read through
    the registered queryset in one query (plus its prefetches), not one per object, so a
    billing run's chunk costs a fixed number of queries."""
    return serialize_loaded(load_objects(objs))


def load_objects(objs: Sequence[Any]) -> list[Any]:
    """These objects re-read as `serialize_objects` reads them (one query plus the registered
    queryset's prefetches), in their order, to serialize with `serialize_loaded`."""
    if not objs:
        return []
    registration = _registration(type(objs[0]))
    if registration.queryset is None:
        return list(objs)
    loaded = registration.queryset().in_bulk([obj.pk for obj in objs])
    return [loaded[obj.pk] for obj in objs]


def reload_rows(loaded: Sequence[Any]) -> None:
    """Re-read the rows of objects from `load_objects`: their own columns and the registered
    queryset's annotations, in one query, keeping the related rows they were loaded with.

    For a caller that changed only the rows themselves since it loaded them (the billing run
    moving subscriptions to their next period): their items, prices and customers, most of
    the cost of a load, are not read again."""
    if not loaded:
        return
    registration = _registration(type(loaded[0]))
    if registration.queryset is None:
        raise LookupError(f"{type(loaded[0]).__name__} has no queryset to re-read rows from.")
    rows = (
        registration.queryset()
        .prefetch_related(None)
        .filter(pk__in=[obj.pk for obj in loaded])
        .values()
    )
    by_pk = {obj.pk: obj for obj in loaded}
    pk_name = type(loaded[0])._meta.pk.attname
    for row in rows:
        obj = by_pk[row[pk_name]]
        for name, value in row.items():
            setattr(obj, name, value)


def serialize_loaded(objs: Sequence[Any]) -> list[dict[str, Any]]:
    """Objects from `load_objects`, serialized as they are (not re-read again)."""
    if not objs:
        return []
    registration = _registration(type(objs[0]))
    return as_json([registration.serialize(obj) for obj in objs])


def as_json(value: Any) -> Any:
    """`value` as it reads back from JSON (Decimals and times as the API writes them), so what
    is compared for previous_attributes is what is stored and sent."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
