"""Forms of the admin's "Create product" flow: a product, then one or more prices.

The page mirrors the Stripe Dashboard: staff type amounts in the currency's MAJOR units
("200.00", "0.001"), pick a pricing model (flat rate, or usage-based per unit, per package
or tiered) and a billing period, and can create a meter inline. This module turns that
input into what the services take: amounts in minor units, validated by
:func:`catalog.terms.build_price_terms`, and :class:`catalog.services.Recurring`.

Field names follow Django's formset conventions: ``name`` and ``description`` for the
product, ``prices-TOTAL_FORMS`` and ``prices-<n>-<field>`` for each price, and tier rows as
``prices-<n>-tiers-<row>-up_to`` / ``-unit_amount`` / ``-flat_amount`` (see
:func:`parse_tier_rows`). Everything works by plain POST; the page's JavaScript only shows
and hides fields and clones rows.

:class:`ProductCreateFlow` validates the lot and writes it through the services in one
transaction: rolled back for the preview (so the services' own checks, such as an
inactive meter or a taken lookup key, show up before anything is saved), committed on
confirm. Errors land next to the field or the tier row they concern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.utils import ErrorList
from moneyed import Money

from billing_site.admin_forms import add_billing_error
from billing_site.errors import BillingError
from catalog import services
from catalog.describe import describe_price_terms
from catalog.models import Price, Product
from catalog.money import (
    UnknownCurrency,
    currency_exponent,
    significant_decimal_places,
    to_minor_units,
)
from catalog.rating import PriceTerms
from catalog.terms import MAX_DECIMAL_PLACES, InvalidPriceTerms, build_price_terms
from metering import services as metering_services
from metering.models import Meter

__all__ = [
    "MAX_PRICES",
    "NEW_METER",
    "AmountError",
    "CreatedCatalog",
    "PriceChangeForm",
    "PriceForm",
    "PricePreview",
    "ProductChangeForm",
    "ProductCreateFlow",
    "ProductForm",
    "TierRow",
    "billing_period_label",
    "major_to_minor_units",
    "parse_tier_rows",
]

MAX_PRICES = 20
# The meter select's value for "create a new meter with the fields below".
NEW_METER = "new"

FLAT_RATE = "flat_rate"
PER_UNIT = "per_unit"
PACKAGE = "package"
GRADUATED = "graduated"
VOLUME = "volume"
TIERED_MODELS = (GRADUATED, VOLUME)
PRICING_MODEL_LABELS = {
    FLAT_RATE: "Flat rate",
    PER_UNIT: "Usage-based, per unit",
    PACKAGE: "Usage-based, per package",
    GRADUATED: "Usage-based, tiered (graduated)",
    VOLUME: "Usage-based, tiered (volume)",
}
PRICING_MODEL_CHOICES = [
    (FLAT_RATE, "Flat rate"),
    (
        "Usage-based",
        [
            (PER_UNIT, "Per unit"),
            (PACKAGE, "Per package"),
            (GRADUATED, "Tiered: graduated"),
            (VOLUME, "Tiered: volume"),
        ],
    ),
]

CUSTOM_PERIOD = "custom"
ONE_OFF = "one_off"
# Preset billing periods as (interval, interval_count).
PRESET_PERIODS = {
    "month": ("month", 1),
    "year": ("year", 1),
    "week": ("week", 1),
    "day": ("day", 1),
    "every_3_months": ("month", 3),
    "every_6_months": ("month", 6),
}
BILLING_PERIOD_CHOICES = [
    ("month", "Monthly"),
    ("year", "Yearly"),
    ("week", "Weekly"),
    ("day", "Daily"),
    ("every_3_months", "Every 3 months"),
    ("every_6_months", "Every 6 months"),
    (CUSTOM_PERIOD, "Custom"),
    (ONE_OFF, "One-off (flat rate only)"),
]
_PERIOD_LABELS = {
    PRESET_PERIODS[key]: label for key, label in BILLING_PERIOD_CHOICES if key in PRESET_PERIODS
}

# Staff type these in a tier row; up_to is units, the others major-unit amounts.
TIER_COLUMNS = ("up_to", "unit_amount", "flat_amount")
_TIER_KEY = re.compile(r"tiers-(\d{1,4})-(up_to|unit_amount|flat_amount)")
_TIER_PARAM = re.compile(r"tiers\[(\d+)\](?:\[(\w+)\])?")
_TIER_PARAM_COLUMN = {
    "up_to": "up_to",
    "unit_amount": "unit_amount",
    "unit_amount_decimal": "unit_amount",
    "flat_amount": "flat_amount",
    "flat_amount_decimal": "flat_amount",
}
_AMOUNT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

# Where an InvalidPriceTerms from build_price_terms belongs on the price form.
_TERMS_PARAM_TO_FIELD = {
    "billing_scheme": "pricing_model",
    "tiers_mode": "pricing_model",
    "unit_amount": "amount",
    "unit_amount_decimal": "amount",
    "transform_quantity": "package_size",
    "transform_quantity[divide_by]": "package_size",
    "transform_quantity[round]": "package_rounding",
}
# build_price_terms speaks the API's parameter names; the admin's labels read better.
_TERMS_LABELS = (
    ("transform_quantity[divide_by]", "Package size"),
    ("transform_quantity[round]", "Rounding"),
)
_TIER_AMOUNT_LABELS = (
    ("unit_amount_decimal", "per-unit amount (in minor units)"),
    ("flat_amount_decimal", "flat fee (in minor units)"),
)
# Where a service's BillingError (meter_create, price_create) belongs on the price form.
_SERVICE_PARAM_TO_FIELD = {
    "currency": "currency",
    "recurring[interval]": "billing_period",
    "recurring[interval_count]": "billing_period",
    "recurring[usage_type]": "pricing_model",
    "recurring[meter]": "meter",
    "lookup_key": "lookup_key",
    "nickname": "nickname",
    "event_name": "new_meter_event_name",
    "display_name": "new_meter_display_name",
    "default_aggregation[formula]": "new_meter_formula",
}


class AmountError(ValueError):
    """An amount typed in the admin that can't be a price (bad number, negative, too precise)."""


