from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from billing_site import clock
from billing_site.ids import PublicIdField
from invoicing.periods import Period, next_period


class TestClock(models.Model):
    """A Stripe-style test clock: customers attached to it are billed at its frozen time."""

    class Status(models.TextChoices):
        READY = "ready", "Ready"
        ADVANCING = "advancing", "Advancing"
        INTERNAL_FAILURE = "internal_failure", "Internal failure"

    public_id = PublicIdField("clock")
    name = models.CharField(max_length=300, blank=True)
    frozen_time = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.READY)
    advance_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the running (or last) advance started."
    )
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.name or self.public_id

    def advance_is_stale(self, now: dt.datetime) -> bool:
        """An advance still `advancing` past the staleness window died with its worker."""
        return (
            self.status == self.Status.ADVANCING
            and self.advance_started_at is not None
            and now - self.advance_started_at
            > dt.timedelta(seconds=settings.BILLING_STALE_REQUEST_SECONDS)
        )


class CustomerQuerySet(models.QuerySet):
    def live(self) -> CustomerQuerySet:
        return self.filter(deleted_at__isnull=True)


class Customer(models.Model):
    """Someone who is billed. Deleting keeps the row (invoices still point at it) but hides it."""

    public_id = PublicIdField("cus")
    name = models.CharField(max_length=256, blank=True)
    email = models.EmailField(max_length=512, blank=True)
    description = models.TextField(blank=True)
    currency = models.CharField(
        max_length=3,
        blank=True,
        help_text="Upper-case ISO code, set by the customer's first subscription or invoice "
        "(Stripe's customer.currency); pending items without a currency default to it.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when deleted through the API or the admin."
    )
    test_clock = models.ForeignKey(
        TestClock,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        help_text="Bill this customer at the clock's frozen time (for simulations).",
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["email"], name="customer_email_idx")]

    def __str__(self) -> str:
        label = self.name or self.email or self.public_id
        return f"{label} (deleted)" if self.deleted_at else label

    def billing_now(self) -> dt.datetime:
        """The customer's billing time: its test clock's frozen time, or the real clock."""
        if self.test_clock_id is not None:
            return self.test_clock.frozen_time
        return clock.now()


