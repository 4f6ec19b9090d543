"""Invoice items: one-off charges on a draft invoice, or pending ones that wait for the
customer's next invoice (an invoice's lines in batches: `invoice_lines.py`).

An invoice item is an `InvoiceLineItem` of kind `invoiceitem` (its `ii_...` id next to the
line's `il_...`): on an invoice it is that invoice's line; pending, it has no invoice, only its
customer and currency. `pending_invoice_items_attach` is the one way pending items reach an
invoice: a one-off invoice created with `pending_invoice_items_behavior=include`, a
subscription's first invoice, each period's closing draft, and the final invoice of a
cancellation with `invoice_now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from billing_site.errors import BillingError
from billing_site.events.recording import record_event, record_update, snapshot
from billing_site.ids import generate_public_id
from billing_site.limits import MAX_AMOUNT, check_amount, check_quantity, check_time
from catalog.models import Price, Product
from catalog.money import format_minor_units, round_to_minor_unit, significant_decimal_places
from catalog.services import price_create, validate_currency
from catalog.terms import InvalidPriceTerms, build_price_terms
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import Customer, Invoice, InvoiceLineItem
from invoicing.services.invoices import _lock, _require_draft, refresh_totals
from invoicing.services.lines import rate_line_within_limit

ITEM = InvoiceLineItem.Kind.INVOICE_ITEM
TOTAL_FIELDS = ["subtotal", "total_credits", "total", "amount_due"]


@dataclass(frozen=True)
class PriceData:
    """`price_data`: an inline one-time price, created for this item only (as Stripe does)."""

    product: Product
    currency: str
    unit_amount: Any = None
    unit_amount_decimal: Any = None


@dataclass(frozen=True)
class ItemFields:
    """What a request says about an item; None is "not given". `prefix` names the item in
    error params (`lines[2]`), empty for `/v1/invoiceitems`."""

    description: str | None = None
    amount: int | None = None
    price: Price | None = None
    price_data: PriceData | None = None
    unit_amount_decimal: Decimal | None = None
    quantity: Decimal | int | None = None
    period: tuple[dt.datetime, dt.datetime] | None = None
    metadata: dict[str, str] | None = None
    prefix: str = ""
    # The removed `price` parameter still works; errors then name it.
    price_param: str = "pricing[price]"

    def param(self, name: str) -> str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    @property
    def pricing_given(self) -> bool:
        return any(
            value is not None
            for value in (self.amount, self.price, self.price_data, self.unit_amount_decimal)
        )


# --- rating an item ---------------------------------------------------------------------------


def _inline_price(data: PriceData, currency: str, fields: ItemFields) -> Price:
    if validate_currency(data.currency) != currency:
        raise BillingError(
            f"price_data[currency] {data.currency.lower()} doesn't match the item's currency "
            f"({currency.lower()}).",
            param=fields.param("price_data[currency]"),
        )
    try:
        terms = build_price_terms(
            unit_amount=data.unit_amount, unit_amount_decimal=data.unit_amount_decimal
        )
    except InvalidPriceTerms as error:
        param = fields.param(f"price_data[{error.param}]")
        raise BillingError(error.message, param=param) from error
    # Stripe's inline prices are archived at once: they bill this item and nothing else.
    return price_create(product=data.product, currency=currency, terms=terms, active=False)


def _check_price(price: Price, currency: str, fields: ItemFields) -> None:
    param = fields.param(fields.price_param)
    if not price.active:
        raise BillingError(
            f"Price {price.public_id} is archived; use an active price.", param=param
        )
    if price.currency != currency:
        raise BillingError(
            f"Price {price.public_id} is in {price.currency.lower()}, but the item is in "
            f"{currency.lower()}.",
            param=param,
        )
    if price.is_metered:
        raise BillingError(
            "Metered prices are billed from usage by subscriptions, not as one-off items.",
            param=param,
        )


def _rated(
    fields: ItemFields, currency: str, current: InvoiceLineItem | None = None
) -> dict[str, Any]:
    """The line's pricing fields from the request, or (for an update that changes only the
    quantity) from the item as it is."""
    given = [
        name
        for name, value in (
            ("amount", fields.amount),
            (fields.price_param, fields.price),
            ("price_data", fields.price_data),
            ("unit_amount_decimal", fields.unit_amount_decimal),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise BillingError(
            f"Give only one of amount, pricing[price], price_data and unit_amount_decimal "
            f"(got {' and '.join(given)}).",
            param=fields.param(given[1]),
        )
    price, unit, amount = fields.price, fields.unit_amount_decimal, fields.amount
    if fields.price_data is not None:
        price = _inline_price(fields.price_data, currency, fields)
    elif price is not None:
        _check_price(price, currency, fields)
    elif not given and current is not None:
        price, unit = current.price, current.unit_amount_decimal
        amount = current.amount if price is None and unit is None else None
    elif not given:
        raise BillingError(
            "Give the item's amount (in minor units), pricing[price], price_data or "
            "unit_amount_decimal (with quantity).",
            param=fields.param("amount"),
        )
    if fields.quantity is not None:
        quantity = Decimal(fields.quantity)
    else:
        quantity = current.quantity if current is not None and amount is None else Decimal(1)
    if quantity <= 0:
        raise BillingError("quantity must be greater than 0.", param=fields.param("quantity"))
    check_quantity(quantity, param=fields.param("quantity"))
    if price is not None:
        rated = rate_line_within_limit(price, quantity, param=fields.param("quantity"))
        return {
            "price": price,
            "unit_amount_decimal": None,
            "quantity": quantity,
            "amount": rated.amount,
            "unrounded_amount": rated.unrounded_amount,
            "tier_breakdown": rated.tier_breakdown,
        }
    if unit is not None:
        param = fields.param("unit_amount_decimal")
        if unit < 0 or significant_decimal_places(unit) > 12:
            raise BillingError(
                "unit_amount_decimal must be at least 0, with at most 12 decimal places.",
                param=param,
            )
        unrounded = unit * quantity
        check_amount(unrounded, param=param)
        return {
            "price": None,
            "unit_amount_decimal": unit,
            "quantity": quantity,
            "amount": round_to_minor_unit(unrounded),
            "unrounded_amount": unrounded,
            "tier_breakdown": [],
        }
    assert amount is not None
    if fields.quantity is not None and fields.quantity != 1:
        raise BillingError(
            "quantity goes with pricing[price], price_data or unit_amount_decimal; amount is "
            "the item's whole amount (pass quantity with a unit amount instead).",
            param=fields.param("quantity"),
        )
    if amount < 0:
        raise BillingError("amount can't be negative.", param=fields.param("amount"))
    check_amount(amount, param=fields.param("amount"))
    return {
        "price": None,
        "unit_amount_decimal": None,
        "quantity": Decimal(1),
        "amount": amount,
        "unrounded_amount": Decimal(amount),
        "tier_breakdown": [],
    }


def _period(
    fields: ItemFields, at: dt.datetime, current: InvoiceLineItem | None = None
) -> tuple[dt.datetime, dt.datetime]:
    if fields.period is None:
        return (current.period_start, current.period_end) if current is not None else (at, at)
    start, end = fields.period
    check_time(start, param=fields.param("period[start]"))
    check_time(end, param=fields.param("period[end]"))
    if end < start:
        raise BillingError(
            "period[end] must not be before period[start].", param=fields.param("period[end]")
        )
    return start, end


def _default_description(rated: dict[str, Any]) -> str:
    price = rated["price"]
    if price is not None:
        return price.nickname or price.product.name
    return "One-off item"


# --- locks and totals -------------------------------------------------------------------------


def lock_draft(invoice: Invoice, action: str) -> Invoice:
    """The invoice locked, refused unless a draft: invoices.py's rule (one home), shared."""
    invoice = _lock(invoice)
    _require_draft(invoice, action)
    return invoice


