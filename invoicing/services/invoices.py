"""Invoices: the status machine, numbering, finalization, one-off invoices and their items."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction

from billing_site.db import bulk_update_rows, values_bound_on_server
from billing_site.errors import BillingError
from billing_site.events.objects import serialize_objects
from billing_site.events.recording import record_event, record_events, record_update, snapshot
from catalog.services import validate_currency
from credits.services import LineToCredit, credits_apply, credits_reinstate
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import (
    BillingRunFailure,
    Customer,
    Invoice,
    InvoiceEvent,
    InvoiceLineItem,
    InvoiceNumberSequence,
    Subscription,
)
from invoicing.services.customer_currency import customer_currency_settle
from invoicing.services.lines import (
    RatedLine,
    amount_limit_problem,
    described,
    metered_quantity,
    rate_line,
)

S = Invoice.Status

# The one map of legal moves (DESIGN: draft → open → paid | void | uncollectible;
# uncollectible → paid | void). Deleting a draft is not a status change.
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.OPEN},
    S.OPEN: {S.PAID, S.VOID, S.UNCOLLECTIBLE},
    S.UNCOLLECTIBLE: {S.PAID, S.VOID},
    S.PAID: set(),
    S.VOID: set(),
}

# The event each status change sends (Stripe's names).
_EVENTS = {
    S.OPEN: "invoice.finalized",
    S.PAID: "invoice.paid",
    S.VOID: "invoice.voided",
    S.UNCOLLECTIBLE: "invoice.marked_uncollectible",
}

_VERBS = {
    S.OPEN: "finalized",
    S.PAID: "paid",
    S.VOID: "voided",
    S.UNCOLLECTIBLE: "marked uncollectible",
}


# The moment each status records.
_STAMPS = {
    S.OPEN: "finalized_at",
    S.PAID: "paid_at",
    S.VOID: "voided_at",
    S.UNCOLLECTIBLE: "marked_uncollectible_at",
}


def _move(invoice: Invoice, to_status: str, at: dt.datetime) -> InvoiceEvent:
    """Check the move, make it in memory, and return its audit row (unsaved)."""
    from_status = invoice.status
    if to_status not in TRANSITIONS[from_status]:
        raise BillingError(
            f"Invoice {invoice.label} is {from_status} and can't be "
            f"{_VERBS.get(to_status, to_status)}"
            + ("." if TRANSITIONS[from_status] else f": a {from_status} invoice is final."),
            code=InvoicingErrorCode.INVOICE_NOT_EDITABLE
            if from_status == S.DRAFT
            else InvoicingErrorCode.INVOICE_UNEXPECTED_STATUS,
        )
    invoice.status = to_status
    setattr(invoice, _STAMPS[to_status], at)
    return InvoiceEvent(invoice=invoice, from_status=from_status, to_status=to_status)


def invoice_transition(
    *, invoice: Invoice, to_status: str, actor: str, at: dt.datetime, note: str = ""
) -> Invoice:
    """The only door through which an invoice changes status; writes the audit event."""
    audit = _move(invoice, to_status, at)
    invoice.save()
    _audit([audit], actor=actor, note=note, at=at)
    record_event(_EVENTS[to_status], invoice)
    return invoice


def invoices_transition_many(
    *,
    invoices: list[Invoice],
    to_status: str,
    actor: str,
    at: dt.datetime,
    note: str = "",
    fields: tuple[str, ...] = (),
) -> None:
    """`invoice_transition` for many invoices (a billing-run chunk): the same checks, audit rows
    and events, with the rows (and any other `fields` set on them) written in one UPDATE."""
    if not invoices:
        return
    audits = [_move(invoice, to_status, at) for invoice in invoices]
    bulk_update_rows(invoices, ["status", _STAMPS[to_status], *fields])
    _audit(audits, actor=actor, note=note, at=at)
    record_events([(_EVENTS[to_status], data, None) for data in serialize_objects(invoices)])


def _audit(audits: list[InvoiceEvent], *, actor: str, note: str, at: dt.datetime) -> None:
    for audit in audits:
        audit.actor, audit.note, audit.created_at = actor[:150], note[:500], at
    with values_bound_on_server():
        InvoiceEvent.objects.bulk_create(audits)


def _lock(invoice: Invoice) -> Invoice:
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock")
        .get(pk=invoice.pk)
    )


def _require_draft(invoice: Invoice, action: str) -> None:
    if invoice.status != S.DRAFT:
        raise BillingError(
            f"Invoice {invoice.label} is {invoice.status}: only draft invoices can {action}.",
            code=InvoicingErrorCode.INVOICE_NOT_EDITABLE,
        )


# --- rating lines -----------------------------------------------------------------------------


# --- credits ----------------------------------------------------------------------------------


def lines_to_credit(lines) -> list[LineToCredit]:
    return [
        LineToCredit(
            line_id=getattr(line, "pk", None),
            price_id=line.price.pk if line.price is not None else None,
            amount=line.amount,
            metered=line.kind == InvoiceLineItem.Kind.METERED,
        )
        for line in lines
    ]


def _apply_credits(invoice: Invoice, lines: list[InvoiceLineItem], at: dt.datetime) -> None:
    """Spend the customer's billing credits on the metered lines, before tax."""
    applications = credits_apply(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        invoice_id=invoice.pk,
        lines=lines_to_credit(lines),
        at=at,
    )
    for line in credit_lines(lines, applications):
        line.save(update_fields=["credits_applied"])


