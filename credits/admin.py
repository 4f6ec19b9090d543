"""The credits admin: credit grants and the credit ledger.

- Credit grants: the list shows each grant's remaining balance, derived from the ledger in the
  page's one query (an annotated subquery), and its status at the customer's now (active,
  scheduled, expired, voided). "Add" is the "New credit grant" page (name, amount, expiry,
  priority, applicability, category), which calls `credit_grant_create`. A grant page is
  read-only, with its ledger rows; "Expire now" and "Void" go through a confirmation page and
  are logged with who did them. Grants are never deleted: the ledger refers to them.
- Credit balance transactions: the append-only ledger, read-only.

"Grant credits" from a paid one-off invoice is on the invoice page (invoicing/admin.py) and
draws the same form. Custom pages live in credits/admin_views.py, the form in
credits/admin_forms.py.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join

from billing_site import clock
from billing_site.admin_kit import ObjectSectionsMixin, custom_page_urls, link_column
from catalog.money import format_minor_units
from credits import admin_views, selectors
from credits.admin_forms import Customer
from credits.models import CreditBalanceTransaction, CreditGrant
from credits.presenters import STAFF_STATUS_LABELS, ledger_rows

T = CreditBalanceTransaction
G = CreditGrant
MAX_LEDGER_ROWS_ON_GRANT_PAGE = 100


def _remaining_subquery() -> Subquery:
    """The grant's ledger added up: credits minus debits."""
    signed = Case(
        When(type=T.Type.CREDIT, then=F("amount")),
        default=-F("amount"),
        output_field=BigIntegerField(),
    )
    return Subquery(
        T.objects.filter(grant=OuterRef("pk"))
        .order_by()
        .values("grant")
        .annotate(total=Sum(signed))
        .values("total")[:1],
        output_field=BigIntegerField(),
    )


class GrantStatusFilter(admin.SimpleListFilter):
    """Status at each customer's now: its test clock's frozen time, or the real clock."""

    title = "status"
    parameter_name = "status"

    STATUSES = (G.STATUS_ACTIVE, G.STATUS_SCHEDULED, G.STATUS_EXPIRED, G.STATUS_VOIDED)

    def lookups(self, request, model_admin):
        return [(status, STAFF_STATUS_LABELS[status]) for status in self.STATUSES]

    def queryset(self, request, queryset):
        # The database's twin of CreditGrant.status_at, so the list can filter on it.
        if self.value() not in self.STATUSES:
            return queryset
        queryset = queryset.annotate(
            customer_now=Coalesce(
                "customer__test_clock__frozen_time",
                Value(clock.now(), output_field=DateTimeField()),
            )
        )
        live = Q(voided_at__isnull=True)
        expired = Q(expired_at__isnull=False) | Q(expires_at__lte=F("customer_now"))
        return queryset.filter(
            {
                G.STATUS_VOIDED: ~live,
                G.STATUS_EXPIRED: live & expired,
                G.STATUS_SCHEDULED: live & ~expired & Q(effective_at__gt=F("customer_now")),
                G.STATUS_ACTIVE: live & ~expired & Q(effective_at__lte=F("customer_now")),
            }[self.value()]
        )


# --- Credit grants ---------------------------------------------------------------------------


