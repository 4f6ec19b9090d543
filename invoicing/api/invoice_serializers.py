"""The Stripe-shaped JSON of invoices, their lines, invoice items and the upcoming invoice.

They live together because they share blocks (period, pricing, credits) and because an invoice
and its preview are the same object to a client: `_invoice_fields` renders both, so the preview
has every field an invoice has (with the values a not-yet-created invoice has).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from billing_site.clock import to_unix
from billing_site.formatting import decimal_string
from catalog.models import Price
from invoicing.models import Customer, Invoice, InvoiceLineItem
from invoicing.selectors import InvoicePreview

# --- blocks shared by lines, invoice items and previews ---------------------------------------


def _period(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, int | None]:
    return {"start": to_unix(start), "end": to_unix(end)}


def _pricing(price) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "type": "price_details",
        "price_details": {"price": price.public_id, "product": price.product.public_id},
        "unit_amount_decimal": decimal_string(price.unit_amount_decimal),
    }


def _credit_amounts(credits_applied: int) -> list[dict[str, Any]]:
    """`pretax_credit_amounts`: the credit grants' share of a line or an invoice, if any."""
    if not credits_applied:
        return []
    return [{"amount": credits_applied, "type": "credit_balance_transaction"}]


def _whole_quantity(quantity) -> int | None:
    """Stripe's integer `quantity` next to `quantity_decimal`: null for a fractional one."""
    return int(quantity) if quantity == int(quantity) else None


