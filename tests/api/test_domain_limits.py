"""The documented limits on amounts, quantities and times (billing_site/limits.py), through the
API: every value past a limit gets a Stripe-shaped 400 naming its parameter, and nothing is
written. Each of these used to be stored and fail later (a DataError at the insert on
PostgreSQL, or a period past year 9999 at a month end).

Run them on PostgreSQL too: DATABASE_URL=postgres://... (the columns' real sizes).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing_site import clock
from billing_site.limits import LATEST_TIME, MAX_AMOUNT, MAX_DIVIDE_BY, MAX_QUANTITY
from catalog.models import Price, PriceTier
from catalog.rating import PriceTerms
from catalog.services import price_create
from credits.models import CreditBalanceTransaction, CreditGrant
from invoicing.models import (
    BillingRunFailure,
    Invoice,
    InvoiceLineItem,
    Subscription,
    SubscriptionItem,
)
from invoicing.models import TestClock as SimulationClock  # "Test…" would be collected
from tests.factories import CustomerFactory, ProductFactory, licensed_price

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
YEAR_9000 = int(LATEST_TIME.timestamp())  # 32503680000, the first second refused
LAST_SECOND_ACCEPTED = YEAR_9000 - 1
DEC_31_9999 = 253402214400
# 9,999,999,999.99 USD: the largest amount a line, an invoice or a grant can have.
LARGEST_PRICE = 999_999_999_999


def counts() -> dict[str, int]:
    models = (
        Price,
        PriceTier,
        Subscription,
        SubscriptionItem,
        Invoice,
        InvoiceLineItem,
        SimulationClock,
        CreditGrant,
        CreditBalanceTransaction,
        BillingRunFailure,
    )
    return {model.__name__: model.objects.count() for model in models}


def refused(response, param: str) -> str:
    assert response.status_code == 400, response.content[:400]
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    return error["message"]


def one_time_price(unit_amount: int) -> Price:
    return price_create(
        product=ProductFactory(),
        currency="usd",
        terms=PriceTerms(billing_scheme="per_unit", unit_amount=Decimal(unit_amount)),
    )


@pytest.fixture
def draft(api):
    customer = CustomerFactory()
    with clock.frozen_at(NOW):
        invoice = api.post("/v1/invoices", {"customer": customer.public_id}).json()
    return {"customer": customer.public_id, "invoice": invoice["id"]}


# --- prices -----------------------------------------------------------------------------------


def test_a_package_size_past_the_limit_is_refused_naming_divide_by(api):
    product = ProductFactory()
    before = counts()
    price = {"product": product.public_id, "currency": "usd", "unit_amount": 100}

    message = refused(
        api.post(
            "/v1/prices",
            {**price, "transform_quantity": {"divide_by": "99999999999", "round": "up"}},
        ),
        "transform_quantity[divide_by]",
    )

    assert "the limit is 1,000,000,000" in message
    assert counts() == before
    largest = {"divide_by": str(MAX_DIVIDE_BY), "round": "up"}
    created = api.post("/v1/prices", {**price, "transform_quantity": largest})
    assert created.json()["transform_quantity"]["divide_by"] == MAX_DIVIDE_BY


@pytest.mark.parametrize(
    ("terms", "param"),
    [
        ({"unit_amount": 10**12}, "unit_amount"),
        ({"unit_amount_decimal": "1000000000000"}, "unit_amount_decimal"),
        (
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": [{"up_to": "inf", "flat_amount": 10**12}],
            },
            "tiers[0][flat_amount]",
        ),
    ],
    ids=["unit_amount", "unit_amount_decimal", "tier-flat_amount"],
)
def test_a_price_amount_past_twelve_digits_is_refused(api, terms, param):
    product = ProductFactory()
    before = counts()

    message = refused(
        api.post("/v1/prices", {"product": product.public_id, "currency": "usd", **terms}), param
    )

    assert "at most 12 digits before the decimal point" in message
    assert counts() == before


# --- invoice items ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "param"),
    [
        ({"start": 99999999999999, "end": 99999999999999}, "period[start]"),
        ({"start": YEAR_9000, "end": YEAR_9000}, "period[start]"),
        ({"start": 0, "end": DEC_31_9999}, "period[end]"),
    ],
    ids=["past-python's-range", "year-9000", "end-on-9999-12-31"],
)
def test_an_item_period_past_the_time_limit_is_refused(api, draft, period, param):
    before = counts()

    refused(api.post("/v1/invoiceitems", {**draft, "amount": 100, "period": period}), param)

    assert counts() == before
    last = {"start": LAST_SECOND_ACCEPTED, "end": LAST_SECOND_ACCEPTED}
    item = api.post("/v1/invoiceitems", {**draft, "amount": 100, "period": last}).json()
    assert item["period"] == {"start": LAST_SECOND_ACCEPTED, "end": LAST_SECOND_ACCEPTED}


def test_an_item_amount_past_the_line_limit_is_refused(api, draft):
    before = counts()

    message = refused(api.post("/v1/invoiceitems", {**draft, "amount": MAX_AMOUNT + 1}), "amount")

    assert "at most 999,999,999,999 minor units" in message
    assert counts() == before
    item = api.post("/v1/invoiceitems", {**draft, "amount": MAX_AMOUNT}).json()
    assert item["amount"] == MAX_AMOUNT


def test_a_price_times_quantity_past_the_line_limit_is_refused_naming_quantity(api, draft):
    price = one_time_price(LARGEST_PRICE)
    before = counts()

    message = refused(
        api.post("/v1/invoiceitems", {**draft, "price": price.public_id, "quantity": 2}),
        "quantity",
    )

    assert f"2 x {price.public_id} comes to more than 9,999,999,999.99 USD" in message
    assert counts() == before


def test_an_item_quantity_past_the_limit_is_refused(api, draft):
    price = one_time_price(1)
    before = counts()

    refused(
        api.post(
            "/v1/invoiceitems", {**draft, "price": price.public_id, "quantity": MAX_QUANTITY + 1}
        ),
        "quantity",
    )

    assert counts() == before


def test_an_item_that_would_take_the_invoice_total_past_the_limit_is_refused(api, draft):
    api.post("/v1/invoiceitems", {**draft, "amount": MAX_AMOUNT - 10})
    before = counts()

    message = refused(api.post("/v1/invoiceitems", {**draft, "amount": 11}), "amount")

    assert "over the limit of 9,999,999,999.99 USD per invoice" in message
    assert counts() == before
    finalized = api.post(f"/v1/invoices/{draft['invoice']}/finalize").json()
    assert finalized["total"] == MAX_AMOUNT - 10


# --- subscriptions ----------------------------------------------------------------------------


def test_a_subscription_whose_fee_passes_the_line_limit_is_refused(api):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=LARGEST_PRICE)
    before = counts()

    message = refused(
        api.post(
            "/v1/subscriptions",
            {"customer": customer.public_id, "items": [{"price": price.public_id, "quantity": 2}]},
        ),
        "items[0][quantity]",
    )

    assert "the limit of an invoice line" in message
    assert counts() == before


def test_a_subscription_whose_fees_pass_the_invoice_limit_is_refused(api):
    customer = CustomerFactory()
    product = ProductFactory()
    half = (MAX_AMOUNT + 1) // 2
    items = [
        {"price": licensed_price(product=product, unit_amount=half).public_id},
        {"price": licensed_price(product=product, unit_amount=half).public_id},
    ]
    before = counts()

    message = refused(
        api.post("/v1/subscriptions", {"customer": customer.public_id, "items": items}), "items"
    )

    assert "over the limit of 9,999,999,999.99 USD per invoice" in message
    assert counts() == before


def test_a_licensed_quantity_past_the_limit_is_refused(api):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=1)
    before = counts()

    refused(
        api.post(
            "/v1/subscriptions",
            {
                "customer": customer.public_id,
                "items": [{"price": price.public_id, "quantity": MAX_QUANTITY + 1}],
            },
        ),
        "items[0][quantity]",
    )

    assert counts() == before


def test_raising_a_quantity_past_the_line_limit_is_refused_and_changes_nothing(api):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=LARGEST_PRICE // 1000)
    created = api.post(
        "/v1/subscriptions",
        {"customer": customer.public_id, "items": [{"price": price.public_id, "quantity": 1}]},
    ).json()
    item_id = created["items"]["data"][0]["id"]
    before = counts()

    refused(
        api.post(
            f"/v1/subscriptions/{created['id']}", {"items": [{"id": item_id, "quantity": 2000}]}
        ),
        "items",
    )

    assert counts() == before
    assert SubscriptionItem.objects.get().quantity == 1


# --- test clocks ------------------------------------------------------------------------------


@pytest.mark.parametrize("frozen_time", [DEC_31_9999, YEAR_9000], ids=["9999-12-31", "9000-01-01"])
def test_a_test_clock_past_the_time_limit_is_refused(api, frozen_time):
    before = counts()

    message = refused(
        api.post("/v1/test_helpers/test_clocks", {"frozen_time": frozen_time}), "frozen_time"
    )

    assert "up to (not including) 9000-01-01 UTC" in message
    assert counts() == before


def test_a_test_clock_cannot_be_advanced_past_the_time_limit(api):
    start = LAST_SECOND_ACCEPTED - 86400 * 300
    test_clock = api.post("/v1/test_helpers/test_clocks", {"frozen_time": start}).json()

    refused(
        api.post(
            f"/v1/test_helpers/test_clocks/{test_clock['id']}/advance", {"frozen_time": YEAR_9000}
        ),
        "frozen_time",
    )

    stored = SimulationClock.objects.get()
    assert (stored.status, int(stored.frozen_time.timestamp())) == ("ready", start)


# --- credit grants ----------------------------------------------------------------------------


def _grant(customer, value, **extra):
    return {
        "customer": customer.public_id,
        "category": "paid",
        "amount": {"type": "monetary", "monetary": {"value": value, "currency": "usd"}},
        "applicability_config": {"scope": {"price_type": "metered"}},
        **extra,
    }


def test_a_grant_past_the_amount_limit_is_refused(api):
    customer = CustomerFactory()
    before = counts()

    message = refused(
        api.post("/v1/billing/credit_grants", _grant(customer, 10**15)), "amount[monetary][value]"
    )

    assert "A credit grant can be at most 999,999,999,999 minor units" in message
    assert counts() == before
    granted = api.post("/v1/billing/credit_grants", _grant(customer, MAX_AMOUNT)).json()
    assert granted["amount"]["monetary"]["value"] == MAX_AMOUNT


@pytest.mark.parametrize("field", ["effective_at", "expires_at"])
def test_a_grant_time_past_the_limit_is_refused(api, field):
    customer = CustomerFactory()
    before = counts()

    refused(
        api.post("/v1/billing/credit_grants", _grant(customer, 1000, **{field: DEC_31_9999})),
        field,
    )

    assert counts() == before


def test_a_grant_expiry_cannot_be_moved_past_the_limit(api):
    customer = CustomerFactory()
    granted = api.post("/v1/billing/credit_grants", _grant(customer, 1000)).json()

    refused(
        api.post(f"/v1/billing/credit_grants/{granted['id']}", {"expires_at": YEAR_9000}),
        "expires_at",
    )

    assert CreditGrant.objects.get().expires_at is None
