"""Celery tasks for the plumbing (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from billing_site.services import idempotency_keys_purge


@shared_task
def purge_idempotency_keys_task(inline: bool = False) -> dict:
    """Hourly: forget stored API responses past their replay window."""
    return {"idempotency_keys_purged": idempotency_keys_purge()}
