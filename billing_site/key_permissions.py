"""What a restricted API key (`rk_...`) may do: per-resource permissions, like Stripe's.

Each resource gets `none`, `read` or `write`, and `write` includes `read`. Every API endpoint
declares the resource it serves (`ApiView.resource`); GET and HEAD need `read`, anything else
`write`. A full-access key (`sk_...`) has no permissions map (None) and may do everything.

A new API resource adds one line to `RESOURCES` and declares it on its views. Keys store their
permissions resource by resource, so an existing key never silently gains access to a resource
added later (not even a `read_only` one); create a new key for that.

Pure: no ORM, so services, the API base view, the admin and commands share these rules.
"""

from __future__ import annotations

from collections.abc import Mapping

NONE = "none"
READ = "read"
WRITE = "write"
ACCESS_LEVELS = (NONE, READ, WRITE)

# name -> what it covers (shown in the admin form and in `create_api_key --help`).
RESOURCES: dict[str, str] = {
    "customers": "Customers",
    "products": "Products and prices",
    "meters": "Meters and their usage summaries",
    "meter_events": "Meter events: v1 ingest, adjustments, stream sessions and the v2 stream",
    "subscriptions": "Subscriptions and subscription items",
    "invoices": "Invoices, invoice items, lines and previews",
    "credits": "Credit grants, credit balance transactions and the balance summary",
    "test_clocks": "Test clocks",
    "billing_portal": "Customer portal sessions",
    "events": "Events",
    "webhook_endpoints": "Webhook endpoints",
    "account": "The account: the seller's name, country and default currency",
}

Permissions = dict[str, str]
"""resource -> "read" or "write"; a resource not listed is "none"."""

PRESETS: dict[str, Permissions] = {
    "read_only": {resource: READ for resource in RESOURCES},
    "ingest_only": {"meter_events": WRITE},
}
PRESET_DESCRIPTIONS = {
    "read_only": "Read only: reads every resource, changes nothing",
    "ingest_only": (
        "Ingest only: sends meter events (v1, and the v2 stream through a session), reads nothing"
    ),
}


def clean_permissions(permissions: Mapping[str, str]) -> Permissions:
    """The permissions of a restricted key, checked: known resources and levels, at least one
    resource readable. `none` entries are dropped; the order is that of `RESOURCES`."""
    for resource, access in permissions.items():
        if resource not in RESOURCES:
            raise ValueError(f"Unknown resource '{resource}'. Resources: {', '.join(RESOURCES)}.")
        if access not in ACCESS_LEVELS:
            raise ValueError(
                f"Unknown permission '{access}' for {resource}: use none, read or write."
            )
    cleaned = {
        resource: permissions[resource]
        for resource in RESOURCES
        if permissions.get(resource, NONE) != NONE
    }
    if not cleaned:
        raise ValueError(
            "A restricted key needs read or write on at least one resource; a key that can do "
            "nothing is of no use."
        )
    return cleaned


def parse_restriction(text: str) -> Permissions:
    """A preset name (`read_only`, `ingest_only`) or `resource=permission,...`, e.g.
    `customers=write,invoices=read` (what `create_api_key --restricted` takes)."""
    text = text.strip()
    if text in PRESETS:
        return dict(PRESETS[text])
    if "=" not in text:
        raise ValueError(
            f"'{text}' is neither a preset ({', '.join(PRESETS)}) nor a list of "
            "resource=permission pairs, e.g. customers=write,invoices=read."
        )
    permissions: dict[str, str] = {}
    for pair in text.split(","):
        resource, separator, access = (part.strip() for part in pair.partition("="))
        if not separator or not resource:
            raise ValueError(
                f"'{pair.strip()}' is not a resource=permission pair (e.g. customers=read)."
            )
        if resource in permissions:
            raise ValueError(f"{resource} is given twice.")
        permissions[resource] = access
    return clean_permissions(permissions)


def allows(permissions: Mapping[str, str] | None, resource: str, access: str) -> bool:
    """Whether a key with these permissions (None: full access) may `access` the resource."""
    if permissions is None:
        return True
    granted = permissions.get(resource, NONE)
    return granted == WRITE or (access == READ and granted == READ)


def preset_name(permissions: Mapping[str, str] | None) -> str | None:
    """The preset these permissions are exactly, if any."""
    if permissions is None:
        return None
    return next((name for name, preset in PRESETS.items() if preset == dict(permissions)), None)


def describe(permissions: Mapping[str, str] | None) -> str:
    """In words, for lists and messages: "Full access", "Read only", "customers: write, ..."."""
    if permissions is None:
        return "Full access"
    preset = preset_name(permissions)
    if preset is not None:
        return preset.replace("_", " ").capitalize()
    return ", ".join(f"{resource}: {access}" for resource, access in permissions.items())
