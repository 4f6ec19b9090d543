"""Customers: create, update, soft delete."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from billing_site import clock
from billing_site.errors import BillingError
from invoicing.models import Customer


def _clean_email(email: str | None) -> str:
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise BillingError(
                f"Invalid email address: '{email}'.", param="email", code="email_invalid"
            ) from None
    return email


def customer_create(
    *,
    name: str = "",
    email: str = "",
    description: str = "",
    metadata: dict[str, str] | None = None,
    test_clock=None,
) -> Customer:
    if test_clock is not None and test_clock.deleted_at is not None:
        raise BillingError(
            f"Test clock {test_clock.public_id} has been deleted.", param="test_clock"
        )
    return Customer.objects.create(
        test_clock=test_clock,
        name=(name or "").strip(),
        email=_clean_email(email),
        description=description or "",
        metadata=metadata or {},
        created_at=clock.now(),
    )


def customer_update(*, customer: Customer, **changes: Any) -> Customer:
    allowed = {"name", "email", "description", "metadata"}
    unexpected = set(changes) - allowed
    if unexpected:
        raise BillingError(f"Customers can't change {', '.join(sorted(unexpected))}.")
    if customer.deleted_at is not None:
        raise BillingError(
            f"Customer {customer.public_id} has been deleted and can't be updated.",
            code="resource_missing",
        )
    if "email" in changes:
        changes["email"] = _clean_email(changes["email"])
    for field, value in changes.items():
        setattr(customer, field, value)
    customer.save(update_fields=list(changes))
    return customer


def customer_delete(*, customer: Customer) -> Customer:
    """Hide the customer. The row stays because invoices and usage keep pointing at it."""
    if customer.deleted_at is None:
        customer.deleted_at = clock.now()
        customer.save(update_fields=["deleted_at"])
    return customer
