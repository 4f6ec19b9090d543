"""The seed's credit-burndown model, end to end with the official `stripe` SDK on a test clock.

Prepay 100,000 USD on a one-off invoice, pay it, grant 120,000 USD of credits for a year, use
the product, close the period: the usage invoice is paid from credits, the balance drops by the
usage amount exactly, and voiding that invoice restores it.
"""

from __future__ import annotations

import pytest

from credits.models import CreditBalanceTransaction
from tests.api_client import (
    sdk_advance,
    sdk_customer_on_test_clock,
    sdk_subscribe,
    sdk_usage,
)
from tests.helpers import ts

pytestmark = pytest.mark.django_db(transaction=True)


def _balance(stripe_client, customer) -> tuple[int, int]:
    summary = stripe_client.v1.billing.credit_balance_summary.retrieve(
        {
            "customer": customer,
            "filter": {
                "type": "applicability_scope",
                "applicability_scope": {"price_type": "metered"},
            },
        }
    )
    [balance] = summary.balances
    return balance.ledger_balance.monetary.value, balance.available_balance.monetary.value


def test_enterprise_prepayment_burns_down_and_voiding_restores_it(stripe_client, demo_prices):
    test_clock, customer = sdk_customer_on_test_clock(stripe_client, "Enterprise", ts(2026, 1, 1))

    # 1. The prepayment: a one-off invoice for 100,000 USD, sent, then paid.
    prepayment = stripe_client.v1.invoices.create({"customer": customer.id, "currency": "usd"})
    stripe_client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "invoice": prepayment.id,
            "amount": 10_000_000,
            "description": "Hypernian Credits",
        }
    )
    prepayment = stripe_client.v1.invoices.finalize_invoice(prepayment.id)
    assert (prepayment.status, prepayment.amount_due) == ("open", 10_000_000)
    assert stripe_client.v1.invoices.pay(prepayment.id, {"paid_out_of_band": True}).status == "paid"

    # 2. The grant: 120,000 USD of paid credits for all metered usage, expiring in a year.
    subscription = sdk_subscribe(stripe_client, customer.id, demo_prices["hypernian_api_tokens"])
    grant = stripe_client.v1.billing.credit_grants.create(
        {
            "customer": customer.id,
            "name": "Enterprise prepayment",
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 12_000_000}},
            "applicability_config": {"scope": {"price_type": "metered"}},
            "category": "paid",
            "expires_at": ts(2027, 1, 1),
        }
    )
    assert grant.object == "billing.credit_grant"
    assert grant.priority == 50
    assert _balance(stripe_client, customer.id) == (12_000_000, 12_000_000)

    # 3. Usage: 2,600,000 tokens; 2,500,000 past the included 100,000 at 0.001 USD = 2,500 USD.
    sdk_advance(stripe_client, test_clock.id, ts(2026, 1, 20))
    sdk_usage(
        stripe_client, "hypernian_api_tokens", customer.id, 2_600_000, ts(2026, 1, 19), "jan-usage"
    )
    preview = stripe_client.v1.invoices.create_preview(
        {"customer": customer.id, "subscription": subscription.id}
    )
    assert (preview.total, preview.amount_due) == (250_000, 0)

    # 4. Past the period end and the grace period: the usage invoice is paid from credits.
    sdk_advance(stripe_client, test_clock.id, ts(2026, 2, 1, 2))
    usage_invoice = next(
        invoice
        for invoice in stripe_client.v1.invoices.list({"subscription": subscription.id}).data
        if invoice.billing_reason == "subscription_cycle"
    )
    assert (usage_invoice.total, usage_invoice.amount_due, usage_invoice.status) == (
        250_000,
        0,
        "open",
    )
    assert usage_invoice.amount_remaining == 0
    assert usage_invoice.total_pretax_credit_amounts[0]["amount"] == 250_000
    assert usage_invoice.lines.data[0].pretax_credit_amounts[0]["amount"] == 250_000
    assert _balance(stripe_client, customer.id) == (12_000_000 - 250_000, 12_000_000 - 250_000)
    transactions = stripe_client.v1.billing.credit_balance_transactions.list(
        {"customer": customer.id, "credit_grant": grant.id}
    ).data
    assert [(t.type, (t.debit or t.credit).type) for t in transactions] == [
        ("debit", "credits_applied"),
        ("credit", "credits_granted"),
    ]
    applied = transactions[0].debit
    assert applied.amount.monetary.value == 250_000
    assert applied.credits_applied.invoice == usage_invoice.id
    assert applied.credits_applied.invoice_line_item == usage_invoice.lines.data[0].id

    # 5. Voiding the usage invoice gives the credits back.
    voided = stripe_client.v1.invoices.void_invoice(usage_invoice.id)
    assert voided.status == "void"
    assert _balance(stripe_client, customer.id) == (12_000_000, 12_000_000)
    reinstated = stripe_client.v1.billing.credit_balance_transactions.list(
        {"customer": customer.id, "limit": 1}
    ).data[0]
    assert (reinstated.type, reinstated.credit.type) == (
        "credit",
        "credits_application_invoice_voided",
    )
    assert reinstated.credit.credits_application_invoice_voided.invoice == usage_invoice.id
    assert CreditBalanceTransaction.objects.filter(customer__public_id=customer.id).count() == 3
