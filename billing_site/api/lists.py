"""Stripe's optional list filters: `GET /v1/invoices?customer=cus_...&status=open`.

Each filter the client sends narrows the list by one lookup; an absent or empty filter doesn't
narrow it. A filter whose value must come from a fixed set (a status) is declared with `OneOf`,
so a typo is a 400 naming the parameter rather than an empty list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models

from billing_site.api.params import Params


@dataclass(frozen=True)
class OneOf:
    lookup: str
    choices: Iterable[str]


def filter_by_params(
    queryset: models.QuerySet, params: Params, **filters: str | OneOf
) -> models.QuerySet:
    """Apply `param=lookup` filters, in the order given: `customer="customer__public_id"`."""
    for param, spec in filters.items():
        if isinstance(spec, OneOf):
            lookup, value = spec.lookup, params.choice(param, spec.choices)
        else:
            lookup, value = spec, params.string(param)
        if value:
            queryset = queryset.filter(**{lookup: value})
    return queryset
