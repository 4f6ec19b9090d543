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


_ID_SPACE = len(_ALPHABET) ** _RANDOM_LENGTH


def generate_public_id(prefix: str) -> str:
    # One draw from the OS per id (not one per character: a billing run creates thousands of
    # ids a second), spelled in base 62; every id stays equally likely.
    number = secrets.randbelow(_ID_SPACE)
    characters = []
    for _ in range(_RANDOM_LENGTH):
        number, digit = divmod(number, len(_ALPHABET))
        characters.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(characters)


def PublicIdField(prefix: str) -> models.CharField:
    return models.CharField(
        max_length=len(prefix) + 1 + _RANDOM_LENGTH,
        unique=True,
        editable=False,
        default=functools.partial(generate_public_id, prefix),
        verbose_name="ID",
        help_text=f"Public id shown in the API ({prefix}_...).",
    )
