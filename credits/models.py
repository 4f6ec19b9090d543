from __future__ import annotations

import datetime as dt

from django.db import models

from billing_site.ids import PublicIdField


class CreditGrant(models.Model):
    """Billing credits a customer can spend on metered usage, before tax.

    The remaining balance is never stored: it is the grant's ledger (CreditBalanceTransaction)
    added up. Amounts are integers in the currency's minor units (cents).
    """

    class Category(models.TextChoices):
        PAID = "paid", "Paid"
        PROMOTIONAL = "promotional", "Promotional"

    public_id = PublicIdField("credgr")
    customer = models.ForeignKey(
        "invoicing.Customer", on_delete=models.PROTECT, related_name="credit_grants"
    )
    name = models.CharField(max_length=100, blank=True)
    currency = models.CharField(max_length=3, help_text="Upper-case ISO code.")
    amount = models.BigIntegerField(help_text="Granted amount in minor units (cents).")
    category = models.CharField(max_length=12, choices=Category.choices)
    applies_to_all_metered = models.BooleanField(
        default=True, help_text="Scope: every metered price, or only `prices`."
    )
    prices = models.ManyToManyField("catalog.Price", blank=True, related_name="+")
    priority = models.PositiveSmallIntegerField(
        default=50, help_text="0-100; lower numbers are spent first."
    )
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(
        null=True, blank=True, help_text="When the remaining balance was debited as expired."
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    source_invoice = models.ForeignKey(
        "invoicing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The paid prepayment invoice this grant was made from, if any.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="credit_grant_positive"),
            models.CheckConstraint(
                condition=models.Q(priority__lte=100), name="credit_grant_priority_range"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "currency"], name="credit_grant_customer_idx"),
            models.Index(fields=["expires_at"], name="credit_grant_expiry_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.public_id

    @property
    def label(self) -> str:
        return f"{self.name} ({self.public_id})" if self.name else self.public_id

    def is_expired_at(self, at: dt.datetime) -> bool:
        """Expired by `at`: debited as expired already, or past `expires_at` (end exclusive)."""
        return self.expired_at is not None or (
            self.expires_at is not None and self.expires_at <= at
        )

    def status_at(self, at: dt.datetime) -> str:
        """One of STATUS_*: voided, expired, scheduled (not yet effective) or active."""
        if self.voided_at is not None:
            return self.STATUS_VOIDED
        if self.is_expired_at(at):
            return self.STATUS_EXPIRED
        if self.effective_at > at:
            return self.STATUS_SCHEDULED
        return self.STATUS_ACTIVE

    STATUS_ACTIVE = "active"
    STATUS_SCHEDULED = "scheduled"
    STATUS_EXPIRED = "expired"
    STATUS_VOIDED = "voided"


class CreditBalanceTransaction(models.Model):
    """The append-only credit ledger: rows are inserted, never updated or deleted."""

    class Type(models.TextChoices):
        CREDIT = "credit", "Credit"
        DEBIT = "debit", "Debit"

    class Reason(models.TextChoices):
        CREDITS_GRANTED = "credits_granted", "Credits granted"
        INVOICE_VOIDED = "credits_application_invoice_voided", "Reinstated: invoice voided"
        CREDITS_APPLIED = "credits_applied", "Applied to an invoice"
        CREDITS_EXPIRED = "credits_expired", "Expired"
        CREDITS_VOIDED = "credits_voided", "Grant voided"

    public_id = PublicIdField("cbtxn")
    grant = models.ForeignKey(CreditGrant, on_delete=models.PROTECT, related_name="transactions")
    customer = models.ForeignKey("invoicing.Customer", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=6, choices=Type.choices)
    reason = models.CharField(max_length=40, choices=Reason.choices)
    amount = models.BigIntegerField(help_text="Always positive; `type` says which way it moves.")
    invoice = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice_line = models.ForeignKey(
        "invoicing.InvoiceLineItem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    effective_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="credit_transaction_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} ({self.reason})"

    @property
    def signed_amount(self) -> int:
        return self.amount if self.type == self.Type.CREDIT else -self.amount


class CreditGrantEvent(models.Model):
    """The audit trail of a grant: created, expiry changed, expired, voided; who and when."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        EXPIRED = "expired", "Expired"
        VOIDED = "voided", "Voided"

    grant = models.ForeignKey(CreditGrant, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.CharField(max_length=150, help_text="'api (key name)', a user, or a job.")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"
