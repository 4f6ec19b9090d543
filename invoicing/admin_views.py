"""The custom pages of the invoicing admin, kept out of admin.py so that it reads like a spec.

Each view takes the ModelAdmin it belongs to, checks permissions itself, and only writes
through `invoicing.services`:

* Add subscription: customer, then prices; a dry-run preview of the first invoice; a POST-only
  confirm that calls `subscription_create`.
* Cancel a subscription now (confirmation page, optional "invoice usage so far").
* Create invoice: customer and currency, then line items, then a review; "Create draft" or
  "Create and send" writes it in one transaction.
* Invoice status changes (finalize, mark paid, void, mark uncollectible): a confirmation page,
  then the service per invoice.
* Late usage, and advancing a test clock.
* "Grant credits" from a paid one-off invoice: the credits admin's grant form (one POST to
  `credits.services.credit_grant_create`), prefilled from the invoice.

Previews are dry runs: the real service runs inside a transaction that is always rolled back
(django-import-export's import preview works the same way), so a preview shows exactly what
the confirm step will write, and refuses exactly what it would refuse. While a preview that
finalizes an invoice runs, it holds the invoice number counter's row lock, as a real
finalization would; it is released at the rollback and no number is used up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from billing_site.admin_forms import add_billing_error
from billing_site.admin_pages import page_context, render
from billing_site.errors import BillingError
from catalog.money import format_minor_units, from_minor_units
from credits import admin_views as credits_admin_views
from credits.admin_forms import ALL_METERED, SPECIFIC_DATE
from credits.models import CreditBalanceTransaction, CreditGrant
from credits.selectors import balance_summary, grants_with_balances
from credits.services import grant_balances
from invoicing import services
from invoicing.admin_forms import (
    COMMON_CURRENCIES,
    InvoiceCustomerForm,
    InvoiceItemFormSet,
    SubscriptionCancelForm,
    SubscriptionCustomerForm,
    SubscriptionItemsForm,
    TestClockAdvanceForm,
    price_label,
)
from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription, TestClock
from invoicing.selectors import invoice_preview, late_usage
from invoicing.services.invoices import TRANSITIONS
from metering.charts import format_value
from metering.selectors import usage

T = TypeVar("T")
S = Invoice.Status
MAX_INVOICES_PER_ACTION = 100
MAX_INVOICES_ON_CUSTOMER_PAGE = 25
MAX_LEDGER_ROWS_ON_CUSTOMER_PAGE = 20


# --- Shared helpers --------------------------------------------------------------------------


def admin_form(form, fieldsets=None) -> helpers.AdminForm:
    visible = [name for name, field in form.fields.items() if not field.widget.is_hidden]
    return helpers.AdminForm(form, fieldsets or [(None, {"fields": visible})], {})


def dry_run(build: Callable[[], T]) -> T:
    """Run `build` (which calls services) and roll everything it wrote back.

    `build` must copy what it wants to show into plain values before returning: the rows are
    gone afterwards. A BillingError raised inside propagates after the rollback.
    """
    with transaction.atomic():
        result = build()
        transaction.set_rollback(True)
    return result


def carried_fields(request: HttpRequest, control: Iterable[str]) -> list[tuple[str, str]]:
    """The submitted form as (name, value) pairs, for the hidden fields of a preview page."""
    skip = {"csrfmiddlewaretoken", *control}
    return [
        (key, value) for key, values in request.POST.lists() if key not in skip for value in values
    ]


def actor(request: HttpRequest) -> str:
    """Who did it, as recorded on invoice events."""
    return request.user.get_username()


def money(amount: int | Decimal, currency: str) -> str:
    return format_minor_units(amount, currency)


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


@dataclass(frozen=True)
class LineRow:
    """An invoice line (stored or previewed) as the lines table draws it."""

    description: str
    kind: str
    period_start: dt.datetime
    period_end: dt.datetime
    quantity: str
    amount: str
    tiers: list[dict[str, str]]


def tier_rows(breakdown: list[dict[str, Any]], currency: str) -> list[dict[str, str]]:
    """A line's `tier_breakdown` (minor-unit decimal strings) in words and major units."""
    return [
        {
            "tier": f"Tier {row['tier']}" if row.get("tier") else "Per unit",
            "units": format_value(Decimal(row["units"])),
            "unit_amount": money(Decimal(row["unit_amount_decimal"]), currency),
            # Shown only when there is one: "+ 0.00 USD flat" on every row would be noise.
            "flat_amount": money(Decimal(row["flat_amount_decimal"]), currency)
            if Decimal(row["flat_amount_decimal"])
            else "",
            "amount": money(Decimal(row["amount_decimal"]), currency),
        }
        for row in breakdown
    ]


