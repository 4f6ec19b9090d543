"""The admin forms refuse values past the limits (billing_site/limits.py) like the API does: the
service's message next to the field it names, never a server error, and nothing written.

Staff type amounts in major units, so 10,000,000,000.00 USD is the first amount refused.
"""

from __future__ import annotations

import datetime as dt

import pytest

from billing_site import clock
from catalog.models import Price
from catalog.rating import PriceTerms
from catalog.services import price_create
from credits.models import CreditGrant
from invoicing import services
from invoicing.models import BillingRunFailure, Invoice, Subscription
from invoicing.models import TestClock as SimulationClock  # "Test…" would be collected
from tests.admin_pages import get, post, text
from tests.catalog.test_admin_create_product import CREATE_URL, around, counts, form_data
from tests.credits.test_credits_admin import grant_form
from tests.factories import CustomerFactory, ProductFactory, licensed_price
from tests.invoicing.test_amount_and_time_limits_in_billing import (
    NOV_1,
    OCT_1,
    metered_price,
    send,
    subscribe,
)
from tests.invoicing.test_invoicing_admin import _invoice_header, _items

pytestmark = pytest.mark.django_db

TEST_CLOCKS = "/admin/invoicing/testclock/"


@pytest.mark.parametrize(
    ("price_input", "field", "message"),
    [
        (
            {"pricing_model": "flat_rate", "amount": "10000000000.00"},
            "prices-0-amount",
            "at most 12 digits before the decimal point",
        ),
        (
            {"pricing_model": "package", "amount": "0.04", "package_size": "99999999999"},
            "prices-0-package_size",
            "the limit is 1,000,000,000",
        ),
    ],
    ids=["amount", "package-size"],
)
def test_a_price_past_the_limits_is_refused_next_to_its_field(
    admin_client, price_input, field, message
):
    before = counts()

    response = admin_client.post(CREATE_URL, form_data(price_input))

    assert response.status_code == 200
    assert message in around(response, field)
    assert counts() == before


def test_an_invoice_item_past_the_line_limit_is_refused_next_to_the_amount(client, operator):
    customer = CustomerFactory()
    row = {"description": "Huge", "amount": "10000000000.00", "quantity": "1"}

    response = post(
        client, "/admin/invoicing/invoice/add/", {**_invoice_header(customer), **_items(row)}
    )

    assert response.status_code == 200
    [item] = response.context["formset"].forms
    assert "at most 999,999,999,999 minor units" in item.errors["amount"][0]
    assert not Invoice.objects.exists()


def test_an_invoice_item_quantity_past_the_limit_is_refused_next_to_the_quantity(client, operator):
    customer = CustomerFactory()
    setup = price_create(
        product=ProductFactory(),
        currency="usd",
        terms=PriceTerms(billing_scheme="per_unit", unit_amount=100),
    )
    row = {"price": str(setup.pk), "quantity": "1000001"}

    response = post(
        client,
        "/admin/invoicing/invoice/add/",
        {**_invoice_header(customer), **_items(row), "_preview": "1"},
    )

    [item] = response.context["formset"].forms
    assert item.errors["quantity"] == ["quantity can be at most 1,000,000, got 1,000,001."]
    assert not Invoice.objects.exists()


def test_a_subscription_quantity_past_the_line_limit_is_refused_next_to_the_quantity(
    client, operator
):
    customer = CustomerFactory()
    price = licensed_price(unit_amount=999_999_999_999)

    response = post(
        client,
        "/admin/invoicing/subscription/add/",
        {
            "customer": customer.pk,
            f"price_{price.pk}": "on",
            f"quantity_{price.pk}": "2",
            "collection_method": "charge_automatically",
            "_preview": "1",
        },
    )

    assert response.status_code == 200
    errors = response.context["form"].errors[f"quantity_{price.pk}"]
    assert "comes to more than 9,999,999,999.99 USD, the limit of an invoice line" in errors[0]
    assert not Subscription.objects.exists()
    assert Price.objects.count() == 1


def test_a_grant_past_the_amount_limit_is_refused_next_to_the_amount(client, operator):
    customer = CustomerFactory()

    response = post(
        client, "/admin/credits/creditgrant/add/", grant_form(customer, amount="10000000000.00")
    )

    assert response.status_code == 200
    errors = response.context["form"].errors["amount"]
    assert "A credit grant can be at most 999,999,999,999 minor units" in errors[0]
    assert not CreditGrant.objects.exists()


def test_a_grant_expiry_past_the_time_limit_is_refused_next_to_it(client, operator):
    customer = CustomerFactory()

    response = post(
        client,
        "/admin/credits/creditgrant/add/",
        grant_form(customer, expires_at="9999-12-31T00:00:00"),
    )

    assert (
        "up to (not including) 9000-01-01 UTC" in response.context["form"].errors["expires_at"][0]
    )
    assert not CreditGrant.objects.exists()


def test_a_test_clock_past_the_time_limit_is_refused_next_to_the_frozen_time(client, operator):
    response = post(
        client, f"{TEST_CLOCKS}add/", {"name": "End of time", "frozen_time": "9999-12-31T00:00:00"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["frozen_time"]
    assert "up to (not including) 9000-01-01 UTC" in errors[0]
    assert not SimulationClock.objects.exists()


def test_a_test_clock_advance_past_the_time_limit_is_refused_next_to_the_frozen_time(
    client, operator
):
    start = dt.datetime(8999, 6, 1, tzinfo=dt.UTC)
    test_clock = services.test_clock_create(frozen_time=start)

    response = post(
        client, f"{TEST_CLOCKS}{test_clock.pk}/advance/", {"frozen_time": "9000-01-01T00:00:00"}
    )

    assert response.status_code == 200
    assert (
        "up to (not including) 9000-01-01 UTC" in response.context["form"].errors["frozen_time"][0]
    )
    test_clock.refresh_from_db()
    assert (test_clock.frozen_time, test_clock.status) == (start, "ready")


def test_a_draft_held_for_review_is_listed_in_the_billing_run_failures(client, operator):
    customer = CustomerFactory(name="Northwind")
    calls = metered_price()
    subscribe(customer, calls)
    send(calls, customer, "2", timestamp=OCT_1, received=OCT_1, identifier="two")
    with clock.frozen_at(NOV_1):
        services.billing_run(at=NOV_1)

    listing = get(client, "/admin/invoicing/billingrunfailure/", {"resolved": "no"})

    page = text(listing)
    assert "held for review" in page and "Northwind" in page
    assert BillingRunFailure.objects.get().step == "held for review"
    dashboard = text(get(client, "/admin/", at=NOV_1))
    assert "Northwind · 9,999,999,999.99 USD — held for review (past the amount limits)" in (
        dashboard
    )