def _shown(value: str) -> str:
    return value if len(value) <= 40 else f"{value[:37]}..."


def major_to_minor_units(text: str, *, currency: str, label: str) -> str | None:
    """Turn an amount typed in major units into a minor-units string for build_price_terms.

    "200.00" USD -> "20000", "0.001" USD -> "0.1", "5" JPY -> "5"; blank -> None.
    Commas and spaces are taken as thousands separators ("1,000.00"). The 12-decimal limit
    of minor units is ``12 + exponent`` decimals in major units (14 for USD), and the error
    says so in the units staff typed.
    """
    typed = (text or "").strip()
    cleaned = typed.replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    code = currency.upper()
    if not _AMOUNT.fullmatch(cleaned):
        raise AmountError(
            f"{label} must be an amount in {code} such as 200.00 or 0.001, got '{_shown(typed)}'."
        )
    major = Decimal(cleaned)
    if major < 0:
        raise AmountError(
            f"{label} must not be negative, got '{_shown(typed)}'; discounts and credits are "
            "applied on the invoice, not in the price."
        )
    places = MAX_DECIMAL_PLACES + currency_exponent(code)
    if significant_decimal_places(major) > places:
        raise AmountError(
            f"{label} can have at most {places} decimal places in {code} "
            f"({MAX_DECIMAL_PLACES} decimal places of its minor unit), got '{_shown(typed)}'."
        )
    return format(to_minor_units(Money(major, code)), "f")


def billing_period_label(interval: str | None, interval_count: int | None) -> str:
    """ "Monthly", "Every 3 months", "Every 2 weeks"; "One-off" without an interval."""
    if not interval:
        return "One-off"
    count = interval_count or 1
    preset = _PERIOD_LABELS.get((interval, count))
    if preset:
        return preset
    return f"Every {count} {interval}s" if count != 1 else f"Every {interval}"


# --- tier rows ---------------------------------------------------------------------------------


@dataclass
class TierRow:
    """One row of a price's tier table, as typed (strings), with the errors that belong to it."""

    up_to: str = ""
    unit_amount: str = ""
    flat_amount: str = ""
    errors: dict[str, ErrorList] = field(default_factory=dict)

    @property
    def is_blank(self) -> bool:
        return not any(getattr(self, column).strip() for column in TIER_COLUMNS)

    @property
    def is_open_ended(self) -> bool:
        """Empty or "inf" up_to: the row that should stay last."""
        return self.up_to.strip().lower() in ("", "inf")

    def add_error(self, column: str, message: str) -> None:
        self.errors.setdefault(column, ErrorList()).append(message)


