"""Forms of the invoicing admin: the create-subscription and create-invoice flows, the
"Cancel now" and test clock pages, and the customer add form.

They only validate input and shape it into service arguments; every write goes through
`invoicing.services` (called from `invoicing.admin_views`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Q
from django.forms import formset_factory

from billing_site.admin_kit import UTCDateTimeField
from billing_site.errors import BillingError
from billing_site.limits import check_time
from catalog.admin_forms.currency import CurrencyField
from catalog.describe import billing_period_label, describe_price_terms_short, price_summary
from catalog.models import Price
from catalog.money import currency_exponent
from invoicing.models import Customer, Invoice, Subscription, TestClock
from invoicing.services import ItemInput

CollectionMethod = Subscription.CollectionMethod
MAX_INVOICE_ITEMS = 50


def price_label(price: Price) -> str:
    """ "Pro seats (price_…): 20.00 USD per unit, Monthly"."""
    return price_summary(price)


def _customer_widget(field_of, admin_site) -> AutocompleteSelect:
    # An autocomplete, not a <select> of every customer: there can be many thousands.
    return AutocompleteSelect(field_of, admin_site)


class LiveCustomerField(forms.ModelChoiceField):
    default_error_messages = {
        "invalid_choice": "Choose a customer that exists and hasn't been deleted.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Customer.objects.live(), **kwargs)


# --- Customers -------------------------------------------------------------------------------


class CustomerAddForm(forms.ModelForm):
    """The customer add form: a test clock can only be attached when the customer is created."""

    class Meta:
        model = Customer
        fields = ["name", "email", "description", "metadata", "test_clock"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["test_clock"].queryset = TestClock.objects.filter(deleted_at__isnull=True)
        self.fields["test_clock"].help_text = (
            "Optional. Bill this customer at the clock's frozen time, to simulate its billing. "
            "It can't be changed later."
        )


# --- Create subscription ---------------------------------------------------------------------


class SubscriptionCustomerForm(forms.Form):
    """Step 1 of "Add subscription": who is subscribing."""

    customer = LiveCustomerField()

    def __init__(self, *args: Any, admin_site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["customer"]
        field.widget = _customer_widget(Subscription._meta.get_field("customer"), admin_site)
        field.queryset = Customer.objects.live()  # after the widget: this sets its choices


class SubscriptionItemsForm(forms.Form):
    """Step 2 of "Add subscription": prices (grouped by product), collection and anchor.

    Each active recurring price gets a checkbox `price_<pk>`, and licensed ones a quantity
    `quantity_<pk>`. A price that was archived after the page was drawn stays a field when it
    is submitted, so the service refuses it with its own message instead of it being dropped.
    """

    customer = LiveCustomerField(widget=forms.HiddenInput)
    collection_method = forms.ChoiceField(
        choices=CollectionMethod.choices, initial=CollectionMethod.CHARGE_AUTOMATICALLY
    )
    days_until_due = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=365,
        help_text="Only for “Send invoice”: days the customer has to pay (for example 30).",
    )
    billing_cycle_anchor = UTCDateTimeField(
        required=False,
        label="Billing cycle anchor (UTC)",
        help_text="Optional, defaults to now (the customer's test clock time, if it has one). "
        "Up to now and at most one billing period in the past.",
    )
    cancel_at_period_end = forms.BooleanField(
        required=False, help_text="End the subscription when its first period ends."
    )

    settings_fields = ["collection_method", "days_until_due", "billing_cycle_anchor"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        submitted = {
            int(key.removeprefix("price_"))
            for key in (self.data or {})
            if key.startswith("price_") and key.removeprefix("price_").isdigit()
        }
        prices = (
            Price.objects.filter(type=Price.Type.RECURRING)
            .filter(Q(active=True, product__active=True) | Q(pk__in=submitted))
            .select_related("product", "meter")
            .prefetch_related("tiers")
            .order_by("product__name", "product_id", "pk")
        )
        self.prices = list(prices)
        for price in self.prices:
            self.fields[f"price_{price.pk}"] = forms.BooleanField(
                required=False, label=price_label(price)
            )
            if not price.is_metered:
                self.fields[f"quantity_{price.pk}"] = forms.IntegerField(
                    required=False, min_value=1, initial=1, label="Quantity"
                )

    def price_groups(self) -> list[dict[str, Any]]:
        """The price table, by product: [{product, rows: [{price, checkbox, quantity}]}]."""
        groups: list[dict[str, Any]] = []
        for price in self.prices:
            if not groups or groups[-1]["product"].pk != price.product_id:
                groups.append({"product": price.product, "rows": []})
            groups[-1]["rows"].append(
                {
                    "price": price,
                    "checkbox": self[f"price_{price.pk}"],
                    "quantity": self[f"quantity_{price.pk}"] if not price.is_metered else None,
                    "period": billing_period_label(
                        price.recurring_interval, price.recurring_interval_count
                    ),
                    "terms": describe_price_terms_short(price.terms, price.currency),
                }
            )
        return groups

    def selected_prices(self) -> list[Price]:
        return [price for price in self.prices if self.cleaned_data.get(f"price_{price.pk}")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors and not self.selected_prices():
            raise forms.ValidationError("Choose at least one price.")
        return cleaned

    def items(self) -> list[ItemInput]:
        return [
            ItemInput(
                price=price,
                quantity=None
                if price.is_metered
                else (self.cleaned_data.get(f"quantity_{price.pk}") or 1),
            )
            for price in self.selected_prices()
        ]

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `subscription_create` (without the actor)."""
        data = self.cleaned_data
        send = data["collection_method"] == CollectionMethod.SEND_INVOICE
        return {
            "customer": data["customer"],
            "items": self.items(),
            "billing_cycle_anchor": data["billing_cycle_anchor"],
            "cancel_at_period_end": data["cancel_at_period_end"],
            "collection_method": data["collection_method"],
            "days_until_due": data["days_until_due"] if send else None,
        }

    def add_service_error(self, error: BillingError) -> None:
        """Show the service's error next to the price or field it names (`items[1][price]`)."""
        param = error.param or ""
        if param.startswith("items["):
            index = int(param[len("items[") :].split("]", 1)[0])
            selected = self.selected_prices()
            if index < len(selected):
                price = selected[index]
                name = f"quantity_{price.pk}" if param.endswith("[quantity]") else None
                self.add_error(name if name in self.fields else f"price_{price.pk}", error.message)
                self.add_error(None, "Nothing has been saved: see the price marked below.")
                return
        self.add_error(param if param in self.fields else None, error.message)


