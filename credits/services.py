"""Billing credits: grants, the ledger, application at finalization, expiry, voiding.

Concurrency: every writer locks the customer's grants in primary-key order
(`SELECT ... FOR UPDATE ORDER BY id`) before reading balances, so two invoices finalizing for
the same customer apply credits one after the other, and a credit can't be spent twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Sum, When

from billing_site import clock
from billing_site.db import values_bound_on_server
from billing_site.errors import BillingError
from billing_site.events.objects import serialize_objects
from billing_site.events.recording import record_event, record_events, record_update, snapshot
from billing_site.limits import check_amount, check_time
from billing_site.model_update import model_update
from catalog.models import Price
from credits.errors import ErrorCode as CreditsErrorCode
from credits.models import CreditBalanceTransaction, CreditGrant, CreditGrantEvent

T = CreditBalanceTransaction
MAX_SCOPED_PRICES = 20


# --- balances ---------------------------------------------------------------------------------


def grant_balances(grant_ids: Iterable[int]) -> dict[int, int]:
    """Remaining balance per grant, derived from the ledger."""
    rows = (
        T.objects.filter(grant_id__in=list(grant_ids))
        .values("grant_id")
        .annotate(
            balance=Sum(
                Case(
                    When(type=T.Type.CREDIT, then=F("amount")),
                    default=-F("amount"),
                    output_field=IntegerField(),
                )
            )
        )
    )
    return {row["grant_id"]: row["balance"] or 0 for row in rows}


def _usable(grants: Sequence[CreditGrant], at: dt.datetime) -> list[CreditGrant]:
    return [
        grant
        for grant in grants
        if grant.voided_at is None
        and grant.expired_at is None
        and grant.effective_at <= at
        and (grant.expires_at is None or grant.expires_at > at)
    ]


def application_order(grants: Iterable[CreditGrant]) -> list[CreditGrant]:
    """DESIGN's order: priority; earliest expiry (none last); promotional before paid;
    earliest effective_at; oldest grant."""
    far_future = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(
        grants,
        key=lambda grant: (
            grant.priority,
            grant.expires_at or far_future,
            0 if grant.category == CreditGrant.Category.PROMOTIONAL else 1,
            grant.effective_at,
            grant.pk,
        ),
    )


# --- application ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineToCredit:
    """What credits need to know of an invoice line (credits can't import invoicing)."""

    line_id: int | None
    price_id: int | None
    amount: int
    metered: bool


@dataclass(frozen=True)
class Application:
    grant: CreditGrant
    line_id: int | None
    line_index: int
    amount: int


def _applies_to(grant: CreditGrant, line: LineToCredit, scoped: dict[int, set[int]]) -> bool:
    if not line.metered or line.amount <= 0:
        return False
    return grant.applies_to_all_metered or line.price_id in scoped.get(grant.pk, set())


@dataclass(frozen=True)
class InvoiceToCredit:
    """One invoice's eligible lines, for `credits_apply_many`."""

    invoice_id: int
    customer_id: int
    currency: str
    lines: Sequence[LineToCredit]


class _Grants:
    """The usable grants of some customers at `at`, with what remains of each: the state the
    application rule spends from, invoice after invoice."""

    def __init__(self, grants: Sequence[CreditGrant], at: dt.datetime) -> None:
        usable = _usable(grants, at)
        balances = grant_balances(grant.pk for grant in usable) if usable else {}
        self.remaining = {grant.pk: balances.get(grant.pk, 0) for grant in usable}
        self.scoped: dict[int, set[int]] = {}
        scoped = [grant.pk for grant in usable if not grant.applies_to_all_metered]
        for grant_id, price_id in CreditGrant.prices.through.objects.filter(
            creditgrant_id__in=scoped
        ).values_list("creditgrant_id", "price_id"):
            self.scoped.setdefault(grant_id, set()).add(price_id)
        self.ordered: dict[tuple[int, str], list[CreditGrant]] = {}
        for grant in application_order(usable):
            self.ordered.setdefault((grant.customer_id, grant.currency), []).append(grant)

    def spend(self, customer_id: int, currency: str, lines: Sequence[LineToCredit]):
        """The one application rule: each line, in order, is paid by the customer's grants in
        DESIGN's order, each up to what remains of it."""
        ordered = self.ordered.get((customer_id, currency), [])
        applications = []
        for index, line in enumerate(lines):
            owed = line.amount
            for grant in ordered:
                if owed <= 0:
                    break
                if self.remaining[grant.pk] <= 0 or not _applies_to(grant, line, self.scoped):
                    continue
                amount = min(owed, self.remaining[grant.pk])
                self.remaining[grant.pk] -= amount
                owed -= amount
                applications.append(Application(grant, line.line_id, index, amount))
        return applications


def _grants_of(customer_ids: Iterable[int], *, lock: bool, currency: str | None = None):
    """The customers' grants, locked in primary-key order with lock=True (the order every
    writer locks in, so two workers can't deadlock)."""
    grants = CreditGrant.objects.filter(customer_id__in=sorted(set(customer_ids))).order_by("pk")
    if currency is not None:
        grants = grants.filter(currency=currency)
    if lock:
        grants = grants.select_for_update()
    return list(grants)


def plan_applications(
    *,
    customer_id: int,
    currency: str,
    lines: Sequence[LineToCredit],
    at: dt.datetime,
    lock: bool = False,
) -> list[Application]:
    """Which grant pays how much of which line; with lock=True the grants stay locked."""
    grants = _Grants(_grants_of([customer_id], lock=lock, currency=currency), at)
    return grants.spend(customer_id, currency, lines)


def credits_apply(
    *,
    customer_id: int,
    currency: str,
    invoice_id: int,
    lines: Sequence[LineToCredit],
    at: dt.datetime,
) -> list[Application]:
    """Spend credits on an invoice's eligible lines, inside the finalization's transaction."""
    invoice = InvoiceToCredit(invoice_id, customer_id, currency, lines)
    return credits_apply_many(invoices=[invoice], at=at)[invoice_id]


def credits_apply_many(
    *, invoices: Sequence[InvoiceToCredit], at: dt.datetime
) -> dict[int, list[Application]]:
    """`credits_apply` for many invoices in one transaction (a billing-run chunk), in their
    order: the grants of all their customers are locked at once, in primary-key order, and each
    invoice spends what the ones before it left. Keyed by invoice id."""
    currencies = {invoice.currency for invoice in invoices}
    grants = _Grants(
        _grants_of(
            (invoice.customer_id for invoice in invoices),
            lock=True,
            currency=next(iter(currencies)) if len(currencies) == 1 else None,
        ),
        at,
    )
    applied: dict[int, list[Application]] = {}
    rows = []
    for invoice in invoices:
        applications = grants.spend(invoice.customer_id, invoice.currency, invoice.lines)
        applied[invoice.invoice_id] = applications
        rows.extend(
            T(
                grant=application.grant,
                customer_id=invoice.customer_id,
                type=T.Type.DEBIT,
                reason=T.Reason.CREDITS_APPLIED,
                amount=application.amount,
                invoice_id=invoice.invoice_id,
                invoice_line_id=application.line_id,
                effective_at=at,
                created_at=at,
            )
            for application in applications
        )
    with values_bound_on_server():
        created = T.objects.bulk_create(rows) if rows else []
    _record_transactions(created)
    return applied


def _record_transactions(rows: Sequence[CreditBalanceTransaction]) -> None:
    record_events(
        [
            ("billing.credit_balance_transaction.created", data, None)
            for data in serialize_objects(rows)
        ]
    )


def credits_reinstate(*, customer_id: int, invoice_id: int, at: dt.datetime) -> int:
    """An invoice was voided: give back what it spent. Credits of a grant that has expired or
    been voided since are debited again at once, so they can't be spent."""
    _customer_grants_locked(customer_id)
    applied = list(
        T.objects.filter(invoice_id=invoice_id, reason=T.Reason.CREDITS_APPLIED).select_related(
            "grant"
        )
    )
    rows = []
    for debit in applied:
        rows.append(
            T(
                grant=debit.grant,
                customer_id=customer_id,
                type=T.Type.CREDIT,
                reason=T.Reason.INVOICE_VOIDED,
                amount=debit.amount,
                invoice_id=invoice_id,
                invoice_line_id=debit.invoice_line_id,
                effective_at=at,
                created_at=at,
            )
        )
        grant = debit.grant
        gone = grant.voided_at is not None or (
            grant.expires_at is not None and grant.expires_at <= at
        )
        if gone:
            rows.append(
                T(
                    grant=grant,
                    customer_id=customer_id,
                    type=T.Type.DEBIT,
                    reason=(
                        T.Reason.CREDITS_VOIDED if grant.voided_at else T.Reason.CREDITS_EXPIRED
                    ),
                    amount=debit.amount,
                    effective_at=at,
                    created_at=at,
                )
            )
    _record_transactions(T.objects.bulk_create(rows))
    return sum(debit.amount for debit in applied)


def _customer_grants_locked(customer_id: int) -> None:
    list(
        CreditGrant.objects.filter(customer_id=customer_id)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )


# --- grants -----------------------------------------------------------------------------------


def _validate_scope(prices: Sequence[Price] | None) -> None:
    if prices is None:
        return
    if not prices:
        raise BillingError(
            "applicability_config[scope][prices] must list at least one price.",
            param="applicability_config[scope][prices]",
        )
    if len(prices) > MAX_SCOPED_PRICES:
        raise BillingError(
            f"A grant can be scoped to at most {MAX_SCOPED_PRICES} prices.",
            param="applicability_config[scope][prices]",
        )
    for index, price in enumerate(prices):
        if not price.is_metered:
            raise BillingError(
                f"Price {price.public_id} isn't metered: credits only pay for metered usage.",
                param=f"applicability_config[scope][prices][{index}][id]",
            )


@transaction.atomic
def credit_grant_create(
    *,
    customer,
    amount: int,
    currency: str,
    category: str,
    name: str = "",
    prices: Sequence[Price] | None = None,
    priority: int = 50,
    effective_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    metadata: dict[str, str] | None = None,
    source_invoice=None,
    used_currencies: set[str] | None = None,
    now: dt.datetime | None = None,
    actor: str = "api",
) -> CreditGrant:
    """Grant credits. `used_currencies` are the customer's subscription currencies, if any."""
    now = now or clock.now()
    if customer.deleted_at is not None:
        raise BillingError(f"Customer {customer.public_id} has been deleted.", param="customer")
    if amount is None or amount <= 0:
        raise BillingError(
            "The amount must be greater than zero (in minor units, e.g. 12000000 for "
            "120,000.00 USD).",
            param="amount[monetary][value]",
        )
    check_amount(amount, param="amount[monetary][value]", what="A credit grant")
    from catalog.services import validate_currency

    currency = validate_currency(currency)
    if used_currencies and currency not in used_currencies:
        raise BillingError(
            f"This customer's subscriptions bill in {', '.join(sorted(used_currencies))}, so "
            f"credits in {currency} could never be used.",
            param="amount[monetary][currency]",
        )
    if category not in CreditGrant.Category.values:
        raise BillingError("category must be paid or promotional.", param="category")
    if not 0 <= priority <= 100:
        raise BillingError(
            f"priority must be between 0 and 100 (got {priority}); lower is spent first.",
            param="priority",
        )
    _validate_scope(prices)
    if prices:
        for index, price in enumerate(prices):
            if price.currency != currency:
                raise BillingError(
                    f"Price {price.public_id} is in {price.currency}, the grant in {currency}.",
                    param=f"applicability_config[scope][prices][{index}][id]",
                )
    effective_at = effective_at or now
    check_time(effective_at, param="effective_at")
    if expires_at is not None:
        check_time(expires_at, param="expires_at")
    if expires_at is not None and expires_at <= effective_at:
        raise BillingError("expires_at must be after effective_at.", param="expires_at")
    if source_invoice is not None:
        label = source_invoice.number or source_invoice.public_id
        if source_invoice.status != "paid":
            raise BillingError(
                f"Invoice {label} is {source_invoice.status}: grant prepaid credits only once it "
                "is paid.",
                param="source_invoice",
            )
        if source_invoice.customer_id != customer.pk or source_invoice.currency != currency:
            raise BillingError(
                f"Invoice {label} belongs to another customer or currency than this grant.",
                param="source_invoice",
            )
        if source_invoice.billing_reason != "manual":
            raise BillingError(
                f"Invoice {label} bills a subscription; grant credits from a one-off "
                "prepayment invoice.",
                param="source_invoice",
            )
    grant = CreditGrant.objects.create(
        customer=customer,
        name=(name or "").strip()[:100],
        currency=currency,
        amount=amount,
        category=category,
        applies_to_all_metered=not prices,
        priority=priority,
        effective_at=effective_at,
        expires_at=expires_at,
        source_invoice=source_invoice,
        metadata=metadata or {},
        created_at=now,
        updated_at=now,
    )
    if prices:
        grant.prices.set(prices)
    granted = T.objects.create(
        grant=grant,
        customer=customer,
        type=T.Type.CREDIT,
        reason=T.Reason.CREDITS_GRANTED,
        amount=amount,
        effective_at=effective_at,
        created_at=now,
    )
    record_event("billing.credit_grant.created", grant)
    _record_transactions([granted])
    source = f" from invoice {source_invoice.number}" if source_invoice is not None else ""
    _record(grant, CreditGrantEvent.Action.CREATED, actor, now, f"{amount} {currency}{source}")
    return grant


def _record(grant: CreditGrant, action: str, actor: str, at: dt.datetime, note: str = "") -> None:
    CreditGrantEvent.objects.create(
        grant=grant, action=action, actor=actor[:150], note=note[:500], created_at=at
    )


def _lock_grant(grant: CreditGrant) -> CreditGrant:
    _customer_grants_locked(grant.customer_id)
    return CreditGrant.objects.select_related("customer").get(pk=grant.pk)


def _debit_remaining(grant: CreditGrant, reason: str, at: dt.datetime) -> int:
    remaining = grant_balances([grant.pk]).get(grant.pk, 0)
    if remaining > 0:
        debit = T.objects.create(
            grant=grant,
            customer_id=grant.customer_id,
            type=T.Type.DEBIT,
            reason=reason,
            amount=remaining,
            effective_at=at,
            created_at=at,
        )
        _record_transactions([debit])
    return remaining


def _end_grant(
    grant: CreditGrant,
    *,
    reason: str,
    debit_at: dt.datetime,
    changes: dict[str, dt.datetime],
    action: str,
    actor: str,
    at: dt.datetime,
    note: str = "",
) -> CreditGrant:
    """End a locked grant: debit what remains of it (effective `debit_at`), set `changes` (when
    it was voided or expired), and record both. Voiding, expiring now and expiry when due all
    end a grant this one way."""
    before = snapshot(grant)
    debited = _debit_remaining(grant, reason, debit_at)
    model_update(
        instance=grant, fields=[*changes, "updated_at"], data={**changes, "updated_at": at}
    )
    _record(grant, action, actor, at, f"{debited} debited{note}")
    record_update("billing.credit_grant.updated", grant, before)
    return grant


@transaction.atomic
def credit_grant_void(
    *, grant: CreditGrant, at: dt.datetime | None = None, actor: str = "api"
) -> CreditGrant:
    grant = _lock_grant(grant)
    at = at or clock.now()
    if grant.voided_at is not None:
        raise BillingError(
            f"Credit grant {grant.public_id} is already voided.", code=CreditsErrorCode.GRANT_VOIDED
        )
    return _end_grant(
        grant,
        reason=T.Reason.CREDITS_VOIDED,
        debit_at=at,
        changes={"voided_at": at},
        action=CreditGrantEvent.Action.VOIDED,
        actor=actor,
        at=at,
    )


@transaction.atomic
def credit_grant_expire(
    *, grant: CreditGrant, at: dt.datetime | None = None, actor: str = "api"
) -> CreditGrant:
    """Expire now (or at `at`): what remains is debited, once."""
    grant = _lock_grant(grant)
    at = at or clock.now()
    if grant.voided_at is not None:
        raise BillingError(
            f"Credit grant {grant.public_id} is voided; a voided grant can't expire.",
            code=CreditsErrorCode.GRANT_VOIDED,
        )
    if grant.expired_at is not None:
        raise BillingError(f"Credit grant {grant.public_id} has already expired.")
    return _end_grant(
        grant,
        reason=T.Reason.CREDITS_EXPIRED,
        debit_at=at,
        changes={"expires_at": min(grant.expires_at or at, at), "expired_at": at},
        action=CreditGrantEvent.Action.EXPIRED,
        actor=actor,
        at=at,
        note=", expired now",
    )


@transaction.atomic
def credit_grant_update(
    *,
    grant: CreditGrant,
    expires_at: dt.datetime | type[...] | None = ...,
    metadata: dict[str, str] | None = None,
    actor: str = "api",
) -> CreditGrant:
    grant = _lock_grant(grant)
    before = snapshot(grant)
    if expires_at is not ...:
        if grant.voided_at or grant.expired_at:
            raise BillingError(
                f"Credit grant {grant.public_id} is no longer active; its expiry can't change.",
                param="expires_at",
            )
        if expires_at is not None:
            check_time(expires_at, param="expires_at")
        if expires_at is not None and expires_at <= grant.effective_at:
            raise BillingError("expires_at must be after effective_at.", param="expires_at")
        grant.expires_at = expires_at
    if metadata is not None:
        grant.metadata = metadata
    grant.updated_at = clock.now()
    grant.save()
    if expires_at is not ...:
        _record(
            grant,
            CreditGrantEvent.Action.UPDATED,
            actor,
            grant.updated_at,
            f"expires_at set to {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "no expiry",
        )
    record_update("billing.credit_grant.updated", grant, before)
    return grant


def credit_grants_expire_due(
    *, at: dt.datetime | None = None, customer_filter: Q | None = None
) -> int:
    """Debit what remains of every grant past its expiry (beat, and test-clock advances).

    Idempotent: `expired_at` is set in the same transaction, and due grants are re-checked under
    the lock.
    """
    at = at or clock.now()
    due = CreditGrant.objects.filter(
        expires_at__lte=at, expired_at__isnull=True, voided_at__isnull=True
    )
    if customer_filter is not None:
        due = due.filter(customer_filter)
    count = 0
    for grant_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            grant = _lock_grant(CreditGrant(pk=grant_id, customer_id=_customer_of(grant_id)))
            if grant.expired_at is not None or grant.voided_at is not None:
                continue
            _end_grant(
                grant,
                reason=T.Reason.CREDITS_EXPIRED,
                debit_at=grant.expires_at,
                changes={"expired_at": grant.expires_at},
                action=CreditGrantEvent.Action.EXPIRED,
                actor="billing run",
                at=at,
            )
            count += 1
    return count


def _customer_of(grant_id: int) -> int:
    return CreditGrant.objects.filter(pk=grant_id).values_list("customer_id", flat=True).get()
