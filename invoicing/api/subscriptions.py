"""`/v1/subscriptions` and `/v1/subscription_items`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import (
    ApiError,
    ApiView,
    Listing,
    api_actor,
    get_by_param,
    get_by_public_id,
)
from billing_site.api.lists import filter_by_params, filter_by_time_range
from billing_site.api.params import Params
from billing_site.errors import BillingError, ErrorCode
from billing_site.limits import MAX_QUANTITY
from catalog.models import Price
from invoicing import services
from invoicing.api.customers import customer_param
from invoicing.api.serializers import (
    serialize_subscription,
    serialize_subscription_item,
    subscription_items_to_serialize,
    subscriptions_to_serialize,
)
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import Subscription, SubscriptionItem


def _read_items(params: Params) -> list[services.ItemInput]:
    raw = params.list_of("items")
    if not raw:
        raise BillingError(
            "Missing required param: items (items[0][price]=price_...).",
            param="items",
            code=ErrorCode.PARAMETER_MISSING,
        )
    prices = Price.objects.select_related("product", "meter").prefetch_related("tiers")
    items = []
    for index, data in enumerate(raw):
        item = Params(data if isinstance(data, dict) else None, f"items[{index}]")
        price = get_by_param(prices, item, "price", "price", required=True)
        quantity = item.integer("quantity", minimum=1, maximum=MAX_QUANTITY)
        metadata = item.new_metadata()
        item.reject_unknown()
        items.append(services.ItemInput(price=price, quantity=quantity, metadata=metadata))
    return items


def _read_quantity_changes(
    params: Params, subscription: Subscription
) -> dict[SubscriptionItem, int]:
    """`items[n][id]` and `items[n][quantity]`: new quantities for existing items only."""
    quantities: dict[SubscriptionItem, int] = {}
    by_id = {item.public_id: item for item in subscription.items.all()}
    for index, data in enumerate(params.list_of("items") or []):
        item = Params(data if isinstance(data, dict) else None, f"items[{index}]")
        if "price" in item:
            raise ApiError(
                "Changing a subscription's prices mid-period needs proration, which isn't "
                "supported yet. Cancel at period end and start a new subscription instead.",
                param=f"items[{index}][price]",
                code=InvoicingErrorCode.PRORATION_NOT_SUPPORTED,
            )
        item_id = item.string("id", required=True)
        if item_id not in by_id:
            raise ApiError(
                f"No such subscription item on {subscription.public_id}: '{item_id}'",
                param=f"items[{index}][id]",
                code=ErrorCode.RESOURCE_MISSING,
            )
        quantity = item.integer("quantity", required=True, minimum=1, maximum=MAX_QUANTITY)
        item.reject_unknown()
        quantities[by_id[item_id]] = quantity
    return quantities


class SubscriptionCollection(ApiView):
    resource = "subscriptions"
    listing = Listing("/v1/subscriptions", "subscription", serialize_subscription)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = filter_by_params(
            subscriptions_to_serialize(),
            params,
            customer="customer__public_id",
            test_clock="customer__test_clock__public_id",
        )
        for key in ("current_period_start", "current_period_end"):
            queryset = filter_by_time_range(queryset, params, key, key)
        # Stripe lists every status but canceled unless asked; "all" includes canceled.
        status = params.choice("status", [*Subscription.Status.values, "all"])
        if status and status != "all":
            queryset = queryset.filter(status=status)
        elif not status:
            queryset = queryset.exclude(status=Subscription.Status.CANCELED)
        queryset = filter_by_params(queryset, params, price="items__price__public_id")
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = customer_param(params)
        items = _read_items(params)
        subscription = services.subscription_create(
            customer=customer,
            items=items,
            billing_cycle_anchor=params.timestamp("billing_cycle_anchor"),
            cancel_at_period_end=bool(params.boolean("cancel_at_period_end")),
            collection_method=params.string("collection_method") or "charge_automatically",
            days_until_due=params.integer("days_until_due", minimum=0, maximum=365),
            metadata=params.new_metadata(),
            actor=api_actor(request),
            billing_mode=_billing_mode(params),
        )
        return serialize_subscription(subscriptions_to_serialize().get(pk=subscription.pk))


def _billing_mode(params: Params) -> str:
    """`billing_mode[type]`: flexible (the current API version's default) or classic."""
    mode = params.nested("billing_mode")
    if mode is None:
        return Subscription.BillingMode.FLEXIBLE
    chosen = mode.choice("type", Subscription.BillingMode.values, required=True)
    if chosen == Subscription.BillingMode.FLEXIBLE:
        flexible = mode.nested("flexible")
        if flexible is not None:
            # Discounts aren't supported, so how prorations show them changes nothing.
            flexible.choice("proration_discounts", ["included", "itemized"])
            flexible.reject_unknown()
    mode.reject_unknown()
    return chosen


class SubscriptionDetail(ApiView):
    resource = "subscriptions"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        subscription = get_by_public_id(subscriptions_to_serialize(), public_id, "subscription")
        return serialize_subscription(subscription)

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        subscription = get_by_public_id(subscriptions_to_serialize(), public_id, "subscription")
        for unsupported in ("billing_cycle_anchor", "proration_behavior", "collection_method"):
            if unsupported in params:
                raise ApiError(
                    f"Changing {unsupported} on an existing subscription isn't supported.",
                    param=unsupported,
                )
        quantities = _read_quantity_changes(params, subscription)
        metadata = params.updated_metadata(subscription.metadata)
        services.subscription_update(
            subscription=subscription,
            cancel_at_period_end=params.boolean("cancel_at_period_end"),
            metadata=metadata,
            quantities=quantities,
        )
        return serialize_subscription(subscriptions_to_serialize().get(pk=subscription.pk))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        subscription = get_by_public_id(subscriptions_to_serialize(), public_id, "subscription")
        if params.boolean("prorate"):
            raise ApiError("Proration isn't supported.", param="prorate")
        services.subscription_cancel_now(
            subscription=subscription,
            invoice_now=bool(params.boolean("invoice_now")),
            actor=api_actor(request),
        )
        return serialize_subscription(subscriptions_to_serialize().get(pk=subscription.pk))


class SubscriptionItemCollection(ApiView):
    resource = "subscriptions"
    listing = Listing("/v1/subscription_items", "subscription_item", serialize_subscription_item)

    def get(self, request, params: Params) -> dict[str, Any]:
        subscription_id = params.string("subscription", required=True)
        items = subscription_items_to_serialize().filter(subscription__public_id=subscription_id)
        return self.listing.page(items, params)


class SubscriptionItemDetail(ApiView):
    resource = "subscriptions"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        item = get_by_public_id(subscription_items_to_serialize(), public_id, "subscription_item")
        return serialize_subscription_item(item)