def line_row(line: InvoiceLineItem, currency: str) -> LineRow:
    return LineRow(
        description=line.description,
        kind=line.get_kind_display(),
        period_start=line.period_start,
        period_end=line.period_end,
        quantity=format_value(line.quantity),
        amount=money(line.amount, currency),
        tiers=tier_rows(line.tier_breakdown, currency),
    )


def preview_line_row(line, currency: str) -> LineRow:
    return LineRow(
        description=line.description,
        kind=InvoiceLineItem.Kind(line.kind).label,
        period_start=line.period.start,
        period_end=line.period.end,
        quantity=format_value(line.quantity),
        amount=money(line.amount, currency),
        tiers=tier_rows(line.tier_breakdown, currency),
    )


@dataclass(frozen=True)
class InvoiceSnapshot:
    """A (dry-run) invoice copied into plain values."""

    currency: str
    status: str
    lines: list[LineRow]
    subtotal: str
    total: str
    amount_due: str
    amount_due_minor: int
    due_date: dt.datetime | None
    period_start: dt.datetime | None
    period_end: dt.datetime | None


def snapshot(invoice: Invoice) -> InvoiceSnapshot:
    invoice = Invoice.objects.get(pk=invoice.pk)
    currency = invoice.currency
    return InvoiceSnapshot(
        currency=currency,
        status=invoice.get_status_display(),
        lines=[line_row(line, currency) for line in invoice.lines.order_by("pk")],
        subtotal=money(invoice.subtotal, currency),
        total=money(invoice.total, currency),
        amount_due=money(invoice.amount_due, currency),
        amount_due_minor=invoice.amount_due,
        due_date=invoice.due_date,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
    )


# --- Customer page ---------------------------------------------------------------------------


def customer_page_context(customer: Customer) -> dict[str, Any]:
    """Subscriptions, invoices, current-period usage and the upcoming invoice of a customer."""
    now = services.customer_now(customer)
    subscriptions = list(
        customer.subscriptions.prefetch_related("items__price__product", "items__price__meter")
        .prefetch_related("items__price__tiers")
        .order_by("-pk")
    )
    invoices = list(customer.invoices.order_by("-pk")[:MAX_INVOICES_ON_CUSTOMER_PAGE])
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
        upcoming.append(
            {
                "subscription": subscription,
                "period": preview.period,
                "lines": [preview_line_row(line, preview.currency) for line in preview.lines],
                "total": money(preview.total, preview.currency),
                "amount_due": money(preview.amount_due, preview.currency),
            }
        )
    return {
        "customer_now": now,
        "subscriptions": [
            {
                "subscription": subscription,
                "items": [
                    f"{item.quantity} x {item.price.nickname or item.price.product.name}"
                    if not item.price.is_metered
                    else f"{item.price.nickname or item.price.product.name} (metered)"
                    for item in subscription.items.all()
                ],
            }
            for subscription in subscriptions
        ],
        "invoices": [
            {
                "invoice": invoice,
                "total": money(invoice.total, invoice.currency),
                "amount_due": money(invoice.amount_due, invoice.currency),
            }
            for invoice in invoices
        ],
        "more_invoices_url": (
            f"{reverse('admin:invoicing_invoice_changelist')}?"
            f"{urlencode({'q': customer.public_id})}"
        ),
        "usage_rows": usage_rows,
        "upcoming": upcoming,
        **customer_credits_context(customer, now),
    }


