"""The "New credit grant" form of the admin (Stripe Dashboard's steps: name, amount, expiry,
priority, applicability, category).

It only checks what was typed and shapes it into `credit_grant_create` arguments: amounts are
typed in major units ("120000.00") and converted with the currency's exponent. The billing rules
(currencies the customer's subscriptions use, expiry after the effective date, the priority
range, metered prices only) are the service's, and its errors are shown next to the field they
name (`add_service_error`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from decimal import Decimal
from functools import partial
from typing import Any

from dateutil.relativedelta import relativedelta
from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q
from moneyed import Money

from billing_site.admin_kit import UTCDateTimeField, add_billing_error
from billing_site.errors import BillingError
from catalog.admin_forms.currency import CurrencyField
from catalog.describe import price_summary
from catalog.models import Price
from catalog.money import currency_exponent, to_minor_units
from catalog.services import validate_currency
from credits.models import CreditGrant

# credits sits below invoicing: reach the customer model through the string FK, never by import.
Customer = CreditGrant._meta.get_field("customer").related_model

NO_EXPIRY, SPECIFIC_DATE = "never", "date"
# "Grant credits" from a paid invoice suggests that the credits expire a year later.
SUGGESTED_VALIDITY = relativedelta(years=1)
ALL_METERED, SPECIFIC_PRICES = "all_metered", "prices"

# The service's `param` (API names) -> this form's field.
_PARAM_TO_FIELD = {
    "customer": "customer",
    "amount[monetary][value]": "amount",
    "amount[monetary][currency]": "currency",
    "currency": "currency",
    "category": "category",
    "priority": "priority",
    "effective_at": "effective_at",
    "expires_at": "expires_at",
}
_SCOPE_PARAM = re.compile(r"^applicability_config\[scope\]\[prices\]")


def suggested_expiry(now: dt.datetime) -> dt.datetime:
    """The same instant twelve months after `now` (Feb 29 becomes Feb 28), to the second."""
    return now.replace(microsecond=0) + SUGGESTED_VALIDITY


class CreditGrantForm(forms.Form):
    """One credit grant. Pass `customer=` to fix the customer (a grant from a paid invoice)."""

    customer = forms.ModelChoiceField(
        queryset=Customer.objects.none(),
        error_messages={"invalid_choice": "Choose a customer that exists and isn't deleted."},
    )
    name = forms.CharField(
        max_length=100,
        help_text="Shown to staff and on the customer's portal, e.g. “Purchased credits”.",
    )
    amount = forms.DecimalField(
        max_digits=18,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "120000.00"}),
        help_text="In major units (dollars, not cents).",
    )
    currency = CurrencyField(
        help_text="Three-letter ISO code. Credits only pay invoices in this currency."
    )
    category = forms.ChoiceField(
        choices=CreditGrant.Category.choices,
        initial=CreditGrant.Category.PAID,
        widget=forms.RadioSelect,
        help_text="Paid: the customer bought them. Promotional: given for free; spent before "
        "paid credits of the same priority and expiry.",
    )
    expiry = forms.ChoiceField(
        label="Expiry",
        choices=[(NO_EXPIRY, "No expiry"), (SPECIFIC_DATE, "Specific date")],
        initial=NO_EXPIRY,
        widget=forms.RadioSelect,
    )
    expires_at = UTCDateTimeField(
        required=False,
        label="Expires at (UTC)",
        help_text="For “Specific date”: what remains then is debited as expired.",
    )
    # No min/max validators: the service's message (0-100, lower is spent first) is the clearer
    # one. The widget still tells the browser the range.
    priority = forms.IntegerField(
        initial=50,
        widget=forms.NumberInput(attrs={"min": 0, "max": 100}),
        help_text="0 to 100; grants with a lower number are spent first.",
    )
    scope = forms.ChoiceField(
        label="Applies to",
        choices=[(ALL_METERED, "All metered prices"), (SPECIFIC_PRICES, "Specific prices")],
        initial=ALL_METERED,
        widget=forms.RadioSelect,
    )
    prices = forms.ModelMultipleChoiceField(
        queryset=Price.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="For “Specific prices”: active metered prices in the grant's currency "
        "(at most 20).",
    )
    effective_at = UTCDateTimeField(
        required=False,
        label="Effective from (UTC)",
        help_text="Optional, defaults to now (the customer's test clock time, if it has one).",
    )

    fieldsets = [
        (None, {"fields": ["customer", "name", "amount", "currency", "category"]}),
        ("Expiry", {"fields": ["expiry", "expires_at"]}),
        ("Applicability", {"fields": ["priority", "scope", "prices"]}),
        ("Additional options", {"fields": ["effective_at"]}),
    ]

    def __init__(self, *args: Any, admin_site=None, customer=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fixed_customer = customer
        if customer is not None:
            del self.fields["customer"]
        else:
            field = self.fields["customer"]
            if admin_site is not None:
                # An autocomplete, not a <select> of every customer: there can be many.
                field.widget = AutocompleteSelect(
                    CreditGrant._meta.get_field("customer"), admin_site
                )
            field.queryset = Customer.objects.live()  # after the widget: this sets its choices
        prices = self.fields["prices"]
        prices.queryset = self._price_choices()
        # "Hypernian (price_…): 0.00 USD per unit up to 100,000, …"
        prices.label_from_instance = partial(price_summary, with_period=False)

    def _price_choices(self):
        offered = Q(recurring_usage_type=Price.UsageType.METERED, active=True, product__active=True)
        currency = self.data.get("currency") if self.is_bound else self.initial.get("currency")
        # A bad currency: the currency field shows the error; offer every metered price meanwhile.
        with contextlib.suppress(BillingError):
            offered &= Q(currency=validate_currency(currency or self.fields["currency"].initial))
        # A submitted price stays a valid choice even when it isn't offered (archived since the
        # page was drawn, not metered, another currency): the service decides, and refuses with
        # its own message rather than a generic "not one of the available choices".
        submitted = self.data.getlist("prices") if hasattr(self.data, "getlist") else []
        submitted_ids = [int(value) for value in submitted if str(value).isdigit()]
        return (
            Price.objects.filter(offered | Q(pk__in=submitted_ids))
            .select_related("product")
            .prefetch_related("tiers")
            .order_by("product__name", "pk")
        )

    @property
    def fieldset_layout(self) -> list[tuple[str | None, dict[str, Any]]]:
        return [
            (name, {"fields": [field for field in options["fields"] if field in self.fields]})
            for name, options in self.fieldsets
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self._clean_amount(cleaned)
        no_date = cleaned.get("expires_at") is None and "expires_at" not in self.errors
        if cleaned.get("expiry") == SPECIFIC_DATE and no_date:
            self.add_error("expires_at", "Choose the expiry date, or “No expiry”.")
        chosen = cleaned.get("prices")
        scope = cleaned.get("scope")
        if scope == SPECIFIC_PRICES and not chosen and "prices" not in self.errors:
            self.add_error("prices", "Choose at least one metered price, or “All metered prices”.")
        if scope == ALL_METERED and chosen:
            self.add_error(
                "prices",
                "A grant applies either to all metered prices or to specific prices, not both: "
                "choose “Specific prices”, or unselect these prices.",
            )
        return cleaned

    def _clean_amount(self, cleaned: dict[str, Any]) -> None:
        amount: Decimal | None = cleaned.get("amount")
        currency = cleaned.get("currency")
        if amount is None or not currency:
            return
        if amount <= 0:
            self.add_error(
                "amount", f"The amount must be greater than zero, in {currency} (e.g. 120000.00)."
            )
            return
        minor = to_minor_units(Money(amount, currency))
        if minor != minor.to_integral_value():
            places = currency_exponent(currency)
            self.add_error(
                "amount",
                f"{currency} amounts have at most {places} decimal place"
                f"{'' if places == 1 else 's'}.",
            )
            return
        cleaned["amount_minor"] = int(minor)

    @property
    def grant_customer(self):
        return self.fixed_customer or self.cleaned_data["customer"]

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `credit_grant_create` (without source invoice, currencies and
        now, which the view adds)."""
        data = self.cleaned_data
        expires_at: dt.datetime | None = (
            data["expires_at"] if data["expiry"] == SPECIFIC_DATE else None
        )
        return {
            "customer": self.grant_customer,
            "name": data["name"],
            "amount": data["amount_minor"],
            "currency": data["currency"],
            "category": data["category"],
            "priority": data["priority"],
            "prices": list(data["prices"]) if data["scope"] == SPECIFIC_PRICES else None,
            "effective_at": data["effective_at"],
            "expires_at": expires_at,
        }

    def add_service_error(self, error: BillingError) -> None:
        """Show the service's error next to the field its `param` names (or at the top)."""
        param = error.param or ""
        field = "prices" if _SCOPE_PARAM.match(param) else _PARAM_TO_FIELD.get(param, param)
        add_billing_error(self, error, {param: field})
