from __future__ import annotations

from django.db import models

from billing_site.ids import PublicIdField


class Meter(models.Model):
    """What a customer's product reports usage against, and how those events add up.

    After creation only `display_name` can change: prices and invoices already depend on how the
    meter reads its events.
    """

    class Formula(models.TextChoices):
        SUM = "sum", "Sum of values"
        COUNT = "count", "Count of events"
        LAST = "last", "Last value in the period"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"

    public_id = PublicIdField("mtr")
    event_name = models.CharField(
        max_length=100,
        unique=True,
        help_text="The name meter events are sent with, e.g. hypernian_api_tokens.",
    )
    display_name = models.CharField(max_length=250)
    formula = models.CharField(
        max_length=10, choices=Formula.choices, default=Formula.SUM, verbose_name="aggregation"
    )
    customer_payload_key = models.CharField(
        max_length=100,
        default="stripe_customer_id",
        help_text="The event payload key holding the customer id (cus_...).",
    )
    value_payload_key = models.CharField(
        max_length=100, default="value", help_text="The event payload key holding the value."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.event_name})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


# Values: numeric(27, 12), so less than 10^15 in absolute value, at most 12 decimal places and
# (for SQLite's floats) 15 significant digits; `metering.validation` refuses anything else before
# it reaches the database. Negative values correct earlier usage. Sums keep 12 decimals and room
# for 10^13 events of the largest value.
EVENT_VALUE_DIGITS = 27
EVENT_VALUE_DECIMALS = 12
SUM_DIGITS = 40


class MeterEvent(models.Model):
    """One usage report. Rows are never updated except to record a cancellation.

    On PostgreSQL the table is range-partitioned by `timestamp` (one partition a month, see
    `metering.partitions`); its real primary key is (id, timestamp). Identifier uniqueness lives
    in `MeterEventIdentifier`, because a unique index on a partitioned table must include the
    partition key.
    """

    # No database FK constraints on the event tables: the ingest path validates both ids, meters
    # and customers are never hard-deleted, and per-row FK triggers cost more than the insert.
    meter = models.ForeignKey(
        Meter, on_delete=models.DO_NOTHING, related_name="events", db_constraint=False
    )
    customer = models.ForeignKey(
        "invoicing.Customer",
        on_delete=models.DO_NOTHING,
        related_name="meter_events",
        db_constraint=False,
    )
    identifier = models.CharField(max_length=100)
    value = models.DecimalField(max_digits=EVENT_VALUE_DIGITS, decimal_places=EVENT_VALUE_DECIMALS)
    timestamp = models.DateTimeField(help_text="When the usage happened (the billing time).")
    received_at = models.DateTimeField(help_text="When this server accepted the event.")
    payload = models.JSONField(default=dict)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["meter", "customer", "timestamp"], name="meter_event_usage_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} ({self.value})"


class MeterEventIdentifier(models.Model):
    """The exactly-once guard: one row per (meter, identifier), inserted with the event.

    Kept for `metering.store.IDENTIFIER_RETENTION` (40 days, longer than the 35-day acceptance
    window), then purged; an event older than the window is refused anyway.
    """

    # No index of its own: the unique (meter, identifier) index starts with it.
    meter = models.ForeignKey(
        Meter, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    identifier = models.CharField(max_length=100)
    customer_id = models.BigIntegerField()
    event_timestamp = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "identifier"], name="meter_event_identifier_unique"
            )
        ]
        indexes = [models.Index(fields=["received_at"], name="meter_event_ident_recv_idx")]

    def __str__(self) -> str:
        return self.identifier


class MeterUsageRollup(models.Model):
    """Hourly pre-aggregate per (meter, customer), maintained in the ingest transaction.

    `usage()` reads whole hours from here and only the partial edge hours from raw events, so
    a customer with millions of events in a period is answered from a few hundred rows.
    """

    # No index of its own: the unique (meter, customer, hour) index starts with it.
    meter = models.ForeignKey(
        Meter, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    customer = models.ForeignKey(
        "invoicing.Customer", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    hour = models.DateTimeField(help_text="Start of the hour [hour, hour + 1h), UTC.")
    value_sum = models.DecimalField(max_digits=SUM_DIGITS, decimal_places=EVENT_VALUE_DECIMALS)
    event_count = models.BigIntegerField()
    last_value = models.DecimalField(
        max_digits=EVENT_VALUE_DIGITS, decimal_places=EVENT_VALUE_DECIMALS, null=True
    )
    last_timestamp = models.DateTimeField(null=True)
    last_event_id = models.BigIntegerField(null=True, help_text="Breaks timestamp ties.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "customer", "hour"], name="meter_usage_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["meter", "hour"], name="meter_usage_rollup_meter_idx")]

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.customer_id}@{self.hour:%Y-%m-%d %H:00}"


class MeterEventAdjustment(models.Model):
    """A cancellation, kept as its own row for the audit trail."""

    class Type(models.TextChoices):
        CANCEL = "cancel", "Cancel"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="adjustments")
    event_id = models.BigIntegerField(help_text="MeterEvent id (no FK: events are partitioned).")
    identifier = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.CANCEL)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, help_text="'api' or the staff user name.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["meter", "identifier"], name="meter_event_adjustment_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.identifier}"


class MeterEventSession(models.Model):
    """A short-lived token for the v2 meter event stream (Stripe's meter_event_session).

    Like API keys, only the token's SHA-256 hash is stored.
    """

    public_id = PublicIdField("mes")
    api_key = models.ForeignKey("billing_site.ApiKey", on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.public_id
