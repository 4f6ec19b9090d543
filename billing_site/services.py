from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.db import connection

from billing_site import clock
from billing_site.db import execute_prepared
from billing_site.models import ApiKey, IdempotencyKey

SECRET_KEY_PREFIX = "sk_"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_api_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create a key; return it with its secret, which is never stored and is shown only now."""
    name = name.strip()
    if not name:
        raise ValueError("An API key needs a name, so you can tell keys apart when revoking one.")
    secret = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name[:100], secret_prefix=secret[:10], secret_hash=hash_api_secret(secret)
    )
    return api_key, secret


def _find_live_key(secret_hash: str) -> ApiKey | None:
    if connection.vendor != "postgresql":
        return (
            ApiKey.objects.filter(secret_hash=secret_hash, revoked_at__isnull=True)
            .only("id", "name", "last_used_at")
            .first()
        )
    # Every API request starts here: one prepared statement instead of building an ORM query.
    rows = execute_prepared(
        f"SELECT id, name, last_used_at FROM {ApiKey._meta.db_table} "
        "WHERE secret_hash = %b AND revoked_at IS NULL",
        [secret_hash],
    )
    return ApiKey(id=rows[0][0], name=rows[0][1], last_used_at=rows[0][2]) if rows else None


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    api_key = _find_live_key(hash_api_secret(secret))
    now = clock.now()
    # Throttled so that a busy ingestion client doesn't turn every request into a write.
    if api_key is not None and (
        api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION
    ):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=clock.now())


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Forget stored responses older than the replay window (`Idempotency-Key` retention)."""
    cutoff = (now or clock.now()) - dt.timedelta(
        hours=settings.BILLING_API_IDEMPOTENCY_KEY_TTL_HOURS
    )
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
