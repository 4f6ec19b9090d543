"""Reads of the plumbing's own rows that several callers share."""

from __future__ import annotations

from django.db.models import Q

from billing_site.models import ApiKey


def api_keys_matching(*, reference: str) -> list[ApiKey]:
    """The keys an operator means by `reference`: a key's exact name, or the start of its
    secret as lists show it (`rk_AbCdEfG`, a shorter start, or the whole secret). Revoked keys
    included, oldest first."""
    reference = reference.strip()
    if not reference:
        return []
    start = reference[: ApiKey.SECRET_PREFIX_LENGTH]
    candidates = ApiKey.objects.filter(Q(name=reference) | Q(secret_prefix__startswith=start))
    # Checked again here because SQLite's LIKE ignores case, and secrets don't.
    return [
        key
        for key in candidates.order_by("pk")
        if key.name == reference or key.secret_prefix.startswith(start)
    ]
