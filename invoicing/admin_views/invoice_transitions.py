"""Invoice status changes: finalize, mark paid, void and mark uncollectible.

From the invoice list (admin actions) or an invoice page, each shows a confirmation page that
says which invoices will change and why the others won't, then calls the service per invoice
(`invoicing.services`, whose transition map is the rule) and logs who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from billing_site.admin_kit import (
    actor,
    call_for_each,
    change_url,
    confirmation_page,
    object_page,
)
from catalog.money import format_minor_units
from invoicing import services
from invoicing.models import Invoice
from invoicing.services.invoices import TRANSITIONS

S = Invoice.Status
MAX_INVOICES_PER_ACTION = 100


@dataclass(frozen=True)
class Transition:
    action: str  # the admin action's name
    label: str
    to_status: str
    done: str
    explanation: str
    service: Callable[..., Invoice]


def _pay(*, invoice: Invoice, actor: str) -> Invoice:
    return services.invoice_pay(invoice=invoice, actor=actor, paid_out_of_band=True)


TRANSITIONS_BY_SLUG: dict[str, Transition] = {
    "finalize": Transition(
        "finalize_invoices",
        "Finalize",
        S.OPEN,
        "Finalized",
        "A finalized invoice gets the next number, becomes open (owed) and can no longer be "
        "edited; metered quantities are read again at that moment. An invoice with nothing due "
        "is marked paid at once.",
        services.invoice_finalize,
    ),
    "mark-paid": Transition(
        "mark_paid",
        "Mark paid",
        S.PAID,
        "Marked paid",
        "Records that the amount due was paid outside this system (paid out of band). Paid is "
        "final: the invoice can't be voided afterwards.",
        _pay,
    ),
    "void": Transition(
        "void_invoices",
        "Void",
        S.VOID,
        "Voided",
        "A void invoice keeps its number but is no longer owed. Void is final and can't be "
        "undone; bill again with a new invoice if needed.",
        services.invoice_void,
    ),
    "mark-uncollectible": Transition(
        "mark_uncollectible",
        "Mark uncollectible",
        S.UNCOLLECTIBLE,
        "Marked uncollectible",
        "The amount is written off as unlikely to be paid. It can still be marked paid or "
        "voided later.",
        services.invoice_mark_uncollectible,
    ),
}
TRANSITIONS_BY_ACTION = {t.action: (slug, t) for slug, t in TRANSITIONS_BY_SLUG.items()}


def transitions_available(invoice: Invoice) -> list[tuple[str, Transition]]:
    return [
        (slug, transition)
        for slug, transition in TRANSITIONS_BY_SLUG.items()
        if transition.to_status in TRANSITIONS[invoice.status]
    ]


def _refusal(invoice: Invoice, transition: Transition) -> str | None:
    """Why the service will refuse this change, for the confirmation page (None: it won't)."""
    if transition.to_status in TRANSITIONS[invoice.status]:
        return None
    final = "" if TRANSITIONS[invoice.status] else " (final)"
    return f"Not changed: it is {invoice.get_status_display().lower()}{final}."


def invoice_transition_confirm(
    model_admin,
    request: HttpRequest,
    invoices: list[Invoice],
    transition: Transition,
    *,
    single: Invoice | None = None,
) -> HttpResponse | None:
    """The confirmation page of a status change and, on its POST, the change itself.

    From the changelist (single=None) it posts back as the admin action with post=yes, like
    Django's delete_selected; from an invoice page it posts to that page's own URL.
    """
    if len(invoices) > MAX_INVOICES_PER_ACTION:
        model_admin.message_user(
            request,
            f"Select at most {MAX_INVOICES_PER_ACTION} invoices at a time.",
            messages.ERROR,
        )
        return None
    if request.method == "POST" and request.POST.get("post") == "yes":
        who = actor(request)
        call_for_each(
            model_admin,
            request,
            invoices,
            lambda invoice: transition.service(invoice=invoice, actor=who),
            log=lambda invoice: f"{transition.done} ({invoice.label}).",
            summary=lambda count: f"{transition.done} {count} invoice{'' if count == 1 else 's'}.",
            summary_when_none=False,
        )
        return HttpResponseRedirect(change_url(single)) if single else None
    rows = [
        {
            "invoice": invoice,
            "amount_due": format_minor_units(invoice.amount_due, invoice.currency),
            "refusal": _refusal(invoice, transition),
        }
        for invoice in invoices
    ]
    return confirmation_page(
        model_admin,
        request,
        "admin/invoicing/invoice/transition_confirmation.html",
        label=transition.label,
        original=single,
        transition=transition,
        rows=rows,
        changing_count=sum(1 for row in rows if row["refusal"] is None),
        single=single,
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
    )


@object_page("transition", actions=TRANSITIONS_BY_SLUG)
def invoice_transition_view(
    model_admin, request: HttpRequest, invoice: Invoice, transition: Transition
) -> HttpResponse:
    """Finalize, mark paid, void or mark uncollectible one invoice, from its page."""
    return invoice_transition_confirm(model_admin, request, [invoice], transition, single=invoice)
