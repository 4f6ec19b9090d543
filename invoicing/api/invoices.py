"""`/v1/invoices`: one-off invoices, their lines, edits and status actions."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiView, Listing, api_actor, get_by_public_id, paginate
from billing_site.api.lists import OneOf, filter_by_params, filter_by_time_range
from billing_site.api.params import Params
from invoicing import services
from invoicing.api.customers import customer_param
from invoicing.api.serializers import (
    invoices_to_serialize,
    lines_to_serialize,
    serialize_invoice,
    serialize_line,
)
from invoicing.models import Invoice, Subscription


def _invoice(public_id: str) -> Invoice:
    return get_by_public_id(invoices_to_serialize(), public_id, "invoice")


class InvoiceCollection(ApiView):
    resource = "invoices"
    listing = Listing("/v1/invoices", "invoice", serialize_invoice)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = filter_by_params(
            invoices_to_serialize(),
            params,
            customer="customer__public_id",
            subscription="subscription__public_id",
            status=OneOf("status", Invoice.Status.values),
            collection_method=OneOf("collection_method", Subscription.CollectionMethod.values),
        )
        queryset = filter_by_time_range(queryset, params, "due_date", "due_date")
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = customer_param(params)
        currency = params.string("currency") or "usd"
        invoice = services.invoice_create(
            customer=customer,
            currency=currency,
            collection_method=params.string("collection_method") or "send_invoice",
            days_until_due=params.integer("days_until_due", minimum=0, maximum=365)
            if "days_until_due" in params
            else 30,
            description=params.string("description", allow_blank=True) or "",
            metadata=params.new_metadata(),
            pending_invoice_items_behavior=params.choice(
                "pending_invoice_items_behavior", ("include", "exclude")
            )
            or "exclude",
        )
        params.mark_read("auto_advance")
        return serialize_invoice(invoices_to_serialize().get(pk=invoice.pk))


class InvoiceDetail(ApiView):
    resource = "invoices"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_invoice(_invoice(public_id))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        description = (
            params.string("description", allow_blank=True) or ""
            if "description" in params
            else None
        )
        services.invoice_update(
            invoice=invoice,
            description=description,
            metadata=params.updated_metadata(invoice.metadata),
        )
        return serialize_invoice(_invoice(public_id))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        services.invoice_delete_draft(invoice=_invoice(public_id))
        return {"id": public_id, "object": "invoice", "deleted": True}


class InvoiceAction(ApiView):
    """`POST /v1/invoices/<id>/<action>`: the status moves a client may ask for."""

    resource = "invoices"

    http_method_names = ["post"]
    action = ""

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        actor = api_actor(request)
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
    resource = "invoices"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = _invoice(public_id)
        return paginate(
            lines_to_serialize().filter(invoice=invoice),
            params,
            url=f"/v1/invoices/{public_id}/lines",
            resource="line_item",
            serialize=serialize_line,
            oldest_first=True,  # in the order they appear on the invoice
        )
