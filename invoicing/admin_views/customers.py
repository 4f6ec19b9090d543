"""The customer page: subscriptions, invoices, current-period usage, the upcoming invoice and
billing credits under the customer's fields; "Portal link" (make one, see the recent ones,
revoke them all); and what the delete confirmation says."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from billing_site.admin_kit import actor, page_context, render, utc_label
from billing_site.errors import BillingError
from billing_site.formatting import format_value
from catalog.money import format_minor_units
from credits.models import CreditBalanceTransaction
from credits.presenters import balance_rows, grant_rows, ledger_rows
from invoicing import portal, services
from invoicing.admin_forms import CustomerDeleteForm
from invoicing.models import Customer, InvoiceLineItem, Subscription
from invoicing.presenters import invoice_summary, upcoming_invoice
from invoicing.selectors import invoice_preview
from metering.store import usage

MAX_INVOICES_ON_CUSTOMER_PAGE = 25
MAX_HISTORY_ON_CUSTOMER_PAGE = 50
MAX_LEDGER_ROWS_ON_CUSTOMER_PAGE = 20


def customer_page_context(customer: Customer) -> dict[str, Any]:
    """Subscriptions, invoices, current-period usage and the upcoming invoice of a customer."""
    now = customer.billing_now()
    subscriptions = list(
        customer.subscriptions.prefetch_related("items__price__product", "items__price__meter")
        .prefetch_related("items__price__tiers")
        .order_by("-pk")
    )
    invoices = customer.invoices.order_by("-pk")[:MAX_INVOICES_ON_CUSTOMER_PAGE]
    usage_rows, upcoming = [], []
    for subscription in subscriptions:
        if subscription.status != Subscription.Status.ACTIVE:
            continue
        start = subscription.current_period_start
        end = min(now, subscription.current_period_end)
        for item in subscription.items.all():
            if not item.price.is_metered:
                continue
            quantity = usage(meter=item.price.meter, customer_id=customer.pk, start=start, end=end)
            usage_rows.append(
                {
                    "subscription": subscription,
                    "meter": item.price.meter,
                    "price": item.price,
                    "start": start,
                    "end": end,
                    "quantity": format_value(quantity),
                }
            )
        try:
            preview = invoice_preview(customer=customer, subscription=subscription)
        except BillingError as error:
            upcoming.append({"subscription": subscription, "error": error.message})
            continue
        upcoming.append({"subscription": subscription, "invoice": upcoming_invoice(preview)})
    return {
        "customer_now": now,
        "subscriptions": [
            {
                "subscription": subscription,
                "items": [
                    f"{item.quantity} x {item.price.display_name}"
                    if not item.price.is_metered
                    else f"{item.price.display_name} (metered)"
                    for item in subscription.items.all()
                ],
            }
            for subscription in subscriptions
        ],
        "invoices": [invoice_summary(invoice) for invoice in invoices],
        "more_invoices_url": (
            f"{reverse('admin:invoicing_invoice_changelist')}?"
            f"{urlencode({'q': customer.public_id})}"
        ),
        "usage_rows": usage_rows,
        "upcoming": upcoming,
        "history": list(customer.events.order_by("-pk")[:MAX_HISTORY_ON_CUSTOMER_PAGE]),
        **customer_credits_context(customer, now),
    }


def customer_credits_context(customer: Customer, now: dt.datetime) -> dict[str, Any]:
    """The "Billing credits" section: grants with what remains of them (and the invoice that
    prepaid them), the balance per currency (ledger and available) and the latest ledger rows."""
    grants = grant_rows(customer=customer, at=now)
    prefetch_related_objects([row.grant for row in grants], "source_invoice")
    ledger = CreditBalanceTransaction.objects.filter(customer=customer).select_related(
        "grant", "invoice"
    )
    return {
        "credit_grants": grants,
        "credit_balances": balance_rows(customer=customer),
        "credit_ledger": ledger_rows(ledger.order_by("-pk")[:MAX_LEDGER_ROWS_ON_CUSTOMER_PAGE]),
        "credit_ledger_url": (
            f"{reverse('admin:credits_creditbalancetransaction_changelist')}?"
            f"{urlencode({'q': customer.public_id})}"
        ),
        "new_credit_grant_url": (
            f"{reverse('admin:credits_creditgrant_add')}?{urlencode({'customer': customer.pk})}"
        ),
    }


# --- Deleting customers: what Django's delete confirmation says ------------------------------

MAX_SUBSCRIPTIONS_ON_DELETE_PAGE = 50


def customer_deletion_context(customers: list[Customer]) -> dict[str, Any]:
    """What deleting these customers does at once: their active subscriptions, each with the
    usage so far that the "Bill usage so far" checkbox would invoice, and that checkbox."""
    active = (
        Subscription.objects.filter(
            customer__in=[c.pk for c in customers if c.deleted_at is None],
            status=Subscription.Status.ACTIVE,
        )
        .select_related("customer__test_clock")
        .order_by("customer_id", "pk")
    )
    count = active.count()
    rows = []
    for subscription in active[:MAX_SUBSCRIPTIONS_ON_DELETE_PAGE]:
        try:
            preview = invoice_preview(customer=subscription.customer, subscription=subscription)
        except BillingError:
            usage_so_far = "-"
        else:
            metered = [line for line in preview.lines if line.kind == InvoiceLineItem.Kind.METERED]
            usage_so_far = (
                format_minor_units(sum(line.amount for line in metered), preview.currency)
                if metered
                else "No metered prices"
            )
        rows.append({"subscription": subscription, "usage_so_far": usage_so_far})
    return {
        "active_subscription_count": count,
        "active_subscriptions": rows,
        "more_subscriptions": max(0, count - len(rows)),
        "delete_form": CustomerDeleteForm(),
    }


def customers_delete(model_admin, request: HttpRequest, customers: list[Customer]) -> None:
    """The confirmed delete (POST): `customer_delete` for each, with the confirmation's
    "Bill usage so far on a final invoice" and the staff user as the actor."""
    form = CustomerDeleteForm(request.POST)
    invoice_now = form.is_valid() and form.cleaned_data["invoice_now"]
    for customer in customers:
        try:
            services.customer_delete(
                customer=customer, invoice_now=invoice_now, actor=actor(request)
            )
        except BillingError as error:
            model_admin.message_user(request, f"{customer}: {error.message}", messages.ERROR)


def customer_portal_link_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Sign a link to this customer's portal (on POST), show it once with its expiry, log it;
    or (POST with `revoke`) revoke every link and portal session of the customer."""
    customer = model_admin.get_object(request, unquote(object_id))
    if customer is None:
        raise Http404("No such customer.")
    if not model_admin.has_change_permission(request, customer):
        raise PermissionDenied
    link = None
    revoked = None
    if request.method == "POST" and "revoke" in request.POST:
        revoked = portal.portal_access_revoke(customer=customer, actor=actor(request))
        model_admin.log_change(
            request, customer, f"Revoked {revoked} portal link(s) and session(s)."
        )
    elif request.method == "POST" and customer.deleted_at is None:
        link = portal.portal_link_create(customer=customer, actor=actor(request))
        # The URL is a credential: the log names the session and its expiry, not the token.
        model_admin.log_change(
            request,
            customer,
            f"Created portal link {link.id}, "
            f"valid until {utc_label(link.expires_at, seconds=False)}.",
        )
    context = page_context(
        model_admin,
        request,
        title=f"Portal link for {customer}",
        original=customer,
        page_label="Portal link",
        link=link,
        url=request.build_absolute_uri(link.path) if link else None,
        link_lifetime_minutes=portal.LINK_MAX_AGE // 60,
        session_minutes=portal.SESSION_IDLE_SECONDS // 60,
        revoked=revoked,
        recent_links=portal.portal_links_recent(customer=customer),
    )
    return render(model_admin, request, "portal/admin/portal_link.html", context)
