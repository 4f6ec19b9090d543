"""Credit balances, as the API, the admin and the portal show them.

- ledger balance: every ledger row effective by now, added up, for live grants. It is what the
  ledger says the customer holds (grants not yet effective aren't counted).
- available balance: the ledger balance minus what draft invoices still in their grace period
  will take when they finalize. It is what the customer can still count on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Case, F, IntegerField, Q, Sum, When

from credits.models import CreditBalanceTransaction, CreditGrant
from credits.services import LineToCredit, grant_balances, plan_applications

T = CreditBalanceTransaction


def subscription_currencies(customer) -> set[str]:
    return set(customer.subscriptions.filter(status="active").values_list("currency", flat=True))


@dataclass(frozen=True)
class Balance:
    ledger: int
    available: int


def balance_summary(*, customer, grant: CreditGrant | None = None) -> dict[str, Balance]:
    now = customer.billing_now()
    rows = T.objects.filter(customer=customer, effective_at__lte=now)
    if grant is not None:
        rows = rows.filter(grant=grant)
    totals = rows.values("grant__currency").annotate(
        balance=Sum(
            Case(
                When(type=T.Type.CREDIT, then=F("amount")),
                default=-F("amount"),
                output_field=IntegerField(),
            )
        )
    )
    ledger = {row["grant__currency"]: row["balance"] or 0 for row in totals}
    if grant is not None and not ledger:
        ledger = {grant.currency: 0}
    summary = {}
    for currency, balance in ledger.items():
        pending = _pending_on_drafts(customer, currency, now, grant)
        summary[currency] = Balance(ledger=balance, available=max(0, balance - pending))
    return summary


def _pending_on_drafts(customer, currency: str, now, grant: CreditGrant | None) -> int:
    pending = 0
    for invoice in customer.invoices.filter(status="draft", currency=currency):
        lines = [
            LineToCredit(line.pk, line.price_id, line.amount, line.kind == "metered")
            for line in invoice.lines.all()
        ]
        for plan in plan_applications(
            customer_id=customer.pk, currency=currency, lines=lines, at=now
        ):
            if grant is None or plan.grant.pk == grant.pk:
                pending += plan.amount
    return pending


@dataclass(frozen=True)
class GrantBalance:
    grant: CreditGrant
    remaining: int


def grants_with_balances(*, customer) -> list[GrantBalance]:
    grants = list(CreditGrant.objects.filter(customer=customer).order_by("-pk"))
    balances = grant_balances(grant.pk for grant in grants)
    return [GrantBalance(grant, balances.get(grant.pk, 0)) for grant in grants]


def grants_expiring(*, before: dt.datetime) -> list[CreditGrant]:
    return list(
        CreditGrant.objects.filter(
            Q(expires_at__lte=before),
            expired_at__isnull=True,
            voided_at__isnull=True,
        ).select_related("customer")
    )
