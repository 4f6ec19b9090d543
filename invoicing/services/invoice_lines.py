"""An invoice's lines changed in batches, as Stripe's `add_lines`, `update_lines` and
`remove_lines` do: on a draft only, all of a request's lines or none, totals recomputed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from billing_site.errors import BillingError
from billing_site.events.recording import record_event, record_update, snapshot
from invoicing.models import Invoice, InvoiceLineItem
from invoicing.services.invoice_items import (
    ITEM,
    ItemFields,
    invoice_item_create,
    item_apply,
    lock_draft,
    save_totals,
)

REMOVE_BEHAVIORS = ("delete", "unassign")


@dataclass(frozen=True)
class NewLine:
    """One of `add_lines`: an existing pending item (`invoice_item`), or a new item."""

    invoice_item: InvoiceLineItem | None
    fields: ItemFields


def _invoice_metadata(invoice: Invoice, metadata: dict[str, str] | None) -> None:
    if metadata is not None:
        invoice.metadata = metadata
        invoice.save(update_fields=["metadata"])


@transaction.atomic
def invoice_lines_add(
    *, invoice: Invoice, lines: Iterable[NewLine], invoice_metadata: dict[str, str] | None = None
) -> Invoice:
    invoice = lock_draft(invoice, "get new lines")
    before = snapshot(invoice)
    for line in lines:
        if line.invoice_item is None:
            # Its own totals check runs per item; the batch is checked again below.
            invoice_item_create(invoice=invoice, prefix=line.fields.prefix, **_create_kwargs(line))
            continue
        item = line.invoice_item
        param = line.fields.param("invoice_item")
        if line.fields.pricing_given or line.fields.quantity is not None:
            raise BillingError(
                "An existing invoice item is added as it is: pass only lines[][invoice_item] "
                "(change it with update_lines afterwards).",
                param=param,
            )
        updated = InvoiceLineItem.objects.filter(
            pk=item.pk,
            kind=ITEM,
            invoice__isnull=True,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
        ).update(invoice=invoice)
        if not updated:
            raise BillingError(
                f"Invoice item {item.item_public_id} can't be added: only a pending item of "
                f"this customer in {invoice.currency.lower()} can.",
                param=param,
            )
    _invoice_metadata(invoice, invoice_metadata)
    save_totals(invoice, param="lines")
    record_update("invoice.updated", invoice, before)
    return invoice


def _create_kwargs(line: NewLine) -> dict[str, Any]:
    fields = line.fields
    return {
        "description": fields.description or "",
        "amount": fields.amount,
        "price": fields.price,
        "price_data": fields.price_data,
        "unit_amount_decimal": fields.unit_amount_decimal,
        "quantity": fields.quantity,
        "period": fields.period,
        "metadata": fields.metadata,
    }


def _own_line(invoice: Invoice, line: InvoiceLineItem, param: str) -> InvoiceLineItem:
    """The line read again under its lock, after the draft's: the caller's copy was read before
    the transaction, and another request may since have deleted, moved or changed it."""
    locked = (
        InvoiceLineItem.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock", "price__product")
        .filter(pk=line.pk, invoice=invoice)
        .first()
    )
    if locked is None:
        raise BillingError(f"Line {line.public_id} is not on invoice {invoice.label}.", param=param)
    return locked


@transaction.atomic
def invoice_lines_update(
    *,
    invoice: Invoice,
    changes: Iterable[tuple[InvoiceLineItem, ItemFields]],
    invoice_metadata: dict[str, str] | None = None,
) -> Invoice:
    """Change lines of a draft: an item's line in every field an item has; a subscription's
    line only in its description and metadata (its amount is the period's)."""
    invoice = lock_draft(invoice, "have their lines changed")
    before = snapshot(invoice)
    for line, fields in changes:
        line = _own_line(invoice, line, fields.param("id"))
        if line.kind != ITEM:
            if fields.pricing_given or fields.quantity is not None or fields.period is not None:
                raise BillingError(
                    f"Line {line.public_id} bills a subscription: only its description and "
                    "metadata can change.",
                    param=fields.param("id"),
                )
            if fields.description is not None:
                line.description = fields.description.strip() or line.description
            if fields.metadata is not None:
                line.metadata = fields.metadata
            line.save(update_fields=["description", "metadata"])
            continue
        before_item = snapshot(line)
        item_apply(line, fields)
        # Never an INSERT: the line exists (it is locked), so a save can't bring it back.
        line.save(force_update=True)
        record_update("invoiceitem.updated", line, before_item)
    _invoice_metadata(invoice, invoice_metadata)
    save_totals(invoice, param="lines")
    record_update("invoice.updated", invoice, before)
    return invoice


@transaction.atomic
def invoice_lines_remove(
    *,
    invoice: Invoice,
    removals: Iterable[tuple[InvoiceLineItem, str, str]],
    invoice_metadata: dict[str, str] | None = None,
) -> Invoice:
    """Take lines off a draft: `delete` deletes the item, `unassign` makes it pending again
    (for the customer's next invoice). Each removal is (line, behavior, its param prefix)."""
    invoice = lock_draft(invoice, "have their lines removed")
    before = snapshot(invoice)
    for line, behavior, prefix in removals:
        line = _own_line(invoice, line, f"{prefix}[id]")
        if line.kind != ITEM:
            raise BillingError(
                f"Line {line.public_id} bills a subscription period and can't be removed "
                "(the period would go unbilled).",
                param=f"{prefix}[id]",
            )
        if behavior not in REMOVE_BEHAVIORS:
            raise BillingError(
                f"Invalid {prefix}[behavior]: must be one of delete, unassign.",
                param=f"{prefix}[behavior]",
            )
        if behavior == "delete":
            deleted = snapshot(line)
            line.delete()
            record_event("invoiceitem.deleted", data_object=deleted)
        else:
            before_item = snapshot(line)
            line.invoice = None
            line.save(update_fields=["invoice"])
            record_update("invoiceitem.updated", line, before_item)
    _invoice_metadata(invoice, invoice_metadata)
    save_totals(invoice)
    record_update("invoice.updated", invoice, before)
    return invoice
