"""The invoice page (lines with tier breakdowns, totals, status history, status-change links),
and "Grant credits" from a paid one-off invoice (the credit burndown's second step)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing_site.admin_kit import change_url, object_page
from catalog.money import format_minor_units, from_minor_units
from credits import admin_views as credits_admin_views
from credits.admin_forms import ALL_METERED, SPECIFIC_DATE, suggested_expiry
from credits.models import CreditGrant
from credits.services import grant_balances
from invoicing.admin_views.invoice_transitions import transitions_available
from invoicing.models import Invoice
from invoicing.presenters import stored_line_row

# --- The invoice page --------------------------------------------------------------------------


def invoice_page_context(model_admin, request: HttpRequest, invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency

    def money(amount: int) -> str:
        return format_minor_units(amount, currency)

    can_change = model_admin.has_transition_permission(request)
    return {
        **_credits_context(request, invoice),
        "lines": [
            stored_line_row(line, currency)
            for line in invoice.lines.select_related("price").order_by("pk")
        ],
        "events": list(invoice.events.order_by("pk")),
        "totals": [
            ("Subtotal", money(invoice.subtotal)),
            ("Credits applied", money(-invoice.total_credits)),
            ("Total", money(invoice.total)),
            ("Amount due", money(invoice.amount_due)),
            ("Amount paid", money(invoice.amount_paid)),
            ("Amount remaining", money(invoice.amount_remaining)),
        ],
        "transition_links": [
            (
                transition.label,
                reverse("admin:invoicing_invoice_transition", args=[invoice.pk, slug]),
            )
            for slug, transition in transitions_available(invoice)
        ]
        if can_change
        else [],
    }


def _credits_context(request: HttpRequest, invoice: Invoice) -> dict[str, Any]:
    """The grants made from a one-off (prepayment) invoice, and "Grant credits" once paid."""
    if invoice.billing_reason != Invoice.BillingReason.MANUAL:
        return {"show_credit_grants": False}
    grants = list(CreditGrant.objects.filter(source_invoice=invoice).order_by("pk"))
    remaining = grant_balances(grant.pk for grant in grants)
    can_grant = request.user.has_perm("credits.add_creditgrant")
    return {
        "show_credit_grants": True,
        "credit_grants": [
            {
                "grant": grant,
                "amount": format_minor_units(grant.amount, grant.currency),
                "remaining": format_minor_units(remaining.get(grant.pk, 0), grant.currency),
            }
            for grant in grants
        ],
        "grant_credits_url": (
            reverse("admin:invoicing_invoice_grant_credits", args=[invoice.pk])
            if can_grant and grant_credits_refusal(invoice) is None
            else None
        ),
    }


# --- Grant credits from a paid invoice ---------------------------------------------------------


def grant_credits_refusal(invoice: Invoice) -> str | None:
    """Why credits can't be granted from this invoice (None: they can).

    The service refuses an unpaid source invoice too; only one-off invoices are offered here,
    because a prepayment is one (DESIGN's credit burndown flow).
    """
    if invoice.billing_reason != Invoice.BillingReason.MANUAL:
        return (
            f"Invoice {invoice.label} is a {invoice.get_billing_reason_display().lower()} "
            "invoice: credits are granted from a paid one-off invoice (the prepayment)."
        )
    if invoice.status != Invoice.Status.PAID:
        return (
            f"Invoice {invoice.label} is {invoice.get_status_display().lower()}: grant prepaid "
            "credits only once it is paid. Nothing has been granted."
        )
    return None


@object_page("grant_credits")
def invoice_grant_credits_view(model_admin, request: HttpRequest, invoice: Invoice) -> HttpResponse:
    """The credit burndown's second step: grant the credits a paid one-off invoice bought.

    Prefilled: the invoice's customer (fixed) and currency, its total as the amount (staff
    often grant more, e.g. 120,000 USD for a 100,000 USD prepayment), expiry 12 months after
    the customer's now, paid, all metered prices.
    """
    refusal = grant_credits_refusal(invoice)
    if refusal is not None:
        model_admin.message_user(request, refusal, messages.ERROR)
        return HttpResponseRedirect(change_url(invoice))
    initial = {
        "name": f"Prepaid credits ({invoice.label})",
        "amount": from_minor_units(invoice.total, invoice.currency).amount,
        "currency": invoice.currency,
        "category": CreditGrant.Category.PAID,
        "expiry": SPECIFIC_DATE,
        "expires_at": suggested_expiry(invoice.customer.billing_now()),
        "scope": ALL_METERED,
    }
    return credits_admin_views.credit_grant_form_view(
        model_admin,
        request,
        initial=initial,
        title=f"Grant credits from invoice {invoice.label}",
        page_label="Grant credits",
        source_invoice=invoice,
        original=invoice,
    )
