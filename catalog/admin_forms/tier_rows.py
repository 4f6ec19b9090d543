"""The tier table of a price on the create-product page, as typed (strings).

Rows arrive as ``<prefix>-tiers-<row>-up_to`` / ``-unit_amount`` / ``-flat_amount`` (``up_to``
in units, the amounts in major units). The page's JavaScript clones rows, so row numbers may
have gaps: they only order the rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.forms.utils import ErrorList

__all__ = ["TIER_COLUMNS", "TierRow", "default_tier_rows", "parse_tier_rows"]

# Staff type these in a tier row; up_to is units, the others major-unit amounts.
TIER_COLUMNS = ("up_to", "unit_amount", "flat_amount")
_TIER_KEY = re.compile(r"tiers-(\d{1,4})-(up_to|unit_amount|flat_amount)")


@dataclass
class TierRow:
    """One row of a price's tier table, as typed (strings), with the errors that belong to it."""

    up_to: str = ""
    unit_amount: str = ""
    flat_amount: str = ""
    errors: dict[str, ErrorList] = field(default_factory=dict)

    @property
    def is_blank(self) -> bool:
        return not any(getattr(self, column).strip() for column in TIER_COLUMNS)

    @property
    def is_open_ended(self) -> bool:
        """Empty or "inf" up_to: the row that should stay last."""
        return self.up_to.strip().lower() in ("", "inf")

    def add_error(self, column: str, message: str) -> None:
        self.errors.setdefault(column, ErrorList()).append(message)


def parse_tier_rows(data: Mapping[str, Any], prefix: str) -> list[TierRow]:
    """Read ``<prefix>-tiers-<row>-<column>`` keys into rows, ordered by row number.

    Row numbers only order the rows: gaps (a row removed in the browser) are fine. Blank
    rows are kept here; callers decide whether they mean anything.
    """
    start = f"{prefix}-"
    rows: dict[int, dict[str, str]] = {}
    for key in data:
        if not key.startswith(start):
            continue
        match = _TIER_KEY.fullmatch(key[len(start) :])
        if match:
            value = data.get(key)
            rows.setdefault(int(match[1]), {})[match[2]] = value if isinstance(value, str) else ""
    return [TierRow(**rows[number]) for number in sorted(rows)]


def default_tier_rows() -> list[TierRow]:
    """What a new tier table shows: two blank rows, "first N units" and the open-ended last."""
    return [TierRow(), TierRow()]