def customer_credits_context(customer: Customer, now: dt.datetime) -> dict[str, Any]:
    """The "Billing credits" section: grants with what remains of them, the balance per
    currency (ledger and available) and the latest ledger rows."""
    grants = grants_with_balances(customer=customer)
    source_invoices = Invoice.objects.in_bulk(
        {row.grant.source_invoice_id for row in grants if row.grant.source_invoice_id}
    )
    ledger = CreditBalanceTransaction.objects.filter(customer=customer).select_related(
        "grant", "invoice"
    )
    return {
        "credit_grants": [
            {
                "grant": row.grant,
                "amount": money(row.grant.amount, row.grant.currency),
                "remaining": money(row.remaining, row.grant.currency),
                "status": credits_admin_views.grant_status(row.grant, now),
                "source_invoice": source_invoices.get(row.grant.source_invoice_id),
            }
            for row in grants
        ],
        "credit_balances": [
            {
                "currency": currency,
                "ledger": money(balance.ledger, currency),
                "available": money(balance.available, currency),
            }
            for currency, balance in sorted(balance_summary(customer=customer).items())
        ],
        "credit_ledger": credits_admin_views.ledger_rows(
            ledger.order_by("-pk")[:MAX_LEDGER_ROWS_ON_CUSTOMER_PAGE]
        ),
        "credit_ledger_url": (
            f"{reverse('admin:credits_creditbalancetransaction_changelist')}?"
            f"{urlencode({'q': customer.public_id})}"
        ),
        "new_credit_grant_url": (
            f"{reverse('admin:credits_creditgrant_add')}?{urlencode({'customer': customer.pk})}"
        ),
    }


# --- Add subscription ------------------------------------------------------------------------

_SUBSCRIPTION_CONTROLS = {"_preview", "_confirm", "_edit"}


