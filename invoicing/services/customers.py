"""Customers: create, update, soft delete."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from billing_site import clock
from billing_site.errors import BillingError, ErrorCode
from billing_site.events.recording import record_event, record_update, snapshot
from billing_site.model_update import model_update
from invoicing.models import Customer, CustomerEvent, Subscription
from invoicing.services.customer_events import customer_event_record
from invoicing.services.subscriptions import subscription_cancel_now


def _clean_email(email: str | None) -> str:
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise BillingError(
                f"Invalid email address: '{email}'.", param="email", code=ErrorCode.EMAIL_INVALID
            ) from None
    return email


@transaction.atomic
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
    customer = Customer.objects.create(
        test_clock=test_clock,
        name=(name or "").strip(),
        email=_clean_email(email),
        description=description or "",
        metadata=metadata or {},
        created_at=clock.now(),
    )
    record_event("customer.created", customer)
    return customer


CUSTOMER_MUTABLE_FIELDS = {"name", "email", "description", "metadata"}


@transaction.atomic
def customer_update(*, customer: Customer, **changes: Any) -> Customer:
    unexpected = set(changes) - CUSTOMER_MUTABLE_FIELDS
    if unexpected:
        raise BillingError(f"Customers can't change {', '.join(sorted(unexpected))}.")
    if customer.deleted_at is not None:
        raise BillingError(
            f"Customer {customer.public_id} has been deleted and can't be updated.",
            code=ErrorCode.RESOURCE_MISSING,
        )
    if "email" in changes:
        changes["email"] = _clean_email(changes["email"])
    before = snapshot(customer)
    customer, _ = model_update(instance=customer, fields=CUSTOMER_MUTABLE_FIELDS, data=changes)
    record_update("customer.updated", customer, before)
    return customer


@transaction.atomic
def customer_delete(
    *, customer: Customer, invoice_now: bool = False, actor: str = "api"
) -> Customer:
    """Hide the customer and cancel its subscriptions at once, as Stripe does.

    The row stays because invoices and usage keep pointing at it. With `invoice_now`, each
    subscription's usage so far is billed on a final invoice; without it (Stripe's default),
    the current period's usage is not billed. Drafts already in their grace period still
    finalize: they bill periods that ended before the deletion.
    """
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("test_clock")
        .get(pk=customer.pk)
    )
    if customer.deleted_at is not None:
        return customer
    # The event carries the customer as it was (the API shows a deleted one as a stub).
    before = snapshot(customer)
    canceled = [
        subscription_cancel_now(subscription=subscription, invoice_now=invoice_now, actor=actor)
        for subscription in customer.subscriptions.filter(status=Subscription.Status.ACTIVE)
    ]
    customer.deleted_at = clock.now()
    customer.save(update_fields=["deleted_at"])
    record_event("customer.deleted", data_object=before)
    ids = ", ".join(subscription.public_id for subscription in canceled)
    customer_event_record(
        customer=customer,
        action=CustomerEvent.Action.DELETED,
        actor=actor,
        at=customer.deleted_at,
        note=(
            f"Canceled at once: {ids}; usage so far "
            + ("invoiced" if invoice_now else "not invoiced")
            if canceled
            else "No active subscriptions."
        ),
    )
    return customer
