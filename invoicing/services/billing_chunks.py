"""The billing run, set-based: close and finalize a chunk of subscriptions in one transaction.

A chunk (BILLING_RUN_CHUNK_SIZE, 500 by default) costs a fixed number of statements whatever
its size: its rows are locked at once (SKIP LOCKED: rows another worker holds are that
worker's), items, prices and tiers are loaded in a few queries, usage in one `usage_many` call
per distinct period, lines are planned in memory by the shared planner (`plan_period_lines`),
invoices and lines are bulk-inserted, subscriptions advanced by one UPDATE per distinct new
period, numbers taken under one lock, credits spent with the chunk's customers' grants locked
in primary-key order (`credits_apply_many`), and events recorded in bulk.

The rules are the one-at-a-time path's (`subscription_close_period`, `invoice_finalize`); their
pieces are shared, not copied. A chunk that fails rolls back whole (no partial invoice), and
`billing_run.py` then retries its subscriptions one at a time, so one bad subscription blocks
nobody and is recorded as a BillingRunFailure.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import transaction

from billing_site.db import bulk_update_rows, values_bound_on_server
from billing_site.events.objects import (
    load_objects,
    reload_rows,
    serialize_loaded,
    serialize_objects,
)
from billing_site.events.recording import PendingEvent, changed_attributes, record_events
from catalog.models import Price
from credits.services import InvoiceToCredit, credits_apply_many
from invoicing.models import Invoice, InvoiceLineItem, Subscription, SubscriptionItem
from invoicing.periods import Period
from invoicing.services.invoice_items import pending_invoice_items_attach_many
from invoicing.services.invoices import (
    RATED_FIELDS,
    credit_lines,
    hold_draft,
    invoices_transition_many,
    lines_to_credit,
    next_invoice_numbers,
    rerate_line,
    set_totals,
)
from invoicing.services.lines import (
    PlanItem,
    amount_limit_problem,
    close_periods,
    item_usage,
    line_items,
    plan_period_lines,
)
from invoicing.services.subscriptions import (
    BILLING_RUN,
    advance_past_period,
    closing_invoice,
    hold_if_over_limit,
)
from metering.store import usage_many

S = Invoice.Status


def load_prices(price_ids: Iterable[int | None]) -> dict[int, Price]:
    """Prices as the planner and the rating engine read them, each loaded once per chunk."""
    wanted = {pk for pk in price_ids if pk is not None}
    prices = Price.objects.select_related("product", "meter").prefetch_related("tiers")
    return prices.in_bulk(sorted(wanted)) if wanted else {}


def _usage_by_period(
    wanted: Iterable[tuple[Period, Price, int]],
) -> dict[Period, dict[tuple[int, int], Decimal]]:
    """Usage of every (period, metered price, customer id), one `usage_many` per period."""
    pairs: dict[Period, dict[tuple[int, int], tuple]] = defaultdict(dict)
    for period, price, customer_id in wanted:
        pairs[period][(price.meter_id, customer_id)] = (price.meter, customer_id)
    return {
        period: usage_many(pairs=list(by_key.values()), start=period.start, end=period.end)
        for period, by_key in pairs.items()
    }


# --- closing periods --------------------------------------------------------------------------


def subscriptions_close_chunk(*, subscription_ids: Sequence[int], at: dt.datetime) -> int:
    """Close every ended period of these subscriptions, a transaction per pass; returns the
    periods closed. Only subscriptions still due after a pass (a run that was late by more
    than a period) get another."""
    closed, due = 0, list(subscription_ids)
    while due:
        with transaction.atomic():
            count, due = _close_once(due, at)
        closed += count
    return closed


def _close_once(subscription_ids: Sequence[int], at: dt.datetime) -> tuple[int, list[int]]:
    subscriptions = list(
        Subscription.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(
            pk__in=list(subscription_ids),
            status=Subscription.Status.ACTIVE,
            current_period_end__lte=at,
        )
        .order_by("pk")
    )
    if not subscriptions:
        return 0, []
    items = _plan_items(subscriptions)
    usage = _usage_by_period(
        (subscription.current_period, item.price, subscription.customer_id)
        for subscription in subscriptions
        for item in items[subscription.pk]
        if item.price.is_metered
    )
    loaded = load_objects(subscriptions)
    befores = serialize_loaded(loaded)

    invoices, lines, planned_by_invoice = [], [], []
    for subscription in subscriptions:
        usage_period, fee_period = close_periods(subscription)
        totals = usage.get(usage_period, {})
        planned = plan_period_lines(
            items=items[subscription.pk],
            usage_period=usage_period,
            usage=item_usage(
                items[subscription.pk], customer_id=subscription.customer_id, totals=totals
            ),
            fee_period=fee_period,
        )
        invoice = closing_invoice(subscription)
        rows = line_items(invoice, planned, at=invoice.period_end)
        set_totals(invoice, rows)
        invoices.append(invoice)
        lines.extend(rows)
        planned_by_invoice.append(planned)
    with values_bound_on_server():
        Invoice.objects.bulk_create(invoices)
        InvoiceLineItem.objects.bulk_create(lines)
    # As one at a time: pending invoice items join the new draft before the limits are checked.
    pending_invoice_items_attach_many(invoices=invoices)
    # Usage past the limits holds a draft for review; its subscription still moves on.
    for invoice, planned in zip(invoices, planned_by_invoice, strict=True):
        hold_if_over_limit(invoice, planned, at)
    # As one at a time: the invoice as created, before its subscription moves on.
    invoices_data = serialize_objects(invoices)

    ending = {s.pk for s in subscriptions if advance_past_period(s)}
    _save_advanced(subscriptions)
    # Since `befores` only the subscriptions' rows (and their newest invoice) changed: their
    # items, prices and customers are read once for both payloads.
    reload_rows(loaded)
    afters = serialize_loaded(loaded)
    pending: list[PendingEvent] = []
    for subscription, invoice_data, before, after in zip(
        subscriptions, invoices_data, befores, afters, strict=True
    ):
        pending.append(("invoice.created", invoice_data, None))
        if subscription.pk in ending:
            pending.append(("customer.subscription.deleted", after, None))
        elif previous := changed_attributes(before, after):
            # A renewal: Stripe reports the new period as an update.
            pending.append(("customer.subscription.updated", after, previous))
    record_events(pending)
    still_due = [s.pk for s in subscriptions if s.pk not in ending and s.current_period_end <= at]
    return len(subscriptions), still_due


def _plan_items(subscriptions: Sequence[Subscription]) -> dict[int, list[PlanItem]]:
    """Each subscription's items in its item order, with prices, meters and tiers loaded."""
    rows = list(
        SubscriptionItem.objects.filter(subscription__in=[s.pk for s in subscriptions])
        .order_by("pk")
        .values_list("pk", "public_id", "subscription_id", "price_id", "quantity")
    )
    prices = load_prices(row[3] for row in rows)
    items: dict[int, list[PlanItem]] = {s.pk: [] for s in subscriptions}
    for pk, public_id, subscription_id, price_id, quantity in rows:
        items[subscription_id].append(PlanItem(pk, public_id, prices[price_id], quantity))
    return items


