"""Forms of the catalog admin, by concern.

* :mod:`.product_create`: the "Create product" page (a product form, a formset of prices, and
  :class:`ProductCreateFlow`, which calls ``catalog.services.product_create_with_prices``);
* :mod:`.price_form`: one price of that page, from typed input to a ``PriceInput``;
* :mod:`.tier_rows`: the tier table as typed; :mod:`.amounts`: major-unit amounts to minor
  units; :mod:`.choices`: pricing models and billing periods;
* :mod:`.change_forms`: the change pages of existing products and prices;
* :mod:`.currency`: :class:`CurrencyField`, the currency of the credit grant and invoice forms.
"""

from catalog.admin_forms.amounts import AmountError, major_to_minor_units
from catalog.admin_forms.change_forms import PriceChangeForm, ProductChangeForm
from catalog.admin_forms.choices import MAX_PRICES, NEW_METER
from catalog.admin_forms.price_form import PriceForm, PricePreview
from catalog.admin_forms.product_create import PriceFormSet, ProductCreateFlow, ProductForm
from catalog.admin_forms.tier_rows import TierRow, parse_tier_rows

__all__ = [
    "MAX_PRICES",
    "NEW_METER",
    "AmountError",
    "PriceChangeForm",
    "PriceForm",
    "PriceFormSet",
    "PricePreview",
    "ProductChangeForm",
    "ProductCreateFlow",
    "ProductForm",
    "TierRow",
    "major_to_minor_units",
    "parse_tier_rows",
]
