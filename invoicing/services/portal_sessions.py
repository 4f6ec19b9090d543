"""Portal sessions: the row behind each portal link. Made, opened once, revoked by staff.

The signing, the browser session and what counts as "now" (the wall clock: links age in real
time, whatever a test clock says) are `invoicing.portal`'s; these are only the writes.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from invoicing.models import Customer, PortalSession


def portal_session_create(
    *, customer: Customer, actor: str, at: dt.datetime, expires_at: dt.datetime
) -> PortalSession:
    return PortalSession.objects.create(
        customer=customer, created_by=actor[:150], created_at=at, expires_at=expires_at
    )


def portal_session_claim(*, link: PortalSession, at: dt.datetime) -> bool:
    """Mark the link opened, once: only the request whose conditional update wins may open a
    session (STYLE.md rule 10), so a link replayed, even at the same instant, is refused."""
    return bool(
        PortalSession.objects.filter(
            pk=link.pk, opened_at__isnull=True, revoked_at__isnull=True
        ).update(opened_at=at)
    )


def portal_sessions_revoke(*, customer: Customer, actor: str, at: dt.datetime) -> int:
    """Revoke the customer's links that can still be opened and the sessions they opened.

    Returns how many were revoked. New links can be made afterwards as usual.
    """
    live = Q(opened_at__isnull=False) | Q(expires_at__gt=at)
    return (
        PortalSession.objects.filter(customer=customer, revoked_at__isnull=True)
        .filter(live)
        .update(revoked_at=at, revoked_by=actor[:150])
    )