def credit_lines(lines: list[InvoiceLineItem], applications) -> list[InvoiceLineItem]:
    """Set each line's `credits_applied` from the credits' applications (in memory); returns
    the lines that got some, to be saved."""
    applied: dict[int, int] = {}
    for application in applications:
        applied[application.line_id] = applied.get(application.line_id, 0) + application.amount
    credited = [line for line in lines if line.pk in applied]
    for line in credited:
        line.credits_applied = applied[line.pk]
    return credited


# --- numbering and finalization ---------------------------------------------------------------


def _next_number() -> str:
    return next_invoice_numbers(1)[0]


def next_invoice_numbers(count: int) -> list[str]:
    """`count` consecutive numbers, in order. Gapless: the counter row is locked until this
    transaction commits or rolls back (a billing-run chunk takes its numbers under one lock)."""
    if count == 0:
        return []  # nothing to number: don't hold the counter every finalization waits on
    prefix = settings.BILLING_INVOICE_NUMBER_PREFIX
    sequence = InvoiceNumberSequence.objects.select_for_update().filter(prefix=prefix).first()
    if sequence is None:
        try:
            with transaction.atomic():
                InvoiceNumberSequence.objects.create(prefix=prefix)
        except IntegrityError:
            pass  # created concurrently; lock it below
        sequence = InvoiceNumberSequence.objects.select_for_update().get(prefix=prefix)
    first = sequence.next_number
    sequence.next_number = first + count
    sequence.save(update_fields=["next_number"])
    return [f"{prefix}-{number:04d}" for number in range(first, first + count)]


def refresh_totals(invoice: Invoice) -> None:
    set_totals(invoice, list(invoice.lines.all()))


def set_totals(invoice: Invoice, lines: list[InvoiceLineItem]) -> None:
    invoice.subtotal = sum(line.amount for line in lines)
    invoice.total_credits = sum(line.credits_applied for line in lines)
    invoice.total = invoice.subtotal
    invoice.amount_due = invoice.total - invoice.total_credits


RATED_FIELDS = ["quantity", "amount", "unrounded_amount", "tier_breakdown", "description"]


def _recompute_metered_lines(
    invoice: Invoice, lines: list[InvoiceLineItem]
) -> list[tuple[str, RatedLine]]:
    """Late events that arrived during the grace period count: quantities are re-read now.

    Returns each usage line's description and rating, to check them against the limits.
    """
    rated_lines = []
    for line in lines:
        if line.kind != InvoiceLineItem.Kind.METERED:
            continue
        quantity = metered_quantity(
            price=line.price,
            customer_id=invoice.customer_id,
            start=line.period_start,
            end=line.period_end,
        )
        rated, changed = rerate_line(line, quantity)
        rated_lines.append((line.description, rated))
        if changed:
            line.save(update_fields=RATED_FIELDS)
    return rated_lines


def rerate_line(line: InvoiceLineItem, quantity) -> tuple[RatedLine, bool]:
    """Rate a usage line's re-read quantity and update the line (in memory) if it changed;
    returns the rating and whether the line changed (and must be saved)."""
    rated = rate_line(line.price, quantity)
    if (rated.quantity, rated.amount) == (line.quantity, line.amount):
        return rated, False
    line.quantity = rated.quantity
    line.amount = rated.amount
    line.unrounded_amount = rated.unrounded_amount
    line.tier_breakdown = rated.tier_breakdown
    line.description = described(line.description, rated)
    return rated, True


