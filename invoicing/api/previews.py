"""`POST /v1/invoices/create_preview`: the invoice a subscription's current period would produce."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiError, ApiView, get_by_param
from billing_site.api.params import Params
from invoicing.api.customers import customer_param
from invoicing.api.serializers import serialize_preview, subscriptions_to_serialize
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import Subscription
from invoicing.selectors import invoice_preview


class InvoicePreviewView(ApiView):
    resource = "invoices"
    # A preview computes and stores nothing, so `read` on invoices is enough (POST only because
    # Stripe's create_preview takes its parameters in a body).
    read_methods = frozenset({"POST"})
    http_method_names = ["post"]

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = customer_param(params)
        subscription = get_by_param(
            subscriptions_to_serialize(), params, "subscription", "subscription"
        )
        if subscription is None:
            # Without a subscription, Stripe previews the customer's latest active one.
            subscription = (
                subscriptions_to_serialize()
                .filter(customer=customer, status=Subscription.Status.ACTIVE)
                .order_by("-pk")
                .first()
            )
        if subscription is None:
            raise ApiError(
                f"Customer {customer.public_id} has no active subscription to preview.",
                param="subscription",
                code=InvoicingErrorCode.INVOICE_UPCOMING_NONE,
            )
        return serialize_preview(invoice_preview(customer=customer, subscription=subscription))
