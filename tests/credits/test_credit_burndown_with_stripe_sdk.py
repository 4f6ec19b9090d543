"""The seed's credit-burndown model, end to end with the official `stripe` SDK on a test clock.

Prepay 100,000 USD on a one-off invoice, pay it, grant 120,000 USD of credits for a year, use
the product, close the period: the usage invoice is paid from credits, the balance drops by the
usage amount exactly, and voiding that invoice restores it.
"""

from __future__ import annotations

import pytest

from credits.models import CreditBalanceTransaction
from tests.api_client import sdk_client
from tests.helpers import seed_demo_prices, ts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server):
    from billing_site.services import api_key_create

    _, secret = api_key_create(name="burndown")
    return sdk_client(live_server, secret)


def _balance(client, customer) -> tuple[int, int]:
    summary = client.v1.billing.credit_balance_summary.retrieve(
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


def _advance(client, clock_id, frozen_time):
    client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": frozen_time})
    assert client.v1.test_helpers.test_clocks.retrieve(clock_id).status == "ready"


def test_enterprise_prepayment_burns_down_and_voiding_restores_it(client, db):
    prices = seed_demo_prices()
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": ts(2026, 1, 1)})
    customer = client.v1.customers.create({"name": "Enterprise", "test_clock": test_clock.id})

    # 1. The prepayment: a one-off invoice for 100,000 USD, sent, then paid.
    prepayment = client.v1.invoices.create({"customer": customer.id, "currency": "usd"})
    client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "invoice": prepayment.id,
            "amount": 10_000_000,
            "description": "Hypernian Credits",
        }
    )
    prepayment = client.v1.invoices.finalize_invoice(prepayment.id)
    assert (prepayment.status, prepayment.amount_due) == ("open", 10_000_000)
    assert client.v1.invoices.pay(prepayment.id, {"paid_out_of_band": True}).status == "paid"

    # 2. The grant: 120,000 USD of paid credits for all metered usage, expiring in a year.
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": prices["hypernian_api_tokens"]}]}
    )
    grant = client.v1.billing.credit_grants.create(
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
    assert _balance(client, customer.id) == (12_000_000, 12_000_000)

    # 3. Usage: 2,600,000 tokens; 2,500,000 past the included 100,000 at 0.001 USD = 2,500 USD.
    _advance(client, test_clock.id, ts(2026, 1, 20))
    client.v1.billing.meter_events.create(
        {
            "event_name": "hypernian_api_tokens",
            "payload": {"stripe_customer_id": customer.id, "value": "2600000"},
            "timestamp": ts(2026, 1, 19),
            "identifier": "jan-usage",
        }
    )
    preview = client.v1.invoices.create_preview(
        {"customer": customer.id, "subscription": subscription.id}
    )
    assert (preview.total, preview.amount_due) == (250_000, 0)

    # 4. Past the period end and the grace period: the usage invoice is paid from credits.
    _advance(client, test_clock.id, ts(2026, 2, 1, 2))
    usage_invoice = next(
        invoice
        for invoice in client.v1.invoices.list({"subscription": subscription.id}).data
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
    assert _balance(client, customer.id) == (12_000_000 - 250_000, 12_000_000 - 250_000)
    transactions = client.v1.billing.credit_balance_transactions.list(
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
    voided = client.v1.invoices.void_invoice(usage_invoice.id)
    assert voided.status == "void"
    assert _balance(client, customer.id) == (12_000_000, 12_000_000)
    reinstated = client.v1.billing.credit_balance_transactions.list(
        {"customer": customer.id, "limit": 1}
    ).data[0]
    assert (reinstated.type, reinstated.credit.type) == (
        "credit",
        "credits_application_invoice_voided",
    )
    assert reinstated.credit.credits_application_invoice_voided.invoice == usage_invoice.id
    assert CreditBalanceTransaction.objects.filter(customer__public_id=customer.id).count() == 3