def hold_draft(invoice: Invoice, lines: list[InvoiceLineItem], problem: str, at) -> None:
    """A draft whose re-read usage is past the amount limits: its totals saved, held."""
    set_totals(invoice, lines)
    invoice.save()
    invoice_hold_for_review(invoice=invoice, problem=problem, at=at)


# The step under which a held draft is listed in the admin's billing run failures.
HELD_FOR_REVIEW = "held for review"


def invoice_hold_for_review(*, invoice: Invoice, problem: str, at: dt.datetime) -> None:
    """Keep a subscription's draft from being finalized automatically, and tell staff why.

    Like Stripe's failed finalization (auto_advance turned off): the draft stays, the billing
    run no longer picks it up, and the problem is listed in the admin's billing run failures.
    Staff then finalize it (the capped line is billed at the limit) or finalize and void it.
    """
    invoice.finalize_after = None
    invoice.save(update_fields=["finalize_after"])
    BillingRunFailure.objects.create(
        subscription_id=invoice.subscription_id,
        step=HELD_FOR_REVIEW,
        error=(
            f"Invoice {invoice.label} is held as a draft for review: {problem}. The billing run "
            "won't finalize it; finalize it to bill it as it stands (or finalize and void it if "
            "the usage is wrong), then mark this resolved."
        )[:5000],
        created_at=at,
    )


@transaction.atomic
def invoice_finalize(
    *,
    invoice: Invoice,
    actor: str,
    at: dt.datetime | None = None,
    hold_over_limit: bool = False,
) -> Invoice:
    """Number the draft and open it. With `hold_over_limit` (the billing run), a draft whose
    re-read usage is past the amount limits is held for review instead, and stays a draft."""
    invoice = _lock(invoice)
    at = at or invoice.customer.billing_now()
    _require_draft(invoice, "be finalized")
    lines = list(
        invoice.lines.select_related("price__meter").prefetch_related("price__tiers").order_by("pk")
    )
    if not lines and invoice.billing_reason == Invoice.BillingReason.MANUAL:
        raise BillingError(
            "This invoice has no line items; add at least one before sending it.",
            code=InvoicingErrorCode.INVOICE_NO_LINE_ITEMS,
        )
    if invoice.subscription_id:
        rated_lines = _recompute_metered_lines(invoice, lines)
        problem = amount_limit_problem(
            rated_lines, total=sum(line.amount for line in lines), currency=invoice.currency
        )
        if problem and hold_over_limit:
            hold_draft(invoice, lines, problem, at)
            return invoice
    _apply_credits(invoice, lines, at)
    set_totals(invoice, lines)
    invoice.number = _next_number()
    # Only invoices sent for payment have a due date; charged automatically, as in Stripe, none.
    if invoice.collection_method == Subscription.CollectionMethod.SEND_INVOICE:
        invoice.due_date = at + dt.timedelta(days=invoice.days_until_due or 0)
    invoice_transition(invoice=invoice, to_status=S.OPEN, actor=actor, at=at)
    if invoice.total == 0:
        # Nothing was billed at all: Stripe marks these paid at once. An invoice paid by credits
        # stays open (nothing due) so that voiding it can still give the credits back.
        invoice_transition(
            invoice=invoice, to_status=S.PAID, actor=actor, at=at, note="Nothing billed"
        )
    return invoice


@transaction.atomic
def invoice_pay(
    *, invoice: Invoice, actor: str, paid_out_of_band: bool = True, at: dt.datetime | None = None
) -> Invoice:
    invoice = _lock(invoice)
    if not paid_out_of_band:
        raise BillingError(
            "This back office doesn't collect payments itself: record a payment received "
            "elsewhere with paid_out_of_band=true.",
            param="paid_out_of_band",
        )
    at = at or invoice.customer.billing_now()
    invoice.amount_paid = invoice.amount_due
    invoice.paid_out_of_band = True
    return invoice_transition(invoice=invoice, to_status=S.PAID, actor=actor, at=at)