def _line(
    *,
    line_id: str,
    invoice_id: str | None,
    currency: str,
    line,
    period: dict[str, int | None],
    parent: dict[str, Any],
    subscription_id: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    """A `line_item`, saved (an InvoiceLineItem) or previewed (a PlannedLine)."""
    return {
        "id": line_id,
        "object": "line_item",
        "amount": line.amount,
        "currency": currency.lower(),
        "description": line.description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": metadata,
        "parent": parent,
        "period": period,
        "pretax_credit_amounts": _credit_amounts(line.credits_applied),
        "price": line.price.public_id if line.price is not None else None,
        "pricing": (
            _item_pricing(line) if isinstance(line, InvoiceLineItem) else _pricing(line.price)
        ),
        "quantity": _whole_quantity(line.quantity),
        "quantity_decimal": decimal_string(line.quantity),
        "subscription": subscription_id,
        "subtotal": line.amount,
        "taxes": [],
        "tier_breakdown": line.tier_breakdown,
        "unrounded_amount_decimal": decimal_string(line.unrounded_amount),
    }


def _subscription_item_parent(subscription_id: str, item_id: str) -> dict[str, Any]:
    return {
        "type": "subscription_item_details",
        "invoice_item_details": None,
        "subscription_item_details": {
            "invoice_item": None,
            "proration": False,
            "proration_details": {"credited_items": None},
            "subscription": subscription_id,
            "subscription_item": item_id,
        },
    }


def _invoice_fields(
    *, customer: Customer, subscription_id: str | None, currency: str
) -> dict[str, Any]:
    """What an invoice and a preview share: the customer's details and the features not used
    here (tax, discounts, payments through Stripe, shipping), with Stripe's empty values."""
    return {
        # The seller, as GET /v1/account describes it.
        "account_country": getattr(settings, "BILLING_SELLER_COUNTRY", None) or None,
        "account_name": getattr(settings, "BILLING_SELLER_NAME", None) or None,
        "account_tax_ids": None,
        "amount_overpaid": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "currency": currency.lower(),
        "custom_fields": None,
        "customer": customer.public_id,
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer.email or None,
        "customer_name": customer.name or None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "discounts": [],
        "footer": None,
        "from_invoice": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "livemode": False,
        "next_payment_attempt": None,
        "on_behalf_of": None,
        "parent": (
            {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": None, "subscription": subscription_id},
            }
            if subscription_id
            else None
        ),
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "subscription": subscription_id,
        "test_clock": customer.test_clock.public_id if customer.test_clock_id else None,
        "total_discount_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


# --- invoices and their lines -----------------------------------------------------------------


def lines_to_serialize() -> QuerySet[InvoiceLineItem]:
    return InvoiceLineItem.objects.select_related(
        "price__product", "subscription_item", "invoice__subscription"
    )


def invoices_to_serialize() -> QuerySet[Invoice]:
    # Each line's `invoice` is set to its invoice by the prefetch, and its price is prefetched
    # on its own: a billing run's chunk of invoices on one plan shares one instance of each
    # price instead of joining (and building) a price, an invoice and a subscription per line.
    return Invoice.objects.select_related("customer__test_clock", "subscription").prefetch_related(
        Prefetch("lines", queryset=InvoiceLineItem.objects.select_related("subscription_item")),
        Prefetch("lines__price", queryset=Price.objects.select_related("product")),
    )


def _line_parent(line: InvoiceLineItem) -> dict[str, Any]:
    if line.kind == InvoiceLineItem.Kind.INVOICE_ITEM:
        return {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": line.item_public_id,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
        }
    return _subscription_item_parent(
        line.invoice.subscription.public_id, line.subscription_item.public_id
    )


def serialize_line(line: InvoiceLineItem) -> dict[str, Any]:
    invoice = line.invoice
    return _line(
        line_id=line.public_id,
        invoice_id=invoice.public_id,
        currency=invoice.currency,
        line=line,
        period=_period(line.period_start, line.period_end),
        parent=_line_parent(line),
        subscription_id=invoice.subscription.public_id if invoice.subscription_id else None,
        metadata=line.metadata,
    )


def serialize_invoice(invoice: Invoice) -> dict[str, Any]:
    lines = list(invoice.lines.all())
    draft = invoice.status == Invoice.Status.DRAFT
    subscription_id = invoice.subscription.public_id if invoice.subscription_id else None
    return {
        "id": invoice.public_id,
        "object": "invoice",
        **_invoice_fields(
            customer=invoice.customer, subscription_id=subscription_id, currency=invoice.currency
        ),
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "auto_advance": draft and bool(invoice.finalize_after),
        # A draft in its grace period finalizes on its own then (a held one waits for staff).
        "automatically_finalizes_at": to_unix(invoice.finalize_after) if draft else None,
        "billing_reason": invoice.billing_reason,
        "collection_method": invoice.collection_method,
        "created": to_unix(invoice.created_at),
        "description": invoice.description or None,
        "due_date": to_unix(invoice.due_date),
        "effective_at": to_unix(invoice.finalized_at),
        "ending_balance": 0 if invoice.finalized_at else None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "lines": {
            "object": "list",
            "data": [serialize_line(line) for line in lines],
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice.public_id}/lines",
        },
        "metadata": invoice.metadata,
        "number": invoice.number,
        "paid": invoice.status == Invoice.Status.PAID,
        "paid_out_of_band": invoice.paid_out_of_band,
        "period_end": to_unix(invoice.period_end or invoice.created_at),
        "period_start": to_unix(invoice.period_start or invoice.created_at),
        "status": invoice.status,
        "status_transitions": {
            "finalized_at": to_unix(invoice.finalized_at),
            "marked_uncollectible_at": to_unix(invoice.marked_uncollectible_at),
            "paid_at": to_unix(invoice.paid_at),
            "voided_at": to_unix(invoice.voided_at),
        },
        "subtotal": invoice.subtotal,
        "subtotal_excluding_tax": invoice.subtotal,
        "total": invoice.total,
        "total_excluding_tax": invoice.total,
        "total_pretax_credit_amounts": _credit_amounts(invoice.total_credits),
    }


# --- invoice items ----------------------------------------------------------------------------


def invoice_items_to_serialize() -> QuerySet[InvoiceLineItem]:
    return InvoiceLineItem.objects.filter(kind=InvoiceLineItem.Kind.INVOICE_ITEM).select_related(
        "customer__test_clock", "invoice", "price__product"
    )


def _item_pricing(line: InvoiceLineItem) -> dict[str, Any] | None:
    """A price's details; an item priced by `unit_amount_decimal` alone has only that."""
    if line.price is None and line.unit_amount_decimal is not None:
        return {
            "type": "price_details",
            "unit_amount_decimal": decimal_string(line.unit_amount_decimal),
        }
    return _pricing(line.price)


def serialize_invoice_item(line: InvoiceLineItem) -> dict[str, Any]:
    invoice = line.invoice  # None while pending (waiting for the customer's next invoice)
    customer = line.customer
    return {
        "id": line.item_public_id,
        "object": "invoiceitem",
        "amount": line.amount,
        "currency": line.currency.lower(),
        "customer": customer.public_id,
        "customer_account": None,
        "date": to_unix(line.created_at),
        "description": line.description,
        "discountable": True,
        "discounts": [],
        "invoice": invoice.public_id if invoice is not None else None,
        "livemode": False,
        "metadata": line.metadata,
        "net_amount": line.amount,
        "parent": None,
        "period": _period(line.period_start, line.period_end),
        "pricing": _item_pricing(line),
        "proration": False,
        "quantity": int(line.quantity),
        "quantity_decimal": decimal_string(line.quantity),
        "tax_rates": [],
        "test_clock": customer.test_clock.public_id if customer.test_clock_id else None,
    }


# --- the upcoming invoice ---------------------------------------------------------------------


def preview_id(preview: InvoicePreview) -> str:
    """Stripe names a preview `upcoming_in_...`; ours is stable for its subscription."""
    return f"upcoming_in_{preview.subscription.public_id.removeprefix('sub_')}"


def serialize_preview(preview: InvoicePreview) -> dict[str, Any]:
    subscription_id = preview.subscription.public_id
    invoice_id = preview_id(preview)
    lines = [
        _line(
            line_id=f"il_tmp_{index}",
            invoice_id=invoice_id,
            currency=preview.currency,
            line=line,
            period=_period(line.period.start, line.period.end),
            parent=_subscription_item_parent(subscription_id, line.subscription_item_public_id),
            subscription_id=subscription_id,
            metadata={},
        )
        for index, line in enumerate(preview.lines)
    ]
    return {
        "id": invoice_id,
        "object": "invoice",
        **_invoice_fields(
            customer=preview.customer, subscription_id=subscription_id, currency=preview.currency
        ),
        "amount_due": preview.amount_due,
        "amount_paid": 0,
        "amount_remaining": preview.amount_due,
        "auto_advance": False,
        "automatically_finalizes_at": None,
        "billing_reason": "upcoming",
        "collection_method": preview.subscription.collection_method,
        "created": to_unix(preview.created),
        "description": None,
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "metadata": {},
        "number": None,
        "paid": False,
        "paid_out_of_band": False,
        "period_end": to_unix(preview.period.end),
        "period_start": to_unix(preview.period.start),
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": preview.subtotal,
        "subtotal_excluding_tax": preview.subtotal,
        "total": preview.total,
        "total_excluding_tax": preview.total,
        "total_pretax_credit_amounts": _credit_amounts(preview.total_credits),
    }
