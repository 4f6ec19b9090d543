"""The one helper services use to apply an allow-listed update to a row.

After the HackSoft Django Styleguide's ``model_update``: a service first checks what it may
change and cleans the values (with its own messages), then hands the allowed fields here.
They are written with ``save(update_fields=...)``, so an update never overwrites columns it
was not asked to change.

Unlike the Styleguide's version, every allowed field in ``data`` is written, even when the
instance already holds that value: an admin ``ModelForm`` sets the submitted values on the
instance before ``save_model`` calls the service, so comparing in memory would find nothing
to save.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import models

from billing_site import clock

__all__ = ["model_update"]

M = TypeVar("M", bound=models.Model)


def model_update(
    *, instance: M, fields: Iterable[str], data: Mapping[str, Any], auto_updated_at: bool = True
) -> tuple[M, bool]:
    """Set each of `fields` that `data` holds on `instance` and save those columns.

    Keys of `data` outside `fields` are ignored: the caller decides what may change. When
    something is written and the model has an ``updated_at`` column, it is set to
    ``billing_site.clock.now()`` (unless ``auto_updated_at=False``). Returns the instance and
    whether anything was written (False when `data` holds none of `fields`).
    """
    model_fields = {field.name for field in instance._meta.concrete_fields}
    update_fields = []
    for name in fields:
        if name not in data:
            continue
        if name not in model_fields:
            raise ValueError(f"{type(instance).__name__} has no field {name!r} to update.")
        setattr(instance, name, data[name])
        update_fields.append(name)
    if not update_fields:
        return instance, False
    if auto_updated_at and "updated_at" in model_fields and "updated_at" not in update_fields:
        instance.updated_at = clock.now()
        update_fields.append("updated_at")
    instance.save(update_fields=update_fields)
    return instance, True