_ADVANCED_FIELDS = (
    "status",
    "current_period_start",
    "current_period_end",
    "ended_at",
    "canceled_at",
)


def _save_advanced(subscriptions: Sequence[Subscription]) -> None:
    """One UPDATE per distinct set of new values (in a month-end run, one for all renewals)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for subscription in subscriptions:
        values = tuple(getattr(subscription, name) for name in _ADVANCED_FIELDS)
        groups[values].append(subscription.pk)
    for values, pks in groups.items():
        Subscription.objects.filter(pk__in=pks).update(
            **dict(zip(_ADVANCED_FIELDS, values, strict=True))
        )


# --- finalizing drafts ------------------------------------------------------------------------


def invoices_finalize_chunk(*, invoice_ids: Sequence[int], at: dt.datetime) -> int:
    """Finalize these drafts past their grace period, in this order (their numbers follow it);
    returns how many were finalized. Drafts finalized, held or locked by someone else since
    they were listed are left alone; a draft whose re-read usage is past the amount limits is
    held for review, as one at a time."""
    with transaction.atomic():
        return _finalize(invoice_ids, at)


def _finalize(invoice_ids: Sequence[int], at: dt.datetime) -> int:
    position = {pk: index for index, pk in enumerate(invoice_ids)}
    invoices = sorted(
        Invoice.objects.select_for_update(of=("self",), skip_locked=True).filter(
            pk__in=list(invoice_ids), status=S.DRAFT, finalize_after__isnull=False
        ),
        key=lambda invoice: position[invoice.pk],
    )
    if not invoices:
        return 0
    lines = _lines_by_invoice(invoices)
    ready = _recompute_usage(invoices, lines, at)
    applications = credits_apply_many(
        invoices=[
            InvoiceToCredit(
                invoice.pk,
                invoice.customer_id,
                invoice.currency,
                lines_to_credit(lines[invoice.pk]),
            )
            for invoice in ready
        ],
        at=at,
    )
    credited = []
    for invoice in ready:
        credited.extend(credit_lines(lines[invoice.pk], applications[invoice.pk]))
        set_totals(invoice, lines[invoice.pk])
    if credited:
        bulk_update_rows(credited, ["credits_applied"])
    # Numbers last: the counter stays locked until commit, so take it as late as possible.
    for invoice, number in zip(ready, next_invoice_numbers(len(ready)), strict=True):
        invoice.number = number
        # Only invoices sent for payment have a due date, as in `invoice_finalize`.
        if invoice.collection_method == Subscription.CollectionMethod.SEND_INVOICE:
            invoice.due_date = at + dt.timedelta(days=invoice.days_until_due or 0)
    invoices_transition_many(
        invoices=ready,
        to_status=S.OPEN,
        actor=BILLING_RUN,
        at=at,
        fields=("subtotal", "total_credits", "total", "amount_due", "number", "due_date"),
    )
    # Nothing billed at all: paid at once (an invoice paid by credits stays open).
    invoices_transition_many(
        invoices=[invoice for invoice in ready if invoice.total == 0],
        to_status=S.PAID,
        actor=BILLING_RUN,
        at=at,
        note="Nothing billed",
    )
    return len(ready)


def _lines_by_invoice(invoices: Sequence[Invoice]) -> dict[int, list[InvoiceLineItem]]:
    rows = list(InvoiceLineItem.objects.filter(invoice__in=[i.pk for i in invoices]).order_by("pk"))
    prices = load_prices(row.price_id for row in rows)
    lines: dict[int, list[InvoiceLineItem]] = {invoice.pk: [] for invoice in invoices}
    for row in rows:
        if row.price_id is not None:
            row.price = prices[row.price_id]
        lines[row.invoice_id].append(row)
    return lines


def _recompute_usage(
    invoices: Sequence[Invoice], lines: dict[int, list[InvoiceLineItem]], at: dt.datetime
) -> list[Invoice]:
    """Late events that arrived during the grace period count: every usage line of the chunk
    is re-read (one query per distinct period) and re-rated. Drafts now past the amount limits
    are held for review; returns the others, to finalize."""
    metered = [
        (invoice, line)
        for invoice in invoices
        if invoice.subscription_id
        for line in lines[invoice.pk]
        if line.kind == InvoiceLineItem.Kind.METERED
    ]
    usage = _usage_by_period(
        (Period(line.period_start, line.period_end), line.price, invoice.customer_id)
        for invoice, line in metered
    )
    rated_by_invoice = defaultdict(list)
    changed = []
    for invoice, line in metered:
        totals = usage[Period(line.period_start, line.period_end)]
        quantity = totals.get((line.price.meter_id, invoice.customer_id), Decimal(0))
        description = line.description
        rated, line_changed = rerate_line(line, quantity)
        rated_by_invoice[invoice.pk].append((description, rated))
        if line_changed:
            changed.append(line)
    if changed:
        bulk_update_rows(changed, RATED_FIELDS)
    ready = []
    for invoice in invoices:
        problem = amount_limit_problem(
            rated_by_invoice[invoice.pk],
            total=sum(line.amount for line in lines[invoice.pk]),
            currency=invoice.currency,
        )
        if problem:
            hold_draft(invoice, lines[invoice.pk], problem, at)
        else:
            ready.append(invoice)
    return ready
