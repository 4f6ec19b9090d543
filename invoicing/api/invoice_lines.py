"""`POST /v1/invoices/{id}/add_lines`, `update_lines` and `remove_lines`: a draft's lines in
batches, as Stripe has them (`lines[][invoice_item]` or a new item's fields;
`lines[][id]` with changes; `lines[][id]` with `behavior` delete or unassign). Each request
changes all its lines or none."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from billing_site.api.base import ApiError, ApiView, get_by_public_id
from billing_site.api.params import Params
from billing_site.errors import ErrorCode
from invoicing import services
from invoicing.api.invoice_items import item_fields
from invoicing.api.serializers import (
    invoice_items_to_serialize,
    invoices_to_serialize,
    serialize_invoice,
)
from invoicing.models import Invoice, InvoiceLineItem
from invoicing.services.invoice_lines import REMOVE_BEHAVIORS, NewLine

MAX_LINES = 50


def _lines(params: Params) -> list[Params]:
    raw = params.list_of("lines")
    if not raw:
        raise ApiError(
            "Missing required param: lines (for example lines[0][...]).",
            param="lines",
            code=ErrorCode.PARAMETER_MISSING,
        )
    if len(raw) > MAX_LINES:
        raise ApiError(f"At most {MAX_LINES} lines per request.", param="lines")
    return [Params(entry, f"lines[{index}]") for index, entry in enumerate(raw)]


def _line(invoice: Invoice, line: Params) -> InvoiceLineItem:
    return get_by_public_id(
        InvoiceLineItem.objects.filter(invoice=invoice).select_related("price__product"),
        line.string("id", required=True),
        "line_item",
        param=line.name("id"),
    )


class InvoiceLinesChange(ApiView):
    resource = "invoices"
    http_method_names = ["post"]
    action = ""

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        invoice = get_by_public_id(Invoice.objects.all(), public_id, "invoice")
        lines = _lines(params)
        invoice_metadata = params.updated_metadata(invoice.metadata, "invoice_metadata")
        if self.action == "add_lines":
            services.invoice_lines_add(
                invoice=invoice,
                lines=[self._new_line(line) for line in lines],
                invoice_metadata=invoice_metadata,
            )
        elif self.action == "update_lines":
            changes = []
            for line in lines:
                row = _line(invoice, line)
                fields = item_fields(line, prefix=line.prefix)
                metadata = line.updated_metadata(row.metadata)
                line.reject_unknown()
                changes.append((row, replace(fields, metadata=metadata)))
            services.invoice_lines_update(
                invoice=invoice, changes=changes, invoice_metadata=invoice_metadata
            )
        else:
            removals = []
            for line in lines:
                row = _line(invoice, line)
                behavior = line.choice("behavior", REMOVE_BEHAVIORS, required=True)
                line.reject_unknown()
                removals.append((row, behavior, line.prefix))
            services.invoice_lines_remove(
                invoice=invoice, removals=removals, invoice_metadata=invoice_metadata
            )
        return serialize_invoice(invoices_to_serialize().get(pk=invoice.pk))

    @staticmethod
    def _new_line(line: Params) -> NewLine:
        item_id = line.string("invoice_item")
        item = None
        if item_id is not None:
            item = get_by_public_id(
                invoice_items_to_serialize(),
                item_id,
                "invoiceitem",
                param=line.name("invoice_item"),
                field="item_public_id",
            )
        fields = item_fields(line, prefix=line.prefix)
        if fields.metadata is not None:
            fields = replace(fields, metadata=line.new_metadata())
        line.reject_unknown()
        return NewLine(invoice_item=item, fields=fields)