def save_totals(invoice: Invoice, *, param: str | None = None) -> None:
    """Recompute the draft's totals from its lines; refuse a total past the invoice limit
    (the request rolls back whole)."""
    refresh_totals(invoice)
    if invoice.subtotal > MAX_AMOUNT:
        raise BillingError(
            f"These items would bring the invoice's total to "
            f"{format_minor_units(invoice.subtotal, invoice.currency)}, over the limit of "
            f"{format_minor_units(MAX_AMOUNT, invoice.currency)} per invoice; put them on "
            "another invoice.",
            param=param,
        )
    invoice.save(update_fields=TOTAL_FIELDS)


def _lock_item(item: InvoiceLineItem) -> tuple[InvoiceLineItem, Invoice | None]:
    """The item locked, and its invoice locked and checked to be a draft (None if pending)."""
    invoice = None
    if item.invoice_id is not None:
        invoice = lock_draft(item.invoice, "have their items changed or deleted")
    item = (
        InvoiceLineItem.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock", "price__product")
        .get(pk=item.pk, kind=ITEM)
    )
    if item.invoice_id != (invoice.pk if invoice else None):
        raise BillingError(
            "This invoice item moved while being changed; retry.",
            code=InvoicingErrorCode.INVOICE_NOT_EDITABLE,
        )
    return item, invoice


# --- invoice items ----------------------------------------------------------------------------


