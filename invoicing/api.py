"""`/v1/customers`, subscriptions, invoices, invoice items, previews and test clocks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Prefetch

from billing_site.api.base import ApiError, ApiView, get_by_public_id, paginate
from billing_site.api.params import Params, merge_metadata
from billing_site.api.render import decimal_string
from billing_site.clock import from_unix, to_unix
from billing_site.errors import BillingError
from catalog.api import serialize_price
from catalog.models import Price
from invoicing import services, tasks
from invoicing.models import (
    Customer,
    Invoice,
    InvoiceLineItem,
    Subscription,
    SubscriptionItem,
    TestClock,
)
from invoicing.selectors import invoice_preview


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


def _customer_fields(params: Params) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, limit in (("name", 256), ("email", 512), ("description", 5000)):
        if key in params:
            fields[key] = params.string(key, max_length=limit, allow_blank=True) or ""
    return fields


class CustomerCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = Customer.objects.live()
        email = params.string("email", max_length=512)
        if email:
            queryset = queryset.filter(email__iexact=email)
        return paginate(
            queryset,
            params,
            url="/v1/customers",
            resource="customer",
            serialize=serialize_customer,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        metadata = merge_metadata({}, params.metadata())
        clock_id = params.string("test_clock")
        test_clock = (
            get_by_public_id(
                TestClock.objects.filter(deleted_at__isnull=True),
                clock_id,
                "test_helpers.test_clock",
                param="test_clock",
            )
            if clock_id
            else None
        )
        customer = services.customer_create(
            **_customer_fields(params), metadata=metadata, test_clock=test_clock
        )
        return serialize_customer(customer)


class CustomerDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_customer(get_by_public_id(Customer.objects, public_id, "customer"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        changes = _customer_fields(params)
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(customer.metadata, metadata)
        return serialize_customer(services.customer_update(customer=customer, **changes))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        return serialize_customer(services.customer_delete(customer=customer))


# --- shared -----------------------------------------------------------------------------------


def _customer_param(params: Params, key: str = "customer", *, required: bool = True) -> Customer:
    public_id = params.string(key, required=required)
    if public_id is None:
        return None  # type: ignore[return-value]
    return get_by_public_id(
        Customer.objects.live().select_related("test_clock"), public_id, "customer", param=key
    )


def _period(start, end) -> dict[str, int | None]:
    return {"start": to_unix(start), "end": to_unix(end)}


# --- test clocks ------------------------------------------------------------------------------


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


def _live_clocks():
    return TestClock.objects.filter(deleted_at__isnull=True)


class TestClockCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        return paginate(
            _live_clocks(),
            params,
            url="/v1/test_helpers/test_clocks",
            resource="test_helpers.test_clock",
            serialize=serialize_test_clock,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        frozen = params.integer("frozen_time", required=True, minimum=0, maximum=253402300799)
        test_clock = services.test_clock_create(
            frozen_time=from_unix(frozen), name=params.string("name", max_length=300) or ""
        )
        return serialize_test_clock(test_clock)


class TestClockDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        clock_ = get_by_public_id(TestClock.objects.all(), public_id, "test_helpers.test_clock")
        return serialize_test_clock(clock_)

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        clock_ = get_by_public_id(_live_clocks(), public_id, "test_helpers.test_clock")
        services.test_clock_delete(test_clock=clock_)
        return serialize_test_clock(clock_)


class TestClockAdvance(ApiView):
    http_method_names = ["post"]

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        clock_ = get_by_public_id(_live_clocks(), public_id, "test_helpers.test_clock")
        frozen = params.integer("frozen_time", required=True, minimum=0, maximum=253402300799)
        clock_ = services.test_clock_start_advance(test_clock=clock_, frozen_time=from_unix(frozen))
        body = serialize_test_clock(clock_)
        transaction.on_commit(
            lambda: tasks.test_clock_advance_task.delay(clock_.pk, frozen)  # type: ignore[attr-defined]
        )
        return body


# --- subscriptions ----------------------------------------------------------------------------


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


def _subscriptions():
    return Subscription.objects.select_related("customer__test_clock").prefetch_related(
        Prefetch(
            "items",
            queryset=SubscriptionItem.objects.select_related(
                "subscription", "price__product", "price__meter"
            ).prefetch_related("price__tiers"),
        )
    )


def _read_items(params: Params) -> list[services.ItemInput]:
    raw = params.list_of("items")
    if not raw:
        raise BillingError(
            "Missing required param: items (items[0][price]=price_...).",
            param="items",
            code="parameter_missing",
        )
    items = []
    for index, data in enumerate(raw):
        item = Params(data if isinstance(data, dict) else None, f"items[{index}]")
        price_id = item.string("price", required=True)
        price = get_by_public_id(
            Price.objects.select_related("product", "meter").prefetch_related("tiers"),
            price_id,
            "price",
            param=f"items[{index}][price]",
        )
        quantity = item.integer("quantity", minimum=1, maximum=1_000_000)
        metadata = merge_metadata({}, item.metadata())
        item.reject_unknown()
        items.append(services.ItemInput(price=price, quantity=quantity, metadata=metadata))
    return items


class SubscriptionCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = _subscriptions()
        customer_id = params.string("customer")
        if customer_id:
            queryset = queryset.filter(customer__public_id=customer_id)
        status = params.choice("status", [*Subscription.Status.values, "all"])
        if status and status != "all":
            queryset = queryset.filter(status=status)
        elif not status:
            queryset = queryset.exclude(status=Subscription.Status.CANCELED)
        price_id = params.string("price")
        if price_id:
            queryset = queryset.filter(items__price__public_id=price_id)
        return paginate(
            queryset,
            params,
            url="/v1/subscriptions",
            resource="subscription",
            serialize=serialize_subscription,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = _customer_param(params)
        items = _read_items(params)
        anchor = params.integer("billing_cycle_anchor", minimum=0, maximum=253402300799)
        subscription = services.subscription_create(
            customer=customer,
            items=items,
            billing_cycle_anchor=from_unix(anchor) if anchor is not None else None,
            cancel_at_period_end=bool(params.boolean("cancel_at_period_end")),
            collection_method=params.string("collection_method") or "charge_automatically",
            days_until_due=params.integer("days_until_due", minimum=0, maximum=365),
            metadata=merge_metadata({}, params.metadata()),
        )
        return serialize_subscription(_subscriptions().get(pk=subscription.pk))


class SubscriptionDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_subscription(get_by_public_id(_subscriptions(), public_id, "subscription"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        subscription = get_by_public_id(_subscriptions(), public_id, "subscription")
        for unsupported in ("billing_cycle_anchor", "proration_behavior", "collection_method"):
            if unsupported in params:
                raise ApiError(
                    f"Changing {unsupported} on an existing subscription isn't supported.",
                    param=unsupported,
                )
        quantities: dict[SubscriptionItem, int] = {}
        by_id = {item.public_id: item for item in subscription.items.all()}
        for index, data in enumerate(params.list_of("items") or []):
            item = Params(data if isinstance(data, dict) else None, f"items[{index}]")
            if "price" in item:
                raise ApiError(
                    "Changing a subscription's prices mid-period needs proration, which isn't "
                    "supported yet. Cancel at period end and start a new subscription instead.",
                    param=f"items[{index}][price]",
                    code="proration_not_supported",
                )
            item_id = item.string("id", required=True)
            if item_id not in by_id:
                raise ApiError(
                    f"No such subscription item on {subscription.public_id}: '{item_id}'",
                    param=f"items[{index}][id]",
                    code="resource_missing",
                )
            quantity = item.integer("quantity", required=True, minimum=1, maximum=1_000_000)
            item.reject_unknown()
            quantities[by_id[item_id]] = quantity
        metadata = params.metadata()
        services.subscription_update(
            subscription=subscription,
            cancel_at_period_end=params.boolean("cancel_at_period_end"),
            metadata=(
                merge_metadata(subscription.metadata, metadata) if metadata is not None else None
            ),
            quantities=quantities,
        )
        return serialize_subscription(_subscriptions().get(pk=subscription.pk))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        subscription = get_by_public_id(_subscriptions(), public_id, "subscription")
        if params.boolean("prorate"):
            raise ApiError("Proration isn't supported.", param="prorate")
        services.subscription_cancel_now(
            subscription=subscription, invoice_now=bool(params.boolean("invoice_now"))
        )
        return serialize_subscription(_subscriptions().get(pk=subscription.pk))


class SubscriptionItemCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        subscription_id = params.string("subscription", required=True)
        queryset = SubscriptionItem.objects.filter(
            subscription__public_id=subscription_id
        ).select_related("subscription", "price__product", "price__meter")
        return paginate(
            queryset.prefetch_related("price__tiers"),
            params,
            url="/v1/subscription_items",
            resource="subscription_item",
            serialize=serialize_subscription_item,
        )


class SubscriptionItemDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        queryset = SubscriptionItem.objects.select_related(
            "subscription", "price__product", "price__meter"
        ).prefetch_related("price__tiers")
        return serialize_subscription_item(
            get_by_public_id(queryset, public_id, "subscription_item")
        )


# --- invoices ---------------------------------------------------------------------------------


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
        "pretax_credit_amounts": (
            [{"amount": line.credits_applied, "type": "credit_balance_transaction"}]
            if line.credits_applied
            else []
        ),
        "price": line.price.public_id if line.price_id else None,
        "pricing": _pricing(line),
        "quantity": int(line.quantity) if line.quantity == int(line.quantity) else None,
        "quantity_decimal": decimal_string(line.quantity),
        "subscription": invoice.subscription.public_id if invoice.subscription_id else None,
        "subtotal": line.amount,
        "taxes": [],
        "tier_breakdown": line.tier_breakdown,
        "unrounded_amount_decimal": decimal_string(line.unrounded_amount),
    }


def _pricing(line: InvoiceLineItem) -> dict[str, Any]:
    price = line.price
    return {
        "type": "price_details",
        "price_details": (
            {"price": price.public_id, "product": price.product.public_id} if price else None
        ),
        "unit_amount_decimal": decimal_string(price.unit_amount_decimal) if price else None,
    }


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
        "total_pretax_credit_amounts": (
            [{"amount": invoice.total_credits, "type": "credit_balance_transaction"}]
            if invoice.total_credits
            else []
        ),
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def _invoices():
    return Invoice.objects.select_related("customer__test_clock", "subscription").prefetch_related(
        Prefetch(
            "lines",
            queryset=InvoiceLineItem.objects.select_related(
                "price__product", "subscription_item", "invoice__subscription"
            ),
        )
    )


class InvoiceCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = _invoices()
        customer_id = params.string("customer")
        if customer_id:
            queryset = queryset.filter(customer__public_id=customer_id)
        subscription_id = params.string("subscription")
        if subscription_id:
            queryset = queryset.filter(subscription__public_id=subscription_id)
        status = params.choice("status", Invoice.Status.values)
        if status:
            queryset = queryset.filter(status=status)
        collection_method = params.choice("collection_method", Subscription.CollectionMethod.values)
        if collection_method:
            queryset = queryset.filter(collection_method=collection_method)
        return paginate(
            queryset, params, url="/v1/invoices", resource="invoice", serialize=serialize_invoice
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = _customer_param(params)
        currency = params.string("currency") or "usd"
        invoice = services.invoice_create(
            customer=customer,
            currency=currency,
            collection_method=params.string("collection_method") or "send_invoice",
            days_until_due=params.integer("days_until_due", minimum=0, maximum=365)
            if "days_until_due" in params
            else 30,
            description=params.string("description", allow_blank=True) or "",
            metadata=merge_metadata({}, params.metadata()),
        )
        params.mark_read("auto_advance", "pending_invoice_items_behavior")
        return serialize_invoice(_invoices().get(pk=invoice.pk))


def _invoice(public_id: str) -> Invoice:
    return get_by_public_id(_invoices(), public_id, "invoice")


def _actor(request) -> str:
    return f"api ({request.api_key.name})"


class InvoiceDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_invoice(_invoice(public_id))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        if invoice.status != Invoice.Status.DRAFT:
            raise ApiError(
                f"Invoice {invoice.number or invoice.public_id} is {invoice.status}: only draft "
                "invoices can be edited.",
                code="invoice_not_editable",
            )
        changes: dict[str, Any] = {}
        if "description" in params:
            changes["description"] = params.string("description", allow_blank=True) or ""
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(invoice.metadata, metadata)
        Invoice.objects.filter(pk=invoice.pk, status=Invoice.Status.DRAFT).update(**changes)
        return serialize_invoice(_invoice(public_id))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        services.invoice_delete_draft(invoice=_invoice(public_id))
        return {"id": public_id, "object": "invoice", "deleted": True}


class InvoiceAction(ApiView):
    http_method_names = ["post"]
    action = ""

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        actor = _actor(request)
        if self.action == "finalize":
            params.mark_read("auto_advance")
            services.invoice_finalize(invoice=invoice, actor=actor)
        elif self.action == "pay":
            services.invoice_pay(
                invoice=invoice,
                actor=actor,
                paid_out_of_band=bool(params.boolean("paid_out_of_band")),
            )
        elif self.action == "void":
            services.invoice_void(invoice=invoice, actor=actor)
        elif self.action == "mark_uncollectible":
            services.invoice_mark_uncollectible(invoice=invoice, actor=actor)
        return serialize_invoice(_invoice(public_id))


class InvoiceLines(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        queryset = InvoiceLineItem.objects.filter(invoice=invoice).select_related(
            "price__product", "subscription_item", "invoice__subscription"
        )
        return paginate(
            queryset,
            params,
            url=f"/v1/invoices/{public_id}/lines",
            resource="line_item",
            serialize=serialize_line,
            oldest_first=True,  # in the order they appear on the invoice
        )


class InvoicePreviewView(ApiView):
    http_method_names = ["post"]

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = _customer_param(params)
        subscription_id = params.string("subscription")
        if subscription_id:
            subscription = get_by_public_id(
                _subscriptions(), subscription_id, "subscription", param="subscription"
            )
        else:
            subscription = (
                _subscriptions()
                .filter(customer=customer, status=Subscription.Status.ACTIVE)
                .order_by("-pk")
                .first()
            )
            if subscription is None:
                raise ApiError(
                    f"Customer {customer.public_id} has no active subscription to preview.",
                    param="subscription",
                    code="invoice_upcoming_none",
                )
        preview = invoice_preview(customer=customer, subscription=subscription)
        return serialize_preview(preview)


def serialize_preview(preview) -> dict[str, Any]:
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
            "quantity": int(line.quantity) if line.quantity == int(line.quantity) else None,
            "quantity_decimal": decimal_string(line.quantity),
            "subscription": preview.subscription.public_id,
            "pretax_credit_amounts": (
                [{"amount": line.credits_applied, "type": "credit_balance_transaction"}]
                if line.credits_applied
                else []
            ),
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
        "total_pretax_credit_amounts": (
            [{"amount": preview.total_credits, "type": "credit_balance_transaction"}]
            if preview.total_credits
            else []
        ),
    }


# --- invoice items ----------------------------------------------------------------------------


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


def _invoice_items():
    return InvoiceLineItem.objects.filter(kind=InvoiceLineItem.Kind.INVOICE_ITEM).select_related(
        "invoice__customer", "price__product"
    )


class InvoiceItemCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = _invoice_items()
        customer_id = params.string("customer")
        if customer_id:
            queryset = queryset.filter(invoice__customer__public_id=customer_id)
        invoice_id = params.string("invoice")
        if invoice_id:
            queryset = queryset.filter(invoice__public_id=invoice_id)
        return paginate(
            queryset,
            params,
            url="/v1/invoiceitems",
            resource="invoiceitem",
            serialize=serialize_invoice_item,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = _customer_param(params)
        invoice_id = params.string("invoice")
        if not invoice_id:
            raise ApiError(
                "Pass invoice=in_... (a draft invoice of this customer): pending items that "
                "wait for the next invoice aren't supported.",
                param="invoice",
                code="parameter_missing",
            )
        invoice = get_by_public_id(
            Invoice.objects.filter(customer=customer), invoice_id, "invoice", param="invoice"
        )
        currency = params.string("currency")
        if currency and currency.upper() != invoice.currency:
            raise ApiError(
                f"currency {currency} doesn't match the invoice's currency "
                f"({invoice.currency.lower()}).",
                param="currency",
            )
        price_id = params.string("price")
        price = (
            get_by_public_id(
                Price.objects.select_related("product").prefetch_related("tiers"),
                price_id,
                "price",
                param="price",
            )
            if price_id
            else None
        )
        amount = params.integer("amount", minimum=-(10**12), maximum=10**12)
        quantity = params.integer("quantity", minimum=1, maximum=1_000_000) or 1
        period = params.nested("period")
        span = None
        if period is not None:
            start = period.integer("start", required=True, minimum=0)
            end = period.integer("end", required=True, minimum=0)
            period.reject_unknown()
            span = (from_unix(start), from_unix(end))
        line = services.invoice_item_create(
            invoice=invoice,
            description=params.string("description", max_length=500) or "",
            amount=amount,
            price=price,
            quantity=quantity,
            period=span,
            metadata=merge_metadata({}, params.metadata()),
        )
        return serialize_invoice_item(_invoice_items().get(pk=line.pk))


class InvoiceItemDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        line = _invoice_items().filter(item_public_id=public_id).first()
        if line is None:
            raise ApiError(
                f"No such invoiceitem: '{public_id}'", status=404, code="resource_missing"
            )
        return serialize_invoice_item(line)
