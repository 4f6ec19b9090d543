"""Subscriptions: "Add subscription", the subscription page, and "Cancel now".

"Add subscription" is a wizard: the customer (GET), then prices and options (GET ?customer=),
then a dry-run preview of the first invoice (POST _preview), then the confirm (POST _confirm),
the only step that writes, through `subscription_create`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from billing_site.admin_kit import (
    actor,
    admin_form,
    carried_fields,
    change_url,
    dry_run,
    form_page,
    object_page,
    page_context,
    render,
)
from billing_site.errors import BillingError
from catalog.money import format_minor_units
from invoicing import services
from invoicing.admin_forms import (
    SubscriptionCancelForm,
    SubscriptionCustomerForm,
    SubscriptionItemsForm,
    price_label,
)
from invoicing.models import InvoiceLineItem, Subscription
from invoicing.presenters import (
    InvoiceDocument,
    invoice_document,
    invoice_summary,
    planned_line_row,
)
from invoicing.selectors import invoice_preview

# The submit buttons of the wizard: they don't travel through the preview with the form.
_CONTROLS = {"_preview", "_confirm", "_edit"}


# --- Add subscription --------------------------------------------------------------------------


def subscription_create_view(model_admin, request: HttpRequest) -> HttpResponse:
    """Step 1 (GET): the customer. Step 2 (GET ?customer=): prices and options. Then a
    preview (POST _preview) and the confirm (POST _confirm), the only step that writes."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    site = model_admin.admin_site
    if request.method != "POST":
        if "customer" not in request.GET:
            return _customer_step(model_admin, request, SubscriptionCustomerForm(admin_site=site))
        chosen = SubscriptionCustomerForm(request.GET, admin_site=site)
        if not chosen.is_valid():
            return _customer_step(model_admin, request, chosen)
        form = SubscriptionItemsForm(initial={"customer": chosen.cleaned_data["customer"]})
        return _items_step(model_admin, request, form)

    form = SubscriptionItemsForm(request.POST)
    if "_edit" in request.POST or not form.is_valid():
        return _items_step(model_admin, request, form)
    if "_confirm" in request.POST:
        return _confirm(model_admin, request, form)

    def build() -> tuple[Subscription, InvoiceDocument]:
        subscription = services.subscription_create(**form.service_kwargs(), actor=actor(request))
        invoice = subscription.invoices.get(billing_period_key="create")
        return Subscription.objects.get(pk=subscription.pk), invoice_document(invoice)

    try:
        subscription, first_invoice = dry_run(build)
    except BillingError as error:
        form.add_service_error(error)
        return _items_step(model_admin, request, form)
    context = page_context(
        model_admin,
        request,
        title="Add subscription: preview",
        page_label="Add subscription",
        customer=form.cleaned_data["customer"],
        subscription=subscription,
        items=[
            {
                "label": price_label(item.price),
                "quantity": None if item.price.is_metered else item.quantity,
            }
            for item in form.items()
        ],
        collection=dict(Subscription.CollectionMethod.choices)[
            form.cleaned_data["collection_method"]
        ],
        invoice=first_invoice,
        carried=carried_fields(request, _CONTROLS),
    )
    return render(model_admin, request, "admin/invoicing/subscription/create_preview.html", context)


