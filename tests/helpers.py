"""Arrange steps many tests share, taken through the services as staff or the API would take
them, and the moments they happen at. Model factories and prices: tests/factories.py."""

from __future__ import annotations

import datetime as dt

from billing_site import clock
from credits.models import CreditGrant
from credits.services import credit_grant_create
from invoicing import services
from invoicing.models import Invoice, Subscription
from invoicing.services import ItemInput
from metering.ingest import meter_event_create

JAN_1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JAN_15 = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
FEB_1 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
OCT_1 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def utc(*args: int) -> dt.datetime:
    """dt.datetime(*args) in UTC: utc(2026, 1, 1)."""
    return dt.datetime(*args, tzinfo=dt.UTC)


def ts(*args: int) -> int:
    """The Unix timestamp the API takes and returns for utc(*args)."""
    return int(utc(*args).timestamp())


def subscribe(customer, *prices, at: dt.datetime = JAN_1) -> Subscription:
    """`customer` subscribes to one of each price at `at`, as staff would."""
    with clock.frozen_at(at):
        return services.subscription_create(
            customer=customer, items=[ItemInput(price=price) for price in prices], actor="tests"
        )


def send_usage(price, customer, value, *, timestamp, received=None, identifier=None):
    """One meter event for `price`'s meter, received at `received` (by default when it
    happened). Returns the accepted event."""
    with clock.frozen_at(received or timestamp):
        return meter_event_create(
            event_name=price.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": str(value)},
            identifier=identifier,
            timestamp=timestamp,
        )


def grant_credits(customer, amount=12_000_000, *, at=JAN_1, **kwargs) -> CreditGrant:
    """A USD credit grant made at `at`: paid "Purchased Credits" unless `category` or `name`
    say otherwise; other keywords go to credit_grant_create as they are."""
    return credit_grant_create(
        customer=customer,
        amount=amount,
        currency="usd",
        category=kwargs.pop("category", "paid"),
        name=kwargs.pop("name", "Purchased Credits"),
        now=at,
        **kwargs,
    )


def manual_invoice(
    customer, amount=5000, *, at=JAN_15, finalize=True, days_until_due=30
) -> Invoice:
    """A one-off USD invoice with one "Setup" item of `amount` (minor units), made at `at` and
    finalized unless told not to."""
    with clock.frozen_at(at):
        invoice = services.invoice_create(
            customer=customer, currency="usd", days_until_due=days_until_due
        )
        services.invoice_item_create(invoice=invoice, description="Setup", amount=amount)
        if finalize:
            invoice = services.invoice_finalize(invoice=invoice, actor="tests")
    return Invoice.objects.get(pk=invoice.pk)


def ok_body(response) -> dict:
    """The JSON of a successful API response (the error body shows when it isn't)."""
    assert response.status_code == 200, response.json()
    return response.json()


def error_body(response, status: int = 400) -> dict:
    """The `error` object of a refused API response with this status."""
    assert response.status_code == status, response.json()
    return response.json()["error"]