@admin.register(CreditGrant)
class CreditGrantAdmin(ObjectSectionsMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "public_id",
        "customer",
        "amount_display",
        "remaining_display",
        "category",
        "priority",
        "effective_at",
        "expires_at",
        "status",
    ]
    list_filter = ["category", "currency", GrantStatusFilter]
    list_select_related = ["customer__test_clock"]
    search_fields = ["name", "public_id", "customer__public_id", "customer__name"]
    search_help_text = "A grant's name or id (credgr_…), or a customer's id (cus_…) or name."
    date_hierarchy = "created_at"
    fieldsets = [
        (
            None,
            {"fields": ["public_id", "name", "customer_link", "status", "category", "metadata"]},
        ),
        ("Amount", {"fields": ["amount_display", "remaining_display", "source_invoice_link"]}),
        ("Applicability", {"fields": ["priority", "applicability"]}),
        (
            "Dates (UTC)",
            {"fields": ["effective_at", "expires_at", "expired_at", "voided_at", "created_at"]},
        ),
    ]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(remaining=_remaining_subquery())

    def get_urls(self):
        pages = [("<path:object_id>/<slug:slug>/confirm/", self.grant_action_view, "action")]
        return custom_page_urls(self, pages) + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        # "New credit grant": one form, one POST to credit_grant_create.
        if not self.has_add_permission(request):
            raise PermissionDenied
        return admin_views.credit_grant_form_view(
            self,
            request,
            initial=self._initial(request),
            title="New credit grant",
            page_label="New credit grant",
        )

    def _initial(self, request: HttpRequest) -> dict:
        initial: dict = {}
        customer = _customer_from_query(request.GET.get("customer"))
        if customer is not None:
            initial["customer"] = customer
            currencies = selectors.subscription_currencies(customer)
            if len(currencies) == 1:
                initial["currency"] = currencies.pop()
        return initial

    def grant_action_view(self, request, object_id, slug):
        return admin_views.credit_grant_action_view(self, request, object_id, slug)

    # --- Permissions: grants change only through "Expire now" and "Void" --------------------

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return False  # the page is read-only
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the ledger refers to grants; void instead

    def has_grant_action_permission(self, request) -> bool:
        return request.user.has_perm("credits.change_creditgrant")

    def object_page_context(self, request, obj: CreditGrant) -> dict:
        transactions = obj.transactions.select_related("grant", "invoice").order_by("-pk")
        status = obj.status_at(obj.customer.billing_now())
        can_act = self.has_grant_action_permission(request)
        return {
            "ledger": ledger_rows(transactions[:MAX_LEDGER_ROWS_ON_GRANT_PAGE]),
            "all_ledger_url": (
                f"{reverse('admin:credits_creditbalancetransaction_changelist')}?q={obj.public_id}"
            ),
            "action_links": [
                (action.label, reverse("admin:credits_creditgrant_action", args=[obj.pk, slug]))
                for slug, action in admin_views.GRANT_ACTIONS.items()
                if can_act
                and status != G.STATUS_VOIDED
                and not (slug == "expire" and obj.expired_at is not None)
            ],
        }

    # --- Columns and fields -----------------------------------------------------------------

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: CreditGrant) -> str:
        return format_minor_units(obj.amount, obj.currency)

    @admin.display(description="Remaining", ordering="remaining")
    def remaining_display(self, obj: CreditGrant) -> str:
        return format_minor_units(obj.remaining or 0, obj.currency)

    @admin.display(description="Status")
    def status(self, obj: CreditGrant) -> str:
        return STAFF_STATUS_LABELS[obj.status_at(obj.customer.billing_now())]

    customer_link = link_column("customer", "Customer")
    source_invoice_link = link_column("source_invoice", "Granted from invoice", label="label")

    @admin.display(description="Applies to")
    def applicability(self, obj: CreditGrant) -> str:
        if obj.applies_to_all_metered:
            return "All metered prices"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:catalog_price_change", args=[price.pk]), price)
                for price in obj.prices.select_related("product").order_by("pk")
            ),
        )


def _customer_from_query(value: str | None):
    """The `?customer=<pk>` of the add page, if it names a live customer."""
    if not value or not value.isdigit():
        return None
    return Customer.objects.live().filter(pk=int(value)).first()


# --- The ledger ------------------------------------------------------------------------------


@admin.register(CreditBalanceTransaction)
class CreditBalanceTransactionAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "effective_at",
        "grant_link",
        "customer",
        "type",
        "reason",
        "amount_display",
        "invoice_link",
    ]
    list_filter = ["reason", "type"]
    list_select_related = ["grant", "customer", "invoice"]
    search_fields = ["public_id", "grant__public_id", "customer__public_id"]
    search_help_text = "A grant's id (credgr_…) or a customer's id (cus_…)."
    date_hierarchy = "effective_at"
    fields = readonly_fields = [
        "public_id",
        "grant_link",
        "customer_link",
        "type",
        "reason",
        "amount_display",
        "invoice_link",
        "effective_at",
        "created_at",
    ]

    # Append-only: rows are written by the credits services, never by hand.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: CreditBalanceTransaction) -> str:
        return format_minor_units(obj.signed_amount, obj.grant.currency)

    grant_link = link_column("grant", "Grant", ordering="grant")
    customer_link = link_column("customer", "Customer")
    invoice_link = link_column("invoice", "Invoice", label="label")
