"""Test clocks: the clock page (its customers) and "Advance", which moves the clock forward and
runs, synchronously, every billing step that falls due on the way."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from billing_site.admin_kit import (
    add_billing_error,
    form_page,
    object_page,
    utc_label,
)
from billing_site.errors import BillingError
from invoicing import services
from invoicing.admin_forms import TestClockAdvanceForm
from invoicing.models import Invoice, TestClock
from invoicing.presenters import invoice_summary

S = Invoice.Status


def test_clock_page_context(model_admin, request: HttpRequest, test_clock: TestClock) -> dict:
    return {
        "customers": list(
            test_clock.customers.annotate(subscription_count=Count("subscriptions")).order_by("pk")
        ),
        "advance_url": (
            reverse("admin:invoicing_testclock_advance", args=[test_clock.pk])
            if model_admin.has_advance_permission(request) and test_clock.deleted_at is None
            else None
        ),
    }


@object_page("advance")
def test_clock_advance_view(
    model_admin, request: HttpRequest, test_clock: TestClock
) -> HttpResponse:
    """Move a test clock forward and run, synchronously, every billing step on the way."""
    form = TestClockAdvanceForm(request.POST if request.method == "POST" else None)
    summary = None
    if request.method == "POST" and form.is_valid():
        summary = _advance(model_admin, request, test_clock, form)
        test_clock.refresh_from_db()
    return form_page(
        model_admin,
        request,
        "admin/invoicing/testclock/advance.html",
        form,
        title=f"Advance test clock {test_clock}",
        page_label="Advance",
        original=test_clock,
        summary=summary,
        customers=list(test_clock.customers.order_by("pk")),
    )


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
        f"Advanced from {previous:%Y-%m-%d %H:%M:%S} to {utc_label(frozen_time)}"
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
            f"Test clock {test_clock} advanced to {utc_label(frozen_time)}: "
            f"{len(created)} invoice(s) created, {len(finalized)} finalized.",
            messages.SUCCESS,
        )
    return {
        "previous": previous,
        "frozen_time": frozen_time,
        "created": [invoice_summary(invoice) for invoice in created],
        "finalized": [invoice_summary(invoice) for invoice in finalized],
        "failure": failure,
    }