def _confirm(model_admin, request: HttpRequest, form: SubscriptionItemsForm) -> HttpResponse:
    try:
        subscription = services.subscription_create(**form.service_kwargs(), actor=actor(request))
    except BillingError as error:
        form.add_service_error(error)
        return _items_step(model_admin, request, form)
    model_admin.log_addition(request, subscription, [{"added": {}}])
    first = subscription.invoices.get(billing_period_key="create")
    model_admin.message_user(
        request,
        format_html(
            'Created subscription {} for {}. First invoice <a href="{}">{}</a>: {} ({}).',
            subscription.public_id,
            subscription.customer,
            change_url(first),
            first,
            format_minor_units(first.amount_due, first.currency),
            first.get_status_display().lower(),
        ),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(change_url(subscription))


def _customer_step(model_admin, request, form: SubscriptionCustomerForm) -> TemplateResponse:
    return form_page(
        model_admin,
        request,
        "admin/invoicing/subscription/create_customer.html",
        form,
        title="Add subscription: choose the customer",
        page_label="Add subscription",
    )


def _items_step(model_admin, request, form: SubscriptionItemsForm) -> TemplateResponse:
    customer = form.initial.get("customer")
    if form.is_bound:
        form.is_valid()  # shows the errors; a no-op when it was already validated
        customer = form.cleaned_data.get("customer")
    adminform = admin_form(
        form,
        [
            (None, {"fields": form.settings_fields}),
            (None, {"fields": ["cancel_at_period_end"]}),
        ],
    )
    context = page_context(
        model_admin,
        request,
        title="Add subscription: choose prices",
        page_label="Add subscription",
        form=form,
        adminform=adminform,
        customer=customer,
        price_groups=form.price_groups(),
        change_customer_url=reverse("admin:invoicing_subscription_add"),
        media=model_admin.media + adminform.media,
    )
    return render(model_admin, request, "admin/invoicing/subscription/create_items.html", context)


# --- The subscription page ---------------------------------------------------------------------


def subscription_page_context(
    model_admin, request: HttpRequest, subscription: Subscription
) -> dict[str, Any]:
    """Items and invoices (read-only), and "Cancel now" for an active subscription."""
    items = subscription.items.select_related("price__product").prefetch_related("price__tiers")
    can_cancel = model_admin.has_cancel_permission(request)
    return {
        "items": [
            {
                "item": item,
                "label": price_label(item.price),
                "quantity": "from usage" if item.price.is_metered else item.quantity,
            }
            for item in items
        ],
        "invoices": [invoice_summary(invoice) for invoice in subscription.invoices.order_by("-pk")],
        "cancel_url": (
            reverse("admin:invoicing_subscription_cancel", args=[subscription.pk])
            if subscription.status == Subscription.Status.ACTIVE and can_cancel
            else None
        ),
    }


# --- Cancel now --------------------------------------------------------------------------------


@object_page("cancel")
def subscription_cancel_view(
    model_admin, request: HttpRequest, subscription: Subscription
) -> HttpResponse:
    """A confirmation page with the usage so far, then `subscription_cancel_now`."""
    back = change_url(subscription)
    if subscription.status == Subscription.Status.CANCELED:
        model_admin.message_user(
            request, f"Subscription {subscription.public_id} is already canceled.", messages.ERROR
        )
        return HttpResponseRedirect(back)
    form = SubscriptionCancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        invoice_now = form.cleaned_data["invoice_now"]
        try:
            services.subscription_cancel_now(
                subscription=subscription, invoice_now=invoice_now, actor=actor(request)
            )
        except BillingError as error:
            form.add_error(None, error.message)
        else:
            final = (
                subscription.invoices.filter(billing_period_key__startswith="cancel:")
                .order_by("-pk")
                .first()
                if invoice_now
                else None
            )
            note = (
                f"Canceled now; usage so far invoiced on {final}."
                if final
                else "Canceled now, without invoicing usage so far."
            )
            model_admin.log_change(request, subscription, note)
            model_admin.message_user(
                request, f"Subscription {subscription.public_id}: {note}", messages.SUCCESS
            )
            return HttpResponseRedirect(back)
    try:
        preview = invoice_preview(customer=subscription.customer, subscription=subscription)
    except BillingError:
        usage_lines, usage_total = [], None
    else:
        metered = [line for line in preview.lines if line.kind == InvoiceLineItem.Kind.METERED]
        usage_lines = [planned_line_row(line, preview.currency) for line in metered]
        usage_total = format_minor_units(sum(line.amount for line in metered), preview.currency)
    return form_page(
        model_admin,
        request,
        "admin/invoicing/subscription/cancel_confirmation.html",
        form,
        title=f"Cancel subscription {subscription.public_id} now",
        page_label="Cancel now",
        original=subscription,
        customer_now=subscription.customer.billing_now(),
        usage_lines=usage_lines,
        usage_total=usage_total,
    )
