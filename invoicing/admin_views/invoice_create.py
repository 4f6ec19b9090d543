"""Create invoice (Stripe Dashboard's flow): customer and currency, then line items, then a
dry-run review; "Create draft" or "Create and send" writes it in one transaction."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from billing_site.admin_kit import (
    COMMON_CURRENCIES,
    actor,
    add_billing_error,
    carried_fields,
    change_url,
    dry_run,
    form_page,
    page_context,
    render,
)
from billing_site.errors import BillingError
from catalog.money import format_minor_units
from invoicing import services
from invoicing.admin_forms import InvoiceCustomerForm, InvoiceItemFormSet
from invoicing.models import Invoice
from invoicing.presenters import invoice_document

# The submit buttons of the wizard: they don't travel through the review with the form.
_CONTROLS = {
    "_to_items",
    "_add_item",
    "_preview",
    "_edit",
    "_change_customer",
    "_create_draft",
    "_create_send",
}


class ItemRejected(Exception):
    """A line item the service refused: which filled form, and the service's error."""

    def __init__(self, index: int, error: BillingError):
        super().__init__(error.message)
        self.index = index
        self.error = error


def build_invoice(header: InvoiceCustomerForm, items, *, send: bool, who: str) -> Invoice:
    """`invoice_create`, one `invoice_item_create` per line, then (to send) `invoice_finalize`.

    Call it inside a transaction: a refused line must leave no half-built draft behind.
    """
    invoice = services.invoice_create(**header.service_kwargs())
    for index, form in enumerate(items.filled_forms()):
        try:
            services.invoice_item_create(invoice=invoice, **form.service_kwargs())
        except BillingError as error:
            raise ItemRejected(index, error) from None
    if send:
        invoice = services.invoice_finalize(invoice=invoice, actor=who)
    return invoice


def invoice_create_view(model_admin, request: HttpRequest) -> HttpResponse:
    """Stripe Dashboard's "Create invoice": customer and currency, items, review, create."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    site = model_admin.admin_site
    if request.method != "POST":
        return _customer_step(model_admin, request, InvoiceCustomerForm(admin_site=site))
    post = request.POST
    header = InvoiceCustomerForm(post, admin_site=site)
    if "_change_customer" in post or not header.is_valid():
        return _customer_step(model_admin, request, header)
    form_kwargs = {"currency": header.cleaned_data["currency"]}
    if "_to_items" in post:
        items = InvoiceItemFormSet(prefix="items", form_kwargs=form_kwargs)
        return _items_step(model_admin, request, header, items, show_errors=False)
    data = post.copy()
    if "_add_item" in post:
        total = int(data.get("items-TOTAL_FORMS") or 1)
        data["items-TOTAL_FORMS"] = str(min(total + 1, InvoiceItemFormSet.max_num))
    items = InvoiceItemFormSet(data, prefix="items", form_kwargs=form_kwargs)
    if "_add_item" in post or "_edit" in post:
        return _items_step(model_admin, request, header, items, show_errors=False)
    if not items.is_valid():
        return _items_step(model_admin, request, header, items, show_errors=True)
    if "_create_draft" in post or "_create_send" in post:
        return _create(model_admin, request, header, items, send="_create_send" in post)

    def build():
        invoice = build_invoice(header, items, send=False, who=actor(request))
        return invoice_document(Invoice.objects.get(pk=invoice.pk))  # with the lines' totals

    try:
        draft = dry_run(build)
    except (BillingError, ItemRejected) as error:
        return _refused(model_admin, request, header, items, error)
    context = page_context(
        model_admin,
        request,
        title="Create invoice: review",
        page_label="Create invoice",
        header=header.cleaned_data,
        collection=dict(header.fields["collection_method"].choices)[
            header.cleaned_data["collection_method"]
        ],
        invoice=draft,
        carried=carried_fields(request, _CONTROLS),
    )
    return render(model_admin, request, "admin/invoicing/invoice/create_review.html", context)


def _create(model_admin, request, header, items, *, send: bool) -> HttpResponse:
    try:
        with transaction.atomic():
            invoice = build_invoice(header, items, send=send, who=actor(request))
    except (BillingError, ItemRejected) as error:
        return _refused(model_admin, request, header, items, error)
    model_admin.log_addition(
        request,
        invoice,
        "Created and finalized (sent) from Create invoice."
        if send
        else "Created as a draft from Create invoice.",
    )
    model_admin.message_user(
        request,
        format_html(
            "{} invoice {} for {}: {} due.",
            "Finalized" if send else "Created draft",
            invoice,
            invoice.customer,
            format_minor_units(invoice.amount_due, invoice.currency),
        ),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(change_url(invoice))


def _refused(model_admin, request, header, items, error) -> TemplateResponse:
    if isinstance(error, ItemRejected):
        form = items.filled_forms()[error.index]
        add_billing_error(form, error.error, {"amount": "amount", "price": "price"})
        return _items_step(model_admin, request, header, items, show_errors=True)
    add_billing_error(header, error, {})
    return _customer_step(model_admin, request, header)


def _customer_step(model_admin, request, header: InvoiceCustomerForm) -> TemplateResponse:
    return form_page(
        model_admin,
        request,
        "admin/invoicing/invoice/create_customer.html",
        header,
        title="Create invoice: customer and currency",
        page_label="Create invoice",
        currency_codes=COMMON_CURRENCIES,
    )


def _items_step(
    model_admin, request, header: InvoiceCustomerForm, items, *, show_errors: bool
) -> TemplateResponse:
    context = page_context(
        model_admin,
        request,
        title="Create invoice: line items",
        page_label="Create invoice",
        header_form=header,
        header=header.cleaned_data,
        formset=items,
        show_errors=show_errors,
        can_add_item=items.total_form_count() < InvoiceItemFormSet.max_num,
    )
    return render(model_admin, request, "admin/invoicing/invoice/create_items.html", context)
