"""`/v1/invoiceitems`: one-off charges on a draft invoice, or pending ones (no `invoice`) that
go onto the customer's next invoice; and the parameters an item takes, shared with an
invoice's `add_lines` and `update_lines` (`item_fields`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from billing_site.api.base import ApiError, ApiView, Listing, get_by_param, get_by_public_id
from billing_site.api.lists import filter_by_params
from billing_site.api.params import Params
from billing_site.errors import ErrorCode
from billing_site.limits import MAX_QUANTITY
from catalog.models import Price, Product
from invoicing import services
from invoicing.api.customers import customer_param
from invoicing.api.serializers import invoice_items_to_serialize, serialize_invoice_item
from invoicing.models import Invoice
from invoicing.services.invoice_items import ItemFields, PriceData

MAX_ITEM_AMOUNT = 10**12


def _prices():
    return Price.objects.select_related("product").prefetch_related("tiers")


def _price_data(params: Params) -> PriceData | None:
    data = params.nested("price_data")
    if data is None:
        return None
    product = get_by_param(Product.objects.all(), data, "product", "product", required=True)
    currency = data.string("currency", required=True, max_length=3)
    unit_amount, unit_amount_decimal = data.raw("unit_amount"), data.raw("unit_amount_decimal")
    if unit_amount in (None, "") and unit_amount_decimal in (None, ""):
        raise ApiError(
            f"Missing required param: {data.name('unit_amount')} (or "
            f"{data.name('unit_amount_decimal')}).",
            param=data.name("unit_amount"),
            code=ErrorCode.PARAMETER_MISSING,
        )
    data.reject_unknown()
    return PriceData(
        product=product,
        currency=currency,
        unit_amount=unit_amount,
        unit_amount_decimal=unit_amount_decimal,
    )


def item_fields(params: Params, *, prefix: str = "") -> ItemFields:
    """An item's fields as a request gives them: `pricing[price]` (or the removed `price`),
    `price_data`, `unit_amount_decimal` or `amount`, with `quantity`, `description`, `period`
    and `metadata` (new keys; an update merges them itself)."""
    pricing = params.nested("pricing")
    price, price_param = None, "pricing[price]"
    if pricing is not None:
        price = get_by_param(_prices(), pricing, "price", "price", required=True)
        pricing.reject_unknown()
    if "price" in params:
        if price is not None:
            raise ApiError(
                "Give pricing[price] or the older price, not both.", param=params.name("price")
            )
        price, price_param = get_by_param(_prices(), params, "price", "price"), "price"
    period = params.nested("period")
    span = None
    if period is not None:
        start = period.timestamp("start", required=True)
        end = period.timestamp("end", required=True)
        period.reject_unknown()
        span = (start, end)
    unit = params.decimal("unit_amount_decimal")
    return ItemFields(
        description=params.string("description", max_length=500, allow_blank=True),
        amount=params.integer("amount", minimum=-MAX_ITEM_AMOUNT, maximum=MAX_ITEM_AMOUNT),
        price=price,
        price_data=_price_data(params),
        unit_amount_decimal=unit,
        quantity=params.integer("quantity", minimum=1, maximum=MAX_QUANTITY),
        period=span,
        metadata=params.metadata(),
        prefix=prefix,
        price_param=price_param,
    )


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
            customer="customer__public_id",
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
        fields = item_fields(params)
        line = services.invoice_item_create(
            invoice=invoice,
            customer=customer,
            currency=params.string("currency", max_length=3),
            description=fields.description or "",
            amount=fields.amount,
            price=fields.price,
            price_data=fields.price_data,
            unit_amount_decimal=fields.unit_amount_decimal,
            quantity=fields.quantity,
            period=fields.period,
            metadata=fields.metadata and params.new_metadata(),
            price_param=fields.price_param,
        )
        return serialize_invoice_item(invoice_items_to_serialize().get(pk=line.pk))


def _item(public_id: str):
    return get_by_public_id(
        invoice_items_to_serialize(), public_id, "invoiceitem", field="item_public_id"
    )


class InvoiceItemDetail(ApiView):
    resource = "invoices"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_invoice_item(_item(public_id))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        item = _item(public_id)
        fields = item_fields(params)
        metadata = params.updated_metadata(item.metadata)
        services.invoice_item_update(item=item, fields=replace(fields, metadata=metadata))
        return serialize_invoice_item(_item(public_id))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        services.invoice_item_delete(item=_item(public_id))
        return {"id": public_id, "object": "invoiceitem", "deleted": True}
