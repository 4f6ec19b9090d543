"""The Stripe-shaped JSON of invoicing's objects, and the querysets that load what it reads.

Customers, test clocks and subscriptions are here; invoices, their lines, invoice items and the
preview in `invoice_serializers.py` (re-exported below, so callers import from one module). Each
`*_to_serialize()` queryset prefetches exactly what its serializer reads, so a list page costs
a fixed number of queries whatever its length.

Every object has all the fields Stripe's schema requires (tests/api/test_stripe_conformance.py):
a feature this project doesn't have gets Stripe's own "not used" value (null, false, [] or
`{enabled: false}`), never a made-up one. `register_expandables` declares what `expand[]` can
reach from each object (billing_site/api/expand.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from billing_site.api.expand import Id, ListOf, Nested, register_expandable
from billing_site.clock import to_unix
from catalog.api import prices_to_serialize, serialize_plan, serialize_price
from invoicing.api.invoice_serializers import (
    invoice_items_to_serialize,
    invoices_to_serialize,
    lines_to_serialize,
    serialize_invoice,
    serialize_invoice_item,
    serialize_line,
    serialize_preview,
)
from invoicing.models import Customer, Invoice, Subscription, SubscriptionItem, TestClock

__all__ = [
    "customers_to_serialize",
    "invoice_items_to_serialize",
    "invoices_to_serialize",
    "lines_to_serialize",
    "register_expandables",
    "serialize_customer",
    "serialize_invoice",
    "serialize_invoice_item",
    "serialize_line",
    "serialize_preview",
    "serialize_subscription",
    "serialize_subscription_item",
    "serialize_test_clock",
    "subscription_items_to_serialize",
    "subscriptions_to_serialize",
]

# --- customers and test clocks ----------------------------------------------------------------


def customers_to_serialize() -> QuerySet[Customer]:
    """Deleted customers too: an invoice or a grant still names them (expanded, they read
    `{"id", "object", "deleted": true}`, as on Stripe)."""
    return Customer.objects.select_related("test_clock")


def serialize_customer(customer: Customer) -> dict[str, Any]:
    if customer.deleted_at is not None:
        return {"id": customer.public_id, "object": "customer", "deleted": True}
    return {
        "id": customer.public_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": to_unix(customer.created_at),
        "currency": customer.currency.lower() or None,
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


def _latest_invoice_id() -> Subquery:
    # Derived rather than stored, so whatever creates a subscription's invoices (the first
    # invoice, a period close, a cancel with invoice_now, a set-based billing run) keeps it
    # right without maintaining a column. One indexed subquery per row of the page.
    newest = Invoice.objects.filter(subscription=OuterRef("pk")).order_by("-created_at", "-pk")
    return Subquery(newest.values("public_id")[:1])


def subscriptions_to_serialize() -> QuerySet[Subscription]:
    # Prices are prefetched on their own, not joined to each item: a page (or a billing run's
    # chunk) of thousands of subscriptions on one plan then shares one instance of each price,
    # whose tiers load once, not once per item. Each item's `subscription` is set to its
    # subscription by the prefetch itself.
    return (
        Subscription.objects.select_related("customer__test_clock")
        .prefetch_related("items", Prefetch("items__price", queryset=prices_to_serialize()))
        .annotate(latest_invoice_public_id=_latest_invoice_id())
    )


def serialize_subscription_item(item: SubscriptionItem) -> dict[str, Any]:
    subscription = item.subscription
    body: dict[str, Any] = {
        "id": item.public_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": to_unix(item.created_at),
        "current_period_end": to_unix(subscription.current_period_end),
        "current_period_start": to_unix(subscription.current_period_start),
        "current_trial": None,
        "discounts": [],
        "metadata": item.metadata,
        "plan": serialize_plan(item.price),
        "price": serialize_price(item.price),
        "subscription": subscription.public_id,
        "tax_rates": [],
    }
    # Stripe's schema has no quantity for a metered item: its quantity is its usage.
    if not item.price.is_metered:
        body["quantity"] = item.quantity
    return body


def _latest_invoice(subscription: Subscription) -> str | None:
    if hasattr(subscription, "latest_invoice_public_id"):
        return subscription.latest_invoice_public_id
    newest = subscription.invoices.order_by("-created_at", "-pk").values("public_id").first()
    return newest["public_id"] if newest else None


def _billing_mode(subscription: Subscription) -> dict[str, Any]:
    flexible = subscription.billing_mode == Subscription.BillingMode.FLEXIBLE
    return {
        "type": subscription.billing_mode,
        "flexible": {"proration_discounts": "included"} if flexible else None,
    }


def serialize_subscription(subscription: Subscription) -> dict[str, Any]:
    items = list(subscription.items.all())
    customer = subscription.customer
    canceling = subscription.cancel_at_period_end or subscription.canceled_at is not None
    return {
        "id": subscription.public_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": to_unix(subscription.billing_cycle_anchor),
        "billing_cycle_anchor_config": None,
        "billing_mode": _billing_mode(subscription),
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": (
            to_unix(subscription.current_period_end) if subscription.cancel_at_period_end else None
        ),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": to_unix(subscription.canceled_at),
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "feedback_option": None,
            "reason": "cancellation_requested" if canceling else None,
        },
        "collection_method": subscription.collection_method,
        "created": to_unix(subscription.created_at),
        "currency": subscription.currency.lower(),
        "current_period_end": to_unix(subscription.current_period_end),
        "current_period_start": to_unix(subscription.current_period_start),
        "customer": customer.public_id,
        "customer_account": None,
        "days_until_due": subscription.days_until_due,
        "default_payment_method": None,
        "default_source": None,
        "description": None,
        "discounts": [],
        "ended_at": to_unix(subscription.ended_at),
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {
            "object": "list",
            "data": [serialize_subscription_item(item) for item in items],
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={subscription.public_id}",
        },
        "latest_invoice": _latest_invoice(subscription),
        "livemode": False,
        "managed_payments": None,
        "metadata": subscription.metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": None,
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": to_unix(subscription.created_at),
        "status": subscription.status,
        "test_clock": customer.test_clock.public_id if customer.test_clock_id else None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": None,
        "trial_start": None,
    }


# --- what expand[] reaches --------------------------------------------------------------------

_CLOCK = Id("test_helpers.test_clock")


def register_expandables() -> None:
    """invoicing's objects for `expand[]` (billing_site/api/expand.py), called from ready()."""
    register_expandable(
        "customer", resource="customers", load=customers_to_serialize, serialize=serialize_customer,
        fields={"test_clock": _CLOCK},
    )  # fmt: skip
    register_expandable(
        "test_helpers.test_clock",
        resource="test_clocks",
        load=TestClock.objects.all,
        serialize=serialize_test_clock,
    )
    register_expandable(
        "subscription",
        resource="subscriptions",
        load=subscriptions_to_serialize,
        serialize=serialize_subscription,
        fields={
            "customer": Id("customer"),
            "latest_invoice": Id("invoice"),
            "test_clock": _CLOCK,
            "items": ListOf("subscription_item"),
        },
    )
    register_expandable(
        "subscription_item",
        resource="subscriptions",
        load=subscription_items_to_serialize,
        serialize=serialize_subscription_item,
        fields={"price": Nested("price"), "plan": Nested("plan")},
    )
    register_expandable("plan", fields={"product": Id("product")})
    register_expandable(
        "invoice",
        resource="invoices",
        load=invoices_to_serialize,
        serialize=serialize_invoice,
        fields={
            "customer": Id("customer"),
            "subscription": Id("subscription"),
            "parent.subscription_details.subscription": Id("subscription"),
            "test_clock": _CLOCK,
            "lines": ListOf("line_item"),
        },
    )
    line_fields = {
        "invoice": Id("invoice"),
        "subscription": Id("subscription"),
        "pricing.price_details.price": Id("price"),
        "pricing.price_details.product": Id("product"),
    }
    register_expandable(
        "line_item",
        fields={
            **line_fields,
            "parent.subscription_item_details.subscription": Id("subscription"),
            "parent.subscription_item_details.subscription_item": Id("subscription_item"),
        },
    )
    register_expandable(
        "invoiceitem",
        resource="invoices",
        load=invoice_items_to_serialize,
        serialize=serialize_invoice_item,
        id_field="item_public_id",
        fields={**line_fields, "customer": Id("customer"), "test_clock": _CLOCK},
    )