def subscription_create_view(model_admin, request: HttpRequest) -> HttpResponse:
    """Step 1 (GET): the customer. Step 2 (GET ?customer=): prices and options. Then a
    preview (POST _preview) and the confirm (POST _confirm), the only step that writes."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    site = model_admin.admin_site
    if request.method != "POST":
        if "customer" not in request.GET:
            return _subscription_customer_step(
                model_admin, request, SubscriptionCustomerForm(admin_site=site)
            )
        chosen = SubscriptionCustomerForm(request.GET, admin_site=site)
        if not chosen.is_valid():
            return _subscription_customer_step(model_admin, request, chosen)
        form = SubscriptionItemsForm(initial={"customer": chosen.cleaned_data["customer"]})
        return _subscription_items_step(model_admin, request, form)

    form = SubscriptionItemsForm(request.POST)
    if "_edit" in request.POST or not form.is_valid():
        return _subscription_items_step(model_admin, request, form)
    if "_confirm" in request.POST:
        try:
            subscription = services.subscription_create(
                **form.service_kwargs(), actor=actor(request)
            )
        except BillingError as error:
            form.add_service_error(error)
            return _subscription_items_step(model_admin, request, form)
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
                money(first.amount_due, first.currency),
                first.get_status_display().lower(),
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url(subscription))

    def build() -> tuple[Subscription, InvoiceSnapshot]:
        subscription = services.subscription_create(**form.service_kwargs(), actor=actor(request))
        invoice = subscription.invoices.get(billing_period_key="create")
        return Subscription.objects.get(pk=subscription.pk), snapshot(invoice)

    try:
        subscription, first_invoice = dry_run(build)
    except BillingError as error:
        form.add_service_error(error)
        return _subscription_items_step(model_admin, request, form)
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
        carried=carried_fields(request, _SUBSCRIPTION_CONTROLS),
    )
    return render(model_admin, request, "admin/invoicing/subscription/create_preview.html", context)


def _subscription_customer_step(model_admin, request, form) -> TemplateResponse:
    adminform = admin_form(form)
    context = page_context(
        model_admin,
        request,
        title="Add subscription: choose the customer",
        page_label="Add subscription",
        adminform=adminform,
        form=form,
        media=model_admin.media + adminform.media,
    )
    return render(
        model_admin, request, "admin/invoicing/subscription/create_customer.html", context
    )


def _subscription_items_step(model_admin, request, form: SubscriptionItemsForm) -> TemplateResponse:
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


# --- Cancel a subscription now ---------------------------------------------------------------


def subscription_cancel_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    if not model_admin.has_cancel_permission(request):
        raise PermissionDenied
    subscription = model_admin.get_object(request, unquote(object_id))
    if subscription is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
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
        usage_lines = [
            preview_line_row(line, preview.currency)
            for line in preview.lines
            if line.kind == InvoiceLineItem.Kind.METERED
        ]
        usage_total = money(
            sum(line.amount for line in preview.lines if line.kind == "metered"),
            preview.currency,
        )
    except BillingError:
        usage_lines, usage_total = [], None
    adminform = admin_form(form)
    context = page_context(
        model_admin,
        request,
        title=f"Cancel subscription {subscription.public_id} now",
        page_label="Cancel now",
        original=subscription,
        form=form,
        adminform=adminform,
        errors=helpers.AdminErrorList(form, []),
        customer_now=services.customer_now(subscription.customer),
        usage_lines=usage_lines,
        usage_total=usage_total,
    )
    return render(
        model_admin, request, "admin/invoicing/subscription/cancel_confirmation.html", context
    )


# --- Invoice status changes ------------------------------------------------------------------


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
        _apply_transition(model_admin, request, invoices, transition)
        return HttpResponseRedirect(change_url(single)) if single else None
    rows = [
        {
            "invoice": invoice,
            "amount_due": money(invoice.amount_due, invoice.currency),
            "refusal": _refusal(invoice, transition),
        }
        for invoice in invoices
    ]
    context = page_context(
        model_admin,
        request,
        title=f"{transition.label}: are you sure?",
        page_label=transition.label,
        original=single,
        transition=transition,
        rows=rows,
        changing_count=sum(1 for row in rows if row["refusal"] is None),
        single=single,
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
    )
    return render(
        model_admin, request, "admin/invoicing/invoice/transition_confirmation.html", context
    )


def _apply_transition(model_admin, request, invoices: list[Invoice], transition: Transition):
    changed = 0
    for invoice in invoices:
        try:
            invoice = transition.service(invoice=invoice, actor=actor(request))
        except BillingError as error:
            model_admin.message_user(request, error.message, messages.ERROR)
            continue
        model_admin.log_change(
            request, invoice, f"{transition.done} ({invoice.number or invoice.public_id})."
        )
        changed += 1
    if changed:
        model_admin.message_user(
            request,
            f"{transition.done} {changed} invoice{'' if changed == 1 else 's'}.",
            messages.SUCCESS,
        )


def invoice_transition_view(
    model_admin, request: HttpRequest, object_id: str, slug: str
) -> HttpResponse:
    """Finalize, mark paid, void or mark uncollectible one invoice, from its page."""
    transition = TRANSITIONS_BY_SLUG.get(slug)
    if transition is None or not model_admin.has_transition_permission(request):
        raise PermissionDenied
    invoice = model_admin.get_object(request, unquote(object_id))
    if invoice is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    return invoice_transition_confirm(model_admin, request, [invoice], transition, single=invoice)


# --- Invoice page ----------------------------------------------------------------------------


def invoice_page_context(model_admin, request: HttpRequest, invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency
    can_change = model_admin.has_transition_permission(request)
    return {
        **_invoice_credits_context(request, invoice),
        "lines": [
            line_row(line, currency)
            for line in invoice.lines.select_related("price").order_by("pk")
        ],
        "events": list(invoice.events.order_by("pk")),
        "totals": [
            ("Subtotal", money(invoice.subtotal, currency)),
            ("Credits applied", money(-invoice.total_credits, currency)),
            ("Total", money(invoice.total, currency)),
            ("Amount due", money(invoice.amount_due, currency)),
            ("Amount paid", money(invoice.amount_paid, currency)),
            ("Amount remaining", money(invoice.amount_remaining, currency)),
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


def _invoice_credits_context(request: HttpRequest, invoice: Invoice) -> dict[str, Any]:
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
                "amount": money(grant.amount, grant.currency),
                "remaining": money(remaining.get(grant.pk, 0), grant.currency),
            }
            for grant in grants
        ],
        "grant_credits_url": (
            reverse("admin:invoicing_invoice_grant_credits", args=[invoice.pk])
            if can_grant and grant_credits_refusal(invoice) is None
            else None
        ),
    }


# --- Grant credits from a paid invoice -------------------------------------------------------


def grant_credits_refusal(invoice: Invoice) -> str | None:
    """Why credits can't be granted from this invoice (None: they can).

    The service refuses an unpaid source invoice too; only one-off invoices are offered here,
    because a prepayment is one (DESIGN's credit burndown flow).
    """
    label = invoice.number or invoice.public_id
    if invoice.billing_reason != Invoice.BillingReason.MANUAL:
        return (
            f"Invoice {label} is a {invoice.get_billing_reason_display().lower()} invoice: "
            "credits are granted from a paid one-off invoice (the prepayment)."
        )
    if invoice.status != S.PAID:
        return (
            f"Invoice {label} is {invoice.get_status_display().lower()}: grant prepaid credits "
            "only once it is paid. Nothing has been granted."
        )
    return None


def a_year_after(moment: dt.datetime) -> dt.datetime:
    """The same instant twelve months later (Feb 29 becomes Feb 28), to the second."""
    moment = moment.replace(microsecond=0)
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:
        return moment.replace(year=moment.year + 1, day=28)


def invoice_grant_credits_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The credit burndown's second step: grant the credits a paid one-off invoice bought.

    Prefilled: the invoice's customer (fixed) and currency, its total as the amount (staff
    often grant more, e.g. 120,000 USD for a 100,000 USD prepayment), expiry 12 months after
    the customer's now, paid, all metered prices.
    """
    if not request.user.has_perm("credits.add_creditgrant"):
        raise PermissionDenied
    invoice = model_admin.get_object(request, unquote(object_id))
    if invoice is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    refusal = grant_credits_refusal(invoice)
    if refusal is not None:
        model_admin.message_user(request, refusal, messages.ERROR)
        return HttpResponseRedirect(change_url(invoice))
    label = invoice.number or invoice.public_id
    initial = {
        "name": f"Prepaid credits ({label})",
        "amount": from_minor_units(invoice.total, invoice.currency).amount,
        "currency": invoice.currency,
        "category": CreditGrant.Category.PAID,
        "expiry": SPECIFIC_DATE,
        "expires_at": a_year_after(services.customer_now(invoice.customer)),
        "scope": ALL_METERED,
    }
    return credits_admin_views.credit_grant_form_view(
        model_admin,
        request,
        initial=initial,
        title=f"Grant credits from invoice {label}",
        page_label="Grant credits",
        source_invoice=invoice,
        original=invoice,
    )


# --- Create invoice --------------------------------------------------------------------------

_INVOICE_CONTROLS = {
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
        return _invoice_customer_step(model_admin, request, InvoiceCustomerForm(admin_site=site))
    post = request.POST
    header = InvoiceCustomerForm(post, admin_site=site)
    if "_change_customer" in post or not header.is_valid():
        return _invoice_customer_step(model_admin, request, header)
    form_kwargs = {"currency": header.cleaned_data["currency"]}
    if "_to_items" in post:
        items = InvoiceItemFormSet(prefix="items", form_kwargs=form_kwargs)
        return _invoice_items_step(model_admin, request, header, items, show_errors=False)
    data = post.copy()
    if "_add_item" in post:
        total = int(data.get("items-TOTAL_FORMS") or 1)
        data["items-TOTAL_FORMS"] = str(min(total + 1, InvoiceItemFormSet.max_num))
    items = InvoiceItemFormSet(data, prefix="items", form_kwargs=form_kwargs)
    if "_add_item" in post or "_edit" in post:
        return _invoice_items_step(model_admin, request, header, items, show_errors=False)
    if not items.is_valid():
        return _invoice_items_step(model_admin, request, header, items, show_errors=True)

    if "_create_draft" in post or "_create_send" in post:
        send = "_create_send" in post
        try:
            with transaction.atomic():
                invoice = build_invoice(header, items, send=send, who=actor(request))
        except (BillingError, ItemRejected) as error:
            return _invoice_refused(model_admin, request, header, items, error)
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
                money(invoice.amount_due, invoice.currency),
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url(invoice))

    try:
        draft = dry_run(
            lambda: snapshot(build_invoice(header, items, send=False, who=actor(request)))
        )
    except (BillingError, ItemRejected) as error:
        return _invoice_refused(model_admin, request, header, items, error)
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
        carried=carried_fields(request, _INVOICE_CONTROLS),
    )
    return render(model_admin, request, "admin/invoicing/invoice/create_review.html", context)


