"""Stripe's published shapes of events, webhook endpoints and the objects events carry.

The schemas are copied into tests/billing_site/stripe_event_schemas.json (its `source` says from
where), so the suite needs nothing outside the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "stripe_event_schemas.json").read_text()
)["schemas"]


def assert_stripe_shape(name: str, value: dict[str, Any], *, complete: bool = True) -> None:
    """`value` has Stripe's shape `name`: with `complete=False`, every field it has is of
    Stripe's type, but not every field Stripe lists need be there."""
    schema = SCHEMAS[name]
    if not complete:
        schema = {**schema, "required": [k for k in schema["required"] if k in ("id", "object")]}
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: e.path
    )
    assert not errors, f"{name} {value.get('id')}: " + "; ".join(
        f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}" for error in errors[:5]
    )


def assert_event_shape(event: dict[str, Any]) -> None:
    """The event in Stripe's shape, and the object it carries with Stripe's types. (Which of
    Stripe's fields each object has is its API serializer's concern: tests/api/.)"""
    assert_stripe_shape("event", event)
    obj = event["data"]["object"]
    if event["type"] == "invoice.upcoming":
        # Stripe's upcoming invoice is a preview, with a preview's id.
        assert obj["object"] == "invoice" and obj["id"].startswith("upcoming_in_")
    name = obj["object"]
    if obj.get("deleted"):
        name = {"test_helpers.test_clock": "deleted_test_clock"}.get(name, f"deleted_{name}")
    assert_stripe_shape(name, obj, complete=False)
