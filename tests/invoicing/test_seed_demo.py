from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing_site import clock
from catalog.models import Price, Product
from catalog.rating import rate
from credits.models import CreditGrant
from invoicing.models import Customer, Invoice, Subscription
from metering.models import Meter, MeterEvent
from metering.store import usage

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_docs_examples_once(capsys):
    call_command("seed_demo", "--events-per-customer", "150")
    call_command("seed_demo", "--events-per-customer", "150")

    hypernian = Product.objects.get(name="Hypernian")
    fee = Price.objects.get(product=hypernian, recurring_usage_type="licensed")
    assert (fee.unit_amount_decimal, fee.recurring_interval) == (Decimal(20000), "month")
    tokens = Price.objects.get(product=hypernian, recurring_usage_type="metered")
    assert tokens.meter.event_name == "hypernian_api_tokens"
    # 150,000 tokens: the first 100,000 are included, 50,000 more at 0.001 USD = 50.00 USD.
    assert rate(tokens.terms, 150000).amount == Decimal(5000)

    alpaca = Price.objects.get(product__name="Alpaca AI")
    # 0.04 USD per hundred tokens, rounded up: 150 tokens are two packages, 8 cents.
    assert rate(alpaca.terms, 150).amount == Decimal(8)

    assert Product.objects.count() == 2
    assert Price.objects.count() == 3
    assert Meter.objects.count() == 2
    assert Customer.objects.count() == 4
    assert Subscription.objects.filter(status="active").count() == 4
    # Three closed months and this one, 150 // 4 events a month for each customer.
    assert MeterEvent.objects.count() == 4 * 4 * (150 // 4)
    # Three renewals each, a first invoice for the three with a monthly fee (Bluebird's Alpaca
    # plan is metered only: in flexible billing mode it gets no empty first invoice), plus the
    # enterprise prepayment; everything but the latest renewals is paid.
    assert Invoice.objects.count() == 16
    assert not Invoice.objects.filter(
        customer__name="Bluebird Labs", billing_reason="subscription_create"
    ).exists()
    assert Invoice.objects.filter(status="open").count() == 4
    prepayment = Invoice.objects.get(billing_reason="manual")
    assert (prepayment.status, prepayment.total) == ("paid", 10_000_000)
    grant = CreditGrant.objects.get(source_invoice=prepayment)
    assert (grant.amount, grant.category) == (12_000_000, "paid")
    assert Invoice.objects.filter(status="draft").count() == 0
    out = capsys.readouterr().out
    assert (
        "Billing history: 0 new subscription(s), 0 invoice(s) finalized, 0 new meter event(s)"
        in out
    )

    customer = Customer.objects.get(name="Northwind Robotics")
    now = clock.now()
    total = usage(
        meter=Meter.objects.get(event_name="hypernian_api_tokens"),
        customer_id=customer.pk,
        start=now - dt.timedelta(days=100),
        end=now + dt.timedelta(minutes=1),
    )
    assert total > 0


def test_seed_demo_refuses_a_local_admin_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", "--events-per-customer", "0", "--local-admin")
