"""Credit grants, balances and ledger rows as people see them: amounts formatted, a grant's
status in words.

The status itself is the model's rule (`CreditGrant.status_at`); only its wording differs by
audience, so each audience passes its own labels (staff: `STAFF_STATUS_LABELS`; the customer
portal says "Not yet effective" for a scheduled grant).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from catalog.money import format_minor_units
from credits.models import CreditBalanceTransaction, CreditGrant
from credits.selectors import balance_summary, grants_with_balances

STAFF_STATUS_LABELS: Mapping[str, str] = {
    CreditGrant.STATUS_ACTIVE: "Active",
    CreditGrant.STATUS_SCHEDULED: "Scheduled",
    CreditGrant.STATUS_EXPIRED: "Expired",
    CreditGrant.STATUS_VOIDED: "Voided",
}


@dataclass(frozen=True)
class GrantRow:
    """A grant with what remains of it, and its status at a given moment."""

    grant: CreditGrant
    amount: str
    remaining: str
    status: str  # CreditGrant.STATUS_*
    status_label: str


def grant_rows(
    *,
    customer,
    at: dt.datetime,
    status_labels: Mapping[str, str] = STAFF_STATUS_LABELS,
) -> list[GrantRow]:
    """The customer's grants, newest first, with remaining balances and status at `at`."""
    rows = []
    for row in grants_with_balances(customer=customer):
        grant, status = row.grant, row.grant.status_at(at)
        rows.append(
            GrantRow(
                grant=grant,
                amount=format_minor_units(grant.amount, grant.currency),
                remaining=format_minor_units(row.remaining, grant.currency),
                status=status,
                status_label=status_labels[status],
            )
        )
    return rows


@dataclass(frozen=True)
class BalanceRow:
    currency: str
    ledger: str  # what the ledger holds now
    available: str  # that, minus what drafts in their grace period will take


def balance_rows(*, customer) -> list[BalanceRow]:
    """The customer's credit balance per currency (alphabetical)."""
    return [
        BalanceRow(
            currency=currency,
            ledger=format_minor_units(balance.ledger, currency),
            available=format_minor_units(balance.available, currency),
        )
        for currency, balance in sorted(balance_summary(customer=customer).items())
    ]


@dataclass(frozen=True)
class LedgerRow:
    """A ledger row as the tables show it: amounts signed, in major units."""

    transaction: CreditBalanceTransaction
    grant: CreditGrant
    amount: str
    invoice: Any


def ledger_rows(transactions: Iterable[CreditBalanceTransaction]) -> list[LedgerRow]:
    """Pass rows with `grant` and `invoice` selected."""
    return [
        LedgerRow(
            transaction=row,
            grant=row.grant,
            amount=format_minor_units(row.signed_amount, row.grant.currency),
            invoice=row.invoice,
        )
        for row in transactions
    ]
