"""The customer's audit trail: subscriptions started and ended, and the deletion, with who did
it. Written in the same transaction as the change (STYLE.md rule 12)."""

from __future__ import annotations

import datetime as dt

from invoicing.models import Customer, CustomerEvent, Subscription


def customer_event_record(
    *,
    customer: Customer,
    action: str,
    actor: str,
    at: dt.datetime,
    subscription: Subscription | None = None,
    note: str = "",
) -> CustomerEvent:
    return CustomerEvent.objects.create(
        customer=customer,
        subscription=subscription,
        action=action,
        actor=actor[:150],
        note=note[:500],
        created_at=at,
    )
