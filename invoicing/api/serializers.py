"""The Stripe-shaped JSON of invoicing's objects, and the querysets that load what it reads.

The shapes live together because they nest: a subscription embeds its items, an invoice its
lines, and lines, invoice items and previews share the period and pricing blocks. Each
`*_to_serialize()` queryset prefetches exactly what its serializer reads, so a list page costs
a fixed number of queries whatever its length.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, QuerySet

from billing_site.clock import to_unix
from billing_site.formatting import decimal_string
from catalog.api import serialize_price
from invoicing.models import (
    Customer,
    Invoice,
    InvoiceLineItem,
    Subscription,
    SubscriptionItem,
    TestClock,
)
from invoicing.selectors import InvoicePreview

# --- customers and test clocks ----------------------------------------------------------------


def serialize_customer(customer: Customer) -> dict[str, Any]:
    if customer.deleted_at is not None:
        return {"id": customer.public_id, "object": "customer", "deleted": True}
    return {
        "id": customer.public_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": to_unix(customer.created_at),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": customer.description or None,
        "discount": None,
        "email": customer.email or None,
        "invoice_prefix": None,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": customer.metadata,
        "name": customer.name or None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": customer.test_clock.public_id if customer.test_clock_id else None,
    }


def serialize_test_clock(test_clock: TestClock) -> dict[str, Any]:
    if test_clock.deleted_at is not None:
        return {"id": test_clock.public_id, "object": "test_helpers.test_clock", "deleted": True}
    return {
        "id": test_clock.public_id,
        "object": "test_helpers.test_clock",
        "created": to_unix(test_clock.created_at),
        "deletes_after": to_unix(test_clock.created_at + dt.timedelta(days=30)),
        "frozen_time": to_unix(test_clock.frozen_time),
        "livemode": False,
        "name": test_clock.name or None,
        "status": test_clock.status,
        "status_details": {},
    }


# --- subscriptions ----------------------------------------------------------------------------


def subscription_items_to_serialize() -> QuerySet[SubscriptionItem]:
    return SubscriptionItem.objects.select_related(
        "subscription", "price__product", "price__meter"
    ).prefetch_related("price__tiers")


def subscriptions_to_serialize() -> QuerySet[Subscription]:
    return Subscription.objects.select_related("customer__test_clock").prefetch_related(
        Prefetch("items", queryset=subscription_items_to_serialize())
    )


def serialize_subscription_item(item: SubscriptionItem) -> dict[str, Any]:
    subscription = item.subscription
    return {
        "id": item.public_id,
        "object": "subscription_item",
        "created": to_unix(item.created_at),
        "current_period_end": to_unix(subscription.current_period_end),
        "current_period_start": to_unix(subscription.current_period_start),
        "discounts": [],
        "metadata": item.metadata,
        "price": serialize_price(item.price),
        "quantity": None if item.price.is_metered else item.quantity,
        "subscription": subscription.public_id,
        "tax_rates": [],
    }


def serialize_subscription(subscription: Subscription) -> dict[str, Any]:
    items = list(subscription.items.all())
    return {
        "id": subscription.public_id,
        "object": "subscription",
        "billing_cycle_anchor": to_unix(subscription.billing_cycle_anchor),
        "cancel_at": (
            to_unix(subscription.current_period_end) if subscription.cancel_at_period_end else None
        ),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": to_unix(subscription.canceled_at),
        "collection_method": subscription.collection_method,
        "created": to_unix(subscription.created_at),
        "currency": subscription.currency.lower(),
        "current_period_end": to_unix(subscription.current_period_end),
        "current_period_start": to_unix(subscription.current_period_start),
        "customer": subscription.customer.public_id,
        "days_until_due": subscription.days_until_due,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": to_unix(subscription.ended_at),
        "items": {
            "object": "list",
            "data": [serialize_subscription_item(item) for item in items],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription.public_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": subscription.metadata,
        "start_date": to_unix(subscription.created_at),
        "status": subscription.status,
        "test_clock": (
            subscription.customer.test_clock.public_id
            if subscription.customer.test_clock_id
            else None
        ),
    }


# --- blocks shared by lines, invoice items and previews ---------------------------------------


def _period(start: dt.datetime | None, end: dt.datetime | None) -> dict[str, int | None]:
    return {"start": to_unix(start), "end": to_unix(end)}


def _pricing(line: InvoiceLineItem) -> dict[str, Any]:
    price = line.price
    return {
        "type": "price_details",
        "price_details": (
            {"price": price.public_id, "product": price.product.public_id} if price else None
        ),
        "unit_amount_decimal": decimal_string(price.unit_amount_decimal) if price else None,
    }


def _credit_amounts(credits_applied: int) -> list[dict[str, Any]]:
    """`pretax_credit_amounts`: the credit grants' share of a line or an invoice, if any."""
    if not credits_applied:
        return []
    return [{"amount": credits_applied, "type": "credit_balance_transaction"}]