class SubscriptionChangeForm(forms.ModelForm):
    """What can change on a subscription page: metadata and "cancel at period end"."""

    class Meta:
        model = Subscription
        fields = ["cancel_at_period_end", "metadata"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.status == Subscription.Status.CANCELED:
            raise forms.ValidationError("This subscription is canceled and can't be changed.")
        return cleaned


class SubscriptionCancelForm(forms.Form):
    invoice_now = forms.BooleanField(
        required=False,
        label="Invoice usage so far",
        help_text="Bill the metered usage of the current period up to now on a final invoice, "
        "finalized at once. Without it, that usage is never billed.",
    )


class CustomerDeleteForm(forms.Form):
    """The checkbox Django's delete confirmation gets for customers (`customer_delete`)."""

    invoice_now = forms.BooleanField(
        required=False,
        label="Bill usage so far on a final invoice",
        help_text="For each subscription canceled, bill the metered usage of the current period "
        "up to now on a final invoice, finalized at once. Without it (as Stripe does when a "
        "customer is deleted), that usage is never billed.",
    )


# --- Create invoice --------------------------------------------------------------------------


class InvoiceCustomerForm(forms.Form):
    """Step 1 of "Create invoice": customer, currency and how it is collected."""

    customer = LiveCustomerField()
    currency = CurrencyField(help_text="Three-letter ISO code; every line is in this currency.")
    collection_method = forms.ChoiceField(
        choices=[
            (CollectionMethod.SEND_INVOICE, "Send invoice (the customer pays by the due date)"),
            (CollectionMethod.CHARGE_AUTOMATICALLY, "Charge automatically"),
        ],
        initial=CollectionMethod.SEND_INVOICE,
    )
    days_until_due = forms.IntegerField(
        required=False, min_value=0, max_value=365, initial=30, help_text="For “Send invoice”."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Memo"
    )

    def __init__(self, *args: Any, admin_site, **kwargs: Any) -> None:
        super().__init__(*args, prefix="invoice", **kwargs)
        field = self.fields["customer"]
        field.widget = _customer_widget(Invoice._meta.get_field("customer"), admin_site)
        field.queryset = Customer.objects.live()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        send = cleaned.get("collection_method") == CollectionMethod.SEND_INVOICE
        if send and cleaned.get("days_until_due") is None and "days_until_due" not in self.errors:
            self.add_error("days_until_due", "An invoice sent for payment needs days until due.")
        if not send:
            cleaned["days_until_due"] = None
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `invoice_create`."""
        return {name: self.cleaned_data[name] for name in self.fields}


class InvoiceItemForm(forms.Form):
    """One line of a one-off invoice: an amount typed in major units, or a one-time price."""

    description = forms.CharField(max_length=500, required=False)
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=18,
        label="Amount",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "100000.00"}),
        help_text="In major units (dollars, not cents).",
    )
    price = forms.ModelChoiceField(
        queryset=Price.objects.none(),
        required=False,
        label="Or a one-time price",
        help_text="Leave the amount empty when you choose a price.",
    )
    quantity = forms.IntegerField(min_value=1, initial=1, required=False)

    def __init__(self, *args: Any, currency: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        prices = Price.objects.filter(type=Price.Type.ONE_TIME, active=True).select_related(
            "product"
        )
        if currency:
            prices = prices.filter(currency=currency)
        field = self.fields["price"]
        field.queryset = prices.prefetch_related("tiers").order_by("product__name", "pk")
        field.label_from_instance = price_label

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        amount, price = cleaned.get("amount"), cleaned.get("price")
        if self.errors:
            return cleaned
        if (amount is None) == (price is None):
            raise forms.ValidationError("Give either an amount or a one-time price (not both).")
        if amount is not None:
            if not cleaned.get("description", "").strip():
                self.add_error("description", "Describe what this amount is for.")
            if self.currency:
                exponent = currency_exponent(self.currency)
                minor = amount.scaleb(exponent)
                if minor != minor.to_integral_value():
                    self.add_error(
                        "amount",
                        f"{self.currency} amounts have at most {exponent} decimal place"
                        f"{'' if exponent == 1 else 's'}.",
                    )
                else:
                    cleaned["amount_minor"] = int(minor)
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `invoice_item_create` (without the invoice)."""
        data = self.cleaned_data
        if data["price"] is not None:
            return {
                "description": data["description"],
                "price": data["price"],
                "quantity": data["quantity"] or 1,
            }
        return {"description": data["description"], "amount": data["amount_minor"]}


class BaseInvoiceItemFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        if not any(form.has_changed() and form.cleaned_data for form in self.forms):
            raise forms.ValidationError("Add at least one line item.")

    def filled_forms(self) -> list[InvoiceItemForm]:
        return [form for form in self.forms if form.has_changed() and form.cleaned_data]


InvoiceItemFormSet = formset_factory(
    InvoiceItemForm,
    formset=BaseInvoiceItemFormSet,
    extra=1,
    max_num=MAX_INVOICE_ITEMS,
    validate_max=True,
)


# --- Test clocks -----------------------------------------------------------------------------


class TestClockAddForm(forms.ModelForm):
    frozen_time = UTCDateTimeField(
        label="Frozen time (UTC)",
        help_text="The simulated “now” for customers attached to this clock.",
    )

    class Meta:
        model = TestClock
        fields = ["name", "frozen_time"]

    def clean_frozen_time(self):
        # The admin saves through `test_clock_create` in save_model, too late for an error
        # next to the field, so the service's time rule is asked here first.
        frozen_time = self.cleaned_data["frozen_time"]
        try:
            check_time(frozen_time, param="frozen_time")
        except BillingError as error:
            raise forms.ValidationError(error.message) from None
        return frozen_time


class TestClockAdvanceForm(forms.Form):
    frozen_time = UTCDateTimeField(
        label="New frozen time (UTC)",
        help_text="Must be later than the clock's current time, at most two years ahead. "
        "Every billing step that falls due on the way runs, in time order.",
    )
