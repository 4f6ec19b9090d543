"""Celery tasks for credits (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Q

from billing_site import clock
from credits.services import credit_grants_expire_due


@shared_task
def expire_credit_grants_task(inline: bool = False) -> dict:
    """Every minute: debit what remains of grants past their expiry (real-clock customers;
    test-clock customers expire when their clock advances)."""
    expired = credit_grants_expire_due(
        at=clock.now(), customer_filter=Q(customer__test_clock__isnull=True)
    )
    return {"grants_expired": expired}
