"""`/v1/invoiceitems`: one-off lines added to a draft invoice."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiError, ApiView, Listing, get_by_param, get_by_public_id
from billing_site.api.lists import filter_by_params
from billing_site.api.params import Params
from billing_site.errors import ErrorCode
from billing_site.limits import MAX_QUANTITY
from catalog.models import Price
from invoicing import services
from invoicing.api.customers import customer_param
from invoicing.api.serializers import invoice_items_to_serialize, serialize_invoice_item
from invoicing.models import Invoice


class InvoiceItemCollection(ApiView):
    resource = "invoices"
    # An invoice item's id (ii_...) is its line's item_public_id, not the line's il_... id.
    listing = Listing(
        "/v1/invoiceitems", "invoiceitem", serialize_invoice_item, cursor_field="item_public_id"
    )

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = filter_by_params(
            invoice_items_to_serialize(),
            params,
            customer="invoice__customer__public_id",
            invoice="invoice__public_id",
        )
        pending = params.boolean("pending")
        if pending is not None:
            # Pending: not yet on an invoice (waiting for the customer's next one).
            queryset = queryset.filter(invoice__isnull=pending)
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = customer_param(params)
        invoice = get_by_param(
            Invoice.objects.filter(customer=customer), params, "invoice", "invoice"
        )
        if invoice is None:
            raise ApiError(
                "Pass invoice=in_... (a draft invoice of this customer): pending items that "
                "wait for the next invoice aren't supported.",
                param="invoice",
                code=ErrorCode.PARAMETER_MISSING,
            )
        currency = params.string("currency")
        if currency and currency.upper() != invoice.currency:
            raise ApiError(
                f"currency {currency} doesn't match the invoice's currency "
                f"({invoice.currency.lower()}).",
                param="currency",
            )
        price = get_by_param(
            Price.objects.select_related("product").prefetch_related("tiers"),
            params,
            "price",
            "price",
        )
        amount = params.integer("amount", minimum=-(10**12), maximum=10**12)
        quantity = params.integer("quantity", minimum=1, maximum=MAX_QUANTITY) or 1
        period = params.nested("period")
        span = None
        if period is not None:
            start = period.timestamp("start", required=True)
            end = period.timestamp("end", required=True)
            period.reject_unknown()
            span = (start, end)
        line = services.invoice_item_create(
            invoice=invoice,
            description=params.string("description", max_length=500) or "",
            amount=amount,
            price=price,
            quantity=quantity,
            period=span,
            metadata=params.new_metadata(),
        )
        return serialize_invoice_item(invoice_items_to_serialize().get(pk=line.pk))


class InvoiceItemDetail(ApiView):
    resource = "invoices"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        line = get_by_public_id(
            invoice_items_to_serialize(), public_id, "invoiceitem", field="item_public_id"
        )
        return serialize_invoice_item(line)
