"""The choices of the create-product page: pricing models and billing periods."""

from __future__ import annotations

from catalog.describe import NAMED_BILLING_PERIODS

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
    *((key, NAMED_BILLING_PERIODS[period]) for key, period in PRESET_PERIODS.items()),
    (CUSTOM_PERIOD, "Custom"),
    (ONE_OFF, "One-off (flat rate only)"),
]
