"""Events, webhook endpoints, and the log of every delivery and attempt.

Imported by `billing_site/models.py`, so the rows belong to the `billing_site` app.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from billing_site.ids import PublicIdField


class Event(models.Model):
    """One state change, as Stripe's `event` object. Written in the transaction of the change,
    so it exists exactly when the change does; never updated afterwards."""

    public_id = PublicIdField("evt")
    type = models.CharField(max_length=100, help_text="Stripe's event name, e.g. invoice.paid.")
    api_version = models.CharField(max_length=40, help_text="The shape `data` was rendered in.")
    data = models.JSONField(
        encoder=DjangoJSONEncoder,
        help_text="{'object': the object as the API serialized it then, and on *.updated "
        "events 'previous_attributes': the changed fields' former values}.",
    )
    object_id = models.CharField(
        max_length=64, blank=True, help_text="The public id of data.object (empty if it has none)."
    )
    request_id = models.CharField(
        max_length=64, null=True, blank=True, help_text="The API request that caused it, if any."
    )
    request_idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    dedupe_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="For events sent once per something (invoice.upcoming once per period): "
        "the unique constraint is the claim.",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["created_at"], name="event_created_idx"),
            models.Index(fields=["type", "created_at"], name="event_type_created_idx"),
            models.Index(fields=["object_id"], name="event_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.public_id})"


class WebhookEndpoint(models.Model):
    """A URL of the customer's own systems that receives events, signed with its secret."""

    class Status(models.TextChoices):
        ENABLED = "enabled", "Enabled"
        DISABLED = "disabled", "Disabled"

    class DisabledReason(models.TextChoices):
        NONE = "", "—"
        MANUAL = "manual", "Disabled by staff or the API"
        FAILING = "failing", "Every delivery failed for too long"

    public_id = PublicIdField("we")
    url = models.CharField(max_length=2048)
    enabled_events = models.JSONField(
        default=list, help_text="Event types this endpoint receives, or ['*'] for all."
    )
    description = models.CharField(max_length=5000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    api_version = models.CharField(max_length=40, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENABLED)
    # Stored in clear because signing needs it (HMAC), as Stripe does; shown once at creation,
    # and afterwards only to a superuser who asks for it.
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(
        max_length=100,
        blank=True,
        editable=False,
        help_text="After a roll, the old secret still signs (a second v1=) until it expires.",
    )
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The first failed attempt since the last successful one; cleared by a success.",
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(
        max_length=10, choices=DisabledReason.choices, default=DisabledReason.NONE, blank=True
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.status == self.Status.ENABLED

    def listens_to(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until a 2xx, retried with backoff, given up after the
    retry window. Created with the event, in its transaction."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a pending delivery is next due; a worker's claim moves it past the "
        "attempt's timeout, so a worker that dies leaves it due again. Empty once done.",
    )
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_one_per_event_endpoint"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery, successful or not: what the receiver answered, or why not."""

    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        RESEND = "resend", "Resent by staff"
        TEST = "test", "Test send"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    attempted_at = models.DateTimeField()
    url = models.CharField(max_length=2048, help_text="The URL posted to (it may change later).")
    succeeded = models.BooleanField(help_text="A 2xx answer within the timeout.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From connecting until the response was read."
    )
    response_body = models.TextField(blank=True, help_text="The first bytes of the answer.")
    response_truncated = models.BooleanField(
        default=False, help_text="The answer was longer than the read cap; the rest was dropped."
    )
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.response_status or self.error or '—'} at {self.attempted_at:%Y-%m-%d %H:%M}"