def _whole_quantity(quantity) -> int | None:
    """Stripe's integer `quantity` next to `quantity_decimal`: null for a fractional one."""
    return int(quantity) if quantity == int(quantity) else None


# --- invoices and their lines -----------------------------------------------------------------


def lines_to_serialize() -> QuerySet[InvoiceLineItem]:
    return InvoiceLineItem.objects.select_related(
        "price__product", "subscription_item", "invoice__subscription"
    )


def invoices_to_serialize() -> QuerySet[Invoice]:
    return Invoice.objects.select_related("customer__test_clock", "subscription").prefetch_related(
        Prefetch("lines", queryset=lines_to_serialize())
    )


def _line_parent(line: InvoiceLineItem) -> dict[str, Any]:
    if line.kind == InvoiceLineItem.Kind.INVOICE_ITEM:
        return {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": line.item_public_id,
                "proration": False,
                "subscription": None,
            },
        }
    return {
        "type": "subscription_item_details",
        "subscription_item_details": {
            "invoice_item": None,
            "proration": False,
            "subscription": line.invoice.subscription.public_id,
            "subscription_item": line.subscription_item.public_id,
        },
    }


def serialize_line(line: InvoiceLineItem) -> dict[str, Any]:
    invoice = line.invoice
    return {
        "id": line.public_id,
        "object": "line_item",
        "amount": line.amount,
        "currency": invoice.currency.lower(),
        "description": line.description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice.public_id,
        "livemode": False,
        "metadata": line.metadata,
        "parent": _line_parent(line),
        "period": _period(line.period_start, line.period_end),
        "pretax_credit_amounts": _credit_amounts(line.credits_applied),
        "price": line.price.public_id if line.price_id else None,
        "pricing": _pricing(line),
        "quantity": _whole_quantity(line.quantity),
        "quantity_decimal": decimal_string(line.quantity),
        "subscription": invoice.subscription.public_id if invoice.subscription_id else None,
        "subtotal": line.amount,
        "taxes": [],
        "tier_breakdown": line.tier_breakdown,
        "unrounded_amount_decimal": decimal_string(line.unrounded_amount),
    }


