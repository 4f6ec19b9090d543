"""Stripe-style public ids (`cus_...`, `price_...`).

Rows keep an integer primary key for joins and stable ordering; the public id is what the API,
the admin and the portal show.
"""

from __future__ import annotations

import functools
import secrets
import string

from django.db import models

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 24


def generate_public_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))


def PublicIdField(prefix: str) -> models.CharField:
    return models.CharField(
        max_length=len(prefix) + 1 + _RANDOM_LENGTH,
        unique=True,
        editable=False,
        default=functools.partial(generate_public_id, prefix),
        verbose_name="ID",
        help_text=f"Public id shown in the API ({prefix}_...).",
    )
