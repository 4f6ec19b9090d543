from __future__ import annotations

import functools

from django.db import models
from djmoney.models.fields import CurrencyField

from billing_site.ids import PublicIdField, generate_public_id
from catalog.rating import PriceTerms, Tier, TransformQuantity

# Amounts are stored as Stripe sends them: in the currency's minor units (cents for USD, yen for
# JPY), with up to 12 decimal places, so 0.001 USD a token is stored as 0.1.
MINOR_UNIT_DIGITS = 24
MINOR_UNIT_DECIMALS = 12


def minor_unit_amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=MINOR_UNIT_DIGITS, decimal_places=MINOR_UNIT_DECIMALS, **kwargs
    )


# A product's id may be chosen on create (Stripe's `id`), so it is longer than generated ids.
PRODUCT_ID_MAX_LENGTH = 64


class Product(models.Model):
    public_id = models.CharField(
        max_length=PRODUCT_ID_MAX_LENGTH,
        unique=True,
        editable=False,
        default=functools.partial(generate_public_id, "prod"),
        verbose_name="ID",
        help_text="Public id shown in the API: prod_... or the id given on create.",
    )
    name = models.CharField(max_length=250)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Shown to customers only; no tax is computed here (tax_details is stored as given).
    unit_label = models.CharField(max_length=12, blank=True, help_text="e.g. 'seat', 'token'.")
    url = models.CharField(max_length=2048, blank=True)
    images = models.JSONField(default=list, blank=True, help_text="Up to 8 image URLs.")
    statement_descriptor = models.CharField(max_length=22, blank=True)
    tax_details = models.JSONField(
        null=True, blank=True, help_text="{tax_code, performance_location}, as given; not used."
    )
    default_price = models.ForeignKey(
        "catalog.Price", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    """How much a product costs. Its amounts never change: archive it and create a new one."""

    class Type(models.TextChoices):
        ONE_TIME = "one_time", "One-time"
        RECURRING = "recurring", "Recurring"

    class Interval(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"
        YEAR = "year", "Year"

    class UsageType(models.TextChoices):
        LICENSED = "licensed", "Licensed (billed in advance per quantity)"
        METERED = "metered", "Metered (billed in arrears from a meter)"

    class BillingScheme(models.TextChoices):
        PER_UNIT = "per_unit", "Per unit"
        TIERED = "tiered", "Tiered"

    class TiersMode(models.TextChoices):
        GRADUATED = "graduated", "Graduated"
        VOLUME = "volume", "Volume"

    class TaxBehavior(models.TextChoices):
        UNSPECIFIED = "unspecified", "Unspecified"
        EXCLUSIVE = "exclusive", "Exclusive"
        INCLUSIVE = "inclusive", "Inclusive"

    class Round(models.TextChoices):
        UP = "up", "Up"
        DOWN = "down", "Down"

    public_id = PublicIdField("price")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = CurrencyField(help_text="ISO 4217 code, upper case (USD).")
    type = models.CharField(max_length=10, choices=Type.choices)
    recurring_interval = models.CharField(
        max_length=5, choices=Interval.choices, null=True, blank=True
    )
    recurring_interval_count = models.PositiveSmallIntegerField(null=True, blank=True)
    recurring_usage_type = models.CharField(
        max_length=8, choices=UsageType.choices, null=True, blank=True
    )
    meter = models.ForeignKey(
        "metering.Meter",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="prices",
        help_text="Only for metered prices: the meter whose usage this price bills.",
    )
    billing_scheme = models.CharField(
        max_length=8, choices=BillingScheme.choices, default=BillingScheme.PER_UNIT
    )
    unit_amount_decimal = minor_unit_amount_field(
        null=True,
        blank=True,
        help_text="Per-unit price in minor units (cents), up to 12 decimals. Empty when tiered.",
    )
    tiers_mode = models.CharField(max_length=9, choices=TiersMode.choices, null=True, blank=True)
    transform_divide_by = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Package pricing: the quantity is divided by this before multiplying.",
    )
    transform_round = models.CharField(max_length=4, choices=Round.choices, null=True, blank=True)
    active = models.BooleanField(default=True)
    nickname = models.CharField(max_length=250, blank=True)
    lookup_key = models.CharField(max_length=200, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tax_behavior = models.CharField(
        max_length=11,
        choices=TaxBehavior.choices,
        default=TaxBehavior.UNSPECIFIED,
        help_text="Stored and reported; no tax is computed here.",
    )
    currency_options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Other currencies this price bills in: {'eur': {'unit_amount_decimal': "
        "'1800', 'tax_behavior': 'unspecified'}} (minor units of that currency; per unit only).",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["lookup_key"], name="price_lookup_key_unique"),
            models.CheckConstraint(
                condition=models.Q(unit_amount_decimal__gte=0)
                | models.Q(unit_amount_decimal__isnull=True),
                name="price_unit_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(recurring_usage_type="metered", meter__isnull=False)
                | (~models.Q(recurring_usage_type="metered") & models.Q(meter__isnull=True))
                | models.Q(recurring_usage_type__isnull=True, meter__isnull=True),
                name="price_meter_iff_metered",
            ),
        ]
        indexes = [models.Index(fields=["product", "active"], name="price_product_active_idx")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.public_id})"

    @property
    def display_name(self) -> str:
        """The price's nickname, or its product's name."""
        return self.nickname or self.product.name

    @property
    def is_metered(self) -> bool:
        return self.recurring_usage_type == self.UsageType.METERED

    @property
    def terms(self) -> PriceTerms:
        """The price as the pure rating engine sees it (prefetch `tiers` when rating many)."""
        transform = None
        if self.transform_divide_by:
            transform = TransformQuantity(
                divide_by=self.transform_divide_by, round=self.transform_round or "up"
            )
        return PriceTerms(
            billing_scheme=self.billing_scheme,
            unit_amount=self.unit_amount_decimal,
            tiers_mode=self.tiers_mode,
            tiers=tuple(tier.as_rating_tier() for tier in self.tiers.all()),
            transform_quantity=transform,
        )


class PriceTier(models.Model):
    price = models.ForeignKey(Price, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField(help_text="0 for the first tier.")
    up_to = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Inclusive upper bound in units; empty means 'inf'."
    )
    unit_amount_decimal = minor_unit_amount_field(
        default=0, help_text="Per-unit price in minor units (cents), up to 12 decimals."
    )
    flat_amount_decimal = minor_unit_amount_field(
        default=0, help_text="Flat fee for reaching this tier, in minor units (cents)."
    )

    class Meta:
        ordering = ["price", "position"]
        constraints = [
            models.UniqueConstraint(fields=["price", "position"], name="price_tier_position_unique")
        ]

    def __str__(self) -> str:
        return f"Tier {self.position + 1} of {self.price_id}"

    def as_rating_tier(self) -> Tier:
        from decimal import Decimal

        return Tier(
            up_to=None if self.up_to is None else Decimal(self.up_to),
            unit_amount=self.unit_amount_decimal,
            flat_amount=self.flat_amount_decimal,
        )