def parse_tier_rows(data: Mapping[str, Any], prefix: str) -> list[TierRow]:
    """Read ``<prefix>-tiers-<row>-<column>`` keys into rows, ordered by row number.

    Row numbers only order the rows: gaps (a row removed in the browser) are fine. Blank
    rows are kept here; callers decide whether they mean anything.
    """
    start = f"{prefix}-"
    rows: dict[int, dict[str, str]] = {}
    for key in data:
        if not key.startswith(start):
            continue
        match = _TIER_KEY.fullmatch(key[len(start) :])
        if match:
            value = data.get(key)
            rows.setdefault(int(match[1]), {})[match[2]] = value if isinstance(value, str) else ""
    return [TierRow(**rows[number]) for number in sorted(rows)]


def _default_tier_rows() -> list[TierRow]:
    # Two blank rows: "first N units" and the open-ended last tier.
    return [TierRow(), TierRow()]


# --- forms -------------------------------------------------------------------------------------


class ProductForm(forms.Form):
    name = forms.CharField(
        max_length=250, help_text="Shown to customers on invoices and in the portal."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


class PriceForm(forms.Form):
    """One price. ``clean`` builds :attr:`terms` (minor units) and :attr:`period`."""

    pricing_model = forms.ChoiceField(choices=PRICING_MODEL_CHOICES, initial=FLAT_RATE)
    currency = forms.CharField(
        initial="USD",
        help_text="Three-letter ISO 4217 code (USD, EUR, JPY...).",
        widget=forms.TextInput(attrs={"size": 5, "list": "currency-codes", "autocomplete": "off"}),
    )
    amount = forms.CharField(
        required=False,
        label="Price",
        help_text="In the currency's major units, as on an invoice: 200.00, 0.04 or 0.001 "
        "(up to 12 decimal places of a cent, i.e. 14 for USD).",
        widget=forms.TextInput(attrs={"placeholder": "0.00", "inputmode": "decimal"}),
    )
    package_size = forms.CharField(
        required=False,
        label="Units per package",
        widget=forms.TextInput(attrs={"size": 10, "placeholder": "100", "inputmode": "numeric"}),
    )
    package_rounding = forms.ChoiceField(
        choices=[
            ("up", "Round up: a partial package is charged in full"),
            ("down", "Round down: a partial package is free"),
        ],
        initial="up",
        label="Rounding",
        # Not required: the page's script disables (so the browser doesn't send) fields that
        # don't apply to the chosen pricing model; "up" is the default when it isn't sent.
        required=False,
    )
    billing_period = forms.ChoiceField(choices=BILLING_PERIOD_CHOICES, initial="month")
    interval_count = forms.IntegerField(
        required=False,
        label="Every",
        help_text="Custom periods: at most three years.",
        widget=forms.NumberInput(attrs={"style": "width: 5em"}),
    )
    interval = forms.ChoiceField(
        choices=Price.Interval.choices, initial="month", required=False, label="Interval"
    )
    meter = forms.CharField(
        required=False,
        help_text="The meter whose usage this price bills. Only active meters are listed.",
        widget=forms.Select,
    )
    new_meter_display_name = forms.CharField(
        required=False, max_length=250, label="Meter name", help_text="E.g. API tokens."
    )
    new_meter_event_name = forms.CharField(
        required=False,
        max_length=100,
        label="Event name",
        help_text="The event_name your product sends usage with, e.g. api_tokens. "
        "It can't be changed later.",
    )
    new_meter_formula = forms.ChoiceField(
        choices=Meter.Formula.choices,
        initial=Meter.Formula.SUM,
        label="Aggregation",
        required=False,  # disabled (not sent) unless a new meter is created; defaults to sum
    )
    nickname = forms.CharField(
        required=False, max_length=250, help_text="Internal name, not shown to customers."
    )
    lookup_key = forms.CharField(
        required=False,
        max_length=200,
        help_text="A stable key to fetch this price by from code, e.g. pro_monthly.",
    )

    def __init__(
        self,
        *args: Any,
        meter_choices: list[tuple[str, str]] | tuple[()] = (),
        can_create_meters: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.can_create_meters = can_create_meters
        choices = [("", "---------"), *meter_choices]
        if can_create_meters:
            choices.append((NEW_METER, "+ Create a new meter"))
        self.fields["meter"].widget.choices = choices
        self.terms: PriceTerms | None = None
        self.period: tuple[str, int] | None = None
        # Errors about the tier table as a whole ("needs at least one tier").
        self.tier_errors = ErrorList()
        if self.is_bound:
            rows = parse_tier_rows(self.data, self.prefix)
            # Blank rows mean nothing; dropping them keeps "Tier 2" in a message pointing
            # at the second row shown.
            self.tier_rows = [row for row in rows if not row.is_blank] or rows
        else:
            self.tier_rows = list(self.initial.get("tiers") or ())
        if not self.tier_rows:
            self.tier_rows = _default_tier_rows()
        # Row objects that went to build_price_terms, by tier index, to place its errors.
        self._sent_rows: list[TierRow] = []

    # The formset asks is_valid(); tier errors live outside Django's per-field errors.
    def is_valid(self) -> bool:
        valid = super().is_valid()
        return valid and not self.has_tier_errors

    @property
    def has_tier_errors(self) -> bool:
        return bool(self.tier_errors) or any(row.errors for row in self.tier_rows)

    @property
    def is_metered(self) -> bool:
        return self.cleaned_data.get("pricing_model") not in (None, FLAT_RATE)

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].strip()
        try:
            currency_exponent(code)
        except UnknownCurrency as error:
            raise ValidationError(str(error)) from None
        return code.upper()

    def clean_meter(self) -> Meter | str | None:
        value = self.cleaned_data["meter"].strip()
        if not value:
            return None
        if value == NEW_METER:
            return NEW_METER
        meter = Meter.objects.filter(public_id=value).first()
        if meter is None:
            raise ValidationError(f"No such meter: '{_shown(value)}'. Choose one from the list.")
        if not meter.is_active:
            # Keep it selected on the re-rendered form, next to the service's error.
            self.fields["meter"].widget.choices.append((meter.public_id, f"{meter} (inactive)"))
        return meter

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        model = cleaned.get("pricing_model")
        if model is None:
            return cleaned
        self._clean_period(model)
        self._clean_meter_choice(model)
        if cleaned.get("currency"):
            self.terms = self._build_terms(model, cleaned["currency"])
        return cleaned

    def _clean_period(self, model: str) -> None:
        period = self.cleaned_data.get("billing_period")
        if period is None:
            return
        if period == ONE_OFF:
            if model != FLAT_RATE:
                self.add_error(
                    "billing_period",
                    "Usage-based prices bill each period's usage, so they can't be one-off; "
                    "choose a billing period.",
                )
            return
        if period != CUSTOM_PERIOD:
            self.period = PRESET_PERIODS[period]
            return
        interval = self.cleaned_data.get("interval")
        count = self.cleaned_data.get("interval_count")
        if not interval:
            self.add_error("interval", "Choose the interval of the custom billing period.")
        if count is None and "interval_count" not in self.errors:
            self.add_error("interval_count", "Enter how many intervals a billing period lasts.")
        if interval and count is not None:
            # The service checks the range (at least one interval, at most three years).
            self.period = (interval, count)

    def _clean_meter_choice(self, model: str) -> None:
        if "meter" in self.errors:
            return
        meter = self.cleaned_data.get("meter")
        if model == FLAT_RATE:
            if meter is not None:
                self.add_error(
                    "meter",
                    "A flat-rate price is billed in advance per quantity and has no meter: "
                    "clear the meter, or choose a usage-based pricing model.",
                )
            return
        if meter is None:
            self.add_error(
                "meter",
                "A usage-based price bills the usage of a meter: choose one, or create a new "
                "meter.",
            )
        elif meter == NEW_METER:
            if not self.can_create_meters:
                self.add_error("meter", "You don't have permission to create meters.")
                return
            if not self.cleaned_data.get("new_meter_display_name", "").strip():
                self.add_error("new_meter_display_name", "Give the new meter a name.")
            if not self.cleaned_data.get("new_meter_event_name", "").strip():
                self.add_error(
                    "new_meter_event_name",
                    "Enter the event name your product will send usage with.",
                )

    # --- terms ---------------------------------------------------------------------------

    def _build_terms(self, model: str, currency: str) -> PriceTerms | None:
        """Convert the typed amounts and call build_price_terms; place any error."""
        ok = True
        amount = None
        try:
            amount = major_to_minor_units(
                self.cleaned_data.get("amount", ""), currency=currency, label="Price"
            )
        except AmountError as error:
            self.add_error("amount", str(error))
            ok = False
        tiers = self._tier_inputs(currency)
        ok = ok and tiers is not None
        package_size = (self.cleaned_data.get("package_size") or "").replace(",", "").strip()

        if model in (FLAT_RATE, PER_UNIT, PACKAGE) and amount is None and ok:
            self.add_error("amount", f"Enter the price in {currency}, e.g. 200.00 or 0.001.")
            ok = False
        if model in (FLAT_RATE, PER_UNIT) and package_size:
            self.add_error(
                "package_size",
                "A package size only applies to per-package pricing: clear it, or choose "
                "'Per package'.",
            )
            ok = False
        if not ok:
            return None

        transform = None
        if model == PACKAGE or package_size:
            # With a tiered model this is an error build_price_terms reports (no
            # transform_quantity with tiers); pass it on rather than silently dropping it.
            transform = {
                "divide_by": package_size or None,
                "round": self.cleaned_data.get("package_rounding") or "up",
            }
        kwargs: dict[str, Any] = {
            "unit_amount_decimal": amount,
            "tiers": tiers or None,
            "transform_quantity": transform,
        }
        if model in TIERED_MODELS:
            kwargs.update(billing_scheme="tiered", tiers_mode=model)
        else:
            kwargs.update(billing_scheme="per_unit")
        try:
            return build_price_terms(**kwargs)
        except InvalidPriceTerms as error:
            self._add_terms_error(error, tiered=model in TIERED_MODELS)
            return None

    def _tier_inputs(self, currency: str) -> list[dict[str, str]] | None:
        """The non-blank tier rows as build_price_terms tier dicts (minor units)."""
        tiers: list[dict[str, str]] = []
        self._sent_rows = []
        ok = True
        for row in self.tier_rows:
            if row.is_blank:
                continue
            number = len(self._sent_rows) + 1
            self._sent_rows.append(row)
            up_to = row.up_to.replace(",", "").replace(" ", "")
            tier = {"up_to": "inf" if up_to.lower() in ("", "inf") else up_to}
            for column, key, label in (
                ("unit_amount", "unit_amount_decimal", "per-unit amount"),
                ("flat_amount", "flat_amount_decimal", "flat fee"),
            ):
                try:
                    value = major_to_minor_units(
                        getattr(row, column), currency=currency, label=f"Tier {number}: {label}"
                    )
                except AmountError as error:
                    row.add_error(column, str(error))
                    ok = False
                    continue
                if value is not None:
                    tier[key] = value
            if ok and "unit_amount_decimal" not in tier and "flat_amount_decimal" not in tier:
                row.add_error(
                    "unit_amount",
                    f"Tier {number}: enter a per-unit amount or a flat fee (0 for a free tier).",
                )
                ok = False
            tiers.append(tier)
        return tiers if ok else None

    def _add_terms_error(self, error: InvalidPriceTerms, *, tiered: bool) -> None:
        param, message = error.param, error.message
        match = _TIER_PARAM.fullmatch(param)
        if match and int(match[1]) < len(self._sent_rows):
            for api_label, admin_label in _TIER_AMOUNT_LABELS:
                message = message.replace(api_label, admin_label)
            column = _TIER_PARAM_COLUMN.get(match[2] or "", "unit_amount")
            self._sent_rows[int(match[1])].add_error(column, message)
            return
        if param == "tiers":
            if not tiered:
                message = (
                    "Tiers only apply to the tiered pricing models: choose 'Tiered: graduated' "
                    "or 'Tiered: volume', or clear the tier rows."
                )
            self.tier_errors.append(message)
            return
        if param == "transform_quantity":
            message = (
                "A package size can't be combined with tiered pricing: choose 'Per package', "
                "or clear the package size to keep the tiers."
            )
        elif tiered and param in ("unit_amount", "unit_amount_decimal"):
            message = (
                "A tiered price takes its amounts from the tier table: clear this price, or "
                "choose another pricing model."
            )
        elif param == "unit_amount_decimal":
            message = message.replace("unit_amount_decimal", "Price (in minor units)")
        for api_label, admin_label in _TERMS_LABELS:
            message = message.replace(api_label, admin_label)
        self.add_error(_TERMS_PARAM_TO_FIELD.get(param), message)

    # --- writing -------------------------------------------------------------------------

    def add_service_error(self, error: BillingError) -> None:
        mapping = dict(_SERVICE_PARAM_TO_FIELD)
        if self.cleaned_data.get("billing_period") == CUSTOM_PERIOD:
            mapping.update(
                {"recurring[interval]": "interval", "recurring[interval_count]": "interval_count"}
            )
        add_billing_error(self, error, mapping)

    def create_price(self, *, product: Product) -> tuple[Price, Meter | None]:
        """Create the price (and its new meter) through the services. Call inside atomic()."""
        assert self.terms is not None, "create_price() needs a valid form"
        data = self.cleaned_data
        meter = data.get("meter")
        new_meter = None
        if meter == NEW_METER:
            meter = new_meter = metering_services.meter_create(
                event_name=data["new_meter_event_name"],
                display_name=data["new_meter_display_name"],
                formula=data.get("new_meter_formula") or Meter.Formula.SUM,
            )
        recurring = None
        if self.period is not None:
            interval, interval_count = self.period
            recurring = services.Recurring(
                interval=interval,
                interval_count=interval_count,
                usage_type=(
                    Price.UsageType.METERED if self.is_metered else Price.UsageType.LICENSED
                ),
                meter=meter if isinstance(meter, Meter) else None,
            )
        price = services.price_create(
            product=product,
            currency=data["currency"],
            terms=self.terms,
            recurring=recurring,
            nickname=data.get("nickname", "").strip(),
            lookup_key=data.get("lookup_key", "").strip() or None,
        )
        return price, new_meter

    def preview(self, number: int) -> PricePreview:
        assert self.terms is not None, "preview() needs a valid form"
        data = self.cleaned_data
        meter = data.get("meter")
        if meter == NEW_METER:
            formula = Meter.Formula(data.get("new_meter_formula") or Meter.Formula.SUM).label
            meter_label = (
                f"New meter: {data['new_meter_display_name']} "
                f"(event name {data['new_meter_event_name']}; {formula.lower()})"
            )
        else:
            meter_label = str(meter) if meter else ""
        if self.period is None:
            billing = "Billed once"
        elif self.is_metered:
            billing = "Metered: the period's usage is billed in arrears"
        else:
            billing = "Licensed: billed in advance, per quantity"
        return PricePreview(
            number=number,
            pricing_model=PRICING_MODEL_LABELS[data["pricing_model"]],
            currency=data["currency"],
            billing_period=billing_period_label(*(self.period or (None, None))),
            billing=billing,
            meter=meter_label,
            terms_lines=describe_price_terms(self.terms, data["currency"]),
            nickname=data.get("nickname", ""),
            lookup_key=data.get("lookup_key", ""),
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


# --- change forms of existing products and prices ---------------------------------------------


def _clean_metadata(value: Any) -> dict[str, str]:
    # An emptied JSON field comes back as None, but the column is a NOT NULL dict.
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(
            'Metadata is a JSON object of keys to string values, e.g. {"plan": "pro"}.'
        )
    return value


class ProductChangeForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["name", "description", "active", "metadata"]

    def clean_metadata(self) -> dict[str, str]:
        return _clean_metadata(self.cleaned_data.get("metadata"))


class PriceChangeForm(forms.ModelForm):
    """Only what services.price_update may change; every amount stays read-only."""

    class Meta:
        model = Price
        fields = sorted(services.PRICE_MUTABLE_FIELDS)

    def clean_metadata(self) -> dict[str, str]:
        return _clean_metadata(self.cleaned_data.get("metadata"))


# --- the flow ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PricePreview:
    number: int
    pricing_model: str
    currency: str
    billing_period: str
    billing: str
    meter: str
    terms_lines: list[str]
    nickname: str
    lookup_key: str


@dataclass
class CreatedCatalog:
    product: Product
    product_is_new: bool
    meters: list[Meter] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)


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
            rows = parse_tier_rows(data, prefix) or _default_tier_rows()
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
        """Run every service call and roll back: True if they would all succeed.

        Errors the services raise (an inactive meter, a lookup key or event name already
        taken, a billing period over three years) are added to the forms.
        """
        with transaction.atomic():
            created = self._create()
            transaction.set_rollback(True)
        return created is not None

    def save(self) -> CreatedCatalog | None:
        """Create the product, its new meters and its prices in one transaction, or nothing."""
        with transaction.atomic():
            created = self._create()
            if created is None:
                transaction.set_rollback(True)
        return created

    def _create(self) -> CreatedCatalog | None:
        product = self.product
        if product is None:
            assert self.product_form is not None
            try:
                product = services.product_create(
                    name=self.product_form.cleaned_data["name"],
                    description=self.product_form.cleaned_data["description"].strip(),
                )
            except BillingError as error:
                add_billing_error(self.product_form, error, {})
                return None
        created = CreatedCatalog(product=product, product_is_new=self.product is None)
        ok = True
        for form in self.price_forms:
            # A savepoint per price, so every price's service error is reported at once.
            try:
                with transaction.atomic():
                    price, meter = form.create_price(product=product)
            except BillingError as error:
                form.add_service_error(error)
                ok = False
                continue
            created.prices.append(price)
            if meter is not None:
                created.meters.append(meter)
        return created if ok else None