class Subscription(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CANCELED = "canceled", "Canceled"

    class CollectionMethod(models.TextChoices):
        CHARGE_AUTOMATICALLY = "charge_automatically", "Charge automatically"
        SEND_INVOICE = "send_invoice", "Send invoice"

    class BillingMode(models.TextChoices):
        CLASSIC = "classic", "Classic"
        FLEXIBLE = "flexible", "Flexible"

    public_id = PublicIdField("sub")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    currency = models.CharField(max_length=3, help_text="Upper-case ISO code shared by all items.")
    interval = models.CharField(max_length=5)
    interval_count = models.PositiveSmallIntegerField()
    billing_cycle_anchor = models.DateTimeField(
        help_text="Period boundaries are computed from this by calendar arithmetic."
    )
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(help_text="Exclusive.")
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    collection_method = models.CharField(
        max_length=20,
        choices=CollectionMethod.choices,
        default=CollectionMethod.CHARGE_AUTOMATICALLY,
    )
    days_until_due = models.PositiveSmallIntegerField(null=True, blank=True)
    billing_mode = models.CharField(
        max_length=8,
        choices=BillingMode.choices,
        default=BillingMode.FLEXIBLE,
        help_text="Stripe's billing_mode: 'flexible' (the current API's default) sends no first "
        "invoice when there is nothing to bill in advance (metered items only); 'classic' "
        "always sends one, even for 0.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["status", "current_period_end"], name="subscription_due_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def current_period(self) -> Period:
        return Period(self.current_period_start, self.current_period_end)

    @property
    def following_period(self) -> Period:
        """The period after the current one, by calendar arithmetic from the anchor."""
        return next_period(
            self.current_period, self.billing_cycle_anchor, self.interval, self.interval_count
        )


class SubscriptionItem(models.Model):
    public_id = PublicIdField("si")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(
        default=1, help_text="Licensed prices only; metered items bill their usage."
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.public_id


class InvoiceNumberSequence(models.Model):
    """One gapless counter per prefix, locked (SELECT FOR UPDATE) while an invoice finalizes."""

    prefix = models.CharField(max_length=20, unique=True)
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.prefix}-{self.next_number:04d}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    class BillingReason(models.TextChoices):
        SUBSCRIPTION_CREATE = "subscription_create", "Subscription created"
        SUBSCRIPTION_CYCLE = "subscription_cycle", "Billing period ended"
        SUBSCRIPTION_CANCEL = "subscription_cancel", "Subscription canceled"
        MANUAL = "manual", "Manual (one-off)"

    public_id = PublicIdField("in")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    billing_period_key = models.CharField(
        max_length=40,
        null=True,
        blank=True,
        help_text="For subscription invoices: 'create' or the closed period's start. One "
        "invoice per key and subscription, so a period can't be billed twice.",
    )
    status = models.CharField(max_length=13, choices=Status.choices, default=Status.DRAFT)
    billing_reason = models.CharField(max_length=20, choices=BillingReason.choices)
    currency = models.CharField(max_length=3)
    collection_method = models.CharField(
        max_length=20,
        choices=Subscription.CollectionMethod.choices,
        default=Subscription.CollectionMethod.CHARGE_AUTOMATICALLY,
    )
    days_until_due = models.PositiveSmallIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # Amounts are integers in the currency's minor units (cents), as in Stripe's API.
    subtotal = models.BigIntegerField(default=0)
    total_credits = models.BigIntegerField(default=0, help_text="Billing credits applied.")
    total = models.BigIntegerField(default=0)
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    finalize_after = models.DateTimeField(
        null=True, blank=True, help_text="Drafts finalize automatically after this (grace)."
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_out_of_band = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "billing_period_key"],
                name="invoice_one_per_subscription_period",
            )
        ]
        indexes = [
            models.Index(fields=["status", "finalize_after"], name="invoice_due_draft_idx"),
            models.Index(fields=["customer", "status"], name="invoice_customer_status_idx"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """What people call the invoice: its number once finalized, its id while a draft."""
        return self.number or self.public_id

    @property
    def amount_remaining(self) -> int:
        if self.status in (self.Status.PAID, self.Status.VOID):
            return 0
        return self.amount_due - self.amount_paid


class InvoiceLineItem(models.Model):
    class Kind(models.TextChoices):
        LICENSED = "licensed", "Subscription fee (in advance)"
        METERED = "metered", "Usage (in arrears)"
        INVOICE_ITEM = "invoiceitem", "One-off item"

    public_id = PublicIdField("il")
    item_public_id = models.CharField(
        max_length=40, null=True, blank=True, unique=True, help_text="ii_... for one-off items."
    )
    invoice = models.ForeignKey(
        Invoice,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="lines",
        help_text="None only for a pending invoice item, waiting for the customer's next invoice.",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Invoice items only (a pending one has no invoice to take them from).
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3, blank=True, help_text="Invoice items only.")
    unit_amount_decimal = models.DecimalField(
        max_digits=40,
        decimal_places=12,
        null=True,
        blank=True,
        help_text="Minor units per unit, for an item priced by unit_amount_decimal (no price).",
    )
    subscription_item = models.ForeignKey(
        SubscriptionItem, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    price = models.ForeignKey(
        "catalog.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(
        max_digits=40, decimal_places=12, help_text="Usage or seats (before transform)."
    )
    amount = models.BigIntegerField(help_text="Minor units, rounded once, half up.")
    unrounded_amount = models.DecimalField(
        max_digits=40, decimal_places=12, help_text="Exact amount before the line's rounding."
    )
    tier_breakdown = models.JSONField(default=list, blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    credits_applied = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.description


class InvoiceEvent(models.Model):
    """The audit trail: every status change, who or what made it, and when."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=13, blank=True)
    to_status = models.CharField(max_length=13)
    actor = models.CharField(
        max_length=150, help_text="'api (key name)', 'billing run', or a user name."
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class BillingRunFailure(models.Model):
    """A subscription the billing run could not process; shown to staff, retried next run."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+")
    step = models.CharField(max_length=40)
    error = models.TextField()
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.step}: {self.subscription_id}"


class CustomerEvent(models.Model):
    """The audit trail of a customer's account: its subscriptions started and ended, and its
    deletion; who did it (an API key, a staff user or a job) and when."""

    class Action(models.TextChoices):
        SUBSCRIPTION_CREATED = "subscription_created", "Subscription created"
        SUBSCRIPTION_CANCELED = "subscription_canceled", "Subscription canceled"
        DELETED = "deleted", "Customer deleted"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    action = models.CharField(max_length=30, choices=Action.choices)
    actor = models.CharField(max_length=150, help_text="'api (key name)', a user, or a job.")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(
        help_text="When it took effect, as the changed row records it (a subscription's own "
        "time is its customer's billing time: a test clock's frozen time, if it has one)."
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor}"


class PortalSession(models.Model):
    """A portal link (Stripe's `billing_portal.session`): made by staff or an API key, opened
    once.

    The link's signed token names this row by `public_id`; the token itself is never stored.
    Opening the link claims the row (`opened_at`), so a second use is refused; staff can revoke
    a customer's links, which also ends the browser sessions they opened. Times are wall-clock,
    like the signer's: links age in real time, whatever a test clock says.
    """

    public_id = PublicIdField("bps")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_sessions")
    created_by = models.CharField(max_length=150, help_text="'api (key name)' or a user.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="The link can't be opened from then on.")
    opened_at = models.DateTimeField(
        null=True, blank=True, help_text="When the link opened a browser session (once only)."
    )
    revoked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The link no longer opens, and the browser session it opened has ended.",
    )
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.public_id
