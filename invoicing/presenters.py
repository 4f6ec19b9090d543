"""Invoices as people see them: the one presenter the admin, the portal and the PDF share.

Each function turns an invoice (stored, dry-run, or the upcoming-invoice preview) into plain,
already formatted values, so templates stay dumb and every page spells a line, a tier band and
an amount the same way:

- `line_row` / `stored_line_row` / `planned_line_row`: an invoice line with its tier breakdown
  and the credits applied to it. `tiers` is every band (what staff check); `customer_tiers`
  only the breakdown worth showing a customer (tiered prices and packages, not "1 x fee").
- `invoice_document`: a whole invoice with its lines and totals (portal detail, PDF, the admin's
  dry-run previews).
- `invoice_summary`: one row of an invoice list.
- `upcoming_invoice`: the upcoming-invoice preview (`invoicing.selectors.invoice_preview`).

Amounts are minor units in, major units with the currency out (`format_minor_units`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing_site.formatting import format_value
from catalog.money import format_minor_units
from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription
from invoicing.periods import Period
from invoicing.selectors import InvoicePreview, PreviewLine

# --- Lines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierRow:
    """One band of a line's tier breakdown, in words and major units."""

    label: str  # "Tier 2", or "Per unit" for a price without tiers
    units: str
    unit_amount: str
    flat_amount: str  # "" when there is none: "+ 0.00 USD flat" on every row would be noise
    amount: str


@dataclass(frozen=True)
class LineRow:
    """An invoice line (stored, dry-run or previewed) as every lines table draws it."""

    description: str
    kind: str  # the kind's label: "Licensed", "Metered", ...
    period_start: dt.datetime
    period_end: dt.datetime
    quantity: str
    amount: str
    credits_applied: str  # "" when none
    tiers: list[TierRow]  # every band, for staff
    customer_tiers: list[TierRow]  # only a breakdown that explains the amount, for customers


def tier_rows(breakdown: Iterable[Mapping[str, Any]], currency: str) -> list[TierRow]:
    """A line's `tier_breakdown` (minor-unit decimal strings) in words and major units."""
    rows = []
    for row in breakdown:
        flat = Decimal(row.get("flat_amount_decimal") or 0)
        rows.append(
            TierRow(
                label=f"Tier {row['tier']}" if row.get("tier") else "Per unit",
                units=format_value(Decimal(row["units"])),
                unit_amount=format_minor_units(Decimal(row["unit_amount_decimal"]), currency),
                flat_amount=format_minor_units(flat, currency) if flat else "",
                amount=format_minor_units(Decimal(row["amount_decimal"]), currency),
            )
        )
    return rows


def breakdown_explains_amount(breakdown: Iterable[Mapping[str, Any]], quantity: Decimal) -> bool:
    """True for tiered prices and packages; False for a plain "quantity x unit price" line."""
    return any(row.get("tier") or Decimal(row["units"]) != quantity for row in breakdown)


def line_row(
    *,
    description: str,
    kind: str,
    period_start: dt.datetime,
    period_end: dt.datetime,
    quantity: Decimal,
    amount: int,
    credits_applied: int,
    tier_breakdown: list[dict[str, Any]],
    currency: str,
) -> LineRow:
    tiers = tier_rows(tier_breakdown, currency)
    return LineRow(
        description=description,
        kind=InvoiceLineItem.Kind(kind).label,
        period_start=period_start,
        period_end=period_end,
        quantity=format_value(quantity),
        amount=format_minor_units(amount, currency),
        credits_applied=format_minor_units(credits_applied, currency) if credits_applied else "",
        tiers=tiers,
        customer_tiers=tiers if breakdown_explains_amount(tier_breakdown, quantity) else [],
    )


def stored_line_row(line: InvoiceLineItem, currency: str) -> LineRow:
    """A line saved on an invoice."""
    return line_row(
        description=line.description,
        kind=line.kind,
        period_start=line.period_start,
        period_end=line.period_end,
        quantity=line.quantity,
        amount=line.amount,
        credits_applied=line.credits_applied,
        tier_breakdown=line.tier_breakdown,
        currency=currency,
    )


def planned_line_row(line: PreviewLine, currency: str) -> LineRow:
    """A line of the upcoming-invoice preview (planned, not saved)."""
    return line_row(
        description=line.description,
        kind=line.kind,
        period_start=line.period.start,
        period_end=line.period.end,
        quantity=line.quantity,
        amount=line.amount,
        credits_applied=line.credits_applied,
        tier_breakdown=line.tier_breakdown,
        currency=currency,
    )


# --- Invoices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceDocument:
    """A whole invoice (amounts formatted): the portal's detail page, the PDF and the admin's
    dry-run previews. Plain values, so a preview can be shown after its rows were rolled back."""

    invoice: Invoice
    customer: Customer
    label: str  # the number, or the id of a draft
    status: str
    status_label: str
    lines: list[LineRow]
    subtotal: str
    total_credits: str
    has_credits: bool
    total: str
    amount_due: str
    nothing_due: bool
    amount_paid: str
    amount_remaining: str
    issued_at: dt.datetime | None
    due_date: dt.datetime | None
    charged_automatically: bool
    has_pdf: bool


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    currency = invoice.currency
    return InvoiceDocument(
        invoice=invoice,
        customer=invoice.customer,
        label=invoice.label,
        status=invoice.status,
        status_label=invoice.get_status_display(),
        lines=[stored_line_row(line, currency) for line in invoice.lines.order_by("pk")],
        subtotal=format_minor_units(invoice.subtotal, currency),
        total_credits=format_minor_units(invoice.total_credits, currency),
        has_credits=invoice.total_credits != 0,
        total=format_minor_units(invoice.total, currency),
        amount_due=format_minor_units(invoice.amount_due, currency),
        nothing_due=invoice.amount_due == 0,
        amount_paid=format_minor_units(invoice.amount_paid, currency),
        amount_remaining=format_minor_units(invoice.amount_remaining, currency),
        issued_at=invoice.finalized_at,
        due_date=invoice.due_date,
        charged_automatically=(
            invoice.collection_method == Subscription.CollectionMethod.CHARGE_AUTOMATICALLY
        ),
        has_pdf=invoice.status != Invoice.Status.DRAFT,
    )


@dataclass(frozen=True)
class InvoiceSummary:
    """One row of an invoice list."""

    invoice: Invoice
    label: str
    status: str
    status_label: str
    total: str
    amount_due: str


def invoice_summary(invoice: Invoice) -> InvoiceSummary:
    return InvoiceSummary(
        invoice=invoice,
        label=invoice.label,
        status=invoice.status,
        status_label=invoice.get_status_display(),
        total=format_minor_units(invoice.total, invoice.currency),
        amount_due=format_minor_units(invoice.amount_due, invoice.currency),
    )


@dataclass(frozen=True)
class UpcomingInvoice:
    """The upcoming-invoice preview: what the current period would bill if it ended now."""

    period: Period
    lines: list[LineRow]
    subtotal: str
    total: str
    total_credits: str
    has_credits: bool
    amount_due: str


def upcoming_invoice(preview: InvoicePreview) -> UpcomingInvoice:
    currency = preview.currency
    return UpcomingInvoice(
        period=preview.period,
        lines=[planned_line_row(line, currency) for line in preview.lines],
        subtotal=format_minor_units(preview.subtotal, currency),
        total=format_minor_units(preview.total, currency),
        total_credits=format_minor_units(preview.total_credits, currency),
        has_credits=preview.total_credits != 0,
        amount_due=format_minor_units(preview.amount_due, currency),
    )
