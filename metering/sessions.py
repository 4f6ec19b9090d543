"""Stream sessions (Stripe's v2 meter_event_session): a 15-minute token for the batch stream.

Like API keys, only the token's SHA-256 hash is stored; the token is shown once. An SDK opens a
session every 15 minutes while it streams, so expired sessions are purged daily (by
`metering.tasks.meter_event_maintenance_task`) once `SESSION_RETENTION` has passed since they
expired: a day to look into a stream's recent sessions, and no row kept for ever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import connection

from billing_site import clock
from billing_site.db import execute_prepared
from billing_site.models import ApiKey
from billing_site.services import api_key_auth_columns, api_key_from_auth_row
from metering.models import MeterEventSession

SESSION_LIFETIME = dt.timedelta(minutes=15)
SESSION_RETENTION = dt.timedelta(days=1)  # kept this long after expiring, then purged
TOKEN_PREFIX = "mes_tok_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def meter_event_session_create(*, api_key: ApiKey) -> tuple[MeterEventSession, str]:
    """A stream token valid for 15 minutes; returns the session and the token (shown once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    session = MeterEventSession.objects.create(
        api_key=api_key,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    return session, token


def meter_event_session_authenticate(*, token: str) -> ApiKey | None:
    """The API key behind a live session token, or None. On the hot path of every stream
    request, so PostgreSQL gets one prepared statement instead of the ORM's query."""
    token_hash = _token_hash(token)
    if connection.vendor != "postgresql":
        session = (
            MeterEventSession.objects.select_related("api_key")
            .filter(
                token_hash=token_hash,
                expires_at__gt=clock.now(),
                api_key__revoked_at__isnull=True,
            )
            .first()
        )
        return session.api_key if session else None
    rows = execute_prepared(
        f"SELECT {api_key_auth_columns('k')} FROM {MeterEventSession._meta.db_table} s "
        f"JOIN {ApiKey._meta.db_table} k ON k.id = s.api_key_id "
        "WHERE s.token_hash = %b AND s.expires_at > %b AND k.revoked_at IS NULL",
        [token_hash, clock.now()],
    )
    return api_key_from_auth_row(rows[0]) if rows else None


def meter_event_sessions_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the sessions that expired more than `SESSION_RETENTION` ago; return how many."""
    cutoff = (now or clock.now()) - SESSION_RETENTION
    deleted, _ = MeterEventSession.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
