"""The event types this server sends: Stripe's names, and what each one means here."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "customer.created": "A customer was created.",
    "customer.updated": "A customer's name, email, description or metadata changed.",
    "customer.deleted": "A customer was deleted (its subscriptions end at once).",
    "product.created": "A product was created.",
    "product.updated": "A product changed (including archiving: active=false).",
    "product.deleted": "A product without prices was deleted.",
    "price.created": "A price was created.",
    "price.updated": "A price's nickname, lookup key, metadata or active flag changed.",
    "billing.meter.created": "A meter was created.",
    "billing.meter.updated": "A meter's display name changed.",
    "billing.meter.deactivated": "A meter was deactivated: it accepts no more events.",
    "billing.meter.reactivated": "A deactivated meter was reactivated.",
    "customer.subscription.created": "A subscription was created.",
    "customer.subscription.updated": "A subscription changed, including each renewal.",
    "customer.subscription.deleted": "A subscription ended (canceled now or at period end).",
    "invoice.created": "An invoice was created (a subscription's, or a one-off draft).",
    "invoice.updated": "A draft invoice changed (description, metadata, items and totals).",
    "invoice.finalized": "An invoice was finalized: it has a number and is open for payment.",
    "invoice.paid": "An invoice was paid (out of band, or nothing was due).",
    "invoice.voided": "An invoice was voided.",
    "invoice.marked_uncollectible": "An invoice was marked uncollectible.",
    "invoice.deleted": "A one-off draft invoice was deleted.",
    "invoice.upcoming": (
        "A subscription renews in BILLING_INVOICE_UPCOMING_DAYS days; data.object is the "
        "upcoming invoice (no id), once per period."
    ),
    "invoice.overdue": "An open invoice's due date passed unpaid (once per invoice).",
    "invoiceitem.created": "An invoice item was created: on a draft invoice, or pending.",
    "invoiceitem.updated": "An invoice item changed: its amount, quantity, description, "
    "metadata or period, or it was put on an invoice's lines or taken off them.",
    "invoiceitem.deleted": "An invoice item was deleted, alone or with its draft invoice.",
    "billing.credit_grant.created": "Credits were granted.",
    "billing.credit_grant.updated": "A credit grant changed: expiry, metadata, expired, voided.",
    "billing.credit_balance_transaction.created": (
        "A credit ledger entry was written: granted, applied to an invoice, reinstated, "
        "expired or voided."
    ),
    "test_helpers.test_clock.created": "A test clock was created.",
    "test_helpers.test_clock.advancing": "A test clock started advancing.",
    "test_helpers.test_clock.ready": "A test clock finished advancing.",
    "test_helpers.test_clock.internal_failure": "A test clock's advance failed.",
    "test_helpers.test_clock.deleted": "A test clock was deleted.",
}

# What an endpoint's enabled_events may hold besides the types: every event.
ALL_EVENTS = "*"


def is_known_event_type(name: str) -> bool:
    return name in EVENT_TYPES
