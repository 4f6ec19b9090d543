from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connection

from billing_site import clock
from billing_site.db import execute_prepared
from billing_site.key_permissions import clean_permissions
from billing_site.models import ApiKey, IdempotencyKey

SECRET_KEY_PREFIX = "sk_"  # full access
RESTRICTED_KEY_PREFIX = "rk_"  # per-resource permissions (billing_site/key_permissions.py)
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_api_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *, name: str, permissions: Mapping[str, str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key; return it with its secret, which is never stored and is shown only now.

    Without `permissions` the key has full access (`sk_...`); with them it is a restricted key
    (`rk_...`) that may only do what they grant. Who may create which kind is the caller's
    rule (the admin lets only superusers create full-access keys).
    """
    name = name.strip()
    if not name:
        raise ValueError("An API key needs a name, so you can tell keys apart when revoking one.")
    cleaned = None if permissions is None else clean_permissions(permissions)
    prefix = SECRET_KEY_PREFIX if cleaned is None else RESTRICTED_KEY_PREFIX
    secret = prefix + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name[:100],
        secret_prefix=secret[: ApiKey.SECRET_PREFIX_LENGTH],
        secret_hash=hash_api_secret(secret),
        permissions=cleaned,
    )
    return api_key, secret


# What a request needs of its key: who (the actor's name), what it may do, how to quote it.
_AUTH_FIELDS = ("id", "name", "secret_prefix", "permissions", "last_used_at")


def api_key_auth_columns(table_alias: str) -> str:
    """The columns `api_key_from_auth_row` reads, for hot-path SQL joining the key table."""
    return ", ".join(f"{table_alias}.{field}" for field in _AUTH_FIELDS)


def api_key_from_auth_row(row: Sequence[Any]) -> ApiKey:
    """The key (with what authorization needs) from a row of `api_key_auth_columns`."""
    values = dict(zip(_AUTH_FIELDS, row, strict=True))
    if isinstance(values["permissions"], str):  # jsonb comes back as text through Django
        values["permissions"] = json.loads(values["permissions"])
    return ApiKey(**values)


def _find_live_key(secret_hash: str) -> ApiKey | None:
    if connection.vendor != "postgresql":
        return (
            ApiKey.objects.filter(secret_hash=secret_hash, revoked_at__isnull=True)
            .only(*_AUTH_FIELDS)
            .first()
        )
    # Every API request starts here: one prepared statement instead of building an ORM query.
    rows = execute_prepared(
        f"SELECT {api_key_auth_columns('k')} FROM {ApiKey._meta.db_table} k "
        "WHERE k.secret_hash = %b AND k.revoked_at IS NULL",
        [secret_hash],
    )
    return api_key_from_auth_row(rows[0]) if rows else None


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
