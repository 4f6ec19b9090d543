"""The admin index as billing staff see it: what needs attention, invoiced revenue and usage
trends, each number linking to the admin list behind it."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_site import clock
from credits.services import credit_grant_create
from invoicing import services
from invoicing.models import BillingRunFailure
from invoicing.selectors import late_usage, late_usage_lines
from invoicing.services import ItemInput
from tests.admin_pages import element, text_of
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ProductFactory,
    hypernian_usage_price,
    licensed_price,
)
from tests.helpers import FEB_1, JAN_1, grant_credits, manual_invoice, send_usage

pytestmark = pytest.mark.django_db

DEC_1 = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
NOW = FEB_1 + dt.timedelta(minutes=37)  # the January draft finalizes at FEB_1 + 1 h (grace)
NOW_ISO = "2026-02-01T00:37:00+00:00"

INVOICES = "/admin/invoicing/invoice/"


# --- helpers -----------------------------------------------------------------------------------


def get(client, url, *, at=NOW):
    with clock.frozen_at(at):
        return client.get(url)


def count_link(response, card: str) -> tuple[str, str]:
    """(the number, its href) of a "needs attention" card."""
    match = re.search(r'<div class="count"><a href="([^"]+)">([^<]+)</a>', element(response, card))
    assert match, f"no linked count in #{card}"
    return match.group(2), html.unescape(match.group(1))


def hrefs(fragment: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', fragment)]


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def listed(client, url) -> list:
    response = get(client, url)
    assert response.status_code == 200, url
    assert "e=1" not in response.get("Location", ""), f"the admin refused the lookup in {url}"
    return list(response.context["cl"].result_list)


@pytest.fixture
def billing(db):
    """Two months of billing, built through the services, seen at NOW (Feb 1, 00:37 UTC)."""
    northwind = CustomerFactory(name="Northwind")
    seats = licensed_price(product=ProductFactory(name="Seats"), unit_amount=2000)
    tokens = hypernian_usage_price(meter=MeterFactory(display_name="API tokens"))
    with clock.frozen_at(DEC_1):
        subscription = services.subscription_create(
            customer=northwind,
            items=[ItemInput(price=seats), ItemInput(price=tokens)],
            collection_method="send_invoice",
            days_until_due=30,
            actor="tests",
        )
    first = subscription.invoices.get()  # 20.00 USD, finalized Dec 1
    services.invoice_pay(invoice=first, actor="tests", at=DEC_1 + dt.timedelta(days=9))

    # December: 150,000 tokens (50,000 above the free tier at 0.001 USD) plus the seats.
    send_usage(tokens, northwind, 150000, timestamp=dt.datetime(2025, 12, 15, tzinfo=dt.UTC))
    run_at = JAN_1 + dt.timedelta(hours=2)
    with clock.frozen_at(run_at):
        services.billing_run(at=run_at)  # closes December and finalizes it: 70.00 USD, due Jan 31
    december = subscription.invoices.get(billing_reason="subscription_cycle")
    # A December event received after December's invoice was final: late usage.
    send_usage(
        tokens,
        northwind,
        1000,
        timestamp=dt.datetime(2025, 12, 31, 12, tzinfo=dt.UTC),
        received=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )
    # January usage, inside the dashboard's 14 days (Jan 19 to Feb 1).
    for day, value in [(20, 5000), (25, 10000), (31, 3000)]:
        send_usage(tokens, northwind, value, timestamp=dt.datetime(2026, 1, day, tzinfo=dt.UTC))

    overdue = manual_invoice(  # due Jan 15
        CustomerFactory(name="Contoso"),
        5000,
        at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        days_until_due=10,
    )
    not_due = manual_invoice(
        CustomerFactory(name="Fabrikam"), 4200, at=dt.datetime(2026, 1, 25, tzinfo=dt.UTC)
    )
    voided = manual_invoice(
        CustomerFactory(name="Initech"), 9900, at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC)
    )
    services.invoice_void(invoice=voided, actor="tests", at=dt.datetime(2026, 1, 21, tzinfo=dt.UTC))

    with clock.frozen_at(FEB_1):
        services.billing_run(at=FEB_1)  # closes January: a draft until FEB_1 + 1 h
    draft = subscription.invoices.get(status="draft")
    send_usage(tokens, northwind, 250, timestamp=FEB_1 + dt.timedelta(minutes=10))

    expiring = grant_credits(
        northwind,
        3000,
        at=NOW,
        name="Welcome credits",
        category="promotional",
        expires_at=NOW + dt.timedelta(days=10),
    )
    later = grant_credits(
        northwind, 9000, at=NOW, name="Annual credits", expires_at=NOW + dt.timedelta(days=60)
    )
    failure = BillingRunFailure.objects.create(
        subscription=subscription, step="close period", error="KeyError: 'x'", created_at=FEB_1
    )
    BillingRunFailure.objects.create(
        subscription=subscription,
        step="close period",
        error="fixed",
        created_at=JAN_1,
        resolved_at=JAN_1 + dt.timedelta(hours=3),
    )
    return {
        "draft": draft,
        "december": december,
        "overdue": overdue,
        "not_due": not_due,
        "voided": voided,
        "first": first,
        "expiring": expiring,
        "later": later,
        "failure": failure,
        "meter": tokens.meter,
    }


# --- Needs attention ---------------------------------------------------------------------------


def test_drafts_card_counts_drafts_and_says_when_each_finalizes(admin_client, billing):
    response = get(admin_client, "/admin/")

    assert response.status_code == 200
    assert count_link(response, "card-drafts") == ("1", f"{INVOICES}?status__exact=draft")
    card = element(response, "card-drafts")
    assert "Northwind · 20.00 USD — finalizes in 23 min" in text_of(card)
    assert f"{INVOICES}{billing['draft'].pk}/change/" in hrefs(card)
    assert listed(admin_client, f"{INVOICES}?status__exact=draft") == [billing["draft"]]


def test_open_and_overdue_cards_show_counts_and_amounts_with_their_lists(admin_client, billing):
    response = get(admin_client, "/admin/")

    number, url = count_link(response, "card-open")
    assert (number, url) == ("3", f"{INVOICES}?status__exact=open")
    # 70.00 (December's period) + 50.00 (Contoso) + 42.00 (Fabrikam, due Feb 24)
    assert "162.00 USD" in text_of(element(response, "card-open"))
    assert f"{INVOICES}?status__exact=open&currency__exact=USD" in hrefs(
        element(response, "card-open")
    )

    number, url = count_link(response, "card-overdue")
    assert number == "2"
    assert query(url) == {"status__exact": ["open"], "due_date__lt": [NOW_ISO]}
    assert "120.00 USD" in text_of(element(response, "card-overdue"))
    # The link lists exactly the counted invoices: the admin accepts the due_date lookup.
    assert set(listed(admin_client, url)) == {billing["december"], billing["overdue"]}


def test_late_usage_grants_and_failures_cards_link_to_their_filtered_lists(admin_client, billing):
    response = get(admin_client, "/admin/")

    assert count_link(response, "card-late-usage") == ("1", f"{INVOICES}late-usage/")
    with clock.frozen_at(NOW):
        assert len(late_usage_lines(now=NOW)) == len(late_usage()) == 1

    number, url = count_link(response, "card-expiring-grants")
    assert number == "1"
    assert urlsplit(url).path == "/admin/credits/creditgrant/"
    assert query(url) == {
        "expires_at__lte": ["2026-03-03T00:37:00+00:00"],
        "expired_at__isnull": ["True"],
        "voided_at__isnull": ["True"],
    }
    assert listed(admin_client, url) == [billing["expiring"]]
    card = text_of(element(response, "card-expiring-grants"))
    assert "Welcome credits · Northwind · 30.00 USD left — expires in 10 days" in card
    assert "Annual credits" not in card

    number, url = count_link(response, "card-failures")
    assert (number, url) == ("1", "/admin/invoicing/billingrunfailure/?resolved=no")
    assert listed(admin_client, url) == [billing["failure"]]


# --- Headline numbers --------------------------------------------------------------------------


def test_revenue_by_month_is_a_chart_with_linked_monthly_totals(admin_client, billing):
    response = get(admin_client, "/admin/")

    revenue = element(response, "revenue-USD")
    assert "<svg" in revenue and "Invoiced revenue per month, USD" in revenue
    words = text_of(revenue)
    assert "this month 0.00 USD" in words  # January's draft isn't finalized yet
    # Void invoices don't count: January is 70.00 + 50.00 + 42.00, not + 99.00.
    assert "Sep 2025: 0.00 USD" in words
    assert "Dec 2025: 20.00 USD" in words
    assert "Jan 2026: 162.00 USD" in words
    january = next(url for url in hrefs(revenue) if "finalized_at__gte=2026-01-01" in url)
    assert query(january) == {
        "currency__exact": ["USD"],
        "status__in": ["open,paid,uncollectible"],
        "finalized_at__gte": ["2026-01-01T00:00:00+00:00"],
        "finalized_at__lt": ["2026-02-01T00:00:00+00:00"],
    }
    assert set(listed(admin_client, january)) == {
        billing["december"],
        billing["overdue"],
        billing["not_due"],
    }


def test_usage_trend_per_meter_charts_the_last_14_days_and_links_to_the_meter(
    admin_client, billing
):
    meter = billing["meter"]
    MeterFactory(display_name="Quiet meter")

    response = get(admin_client, "/admin/")

    trend = element(response, f"usage-{meter.pk}")
    assert "<svg" in trend
    assert "Today: 250 · 14 days: 18,250" in text_of(trend)
    assert f"/admin/metering/meter/{meter.pk}/change/?window=day" in hrefs(trend)
    assert "19 Jan" in trend  # 14 UTC days, today (Feb 1) included
    assert "18 Jan" not in trend
    assert "Quiet meter" in text_of(element(response, "usage-trends"))


# --- Zero states, permissions and cost ---------------------------------------------------------


def test_an_empty_database_shows_the_zero_states_and_the_app_list(admin_client):
    response = get(admin_client, "/admin/")

    assert response.status_code == 200
    page = text_of(response.content.decode())
    for message in [
        "Nothing waiting: no draft invoices.",
        "Nothing open",
        "Nothing overdue.",
        "No late usage.",
        "No credits expiring in the next 30 days.",
        "No unresolved failures.",
        "Nothing invoiced in the last six months.",
        "No active meters.",
    ]:
        assert message in page
    assert count_link(response, "card-drafts") == ("0", f"{INVOICES}?status__exact=draft")
    assert "Recent actions" in page and "Invoicing" in page  # the usual index is still there


def test_staff_see_only_the_sections_they_may_view(client, billing):
    user = User.objects.create_user("auditor", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(user)

    response = get(client, "/admin/")

    body = response.content.decode()
    assert 'id="card-open"' in body and 'id="revenue-USD"' in body
    assert 'id="card-expiring-grants"' not in body
    assert 'id="card-failures"' not in body
    assert 'id="usage-trends"' not in body

    user.user_permissions.clear()
    nobody = User.objects.get(pk=user.pk)  # fresh permission cache
    client.force_login(nobody)
    assert 'id="billing-dashboard"' not in get(client, "/admin/").content.decode()


def test_the_dashboard_takes_the_same_number_of_queries_for_more_rows(
    admin_client, billing, django_assert_max_num_queries
):
    # 16 since the failing webhook endpoints card (one COUNT) joined the attention list.
    with django_assert_max_num_queries(16), CaptureQueriesContext(connection) as before:
        get(admin_client, "/admin/")
    contoso = billing["overdue"].customer
    for amount in (100, 200, 300):
        manual_invoice(contoso, amount, at=dt.datetime(2026, 1, 6, tzinfo=dt.UTC), days_until_due=1)
    for days in (3, 4):
        credit_grant_create(
            customer=contoso,
            amount=500,
            currency="usd",
            category="promotional",
            expires_at=NOW + dt.timedelta(days=days),
            now=NOW,
        )

    with django_assert_max_num_queries(len(before.captured_queries)):
        response = get(admin_client, "/admin/")

    assert count_link(response, "card-overdue")[0] == "5"
    assert count_link(response, "card-expiring-grants")[0] == "3"
