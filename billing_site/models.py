from __future__ import annotations

from django.db import models

from billing_site import key_permissions

# The event bus's rows live with the rest of the plumbing (billing_site/events/models.py).
from billing_site.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Event",
    "IdempotencyKey",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]


class ApiKey(models.Model):
    """A secret API key. Only its SHA-256 hash is stored; the secret is shown once at creation.

    SHA-256 rather than a slow password hash: the secret is 192 random bits, so there is nothing
    to brute-force, and every API request verifies a key.
    """

    name = models.CharField(max_length=100)
    secret_prefix = models.CharField(
        max_length=16, help_text="The first characters of the secret, to recognise it in lists."
    )
    permissions = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Restricted keys (rk_...) only: {resource: 'read' or 'write'}, a resource not "
        "listed is 'none' (billing_site/key_permissions.py). Empty for full-access keys (sk_...).",
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # How much of the secret `secret_prefix` keeps: enough to tell keys apart, too little to use.
    SECRET_PREFIX_LENGTH = 10

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.secret_prefix}…)"

    @property
    def is_restricted(self) -> bool:
        return self.permissions is not None

    def allows(self, resource: str, access: str) -> bool:
        """Whether this key may `access` ("read" or "write") the API resource."""
        return key_permissions.allows(self.permissions, resource, access)


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an `Idempotency-Key` header, replayed on retries.

    A row with no `response_status` is a request still running: a concurrent retry gets a 409.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_method = models.CharField(max_length=10)
    request_path = models.CharField(max_length=255)
    request_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical request parameters."
    )
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "key"], name="idempotency_key_unique_per_api_key"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return self.key
