"""Admin for the product catalog: the "Create product" flow, products and prices.

* "Add product" opens the create-product page (``<product>/create/``): a product, then one
  or more prices, each flat rate or usage-based (per unit, per package, tiered), with an
  inline "create a new meter". A submit shows a preview of every price's terms in words;
  only the confirm POST writes, in one transaction, through the services.
* "Add prices" on a product page (``<product>/<id>/add-prices/``) is the same page for an
  existing product: that's how a price is replaced, since a price's amounts never change
  after creation (archive it and create a new one, as in the Stripe Dashboard).
* Price pages show the amounts read-only, with the terms in words; only nickname,
  lookup key, metadata and active can change, through ``price_update``.
* "Archive" (products or prices) goes through a confirmation page that says what archiving
  stops and what it doesn't; unarchiving is immediate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing_site.admin_kit import (
    COMMON_CURRENCIES,
    ConfirmedAction,
    call_for_each,
    carried_fields,
    change_url,
    confirm_action,
    custom_page_urls,
    page_context,
    render,
)
from billing_site.formatting import decimal_string
from catalog import services
from catalog.admin_forms import (
    MAX_PRICES,
    PriceChangeForm,
    PriceForm,
    ProductChangeForm,
    ProductCreateFlow,
)
from catalog.describe import (
    billing_period_label,
    describe_price_terms,
    describe_price_terms_short,
)
from catalog.models import Price, PriceTier, Product
from catalog.money import format_minor_units

PRODUCT_FIELDSETS = [(None, {"fields": ["name", "description"]})]
# The tier table is rendered after the first fieldset (see includes/price_form.html).
PRICE_FIELDSETS = [
    (
        None,
        {
            "fields": [
                "pricing_model",
                "currency",
                "amount",
                ("package_size", "package_rounding"),
            ],
            "classes": ["price-pricing"],
        },
    ),
    (
        "Billing period",
        {"fields": ["billing_period", ("interval_count", "interval")], "classes": ["price-period"]},
    ),
    (
        "Meter",
        {
            "fields": [
                "meter",
                "new_meter_display_name",
                "new_meter_event_name",
                "new_meter_formula",
            ],
            "classes": ["price-meter"],
        },
    ),
    ("Additional options", {"fields": ["nickname", "lookup_key"], "classes": ["collapse"]}),
]
# Submit buttons of the create page, never carried from the preview back into the form.
_CONTROL_KEYS = {"_preview", "_confirm", "_edit", "_add_price", "_add_tier"}


@dataclass(frozen=True)
class _PriceBlock:
    """One price form as the template draws it."""

    form: PriceForm
    index: int | str
    adminform: helpers.AdminForm

    @property
    def number(self) -> int | str:
        return self.index + 1 if isinstance(self.index, int) else ""


def _price_block(form: PriceForm, index: int | str) -> _PriceBlock:
    return _PriceBlock(
        form=form, index=index, adminform=helpers.AdminForm(form, PRICE_FIELDSETS, {})
    )


# --- Archiving: products and prices alike -----------------------------------------------------


def _archiving(noun: str, *, explanation: str, columns, cells, archive) -> ConfirmedAction:
    """The confirmation page of "Archive selected products/prices": rows already archived are
    listed but left alone."""
    return ConfirmedAction(
        action=f"archive_{noun}s",
        verb="Archive",
        done="Archived",
        explanation=explanation,
        columns=columns,
        cells=cells,
        refusal=lambda obj: None if obj.active else "already archived.",
        service=archive,
        noun=(noun, f"{noun}s"),
    )


def _unarchive_action(noun: str, unarchive: Callable[[Any], Any]):
    """The admin action "Unarchive selected products/prices": the archived ones among them, each
    through the service."""

    @admin.action(description=f"Unarchive selected {noun}s", permissions=["change"])
    def action(model_admin, request: HttpRequest, queryset) -> None:
        call_for_each(
            model_admin,
            request,
            queryset.filter(active=False),
            unarchive,
            log=lambda obj: "Unarchived.",
            summary=lambda count: f"Unarchived {count} {noun}(s).",
        )

    action.__name__ = f"unarchive_{noun}s"
    return action


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductChangeForm
    list_display = ["name", "public_id", "active", "price_count", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "public_id", "description"]
    fields = [
        "public_id",
        "name",
        "description",
        "active",
        "metadata",
        "default_price",
        "price_list",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["public_id", "default_price", "price_list", "created_at", "updated_at"]
    actions = ["archive_products", "unarchive_products"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(price_count=Count("prices"))

    @admin.display(description="Prices", ordering="price_count")
    def price_count(self, obj: Product) -> int:
        return obj.price_count

    @admin.display(description="Prices")
    def price_list(self, obj: Product) -> str:
        prices = obj.prices.select_related("meter").prefetch_related("tiers").order_by("pk")
        if not prices:
            return "No prices yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    change_url(price),
                    price.public_id,
                    price.nickname or "-",
                    describe_price_terms_short(price.terms, price.currency),
                    billing_period_label(price.recurring_interval, price.recurring_interval_count),
                    "Active" if price.active else "Archived",
                )
                for price in prices
            ),
        )
        return format_html(
            '<table class="catalog-price-list"><thead><tr><th>Price</th><th>Nickname</th>'
            "<th>Terms</th><th>Billing period</th><th>Status</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Product, form, change: bool) -> None:
        # Only changes reach here: adding goes through the create-product flow.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            services.product_update(product=obj, **changes)

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        services.product_delete(product=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for product in queryset:
            services.product_delete(product=product)

    @admin.action(description="Archive selected products…", permissions=["change"])
    def archive_products(self, request: HttpRequest, queryset):
        archiving = _archiving(
            "product",
            explanation=PRODUCT_ARCHIVING_EXPLAINED,
            columns=["Product", "Prices"],
            cells=lambda product: [
                f"{product.name} ({product.public_id})",
                f"{product.price_count} price{'' if product.price_count == 1 else 's'}",
            ],
            archive=lambda product: services.product_update(product=product, active=False),
        )
        return confirm_action(self, request, queryset, archiving)

    unarchive_products = _unarchive_action(
        "product", lambda product: services.product_update(product=product, active=True)
    )

    # --- the create-product flow -----------------------------------------------------------

    def get_urls(self):
        pages = [
            ("create/", self.create_product_view, "create"),
            ("<path:object_id>/add-prices/", self.create_product_view, "add_prices"),
        ]
        return custom_page_urls(self, pages) + super().get_urls()

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        # A product is created together with its prices, so "Add product" opens that page.
        return HttpResponseRedirect(
            reverse("admin:catalog_product_create", current_app=self.admin_site.name)
        )

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_add_prices": request.user.has_perm("catalog.add_price"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def create_product_view(self, request: HttpRequest, object_id: str | None = None):
        product = None
        if object_id is not None:
            product = self.get_object(request, unquote(object_id))
            if product is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not request.user.has_perm("catalog.add_price") or (
            product is None and not self.has_add_permission(request)
        ):
            raise PermissionDenied
        flow_options = {
            "product": product,
            "can_create_meters": request.user.has_perm("metering.add_meter"),
        }
        if request.method != "POST":
            return self._render_create_form(request, ProductCreateFlow(**flow_options))

        post = request.POST
        if {"_edit", "_add_price", "_add_tier"} & set(post):
            flow = ProductCreateFlow.for_editing(
                post,
                add_price="_add_price" in post,
                add_tier_to=post.get("_add_tier"),
                **flow_options,
            )
            return self._render_create_form(request, flow)

        flow = ProductCreateFlow(post, **flow_options)
        if "_confirm" in post:
            with transaction.atomic():
                created = flow.save() if flow.is_valid() else None
                if created is not None:
                    self._log_created(request, created)
            if created is not None:
                count = len(created.prices)
                self.message_user(
                    request,
                    format_html(
                        "{} “{}” ({}) with {} price{}.",
                        "Created product" if created.product_is_new else "Added to product",
                        created.product.name,
                        created.product.public_id,
                        count,
                        "" if count == 1 else "s",
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse(
                        "admin:catalog_product_change",
                        args=[created.product.pk],
                        current_app=self.admin_site.name,
                    )
                )
        elif flow.is_valid() and flow.dry_run():
            return self._render_preview(request, flow)
        return self._render_create_form(request, flow)

    def _log_created(self, request: HttpRequest, created: services.CreatedCatalog) -> None:
        for meter in created.meters:
            self.log_addition(request, meter, [{"added": {}}])
        for price in created.prices:
            self.log_addition(request, price, [{"added": {}}])
        added_prices = [{"added": {"name": "price", "object": str(p)}} for p in created.prices]
        if created.product_is_new:
            self.log_addition(request, created.product, [{"added": {}}, *added_prices])
        else:
            self.log_change(request, created.product, added_prices)

    def _create_context(
        self, request: HttpRequest, product: Product | None, **extra: Any
    ) -> dict[str, Any]:
        return page_context(
            self,
            request,
            title=f"Add prices to {product.name}" if product else "Create a product",
            product=product,
            **extra,
        )

    def _render_create_form(self, request: HttpRequest, flow: ProductCreateFlow) -> HttpResponse:
        product_adminform = None
        if flow.product_form is not None:
            product_adminform = helpers.AdminForm(flow.product_form, PRODUCT_FIELDSETS, {})
        context = self._create_context(
            request,
            flow.product,
            flow=flow,
            has_errors=flow.has_errors,
            product_adminform=product_adminform,
            formset=flow.prices,
            price_blocks=[_price_block(form, i) for i, form in enumerate(flow.price_forms)],
            empty_price=_price_block(flow.prices.empty_form, "__prefix__"),
            can_add_price=len(flow.price_forms) < MAX_PRICES,
            currency_codes=COMMON_CURRENCIES,
        )
        return render(self, request, "admin/catalog/product/create_product.html", context)

    def _render_preview(self, request: HttpRequest, flow: ProductCreateFlow) -> HttpResponse:
        context = self._create_context(
            request,
            flow.product,
            product_data=flow.product_form.cleaned_data if flow.product_form else None,
            prices=flow.previews(),
            # The submitted form travels in hidden fields; the confirm POST validates it again.
            carried=carried_fields(request, _CONTROL_KEYS),
        )
        return render(self, request, "admin/catalog/product/create_product_preview.html", context)


class PriceTierInline(admin.TabularInline):
    """A price's tiers, read-only: like every amount of a price, they never change."""

    model = PriceTier
    fields = readonly_fields = [
        "tier",
        "units",
        "per_unit",
        "flat_fee",
        "unit_amount_minor",
        "flat_amount_minor",
    ]
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "Tiers (read-only)"

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("price")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        # Tiers are part of the price: whoever may see the price sees them.
        return request.user.has_perm("catalog.view_price") or request.user.has_perm(
            "catalog.change_price"
        )

    @admin.display(description="Tier")
    def tier(self, obj: PriceTier) -> int:
        return obj.position + 1

    @admin.display(description="Up to (units)")
    def units(self, obj: PriceTier) -> str:
        return "inf" if obj.up_to is None else f"{obj.up_to:,}"

    @admin.display(description="Per unit")
    def per_unit(self, obj: PriceTier) -> str:
        return format_minor_units(obj.unit_amount_decimal, obj.price.currency)

    @admin.display(description="Flat fee")
    def flat_fee(self, obj: PriceTier) -> str:
        return format_minor_units(obj.flat_amount_decimal, obj.price.currency)

    @admin.display(description="Per unit (minor units)")
    def unit_amount_minor(self, obj: PriceTier) -> str:
        return decimal_string(obj.unit_amount_decimal)

    @admin.display(description="Flat fee (minor units)")
    def flat_amount_minor(self, obj: PriceTier) -> str:
        return decimal_string(obj.flat_amount_decimal)


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    form = PriceChangeForm
    list_display = [
        "public_id",
        "product",
        "nickname",
        "pricing",
        "currency",
        "type",
        "recurring_usage_type",
        "meter",
        "active",
        "created_at",
    ]
    list_filter = [
        "active",
        "type",
        "recurring_usage_type",
        "billing_scheme",
        "currency",
        ("product", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["public_id", "nickname", "lookup_key", "product__name"]
    list_select_related = ["product", "meter"]
    inlines = [PriceTierInline]
    actions = ["archive_prices", "unarchive_prices"]

    fieldsets = [
        (
            None,
            {"fields": ["public_id", "product", "active", "nickname", "lookup_key", "metadata"]},
        ),
        (
            "Terms",
            {
                "description": "A price's amounts can't be changed: archive it and add a new "
                "price to the product instead.",
                "fields": [
                    "terms_in_words",
                    "currency",
                    "type",
                    "billing_period",
                    "recurring_usage_type",
                    "meter",
                    "billing_scheme",
                    "tiers_mode",
                    "unit_amount",
                    "package",
                    "created_at",
                ],
            },
        ),
    ]
    # Everything but what the price service lets change (nickname, lookup key, metadata, active).
    readonly_fields = [
        name for name in flatten_fieldsets(fieldsets) if name not in services.PRICE_MUTABLE_FIELDS
    ]

    class Media:
        css = {"all": ["billing_site/create_product.css"]}

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("tiers")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        # A price is created with its product, on the create-product page, which validates
        # it with a preview first; "Add price" stays visible and leads there. To add prices
        # to an existing product, use "Add prices" on that product's page.
        return HttpResponseRedirect(
            reverse("admin:catalog_product_create", current_app=self.admin_site.name)
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Subscriptions and invoices refer to prices; archive them instead.
        return False

    def save_model(self, request: HttpRequest, obj: Price, form, change: bool) -> None:
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.PRICE_MUTABLE_FIELDS
        }
        if changes:
            services.price_update(price=obj, **changes)

    @admin.display(description="Pricing")
    def pricing(self, obj: Price) -> str:
        return describe_price_terms_short(obj.terms, obj.currency)

    @admin.display(description="Terms in words")
    def terms_in_words(self, obj: Price) -> str:
        lines = describe_price_terms(obj.terms, obj.currency)
        return format_html(
            '<ul class="catalog-terms">{}</ul>',
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    @admin.display(description="Billing period")
    def billing_period(self, obj: Price) -> str:
        return billing_period_label(obj.recurring_interval, obj.recurring_interval_count)

    @admin.display(description="Unit amount")
    def unit_amount(self, obj: Price) -> str:
        if obj.unit_amount_decimal is None:
            return "- (tiered: see the tiers below)"
        return (
            f"{format_minor_units(obj.unit_amount_decimal, obj.currency)} "
            f"({decimal_string(obj.unit_amount_decimal)} in minor units)"
        )

    @admin.display(description="Package")
    def package(self, obj: Price) -> str:
        if not obj.transform_divide_by:
            return "-"
        return f"{obj.transform_divide_by:,} units per package, rounded {obj.transform_round}"

    @admin.action(description="Archive selected prices…", permissions=["change"])
    def archive_prices(self, request: HttpRequest, queryset):
        archiving = _archiving(
            "price",
            explanation=PRICE_ARCHIVING_EXPLAINED,
            columns=["Price", "Product", "Terms"],
            cells=lambda price: [
                f"{price.display_name} ({price.public_id})",
                price.product.name,
                describe_price_terms_short(price.terms, price.currency),
            ],
            archive=lambda price: services.price_archive(price=price),
        )
        return confirm_action(self, request, queryset.select_related("product"), archiving)

    unarchive_prices = _unarchive_action(
        "price", lambda price: services.price_update(price=price, active=True)
    )


PRODUCT_ARCHIVING_EXPLAINED = (
    "An archived product is no longer offered in the admin's subscription and credit grant "
    "forms. Its prices are not archived: subscriptions that have them keep being billed, and "
    "the API still accepts them for new subscriptions unless you archive the prices too. "
    "Unarchive the product to offer it again."
)
PRICE_ARCHIVING_EXPLAINED = (
    "An archived price can't be used for new subscriptions or invoice items (the API and the "
    "admin refuse it). Subscriptions that already have it keep being billed at it until they "
    "are canceled. Its amounts never change: to change a price, archive it and add a new one. "
    "Unarchive it to offer it again."
)
