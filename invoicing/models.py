from __future__ import annotations

from django.db import models

from billing_site.ids import PublicIdField


class CustomerQuerySet(models.QuerySet):
    def live(self) -> CustomerQuerySet:
        return self.filter(deleted_at__isnull=True)


class Customer(models.Model):
    """Someone who is billed. Deleting keeps the row (invoices still point at it) but hides it."""

    public_id = PublicIdField("cus")
    name = models.CharField(max_length=256, blank=True)
    email = models.EmailField(max_length=512, blank=True)
    description = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when deleted through the API or the admin."
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["email"], name="customer_email_idx")]

    def __str__(self) -> str:
        label = self.name or self.email or self.public_id
        return f"{label} (deleted)" if self.deleted_at else label
