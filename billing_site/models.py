from __future__ import annotations

from django.db import models


class ApiKey(models.Model):
    """A secret API key. Only its SHA-256 hash is stored; the secret is shown once at creation.

    SHA-256 rather than a slow password hash: the secret is 192 random bits, so there is nothing
    to brute-force, and every API request verifies a key.
    """

    name = models.CharField(max_length=100)
    secret_prefix = models.CharField(
        max_length=16, help_text="The first characters of the secret, to recognise it in lists."
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.secret_prefix}…)"


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
