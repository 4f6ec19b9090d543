"""The custom pages of the credits admin, kept out of admin.py so that it reads like a spec.

* The credit grant form ("New credit grant", and "Grant credits" from a paid invoice, which the
  invoicing admin draws with the same view): one page, one POST to `credit_grant_create`, like
  the Stripe Dashboard's form. Granting is not destructive, and a wrong grant is undone with
  "Void", so there is no preview step.
* "Expire now" and "Void" on a grant: a confirmation page that says what will be debited, then
  a POST-only confirm that calls the service. The page is only shown when the service would
  accept: it runs first as a dry run that is always rolled back.

Each view takes the ModelAdmin it is drawn for, checks permissions itself, and logs who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html

from billing_site.admin_kit import (
    COMMON_CURRENCIES,
    actor,
    change_url,
    confirmation_page,
    dry_run,
    form_page,
    object_page,
    utc_label,
)
from billing_site.errors import BillingError
from catalog.money import format_minor_units
from credits import selectors, services
from credits.admin_forms import CreditGrantForm
from credits.models import CreditBalanceTransaction, CreditGrant

T = CreditBalanceTransaction


# --- The credit grant form -------------------------------------------------------------------


def credit_grant_form_view(
    model_admin,
    request: HttpRequest,
    *,
    initial: dict[str, Any],
    title: str,
    page_label: str,
    source_invoice=None,
    original=None,
) -> HttpResponse:
    """Draw the grant form (GET) or grant the credits (POST) through `credit_grant_create`.

    With `source_invoice`, the customer is the invoice's and can't be changed, and the grant
    records the invoice it was prepaid with.
    """
    if not request.user.has_perm("credits.add_creditgrant"):
        raise PermissionDenied
    site = model_admin.admin_site
    fixed_customer = source_invoice.customer if source_invoice is not None else None
    if request.method == "POST":
        form = CreditGrantForm(request.POST, admin_site=site, customer=fixed_customer)
        if form.is_valid():
            with transaction.atomic():  # the grant and who made it, together
                grant = _grant(form, source_invoice, actor(request))
                if grant is not None:
                    _log_grant(model_admin, request, grant, source_invoice)
            if grant is not None:
                return HttpResponseRedirect(change_url(grant))
    else:
        form = CreditGrantForm(initial=initial, admin_site=site, customer=fixed_customer)
    return form_page(
        model_admin,
        request,
        "admin/credits/creditgrant/grant_form.html",
        form,
        form.fieldset_layout,
        title=title,
        page_label=page_label,
        original=original,
        fixed_customer=fixed_customer,
        source_invoice=source_invoice,
        source_invoice_total=(
            format_minor_units(source_invoice.total, source_invoice.currency)
            if source_invoice
            else None
        ),
        earlier_grants=(
            list(CreditGrant.objects.filter(source_invoice=source_invoice).order_by("pk"))
            if source_invoice is not None
            else []
        ),
        currency_codes=COMMON_CURRENCIES,
    )


def _grant(form: CreditGrantForm, source_invoice, who: str) -> CreditGrant | None:
    customer = form.grant_customer
    try:
        return services.credit_grant_create(
            **form.service_kwargs(),
            source_invoice=source_invoice,
            used_currencies=selectors.subscription_currencies(customer),
            now=customer.billing_now(),
            actor=who,
        )
    except BillingError as error:
        form.add_service_error(error)
        return None


def _log_grant(model_admin, request: HttpRequest, grant: CreditGrant, source_invoice) -> None:
    amount = format_minor_units(grant.amount, grant.currency)
    expiry = utc_label(grant.expires_at, seconds=False) if grant.expires_at else "no expiry"
    note = f"Granted {amount} of {grant.category} credits ({expiry})"
    if source_invoice is not None:
        note += f" from paid invoice {source_invoice.label}"
        model_admin.log_change(
            request, source_invoice, f"Credits granted from it: {grant.public_id}, {amount}."
        )
    model_admin.log_addition(request, grant, f"{note}.")
    model_admin.message_user(
        request,
        format_html(
            'Granted {} of credits to {}: <a href="{}">{}</a>.',
            amount,
            grant.customer,
            change_url(grant),
            grant.label,
        ),
        messages.SUCCESS,
    )


# --- Expire now / Void -----------------------------------------------------------------------


@dataclass(frozen=True)
class GrantAction:
    label: str
    done: str
    reason: str  # of the ledger debit
    explanation: str
    service: Callable[..., CreditGrant]


GRANT_ACTIONS: dict[str, GrantAction] = {
    "expire": GrantAction(
        "Expire now",
        "Expired",
        T.Reason.CREDITS_EXPIRED,
        "The grant expires now: what remains of it is debited from the customer's balance and "
        "can't be spent any more. Credits already applied to invoices stay applied.",
        services.credit_grant_expire,
    ),
    "void": GrantAction(
        "Void",
        "Voided",
        T.Reason.CREDITS_VOIDED,
        "Voiding cancels the grant: what remains of it is debited and it can never be spent "
        "again. Credits already applied to invoices stay applied. This can't be undone.",
        services.credit_grant_void,
    ),
}


@object_page("grant_action", actions=GRANT_ACTIONS)
def credit_grant_action_view(
    model_admin, request: HttpRequest, grant: CreditGrant, action: GrantAction
) -> HttpResponse:
    """A confirmation page (GET), then the change (POST with post=yes)."""
    back = HttpResponseRedirect(change_url(grant))
    at = grant.customer.billing_now()
    remaining = services.grant_balances([grant.pk]).get(grant.pk, 0)
    if request.method == "POST" and request.POST.get("post") == "yes":
        try:
            with transaction.atomic():  # the change and who made it, together
                before = grant.transactions.order_by("-pk").values_list("pk", flat=True).first()
                grant = action.service(grant=grant, at=at, actor=actor(request))
                # What the service debited (under its lock), not what the page showed.
                debits = grant.transactions.filter(pk__gt=before or 0, reason=action.reason)
                debited = format_minor_units(sum(row.amount for row in debits), grant.currency)
                note = f"{action.done} at {utc_label(at)}; {debited} debited."
                model_admin.log_change(request, grant, note)
        except BillingError as error:
            model_admin.message_user(request, error.message, messages.ERROR)
            return back
        model_admin.message_user(request, f"Credit grant {grant.label}: {note}", messages.SUCCESS)
        return back
    try:
        dry_run(lambda: action.service(grant=grant, at=at))
    except BillingError as error:
        model_admin.message_user(request, error.message, messages.ERROR)
        return back
    balance = selectors.balance_summary(customer=grant.customer, grant=grant)[grant.currency]
    # Credits that draft invoices in their grace period expect from this grant: they will be
    # billed without them.
    pending = balance.ledger - balance.available
    return confirmation_page(
        model_admin,
        request,
        "admin/credits/creditgrant/action_confirmation.html",
        label=action.label,
        original=grant,
        action=action,
        at=at,
        remaining=format_minor_units(remaining, grant.currency),
        amount=format_minor_units(grant.amount, grant.currency),
        pending=format_minor_units(pending, grant.currency) if pending > 0 else None,
    )
