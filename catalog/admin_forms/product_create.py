"""The create-product page: a product (unless prices are added to one), then its prices.

The page mirrors the Stripe Dashboard: staff type amounts in the currency's MAJOR units
("200.00", "0.001"), pick a pricing model (flat rate, or usage-based per unit, per package
or tiered) and a billing period, and can create a meter inline. Everything works by plain
POST; the page's JavaScript only shows and hides fields and clones rows.

Field names follow Django's formset conventions: ``name`` and ``description`` for the
product, ``prices-TOTAL_FORMS`` and ``prices-<n>-<field>`` for each price, and tier rows as
``prices-<n>-tiers-<row>-up_to`` / ``-unit_amount`` / ``-flat_amount`` (see
:func:`catalog.admin_forms.tier_rows.parse_tier_rows`).

:class:`ProductCreateFlow` only reads the forms; the write is the service
:func:`catalog.services.product_create_with_prices` (one transaction). The preview runs it
as a dry run that is rolled back, so the services' own checks (an inactive meter, a taken
lookup key) show up before anything is saved; the confirm step runs it for real. Errors land
next to the field or the tier row they concern.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from billing_site.admin_kit import add_billing_error, dry_run
from billing_site.errors import BillingError
from catalog import services
from catalog.admin_forms.choices import MAX_PRICES
from catalog.admin_forms.price_form import PriceForm, PricePreview
from catalog.admin_forms.tier_rows import TierRow, default_tier_rows, parse_tier_rows
from catalog.models import Product
from metering.models import Meter

__all__ = ["PriceFormSet", "ProductCreateFlow", "ProductForm"]


class ProductForm(forms.Form):
    name = forms.CharField(
        max_length=250, help_text="Shown to customers on invoices and in the portal."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


class BasePriceFormSet(forms.BaseFormSet):
    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        if index is not None:
            # Every submitted price counts: a price form left at its defaults is an
            # error ("enter the price"), never silently skipped.
            kwargs["empty_permitted"] = False
        return kwargs


PriceFormSet = forms.formset_factory(
    PriceForm,
    formset=BasePriceFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=MAX_PRICES,
    validate_max=True,
)


class ProductCreateFlow:
    """The create-product page: a product form (unless adding prices to ``product``) and prices.

    ``data`` binds the forms (a submit); without it they show ``initial`` values, which is
    how the page comes back for editing after the preview or an "Add ..." button.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        product: Product | None = None,
        can_create_meters: bool = False,
        product_initial: dict[str, Any] | None = None,
        prices_initial: list[dict[str, Any]] | None = None,
    ) -> None:
        self.product = product
        self.is_bound = data is not None
        self.product_form = (
            None if product is not None else ProductForm(data, initial=product_initial)
        )
        active_meters = Meter.objects.filter(status=Meter.Status.ACTIVE).order_by(
            "display_name", "pk"
        )
        self.prices = PriceFormSet(
            data,
            prefix="prices",
            initial=prices_initial,
            form_kwargs={
                "meter_choices": [(meter.public_id, str(meter)) for meter in active_meters],
                "can_create_meters": can_create_meters,
            },
        )

    @classmethod
    def for_editing(
        cls,
        data: Mapping[str, Any],
        *,
        add_price: bool = False,
        add_tier_to: str | None = None,
        **kwargs: Any,
    ) -> ProductCreateFlow:
        """Unbound forms showing submitted ``data`` (no errors), plus a new price or tier row."""
        try:
            total = int(data.get("prices-TOTAL_FORMS", 1))
        except (TypeError, ValueError):
            total = 1
        total = min(max(total, 1), MAX_PRICES)
        prices_initial = []
        for index in range(total):
            prefix = f"prices-{index}"
            initial: dict[str, Any] = {
                name: data.get(f"{prefix}-{name}")
                for name in PriceForm.base_fields
                if f"{prefix}-{name}" in data
            }
            rows = parse_tier_rows(data, prefix) or default_tier_rows()
            if add_tier_to == prefix:
                # New tiers go before the open-ended last tier, as in the Stripe Dashboard.
                at = len(rows) - 1 if rows[-1].is_open_ended else len(rows)
                rows.insert(at, TierRow())
            initial["tiers"] = rows
            prices_initial.append(initial)
        if add_price and total < MAX_PRICES:
            prices_initial.append({})
        product_initial = {
            "name": data.get("name", ""),
            "description": data.get("description", ""),
        }
        return cls(None, product_initial=product_initial, prices_initial=prices_initial, **kwargs)

    @property
    def price_forms(self) -> list[PriceForm]:
        return list(self.prices.forms)

    def is_valid(self) -> bool:
        product_ok = self.product_form is None or self.product_form.is_valid()
        prices_ok = self.prices.is_valid()
        return product_ok and prices_ok

    @property
    def has_errors(self) -> bool:
        return self.is_bound and not self.is_valid()

    def previews(self) -> list[PricePreview]:
        return [form.preview(number) for number, form in enumerate(self.price_forms, start=1)]

    def dry_run(self) -> bool:
        """Run the service and roll back: True if it would succeed.

        Errors the services raise (an inactive meter, a lookup key or event name already
        taken, a billing period over three years) are added to the forms.
        """
        try:
            dry_run(self._create)
        except BillingError as error:
            self._add_service_error(error)
            return False
        return True

    def save(self) -> services.CreatedCatalog | None:
        """Create the product, its new meters and its prices in one transaction, or nothing."""
        try:
            return self._create()
        except BillingError as error:
            self._add_service_error(error)
            return None

    def _create(self) -> services.CreatedCatalog:
        product_data = self.product_form.cleaned_data if self.product_form is not None else {}
        return services.product_create_with_prices(
            product=self.product,
            name=product_data.get("name", ""),
            description=product_data.get("description", ""),
            prices=[form.price_input() for form in self.price_forms],
        )

    def _add_service_error(self, error: BillingError) -> None:
        if isinstance(error, services.PricesRejected):
            for index, price_error in error.errors.items():
                self.price_forms[index].add_service_error(price_error)
            return
        # Prices are only tried once the product exists: anything else is the product's.
        assert self.product_form is not None, error
        add_billing_error(self.product_form, error, {})
