"""Stripe's webhook signature, so the official SDKs' `Webhook.construct_event` verifies ours.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the
endpoint's secret>`. While a rolled secret's grace period lasts, the header carries one `v1=`
per secret (new first): a receiver that still has the old secret keeps verifying.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
_ALPHABET = string.ascii_letters + string.digits


def generate_secret() -> str:
    return SECRET_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secrets_: Sequence[str], timestamp: int) -> str:
    return ",".join(
        [f"t={timestamp}", *(f"v1={signature(payload, secret, timestamp)}" for secret in secrets_)]
    )