@transaction.atomic
def invoice_void(*, invoice: Invoice, actor: str, at: dt.datetime | None = None) -> Invoice:
    invoice = _lock(invoice)
    at = at or invoice.customer.billing_now()
    invoice = invoice_transition(invoice=invoice, to_status=S.VOID, actor=actor, at=at)
    credits_reinstate(customer_id=invoice.customer_id, invoice_id=invoice.pk, at=at)
    return invoice


@transaction.atomic
def invoice_mark_uncollectible(
    *, invoice: Invoice, actor: str, at: dt.datetime | None = None
) -> Invoice:
    invoice = _lock(invoice)
    at = at or invoice.customer.billing_now()
    return invoice_transition(invoice=invoice, to_status=S.UNCOLLECTIBLE, actor=actor, at=at)


# --- one-off invoices -------------------------------------------------------------------------


def check_collection(collection_method: str, days_until_due: int | None, *, sent: str) -> None:
    """How invoices are collected, for subscriptions and one-off invoices alike: charged
    automatically, or sent for payment with days until due. `sent` names, in the refusal, what
    is sent without them."""
    if collection_method not in Subscription.CollectionMethod.values:
        raise BillingError(
            "collection_method must be charge_automatically or send_invoice.",
            param="collection_method",
        )
    if collection_method == Subscription.CollectionMethod.SEND_INVOICE and days_until_due is None:
        raise BillingError(f"{sent} needs days_until_due (for example 30).", param="days_until_due")


@transaction.atomic
def invoice_create(
    *,
    customer: Customer,
    currency: str,
    collection_method: str = Subscription.CollectionMethod.SEND_INVOICE,
    days_until_due: int | None = 30,
    description: str = "",
    metadata: dict[str, str] | None = None,
    pending_invoice_items_behavior: str = "exclude",
) -> Invoice:
    """A one-off draft. As in Stripe's current API, the customer's pending invoice items join
    it only with `pending_invoice_items_behavior="include"` (the default is `exclude`)."""
    if pending_invoice_items_behavior not in ("include", "exclude"):
        raise BillingError(
            "pending_invoice_items_behavior must be include or exclude.",
            param="pending_invoice_items_behavior",
        )
    if customer.deleted_at is not None:
        raise BillingError(f"Customer {customer.public_id} has been deleted.", param="customer")
    currency = validate_currency(currency)
    check_collection(collection_method, days_until_due, sent="An invoice sent for payment")
    invoice = Invoice.objects.create(
        customer=customer,
        currency=currency,
        billing_reason=Invoice.BillingReason.MANUAL,
        collection_method=collection_method,
        days_until_due=days_until_due,
        description=description,
        metadata=metadata or {},
        created_at=customer.billing_now(),
    )
    customer_currency_settle(customer=customer, currency=currency)
    if pending_invoice_items_behavior == "include":
        # Imported here: invoice_items builds on this module (locks, totals).
        from invoicing.services.invoice_items import pending_invoice_items_attach

        pending_invoice_items_attach(invoice=invoice)
    record_event("invoice.created", invoice)
    return invoice


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Invoice:
    """Change what a draft says about itself; None leaves a field as it is.

    Amounts change only through items and finalization, so only these fields are offered.
    """
    invoice = _lock(invoice)
    _require_draft(invoice, "be edited")
    before = snapshot(invoice)
    changes = {"description": description, "metadata": metadata}
    fields = [name for name, value in changes.items() if value is not None]
    for name in fields:
        setattr(invoice, name, changes[name])
    invoice.save(update_fields=fields)
    record_update("invoice.updated", invoice, before)
    return invoice


@transaction.atomic
def invoice_delete_draft(*, invoice: Invoice) -> None:
    invoice = _lock(invoice)
    _require_draft(invoice, "be deleted")
    if invoice.subscription_id:
        raise BillingError(
            "This draft bills a subscription period; deleting it would leave the period "
            "unbilled. Finalize it and void it instead.",
            code=InvoicingErrorCode.INVOICE_NOT_EDITABLE,
        )
    # The events carry the objects as they were, taken before the rows go.
    items = [
        snapshot(line)
        for line in invoice.lines.filter(kind=InvoiceLineItem.Kind.INVOICE_ITEM).order_by("pk")
    ]
    deleted = snapshot(invoice)
    invoice.delete()
    for item in items:
        record_event("invoiceitem.deleted", data_object=item)
    record_event("invoice.deleted", data_object=deleted)