def serialize_invoice(invoice: Invoice) -> dict[str, Any]:
    lines = list(invoice.lines.all())
    customer = invoice.customer
    return {
        "id": invoice.public_id,
        "object": "invoice",
        "account_country": None,
        "account_name": None,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": invoice.status == Invoice.Status.DRAFT and bool(invoice.finalize_after),
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": invoice.billing_reason,
        "collection_method": invoice.collection_method,
        "created": to_unix(invoice.created_at),
        "currency": invoice.currency.lower(),
        "custom_fields": None,
        "customer": customer.public_id,
        "customer_email": customer.email or None,
        "customer_name": customer.name or None,
        "default_payment_method": None,
        "description": invoice.description or None,
        "discounts": [],
        "due_date": to_unix(invoice.due_date),
        "effective_at": to_unix(invoice.finalized_at),
        "ending_balance": 0 if invoice.finalized_at else None,
        "footer": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "last_finalization_error": None,
        "lines": {
            "object": "list",
            "data": [serialize_line(line) for line in lines],
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice.public_id}/lines",
        },
        "livemode": False,
        "metadata": invoice.metadata,
        "next_payment_attempt": None,
        "number": invoice.number,
        "paid": invoice.status == Invoice.Status.PAID,
        "paid_out_of_band": invoice.paid_out_of_band,
        "parent": (
            {
                "type": "subscription_details",
                "subscription_details": {"subscription": invoice.subscription.public_id},
            }
            if invoice.subscription_id
            else None
        ),
        "period_end": to_unix(invoice.period_end or invoice.created_at),
        "period_start": to_unix(invoice.period_start or invoice.created_at),
        "starting_balance": 0,
        "status": invoice.status,
        "status_transitions": {
            "finalized_at": to_unix(invoice.finalized_at),
            "marked_uncollectible_at": to_unix(invoice.marked_uncollectible_at),
            "paid_at": to_unix(invoice.paid_at),
            "voided_at": to_unix(invoice.voided_at),
        },
        "subscription": invoice.subscription.public_id if invoice.subscription_id else None,
        "subtotal": invoice.subtotal,
        "test_clock": customer.test_clock.public_id if customer.test_clock_id else None,
        "total": invoice.total,
        "total_discount_amounts": [],
        "total_pretax_credit_amounts": _credit_amounts(invoice.total_credits),
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


# --- invoice items ----------------------------------------------------------------------------


def invoice_items_to_serialize() -> QuerySet[InvoiceLineItem]:
    return InvoiceLineItem.objects.filter(kind=InvoiceLineItem.Kind.INVOICE_ITEM).select_related(
        "invoice__customer", "price__product"
    )


def serialize_invoice_item(line: InvoiceLineItem) -> dict[str, Any]:
    invoice = line.invoice
    return {
        "id": line.item_public_id,
        "object": "invoiceitem",
        "amount": line.amount,
        "currency": invoice.currency.lower(),
        "customer": invoice.customer.public_id,
        "date": to_unix(line.created_at),
        "description": line.description,
        "discountable": True,
        "discounts": [],
        "invoice": invoice.public_id,
        "livemode": False,
        "metadata": line.metadata,
        "period": _period(line.period_start, line.period_end),
        "pricing": _pricing(line),
        "proration": False,
        "quantity": int(line.quantity),
        "tax_rates": [],
        "test_clock": None,
    }


# --- the upcoming invoice ---------------------------------------------------------------------


def serialize_preview(preview: InvoicePreview) -> dict[str, Any]:
    lines = [
        {
            "id": f"il_tmp_{index}",
            "object": "line_item",
            "amount": line.amount,
            "currency": preview.currency.lower(),
            "description": line.description,
            "livemode": False,
            "metadata": {},
            "period": _period(line.period.start, line.period.end),
            "price": line.price.public_id,
            "quantity": _whole_quantity(line.quantity),
            "quantity_decimal": decimal_string(line.quantity),
            "subscription": preview.subscription.public_id,
            "pretax_credit_amounts": _credit_amounts(line.credits_applied),
            "subtotal": line.amount,
            "tier_breakdown": line.tier_breakdown,
            "unrounded_amount_decimal": decimal_string(line.unrounded_amount),
        }
        for index, line in enumerate(preview.lines)
    ]
    return {
        "id": None,
        "object": "invoice",
        "amount_due": preview.amount_due,
        "amount_paid": 0,
        "amount_remaining": preview.amount_due,
        "billing_reason": "upcoming",
        "created": to_unix(preview.created),
        "currency": preview.currency.lower(),
        "customer": preview.customer.public_id,
        "lines": {"object": "list", "data": lines, "has_more": False, "url": None},
        "livemode": False,
        "number": None,
        "period_end": to_unix(preview.period.end),
        "period_start": to_unix(preview.period.start),
        "status": "draft",
        "subscription": preview.subscription.public_id,
        "subtotal": preview.subtotal,
        "total": preview.total,
        "total_pretax_credit_amounts": _credit_amounts(preview.total_credits),
    }
