"""One price of the create-product page: flat rate or usage-based, and its billing period.

:class:`PriceForm` only reads what staff typed: amounts in major units (see
:mod:`.amounts`) and the tier table (see :mod:`.tier_rows`) become terms in minor units,
validated by :func:`catalog.terms.build_price_terms`, and the billing period and meter
become a :class:`catalog.services.PriceInput`. Errors land next to the field or the tier
row they concern, in the admin's words rather than the API's parameter names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorList

from billing_site.admin_kit import add_billing_error
from billing_site.errors import BillingError
from catalog import services
from catalog.admin_forms.amounts import AmountError, major_to_minor_units, shown
from catalog.admin_forms.choices import (
    BILLING_PERIOD_CHOICES,
    CUSTOM_PERIOD,
    FLAT_RATE,
    NEW_METER,
    ONE_OFF,
    PACKAGE,
    PER_UNIT,
    PRESET_PERIODS,
    PRICING_MODEL_CHOICES,
    PRICING_MODEL_LABELS,
    TIERED_MODELS,
)
from catalog.admin_forms.tier_rows import TierRow, default_tier_rows, parse_tier_rows
from catalog.describe import billing_period_label, describe_price_terms
from catalog.models import Price
from catalog.money import UnknownCurrency, currency_exponent
from catalog.rating import PriceTerms
from catalog.terms import InvalidPriceTerms, build_price_terms
from metering.models import Meter

__all__ = ["PriceForm", "PricePreview"]

# Where a tier's error from build_price_terms (e.g. tiers[1][up_to]) belongs in the tier table.
_TIER_PARAM = re.compile(r"tiers\[(\d+)\](?:\[(\w+)\])?")
_TIER_PARAM_COLUMN = {
    "up_to": "up_to",
    "unit_amount": "unit_amount",
    "unit_amount_decimal": "unit_amount",
    "flat_amount": "flat_amount",
    "flat_amount_decimal": "flat_amount",
}
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


@dataclass(frozen=True)
class PricePreview:
    """A valid price form in words, for the preview page."""

    number: int
    pricing_model: str
    currency: str
    billing_period: str
    billing: str
    meter: str
    terms_lines: list[str]
    nickname: str
    lookup_key: str


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
            self.tier_rows = default_tier_rows()
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
            raise ValidationError(f"No such meter: '{shown(value)}'. Choose one from the list.")
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

    # --- what the services take, and what they refuse --------------------------------------

    def add_service_error(self, error: BillingError) -> None:
        mapping = dict(_SERVICE_PARAM_TO_FIELD)
        if self.cleaned_data.get("billing_period") == CUSTOM_PERIOD:
            mapping.update(
                {"recurring[interval]": "interval", "recurring[interval_count]": "interval_count"}
            )
        add_billing_error(self, error, mapping)

    def price_input(self) -> services.PriceInput:
        """The price (and its new meter) as `product_create_with_prices` takes it."""
        assert self.terms is not None, "price_input() needs a valid form"
        data = self.cleaned_data
        meter = data.get("meter")
        new_meter = None
        if meter == NEW_METER:
            new_meter = services.NewMeter(
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
                # A new meter is created by the service, which puts it here.
                meter=meter if isinstance(meter, Meter) else None,
            )
        return services.PriceInput(
            currency=data["currency"],
            terms=self.terms,
            recurring=recurring,
            new_meter=new_meter,
            nickname=data.get("nickname", "").strip(),
            lookup_key=data.get("lookup_key", "").strip() or None,
        )

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
