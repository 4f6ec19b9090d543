"""Credit application order, expiry, voiding and reinstatement; bad input through the API."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from billing_site import clock
from credits.models import CreditBalanceTransaction as T
from credits.models import CreditGrant
from credits.selectors import balance_summary
from credits.services import (
    LineToCredit,
    credit_grant_create,
    credit_grant_expire,
    credit_grant_void,
    credit_grants_expire_due,
    grant_balances,
    plan_applications,
)
from invoicing.models import Invoice, InvoiceLineItem
from invoicing.services import ItemInput, billing_run, invoice_void, subscription_create
from metering.ingest import meter_event_create
from tests.factories import CustomerFactory, MeterFactory, hypernian_usage_price, licensed_price

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _grant(customer, amount=1000, **kwargs):
    kwargs.setdefault("category", "paid")
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("effective_at", NOW - dt.timedelta(days=1))
    return credit_grant_create(customer=customer, amount=amount, currency="usd", **kwargs)


def _first_grant_used(customer, price_id=1) -> str:
    plans = plan_applications(
        customer_id=customer.pk,
        currency="USD",
        lines=[LineToCredit(None, price_id, 1, True)],
        at=NOW,
    )
    return plans[0].grant.name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second", "rule"),
    [
        ({"priority": 10}, {"priority": 20}, "lower priority number first"),
        (
            {"expires_at": NOW + dt.timedelta(days=5)},
            {"expires_at": NOW + dt.timedelta(days=9)},
            "earliest expiry first",
        ),
        ({"expires_at": NOW + dt.timedelta(days=900)}, {}, "no expiry last"),
        ({"category": "promotional"}, {"category": "paid"}, "promotional before paid"),
        (
            {"effective_at": NOW - dt.timedelta(days=9)},
            {"effective_at": NOW - dt.timedelta(days=2)},
            "earliest effective_at first",
        ),
    ],
)
def test_application_order_follows_each_tie_break(first, second, rule):
    customer = CustomerFactory()
    # Created in the "wrong" order, so the oldest-grant rule can't explain the result.
    _grant(customer, name="second", **second)
    _grant(customer, name="first", **first)
    assert _first_grant_used(customer) == "first", rule


@pytest.mark.django_db
def test_oldest_grant_breaks_the_last_tie():
    customer = CustomerFactory()
    _grant(customer, name="older")
    _grant(customer, name="newer")
    assert _first_grant_used(customer) == "older"


@pytest.mark.django_db
def test_earlier_rules_win_over_later_ones():
    customer = CustomerFactory()
    _grant(customer, name="promo-late-priority", category="promotional", priority=60)
    _grant(customer, name="paid-early-priority", category="paid", priority=40)
    assert _first_grant_used(customer) == "paid-early-priority"


@pytest.mark.django_db
def test_a_scoped_grant_only_pays_its_prices_and_credits_never_pay_licensed_lines():
    customer = CustomerFactory()
    tokens = hypernian_usage_price()
    other = hypernian_usage_price(meter=MeterFactory())
    _grant(customer, name="tokens only", prices=[tokens])
    plans = plan_applications(
        customer_id=customer.pk,
        currency="USD",
        lines=[
            LineToCredit(None, other.pk, 500, True),
            LineToCredit(None, None, 500, False),
            LineToCredit(None, tokens.pk, 300, True),
        ],
        at=NOW,
    )
    assert [(plan.line_index, plan.amount) for plan in plans] == [(2, 300)]


@pytest.mark.django_db
def test_credits_spill_over_to_the_next_grant_and_never_go_below_zero():
    customer = CustomerFactory()
    _grant(customer, amount=300, name="a", priority=1)
    _grant(customer, amount=500, name="b", priority=2)
    plans = plan_applications(
        customer_id=customer.pk,
        currency="USD",
        lines=[LineToCredit(None, 1, 1000, True)],
        at=NOW,
    )
    assert [(plan.grant.name, plan.amount) for plan in plans] == [("a", 300), ("b", 500)]


def _usage_invoice(customer, price, tokens: str) -> Invoice:
    start = NOW - dt.timedelta(days=31)
    with clock.frozen_at(start):
        subscription_create(customer=customer, items=[ItemInput(price=price)])
    with clock.frozen_at(start + dt.timedelta(days=3)):
        meter_event_create(
            event_name=price.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": tokens},
        )
    billing_run(at=start + dt.timedelta(days=40))
    return Invoice.objects.get(customer=customer, billing_reason="subscription_cycle")


@pytest.mark.django_db
def test_voiding_after_the_grant_expired_reinstates_and_expires_at_once():
    customer = CustomerFactory()
    price = hypernian_usage_price()
    grant = _grant(customer, amount=100_000, expires_at=NOW + dt.timedelta(days=20))
    invoice = _usage_invoice(customer, price, "150000")  # 5,000 cents of usage
    assert (invoice.total, invoice.amount_due) == (5000, 0)
    assert grant_balances([grant.pk])[grant.pk] == 95_000

    later = NOW + dt.timedelta(days=30)
    assert credit_grants_expire_due(at=later) == 1
    assert credit_grants_expire_due(at=later) == 0  # idempotent
    assert grant_balances([grant.pk])[grant.pk] == 0
    invoice_void(invoice=invoice, actor="test", at=later)
    assert grant_balances([grant.pk])[grant.pk] == 0
    assert list(T.objects.filter(grant=grant).order_by("pk").values_list("reason", "amount")) == [
        ("credits_granted", 100_000),
        ("credits_applied", 5000),
        ("credits_expired", 95_000),
        ("credits_application_invoice_voided", 5000),
        ("credits_expired", 5000),
    ]


@pytest.mark.django_db
def test_void_and_expire_debit_what_remains_once():
    customer = CustomerFactory()
    grant = _grant(customer, amount=700)
    credit_grant_void(grant=grant, at=NOW)
    assert grant_balances([grant.pk])[grant.pk] == 0
    with pytest.raises(Exception, match="already voided"):
        credit_grant_void(grant=grant, at=NOW)
    with pytest.raises(Exception, match="voided grant can't expire"):
        credit_grant_expire(grant=grant, at=NOW)
    assert T.objects.filter(grant=grant).count() == 2


@pytest.mark.django_db
def test_the_balance_summary_equals_the_ledger_added_up():
    customer = CustomerFactory()
    price = hypernian_usage_price()
    _grant(customer, amount=10_000, name="a")
    _grant(customer, amount=2_000, name="b", category="promotional")
    _usage_invoice(customer, price, "130000")  # 3,000 cents
    with clock.frozen_at(NOW + dt.timedelta(days=10)):
        summary = balance_summary(customer=customer)
    signed = sum(t.signed_amount for t in T.objects.filter(customer=customer))
    assert summary["USD"].ledger == signed == 12_000 - 3000
    # Promotional credits went first (same priority, no expiry).
    assert grant_balances(CreditGrant.objects.filter(name="b").values_list("pk", flat=True)) == {
        CreditGrant.objects.get(name="b").pk: 0
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 0}}},
            "amount[monetary][value]",
            "greater than zero",
        ),
        (
            {"amount": {"type": "monetary", "monetary": {"currency": "usd", "value": -5}}},
            "amount[monetary][value]",
            "greater than zero",
        ),
        (
            {"amount": {"type": "monetary", "monetary": {"currency": "eur", "value": 100}}},
            "amount[monetary][currency]",
            "could never be used",
        ),
        (
            {"expires_at": int(NOW.timestamp()) - 86400, "effective_at": int(NOW.timestamp())},
            "expires_at",
            "after effective_at",
        ),
        ({"priority": 101}, "priority", "between 0 and 100"),
        ({"priority": -1}, "priority", "between 0 and 100"),
        (
            {
                "applicability_config": {
                    "scope": {"price_type": "metered", "prices": [{"id": "PRICE"}]}
                }
            },
            "applicability_config[scope]",
            "not both",
        ),
        (
            {"applicability_config": {"scope": {"prices": [{"id": "LICENSED"}]}}},
            "applicability_config[scope][prices][0][id]",
            "isn't metered",
        ),
    ],
)
def test_bad_grants_are_refused_and_change_nothing(api, body, param, message):
    customer = CustomerFactory()
    metered = hypernian_usage_price()
    licensed = licensed_price()
    subscription_create(customer=customer, items=[ItemInput(price=metered)])
    request = {
        "customer": customer.public_id,
        "category": "paid",
        "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 100}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        **body,
    }
    encoded = (
        str(request)
        .replace("'PRICE'", f"'{metered.public_id}'")
        .replace("'LICENSED'", f"'{licensed.public_id}'")
    )
    response = api.post("/v1/billing/credit_grants", eval(encoded))
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param
    assert message in response.json()["error"]["message"]
    assert not CreditGrant.objects.exists()
    assert not T.objects.exists()


@pytest.mark.django_db
def test_void_twice_and_expire_voided_through_the_api(api):
    customer = CustomerFactory()
    grant = _grant(customer, amount=100, now=clock.now(), effective_at=None)
    assert api.post(f"/v1/billing/credit_grants/{grant.public_id}/void").json()["voided_at"]
    again = api.post(f"/v1/billing/credit_grants/{grant.public_id}/void")
    assert again.status_code == 400 and "already voided" in again.json()["error"]["message"]
    expire = api.post(f"/v1/billing/credit_grants/{grant.public_id}/expire")
    assert expire.status_code == 400 and "can't expire" in expire.json()["error"]["message"]
    assert T.objects.filter(grant=grant).count() == 2


@pytest.mark.postgres
def test_concurrent_finalizations_never_spend_a_credit_twice(transactional_db):
    """Many usage invoices of one customer finalize at once on separate connections against
    shared grants: the total applied never exceeds the total granted, and the ledger balances."""
    customer = CustomerFactory()
    price = hypernian_usage_price()
    _grant(customer, amount=7_000, name="a", priority=1)
    _grant(customer, amount=4_000, name="b", priority=2, category="promotional")
    start = NOW - dt.timedelta(days=31)
    with clock.frozen_at(start):
        for _ in range(8):
            subscription_create(customer=customer, items=[ItemInput(price=price)])
    with clock.frozen_at(start + dt.timedelta(days=3)):
        meter_event_create(
            event_name=price.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": "125000"},
        )  # every subscription of the customer bills the same usage: 2,500 cents each
    from invoicing.models import Subscription
    from invoicing.services.billing_run import close_subscription_periods, finalize_due_draft

    for subscription in Subscription.objects.all():
        close_subscription_periods(
            subscription_id=subscription.pk, at=start + dt.timedelta(days=40)
        )
    drafts = list(Invoice.objects.filter(status="draft").values_list("pk", flat=True))
    assert len(drafts) == 8
    barrier = threading.Barrier(len(drafts))
    errors = []

    def finalize(invoice_id):
        try:
            barrier.wait()
            finalize_due_draft(invoice_id=invoice_id, at=start + dt.timedelta(days=40))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(pk,)) for pk in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    applied = sum(T.objects.filter(reason="credits_applied").values_list("amount", flat=True))
    assert applied == 11_000  # 8 x 2,500 = 20,000 of usage; only 11,000 granted
    assert sum(InvoiceLineItem.objects.values_list("credits_applied", flat=True)) == 11_000
    assert all(
        balance == 0
        for balance in grant_balances(CreditGrant.objects.values_list("pk", flat=True)).values()
    )
    assert sum(Invoice.objects.filter(status="open").values_list("amount_due", flat=True)) == 9_000


@pytest.mark.django_db
def test_every_grant_change_is_recorded_with_who_made_it(api):
    customer = CustomerFactory()
    created = api.post(
        "/v1/billing/credit_grants",
        {
            "customer": customer.public_id,
            "category": "promotional",
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
            "applicability_config": {"scope": {"price_type": "metered"}},
        },
    ).json()
    api.post(f"/v1/billing/credit_grants/{created['id']}", {"metadata": {"crm": "1"}})
    api.post(f"/v1/billing/credit_grants/{created['id']}/void")
    grant = CreditGrant.objects.get(public_id=created["id"])
    assert list(grant.events.values_list("action", "actor", "note")) == [
        ("created", "api (tests)", "500 USD"),
        ("voided", "api (tests)", "500 debited"),
    ]
