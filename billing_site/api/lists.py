"""Stripe's optional list filters: `GET /v1/invoices?customer=cus_...&status=open`.

Each filter the client sends narrows the list by one lookup; an absent or empty filter doesn't
narrow it. A filter whose value must come from a fixed set (a status) is declared with `OneOf`,
so a typo is a 400 naming the parameter rather than an empty list.
"""

from __future__ import annotations

import datetime as dt
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


_RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


def filter_by_time_range(
    queryset: models.QuerySet, params: Params, key: str, field: str
) -> models.QuerySet:
    """Stripe's time filters: `created=<unix>` (that second) or `created[gte]=...&created[lt]=...`
    (any of gt, gte, lt, lte)."""
    if key not in params:
        return queryset
    if isinstance(params.data.get(key), dict):
        bounds = params.nested(key)
        assert bounds is not None
        for operator in _RANGE_OPERATORS:
            moment = bounds.timestamp(operator)
            if moment is not None:
                queryset = queryset.filter(**{f"{field}__{operator}": moment})
        bounds.reject_unknown()
        return queryset
    moment = params.timestamp(key)
    if moment is None:
        return queryset
    return queryset.filter(
        **{f"{field}__gte": moment, f"{field}__lt": moment + dt.timedelta(seconds=1)}
    )