def _invoice_refused(model_admin, request, header, items, error) -> TemplateResponse:
    if isinstance(error, ItemRejected):
        form = items.filled_forms()[error.index]
        add_billing_error(form, error.error, {"amount": "amount", "price": "price"})
        return _invoice_items_step(model_admin, request, header, items, show_errors=True)
    add_billing_error(header, error, {})
    return _invoice_customer_step(model_admin, request, header)


def _invoice_customer_step(model_admin, request, header: InvoiceCustomerForm) -> TemplateResponse:
    adminform = admin_form(header)
    context = page_context(
        model_admin,
        request,
        title="Create invoice: customer and currency",
        page_label="Create invoice",
        adminform=adminform,
        form=header,
        currency_codes=COMMON_CURRENCIES,
        media=model_admin.media + adminform.media,
    )
    return render(model_admin, request, "admin/invoicing/invoice/create_customer.html", context)


def _invoice_items_step(
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


# --- Late usage ------------------------------------------------------------------------------


def late_usage_view(model_admin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    found = late_usage()
    found.sort(
        key=lambda late: (
            str(late.invoice.customer).lower(),
            late.line.price.meter.display_name.lower(),
            late.line.period_start,
        )
    )
    rows = []
    for late in found:
        meter, customer, line = late.line.price.meter, late.invoice.customer, late.line
        events_url = (
            reverse("admin:metering_meterevent_changelist")
            + "?"
            + urlencode(
                {
                    "meter__id__exact": meter.pk,
                    "customer": customer.public_id,
                    "timestamp__gte": line.period_start.isoformat(),
                    "timestamp__lt": line.period_end.isoformat(),
                    "received_at__gt": late.invoice.finalized_at.isoformat(),
                }
            )
        )
        rows.append(
            {
                "customer": customer,
                "meter": meter,
                "invoice": late.invoice,
                "line": line,
                "billed_quantity": format_value(line.quantity),
                "late_quantity": format_value(late.late_quantity),
                "late_events": late.late_events,
                "events_url": events_url,
            }
        )
    context = page_context(
        model_admin, request, title="Late usage", page_label="Late usage", rows=rows
    )
    return render(model_admin, request, "admin/invoicing/invoice/late_usage.html", context)


# --- Test clocks -----------------------------------------------------------------------------


def test_clock_advance_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Move a test clock forward and run, synchronously, every billing step on the way."""
    if not model_admin.has_advance_permission(request):
        raise PermissionDenied
    test_clock = model_admin.get_object(request, unquote(object_id))
    if test_clock is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    form = TestClockAdvanceForm(request.POST if request.method == "POST" else None)
    summary = None
    if request.method == "POST" and form.is_valid():
        summary = _advance(model_admin, request, test_clock, form)
        test_clock.refresh_from_db()
    adminform = admin_form(form)
    context = page_context(
        model_admin,
        request,
        title=f"Advance test clock {test_clock}",
        page_label="Advance",
        original=test_clock,
        form=form,
        adminform=adminform,
        errors=helpers.AdminErrorList(form, []),
        summary=summary,
        customers=list(test_clock.customers.order_by("pk")),
        media=model_admin.media + adminform.media,
    )
    return render(model_admin, request, "admin/invoicing/testclock/advance.html", context)


def _advance(model_admin, request, test_clock: TestClock, form) -> dict[str, Any] | None:
    frozen_time = form.cleaned_data["frozen_time"]
    invoices = Invoice.objects.filter(customer__test_clock=test_clock)
    before = dict(invoices.values_list("pk", "status"))
    previous = test_clock.frozen_time
    try:
        services.test_clock_start_advance(test_clock=test_clock, frozen_time=frozen_time)
    except BillingError as error:
        add_billing_error(form, error, {"frozen_time": "frozen_time"})
        return None
    failure = None
    try:
        services.test_clock_advance(test_clock=test_clock, frozen_time=frozen_time)
    except (BillingError, RuntimeError) as error:
        # The clock is left `internal_failure`; the failures are also in "Billing run failures".
        failure = str(error)
        model_admin.message_user(
            request, f"The billing run failed while advancing: {failure}", messages.ERROR
        )
    model_admin.log_change(
        request,
        test_clock,
        f"Advanced from {previous:%Y-%m-%d %H:%M:%S} to {frozen_time:%Y-%m-%d %H:%M:%S} UTC"
        + (f" (failed: {failure})." if failure else "."),
    )
    after = list(invoices.select_related("customer").order_by("pk"))
    created = [invoice for invoice in after if invoice.pk not in before]
    finalized = [
        invoice
        for invoice in after
        if invoice.finalized_at is not None and before.get(invoice.pk, S.DRAFT) == S.DRAFT
    ]
    if not failure:
        model_admin.message_user(
            request,
            f"Test clock {test_clock} advanced to {frozen_time:%Y-%m-%d %H:%M:%S} UTC: "
            f"{len(created)} invoice(s) created, {len(finalized)} finalized.",
            messages.SUCCESS,
        )
    return {
        "previous": previous,
        "frozen_time": frozen_time,
        "created": [_invoice_summary_row(invoice) for invoice in created],
        "finalized": [_invoice_summary_row(invoice) for invoice in finalized],
        "failure": failure,
    }


def _invoice_summary_row(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice": invoice,
        "total": money(invoice.total, invoice.currency),
        "amount_due": money(invoice.amount_due, invoice.currency),
    }