@transaction.atomic
def invoice_item_create(
    *,
    invoice: Invoice | None = None,
    customer: Customer | None = None,
    currency: str | None = None,
    description: str = "",
    amount: int | None = None,
    price: Price | None = None,
    price_data: PriceData | None = None,
    unit_amount_decimal: Decimal | None = None,
    quantity: Decimal | int | None = None,
    period: tuple[dt.datetime, dt.datetime] | None = None,
    metadata: dict[str, str] | None = None,
    prefix: str = "",
    price_param: str = "pricing[price]",
) -> InvoiceLineItem:
    """An item on a draft invoice, or (without `invoice`) a pending one that goes onto the
    customer's next invoice in its currency."""
    fields = ItemFields(
        description=description,
        amount=amount,
        price=price,
        price_data=price_data,
        unit_amount_decimal=unit_amount_decimal,
        quantity=quantity,
        period=period,
        metadata=metadata,
        prefix=prefix,
        price_param=price_param,
    )
    if invoice is not None:
        invoice = lock_draft(invoice, "get new items")
        customer = invoice.customer
        if currency and validate_currency(currency) != invoice.currency:
            raise BillingError(
                f"currency {currency.lower()} doesn't match the invoice's currency "
                f"({invoice.currency.lower()}).",
                param=fields.param("currency"),
            )
        currency = invoice.currency
    if customer is None:
        raise BillingError("Missing required param: customer.", param="customer")
    if customer.deleted_at is not None:
        raise BillingError(f"Customer {customer.public_id} has been deleted.", param="customer")
    currency = _item_currency(currency, customer, fields)
    before = snapshot(invoice) if invoice is not None else None
    at = customer.billing_now()
    rated = _rated(fields, currency)
    start, end = _period(fields, at)
    line = InvoiceLineItem.objects.create(
        invoice=invoice,
        customer=customer,
        currency=currency,
        item_public_id=generate_public_id("ii"),
        kind=ITEM,
        description=(description or "").strip() or _default_description(rated),
        period_start=start,
        period_end=end,
        metadata=metadata or {},
        created_at=at,
        **rated,
    )
    record_event("invoiceitem.created", line)
    if invoice is not None:
        param = fields.param("amount" if rated["price"] is None else "quantity")
        save_totals(invoice, param=param)
        record_update("invoice.updated", invoice, before)
    return line


def _item_currency(currency: str | None, customer: Customer, fields: ItemFields) -> str:
    if currency:
        return validate_currency(currency)
    for source in (fields.price, fields.price_data):
        if source is not None:
            return validate_currency(source.currency)
    if customer.currency:
        return customer.currency
    raise BillingError(
        "Missing required param: currency (a pending item needs a currency, or a price that has "
        "one).",
        param="currency",
        code="parameter_missing",
    )


@transaction.atomic
def invoice_item_update(*, item: InvoiceLineItem, fields: ItemFields) -> InvoiceLineItem:
    """Change a pending item, or one on a draft invoice (the invoice's totals follow)."""
    item, invoice = _lock_item(item)
    before_item = snapshot(item)
    before_invoice = snapshot(invoice) if invoice is not None else None
    item_apply(item, fields)
    item.save()
    record_update("invoiceitem.updated", item, before_item)
    if invoice is not None:
        save_totals(invoice, param=fields.param("amount"))
        record_update("invoice.updated", invoice, before_invoice)
    return item


def item_apply(item: InvoiceLineItem, fields: ItemFields) -> None:
    if fields.pricing_given or fields.quantity is not None:
        for name, value in _rated(fields, item.currency, item).items():
            setattr(item, name, value)
    item.period_start, item.period_end = _period(fields, item.created_at, item)
    if fields.description is not None:
        item.description = fields.description.strip() or _default_description({"price": item.price})
    if fields.metadata is not None:
        item.metadata = fields.metadata


@transaction.atomic
def invoice_item_delete(*, item: InvoiceLineItem) -> None:
    """Delete a pending item, or one on a draft invoice."""
    item, invoice = _lock_item(item)
    deleted = snapshot(item)
    before_invoice = snapshot(invoice) if invoice is not None else None
    item.delete()
    record_event("invoiceitem.deleted", data_object=deleted)
    if invoice is not None:
        save_totals(invoice)
        record_update("invoice.updated", invoice, before_invoice)


# --- pending items onto the next invoice ------------------------------------------------------


def pending_invoice_items_attach(*, invoice: Invoice) -> int:
    """Move the customer's pending items in the invoice's currency onto it, and recompute its
    totals (saved). Returns how many moved. Each item moves once: the move is a conditional
    UPDATE of rows still pending, so two invoices created at once can't both take one."""
    return pending_invoice_items_attach_many(invoices=[invoice])


def pending_invoice_items_attach_many(*, invoices: Sequence[Invoice]) -> int:
    """`pending_invoice_items_attach` for many new invoices (a billing-run chunk) in a fixed
    number of queries: each customer's pending items go to its first invoice in the list
    with their currency. Must run in the transaction that created the invoices."""
    targets: dict[tuple[int, str], Invoice] = {}
    for invoice in invoices:
        targets.setdefault((invoice.customer_id, invoice.currency), invoice)
    if not targets:
        return 0
    pending = list(
        InvoiceLineItem.objects.select_for_update()
        .filter(kind=ITEM, invoice__isnull=True, customer_id__in={c for c, _ in targets})
        .order_by("pk")
        .values_list("pk", "customer_id", "currency")
    )
    by_invoice: dict[int, list[int]] = {}
    for pk, customer_id, currency in pending:
        target = targets.get((customer_id, currency))
        if target is not None:
            by_invoice.setdefault(target.pk, []).append(pk)
    moved = 0
    for invoice in invoices:
        ids = by_invoice.get(invoice.pk)
        if not ids:
            continue
        moved += InvoiceLineItem.objects.filter(pk__in=ids, invoice__isnull=True).update(
            invoice=invoice
        )
        refresh_totals(invoice)
        invoice.save(update_fields=TOTAL_FIELDS)
    return moved
