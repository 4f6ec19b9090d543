"""The invoicing admin: customers, subscriptions, invoices, test clocks and billing run failures.

- Customers: the page shows subscriptions, invoices, current-period usage, the upcoming
  invoice, billing credits (grants, balances, the latest ledger rows) and the test clock. A
  test clock can be attached when the customer is added. "Portal link" signs a one-time portal
  link and revokes links. Deleting (`customer_delete`) keeps the row, cancels the active
  subscriptions at once and, if staff tick it on the confirmation page (which says how many
  subscriptions end), bills their usage so far on final invoices; who did it is recorded.
- Subscriptions: "Add subscription" is a flow (customer, then prices, then a preview of the
  first invoice, then confirm). The page is read-only but for metadata and "cancel at period
  end"; "Cancel now" goes through a confirmation page.
- Invoices: read-only pages with lines, tier breakdowns and the status history. Finalize,
  mark paid, void and mark uncollectible go through a confirmation page and are logged with
  who did them. "Create invoice" is Stripe Dashboard's flow (customer and currency, items,
  review, create or send). "Late usage" lists usage that arrived after its invoice was final.
  A paid one-off invoice has "Grant credits" (the credit burndown's second step: the credit
  grant form, prefilled from the invoice) and lists the grants made from it.
- Test clocks: create one, then "Advance" it to run its customers' billing.
- Billing run failures: read-only, with "mark resolved".
- The admin index shows the billing dashboard (`admin_views/dashboard.py`).

Custom pages live in invoicing/admin_views/ (one module per resource), their forms in
invoicing/admin_forms.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from billing_site import clock
from billing_site.admin import add_index_context
from billing_site.admin_kit import (
    AddFormMixin,
    ObjectSectionsMixin,
    change_url,
    custom_page_urls,
    link_column,
    timestamp_set_filter,
)
from billing_site.errors import BillingError
from catalog.money import format_minor_units
from invoicing import services
from invoicing.admin_forms import CustomerAddForm, SubscriptionChangeForm, TestClockAddForm
from invoicing.admin_views import (
    customers,
    invoice_create,
    invoice_transitions,
    invoices,
    late_usage,
    subscriptions,
    test_clocks,
)
from invoicing.admin_views.dashboard import admin_dashboard
from invoicing.models import BillingRunFailure, Customer, Invoice, Subscription, TestClock


def _dashboard_context(can_view) -> dict:
    """The billing dashboard on top of the admin index (templates/admin/index.html)."""
    return {"dashboard": admin_dashboard(can_view=can_view)}


add_index_context("billing_dashboard", _dashboard_context)


DeletedFilter = timestamp_set_filter(
    title="status", parameter="deleted", field="deleted_at", unset="Live", is_set="Deleted"
)


# --- Customers -------------------------------------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(AddFormMixin, ObjectSectionsMixin, admin.ModelAdmin):
    list_display = ["__str__", "email", "public_id", "test_clock", "created_at", "deleted_at"]
    list_filter = [DeletedFilter, "created_at"]
    list_select_related = ["test_clock"]
    search_fields = ["name", "email", "public_id", "description"]
    readonly_fields = ["public_id", "test_clock", "created_at", "deleted_at"]
    fields = [
        "public_id",
        "name",
        "email",
        "description",
        "metadata",
        "test_clock",
        "created_at",
        "deleted_at",
    ]
    # Created with its own form: the test clock is chosen then and never changes.
    add_form = CustomerAddForm
    date_hierarchy = "created_at"
    actions = ["delete_selected"]
    # The customer page plus a "Portal link" button (extends admin/invoicing/customer/...).
    change_form_template = "portal/admin/customer_change_form.html"

    def get_urls(self):
        pages = [("<path:object_id>/portal-link/", self.portal_link_view, "portal_link")]
        return custom_page_urls(self, pages) + super().get_urls()

    def portal_link_view(self, request, object_id):
        return customers.customer_portal_link_view(self, request, object_id)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ("name", "email", "description")}
        fields["metadata"] = form.cleaned_data.get("metadata") or {}
        if change:
            services.customer_update(customer=obj, **fields)
        else:
            created = services.customer_create(
                **fields, test_clock=form.cleaned_data.get("test_clock")
            )
            obj.__dict__.update(created.__dict__)

    # --- Deleting: Django's confirmation pages, saying what ends at once ---------------------

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.deleted_at is not None:
            return False  # already deleted
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        # Nothing is deleted from the database: the row stays (invoices and usage point at it)
        # and is hidden; see customer_deletion_context for what ends.
        deleted = [format_html('<a href="{}">{}</a>', change_url(obj), obj) for obj in objs]
        return deleted, {self.opts.verbose_name_plural: len(deleted)}, set(), []

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        context = customers.customer_deletion_context([obj]) if obj is not None else {}
        return super().delete_view(request, object_id, {**context, **(extra_context or {})})

    @admin.action(description="Delete selected customers…", permissions=["delete"])
    def delete_selected(self, request, queryset):
        response = django_delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse):  # the confirmation page
            response.context_data.update(customers.customer_deletion_context(list(queryset)))
        return response

    def delete_model(self, request, obj):
        customers.customers_delete(self, request, [obj])

    def delete_queryset(self, request, queryset):
        customers.customers_delete(self, request, list(queryset))

    def object_page_context(self, request, obj: Customer) -> dict[str, Any]:
        # The billing sections (templates/admin/invoicing/customer/change_form.html).
        return {
            **customers.customer_page_context(obj),
            "can_add_subscription": request.user.has_perm("invoicing.add_subscription"),
            "can_add_credit_grant": request.user.has_perm("credits.add_creditgrant"),
        }


# --- Subscriptions ---------------------------------------------------------------------------


@admin.register(Subscription)
class SubscriptionAdmin(ObjectSectionsMixin, admin.ModelAdmin):
    form = SubscriptionChangeForm
    list_display = [
        "public_id",
        "customer",
        "status",
        "current_period",
        "cancel_at_period_end",
        "created_at",
    ]
    list_filter = ["status", "collection_method"]
    list_select_related = ["customer"]
    search_fields = ["public_id", "customer__public_id", "customer__name", "customer__email"]
    search_help_text = "A subscription id (sub_…), or a customer's id, name or email."
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["public_id", "customer_link", "status", "currency", "billing"]}),
        (
            "Period",
            {
                "fields": [
                    "billing_cycle_anchor",
                    "current_period_start",
                    "current_period_end",
                    "cancel_at_period_end",
                    "canceled_at",
                    "ended_at",
                ]
            },
        ),
        ("Collection", {"fields": ["collection_method", "days_until_due"]}),
        (None, {"fields": ["metadata", "created_at"]}),
    ]
    # Everything but "cancel at period end" and metadata, which subscription_update changes.
    readonly_fields = [
        name
        for name in flatten_fieldsets(fieldsets)
        if name not in ("cancel_at_period_end", "metadata")
    ]

    def get_urls(self):
        pages = [("<path:object_id>/cancel/", self.cancel_view, "cancel")]
        return custom_page_urls(self, pages) + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        # Customer, then prices, then a preview of the first invoice, then confirm.
        return subscriptions.subscription_create_view(self, request)

    def cancel_view(self, request, object_id):
        return subscriptions.subscription_cancel_view(self, request, object_id)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == Subscription.Status.CANCELED:
            return False  # a canceled subscription is history
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # invoices refer to subscriptions; cancel instead

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("invoicing.change_subscription")

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if "metadata" in changes:
            changes["metadata"] = changes["metadata"] or {}
        if changes:
            services.subscription_update(subscription=obj, **changes)

    def object_page_context(self, request, obj: Subscription) -> dict[str, Any]:
        return subscriptions.subscription_page_context(self, request, obj)

    @admin.display(description="Current period", ordering="current_period_end")
    def current_period(self, obj: Subscription) -> str:
        return f"{obj.current_period_start:%Y-%m-%d} to {obj.current_period_end:%Y-%m-%d}"

    customer_link = link_column("customer", "Customer")

    @admin.display(description="Billing")
    def billing(self, obj: Subscription) -> str:
        every = "" if obj.interval_count == 1 else f"{obj.interval_count} "
        return f"Every {every}{obj.interval}{'' if obj.interval_count == 1 else 's'}"


# --- Invoices --------------------------------------------------------------------------------


@admin.register(Invoice)
class InvoiceAdmin(ObjectSectionsMixin, admin.ModelAdmin):
    list_display = [
        "number_or_id",
        "customer",
        "status",
        "total_display",
        "amount_due_display",
        "billing_reason",
        "created_at",
        "due_date",
    ]
    list_filter = ["status", "billing_reason", "collection_method", "currency"]
    list_select_related = ["customer"]
    search_fields = ["number", "public_id", "customer__public_id", "customer__name"]
    search_help_text = "An invoice number or id (in_…), or a customer's id (cus_…) or name."
    date_hierarchy = "created_at"
    actions = ["finalize_invoices", "mark_paid", "void_invoices", "mark_uncollectible"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "public_id",
                    "customer_link",
                    "subscription_link",
                    "status",
                    "billing_reason",
                    "currency",
                    "description",
                ]
            },
        ),
        ("Collection", {"fields": ["collection_method", "days_until_due", "due_date"]}),
        (
            "Dates",
            {
                "fields": [
                    "period_start",
                    "period_end",
                    "created_at",
                    "finalize_after",
                    "finalized_at",
                    "paid_at",
                    "paid_out_of_band",
                    "voided_at",
                    "marked_uncollectible_at",
                ]
            },
        ),
        (None, {"fields": ["metadata"]}),
    ]
    # Everything on the page: statuses change only through the actions.
    readonly_fields = flatten_fieldsets(fieldsets)

    def get_urls(self):
        pages = [
            ("late-usage/", self.late_usage_view, "late_usage"),
            ("<path:object_id>/transition/<slug:slug>/", self.transition_view, "transition"),
            ("<path:object_id>/grant-credits/", self.grant_credits_view, "grant_credits"),
        ]
        return custom_page_urls(self, pages) + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        # "Create invoice": customer and currency, then items, then review and create or send.
        return invoice_create.invoice_create_view(self, request)

    def late_usage_view(self, request):
        return late_usage.late_usage_view(self, request)

    def transition_view(self, request, object_id, slug):
        return invoice_transitions.invoice_transition_view(self, request, object_id, slug)

    def grant_credits_view(self, request, object_id):
        # "Grant credits" from a paid one-off invoice: the credit grant form, prefilled.
        return invoices.invoice_grant_credits_view(self, request, object_id)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "late_usage_url": reverse("admin:invoicing_invoice_late_usage"),
        }
        return super().changelist_view(request, extra_context)

    def object_page_context(self, request, obj: Invoice) -> dict[str, Any]:
        return invoices.invoice_page_context(self, request, obj)

    # --- Permissions: invoices change only through their status actions ------------------

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return False  # the page is read-only; statuses change through the actions
        return super().has_change_permission(request)

    def has_transition_permission(self, request) -> bool:
        return request.user.has_perm("invoicing.change_invoice")

    def has_grant_credits_permission(self, request) -> bool:
        return request.user.has_perm("credits.add_creditgrant")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only a one-off draft that nobody finalized; a finalized invoice is voided instead.
        if obj is not None and not (
            obj.status == Invoice.Status.DRAFT
            and obj.billing_reason == Invoice.BillingReason.MANUAL
            and obj.subscription_id is None
        ):
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            services.invoice_delete_draft(invoice=obj)
        except BillingError as error:
            self.message_user(request, error.message, messages.ERROR)

    def delete_queryset(self, request, queryset):
        for invoice in queryset:
            self.delete_model(request, invoice)

    # --- The list ---------------------------------------------------------------------------

    @admin.display(description="Invoice", ordering="-pk")
    def number_or_id(self, obj: Invoice) -> str:
        return obj.number or f"{obj.public_id} (draft)"

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj: Invoice) -> str:
        return format_minor_units(obj.total, obj.currency)

    @admin.display(description="Amount due", ordering="amount_due")
    def amount_due_display(self, obj: Invoice) -> str:
        return format_minor_units(obj.amount_due, obj.currency)

    customer_link = link_column("customer", "Customer")
    subscription_link = link_column("subscription", "Subscription")

    # --- Status actions: each shows a confirmation page first ------------------------------

    def _transition(self, request, queryset, action: str):
        _, transition = invoice_transitions.TRANSITIONS_BY_ACTION[action]
        most = invoice_transitions.MAX_INVOICES_PER_ACTION
        # One more than allowed, so that the page can refuse a selection that is too large.
        selected = list(queryset.select_related("customer").order_by("pk")[: most + 1])
        return invoice_transitions.invoice_transition_confirm(self, request, selected, transition)

    @admin.action(description="Finalize selected invoices…", permissions=["transition"])
    def finalize_invoices(self, request, queryset):
        return self._transition(request, queryset, "finalize_invoices")

    @admin.action(
        description="Mark selected invoices paid (out of band)…", permissions=["transition"]
    )
    def mark_paid(self, request, queryset):
        return self._transition(request, queryset, "mark_paid")

    @admin.action(description="Void selected invoices…", permissions=["transition"])
    def void_invoices(self, request, queryset):
        return self._transition(request, queryset, "void_invoices")

    @admin.action(description="Mark selected invoices uncollectible…", permissions=["transition"])
    def mark_uncollectible(self, request, queryset):
        return self._transition(request, queryset, "mark_uncollectible")


# --- Test clocks -----------------------------------------------------------------------------


@admin.register(TestClock)
class TestClockAdmin(AddFormMixin, ObjectSectionsMixin, admin.ModelAdmin):
    list_display = ["__str__", "public_id", "frozen_time", "status", "customer_count", "created_at"]
    list_filter = ["status", DeletedFilter]
    search_fields = ["name", "public_id"]
    readonly_fields = ["public_id", "name", "frozen_time", "status", "created_at", "deleted_at"]
    fields = readonly_fields
    add_form = TestClockAddForm

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

    def get_urls(self):
        pages = [("<path:object_id>/advance/", self.advance_view, "advance")]
        return custom_page_urls(self, pages) + super().get_urls()

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return False  # a clock only moves through "Advance"
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # customers (and their invoices) stay attached to their clock

    def has_advance_permission(self, request) -> bool:
        return request.user.has_perm("invoicing.change_testclock")

    def save_model(self, request, obj, form, change):
        created = services.test_clock_create(
            frozen_time=form.cleaned_data["frozen_time"], name=form.cleaned_data["name"]
        )
        obj.__dict__.update(created.__dict__)

    def advance_view(self, request, object_id):
        return test_clocks.test_clock_advance_view(self, request, object_id)

    def object_page_context(self, request, obj: TestClock) -> dict[str, Any]:
        return test_clocks.test_clock_page_context(self, request, obj)

    @admin.display(description="Customers", ordering="customer_count")
    def customer_count(self, obj: TestClock) -> int:
        return obj.customer_count


# --- Billing run failures --------------------------------------------------------------------


ResolvedFilter = timestamp_set_filter(
    title="resolved",
    parameter="resolved",
    field="resolved_at",
    unset="Unresolved",
    is_set="Resolved",
)


@admin.register(BillingRunFailure)
class BillingRunFailureAdmin(admin.ModelAdmin):
    list_display = ["created_at", "subscription", "customer", "step", "error_summary", "resolved"]
    list_filter = [ResolvedFilter, "step"]
    list_select_related = ["subscription__customer"]
    search_fields = ["subscription__public_id", "subscription__customer__public_id", "error"]
    fields = readonly_fields = [
        "subscription_link",
        "customer",
        "step",
        "error",
        "created_at",
        "resolved_at",
    ]
    actions = ["mark_resolved"]

    def has_add_permission(self, request) -> bool:
        return False  # recorded by the billing run

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept as a record; mark resolved instead

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("invoicing.change_billingrunfailure")

    customer = link_column("subscription.customer", "Customer")
    subscription_link = link_column("subscription", "Subscription")

    @admin.display(description="Error")
    def error_summary(self, obj: BillingRunFailure) -> str:
        return obj.error if len(obj.error) <= 120 else f"{obj.error[:119]}…"

    @admin.display(description="Resolved", boolean=True, ordering="resolved_at")
    def resolved(self, obj: BillingRunFailure) -> bool:
        return obj.resolved_at is not None

    @admin.action(description="Mark selected failures resolved", permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        # invoicing.services has no function for this yet (reported); until it does, the
        # conditional update below is the whole rule: only unresolved rows, stamped once.
        failures = list(queryset.filter(resolved_at__isnull=True))
        BillingRunFailure.objects.filter(
            pk__in=[failure.pk for failure in failures], resolved_at__isnull=True
        ).update(resolved_at=clock.now())
        for failure in failures:
            self.log_change(request, failure, "Marked resolved.")
        self.message_user(request, f"Marked {len(failures)} failure(s) resolved.", messages.SUCCESS)
