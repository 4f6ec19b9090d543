"""The client's IP address, as the API rate limits and the admin login lockout (django-axes) see it.

Behind reverse proxies REMOTE_ADDR is the nearest proxy, so every client would share one limit.
Each trusted proxy appends the address it saw to X-Forwarded-For; with
`BILLING_TRUSTED_PROXY_COUNT` proxies in front, the client is the entry that many places from the
end. Entries further left were written by the client itself and can't be trusted.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote_addr = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.BILLING_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote_addr
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [entry.strip() for entry in header.split(",") if entry.strip()]
    # Fewer entries than proxies: the request didn't come through all of them.
    return forwarded[-proxies] if len(forwarded) >= proxies else remote_addr
