"""Stripe's published object schemas, and a client that checks every object it receives.

`stripe_schemas.json` is a copy of JSON Schemas derived from the official Node SDK's type
declarations (`stripe` npm package, `types/*.d.ts`, API version `2026-10-28.endive`): one schema
per object this project returns, keyed by its `object` value (`deleted_<object>` for a deleted
one), and under `__params__` the request parameters of each SDK operation. Where the SDK types a
field as an open enum (`'a' | 'b' | string`), the schema marks it `x-open-enum` and any string
is accepted, as the SDK accepts it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = Path(__file__).parent / "stripe_schemas.json"
DELETED = {"test_helpers.test_clock": "deleted_test_clock"}


@cache
def schemas() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def _open_enums(schema: Any) -> Any:
    if isinstance(schema, dict):
        if schema.get("x-open-enum"):
            schema = {key: value for key, value in schema.items() if key != "enum"}
        return {key: _open_enums(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_open_enums(item) for item in schema]
    return schema


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_open_enums(copy.deepcopy(schemas()[name])))


def schema_name(obj: dict[str, Any]) -> str | None:
    name = obj.get("object")
    if not isinstance(name, str):
        return None
    if obj.get("deleted") is True:
        name = DELETED.get(name, f"deleted_{name}")
    return name if name in schemas() and not name.startswith("__") else None


def objects_in(value: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every Stripe object inside `value` (lists' items, embedded and expanded objects), with
    where it was found."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(value, dict):
        if schema_name(value):
            found.append((where or "(response)", value))
        for key, item in value.items():
            found.extend(objects_in(item, f"{where}.{key}" if where else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(objects_in(item, f"{where}[{index}]"))
    return found


def problems(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each field of `obj` that does not validate against Stripe's schema for its type, as
    (object type, field path, what is wrong)."""
    name = schema_name(obj)
    assert name is not None
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(map(str, e.path)))
    return [
        (name, ".".join(map(str, error.path)) or "(top)", error.message[:300]) for error in errors
    ]


def operation_params(operation: str) -> set[str]:
    """The request parameters the SDK sends for `operation` (e.g.
    'Subscriptions.d.ts:SubscriptionCreateParams')."""
    return set(schemas()["__params__"][operation])
