"""Stream sessions (Stripe's v2 meter_event_session): a 15-minute token for the batch stream.

Like API keys, only the token's SHA-256 hash is stored; the token is shown once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import connection

from billing_site import clock
from billing_site.db import execute_prepared
from billing_site.models import ApiKey
from metering.models import MeterEventSession

SESSION_LIFETIME = dt.timedelta(minutes=15)
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
        f"SELECT k.id, k.name FROM {MeterEventSession._meta.db_table} s "
        f"JOIN {ApiKey._meta.db_table} k ON k.id = s.api_key_id "
        "WHERE s.token_hash = %b AND s.expires_at > %b AND k.revoked_at IS NULL",
        [token_hash, clock.now()],
    )
    return ApiKey(id=rows[0][0], name=rows[0][1]) if rows else None
