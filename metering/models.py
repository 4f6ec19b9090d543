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
