"""The customer portal as a customer and billing staff use it: a signed link opens one customer's
portal (from the admin's "Portal link" or `POST /v1/billing_portal/sessions`), the pages show
usage, the upcoming invoice, credits and invoices, and every bad link or foreign id gets a clear
page that shows nothing of anyone."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core import signing
from django.utils import timezone

from billing_site import clock
from billing_site.roles import OPERATOR, VIEWER
from catalog.money import format_minor_units
from credits.services import credit_grant_create
from invoicing import demo, portal, services
from invoicing.models import Customer, Invoice
from invoicing.services import ItemInput
from tests import admin_pages
from tests.admin_pages import TYPOGRAPHY
from tests.factories import CustomerFactory, ProductFactory, hypernian_usage_price, licensed_price
from tests.helpers import FEB_1, JAN_1, manual_invoice, send_usage

pytestmark = pytest.mark.django_db

JAN_10 = dt.datetime(2026, 1, 10, 15, tzinfo=dt.UTC)
FEB_3 = dt.datetime(2026, 2, 3, 9, 30, tzinfo=dt.UTC)
FEB_5 = dt.datetime(2026, 2, 5, 18, tzinfo=dt.UTC)
FEB_10 = dt.datetime(2026, 2, 10, 12, tzinfo=dt.UTC)
JUN_1 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

CUSTOMERS = "/admin/invoicing/customer/"
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


# --- helpers ---------------------------------------------------------------------------------


def text(response) -> str:
    """The page as a reader sees it (scripts, styles and charts left out), read as ASCII."""
    hidden = r"<script.*?</script>|<style.*?</style>|<svg.*?</svg>"
    body = re.sub(hidden, " ", response.content.decode(), flags=re.S)
    return admin_pages.text_of(body).translate(TYPOGRAPHY)


def section(response, element_id: str) -> str:
    """The text of one element (tests.admin_pages.section), its typography read as ASCII."""
    return admin_pages.section(response, element_id).translate(TYPOGRAPHY)


def get(client, url, *, at=FEB_10):
    """A portal page, asserting what every page must have: the mobile viewport, no caching."""
    with clock.frozen_at(at):
        response = client.get(url)
    assert "no-store" in response["Cache-Control"]
    if response.status_code != 302:
        assert VIEWPORT in response.content.decode()
    return response


def open_link(client, customer, *, return_url=None, at=FEB_10):
    link = portal.portal_link_create(customer=customer, return_url=return_url)
    response = get(client, link.path, at=at)
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    return link


@pytest.fixture
def northwind(db):
    """Hypernian seats (20.00 USD a month) and tokens (100,000 free, then 0.001 USD each),
    60.00 USD of credits; 150,000 tokens in January, 130,000 so far in February."""
    customer = CustomerFactory(name="Northwind Robotics", email="billing@northwind.example")
    seats = licensed_price(product=ProductFactory(name="Hypernian seats"), unit_amount=2000)
    tokens = hypernian_usage_price()
    with clock.frozen_at(JAN_1):
        services.subscription_create(
            customer=customer, items=[ItemInput(price=seats), ItemInput(price=tokens)]
        )
        credit_grant_create(
            customer=customer,
            amount=6000,
            currency="usd",
            category="promotional",
            name="Welcome credits",
            expires_at=JUN_1,
        )
    send_usage(tokens, customer, 150000, timestamp=JAN_10)
    services.billing_run(at=FEB_1 + dt.timedelta(hours=2))
    send_usage(tokens, customer, 100000, timestamp=FEB_3)
    send_usage(tokens, customer, 30000, timestamp=FEB_5)
    return customer


@pytest.fixture
def staff(db):
    def make(role: str) -> User:
        user = User.objects.create_user(f"{role.split()[-1]}-{User.objects.count()}", password="pw")
        user.is_staff = True
        user.save()
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


# --- Getting in: the admin's "Portal link" and the API ----------------------------------------


def test_staff_create_a_portal_link_from_the_customer_page_and_it_opens_that_portal(
    client, staff, northwind
):
    operator = staff(OPERATOR)
    client.force_login(operator)
    change_page = client.get(f"{CUSTOMERS}{northwind.pk}/change/")
    assert change_page.status_code == 200
    assert f'href="{CUSTOMERS}{northwind.pk}/portal-link/"' in change_page.content.decode()

    form = client.get(f"{CUSTOMERS}{northwind.pk}/portal-link/")
    assert form.status_code == 200
    assert 'value="Create portal link"' in form.content.decode()
    assert not LogEntry.objects.exists()  # looking at the page signs nothing

    created = client.post(f"{CUSTOMERS}{northwind.pk}/portal-link/")
    assert created.status_code == 200
    url = created.context["url"]
    assert url.startswith("http://testserver/portal/enter/")
    assert f'value="{url}"' in created.content.decode()
    link = created.context["link"]
    assert link.expires_at - link.created_at == dt.timedelta(hours=1)
    assert f"Valid until {link.expires_at:%Y-%m-%d %H:%M} UTC" in text(created)
    entry = LogEntry.objects.get(user=operator, object_id=str(northwind.pk))
    assert entry.action_flag == CHANGE
    assert link.id in entry.change_message and link.token not in entry.change_message

    client.logout()
    opened = get(client, url.removeprefix("http://testserver"))
    assert opened.status_code == 302
    overview = get(client, "/portal/")
    assert overview.status_code == 200
    assert "Northwind Robotics" in text(overview)


def test_a_viewer_cannot_create_portal_links(client, staff, northwind):
    client.force_login(staff(VIEWER))
    change_page = client.get(f"{CUSTOMERS}{northwind.pk}/change/")
    assert change_page.status_code == 200
    assert "portal-link" not in change_page.content.decode()
    assert client.get(f"{CUSTOMERS}{northwind.pk}/portal-link/").status_code == 403
    assert client.post(f"{CUSTOMERS}{northwind.pk}/portal-link/").status_code == 403
    assert not LogEntry.objects.exists()


def test_the_admin_makes_no_link_for_a_deleted_customer(client, staff):
    customer = CustomerFactory(name="Gone Ltd")
    services.customer_delete(customer=customer)
    client.force_login(staff(OPERATOR))
    page = client.post(f"{CUSTOMERS}{customer.pk}/portal-link/")
    assert page.status_code == 200
    assert "the account is closed" in text(page)
    assert page.context["url"] is None
    assert not LogEntry.objects.exists()


def test_the_api_creates_a_billing_portal_session_in_stripes_shape_and_its_url_works(
    api, client, northwind
):
    response = api.post(
        "/v1/billing_portal/sessions",
        {"customer": northwind.public_id, "return_url": "https://example.com/account"},
    )
    assert response.status_code == 200, response.json()
    session = response.json()
    assert set(session) == {
        "id", "object", "configuration", "created", "customer", "customer_account", "flow",
        "livemode", "locale", "on_behalf_of", "return_url", "url",
    }  # fmt: skip
    assert session["id"].startswith("bps_")
    assert session["object"] == "billing_portal.session"
    assert session["customer"] == northwind.public_id
    assert session["return_url"] == "https://example.com/account"
    assert (session["livemode"], session["configuration"], session["flow"]) == (
        False,
        "bpc_default",
        None,
    )
    assert abs(session["created"] - timezone.now().timestamp()) < 5
    assert session["url"].startswith("http://testserver/portal/enter/")

    assert get(client, session["url"]).status_code == 302
    overview = get(client, "/portal/")
    assert overview.status_code == 200
    assert "Northwind Robotics" in text(overview)
    assert 'href="https://example.com/account"' in overview.content.decode()


def test_the_api_refuses_bad_portal_session_requests(api):
    deleted = CustomerFactory()
    services.customer_delete(customer=deleted)
    cases = [
        ({}, "customer", "parameter_missing"),
        ({"customer": "cus_nope"}, "customer", "resource_missing"),
        ({"customer": deleted.public_id}, "customer", "resource_missing"),
        (
            {"customer": CustomerFactory().public_id, "return_url": "javascript:alert(1)"},
            "return_url",
            "url_invalid",
        ),
        ({"customer": CustomerFactory().public_id, "flow": "x"}, "flow", "parameter_unknown"),
    ]
    for params, param, code in cases:
        response = api.post("/v1/billing_portal/sessions", params)
        assert response.status_code == 400, params
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (param, code), params


# --- What the customer sees --------------------------------------------------------------------


def test_the_overview_shows_the_period_usage_chart_upcoming_invoice_and_credits(client, northwind):
    open_link(client, northwind)
    page = get(client, "/portal/")
    assert page.status_code == 200
    body = page.content.decode()
    words = text(page)

    assert "Current period: Feb 1, 2026 - Mar 1, 2026" in words
    usage = section(page, "usage-1-1")
    assert "130,000 so far this period" in usage
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart"' in body
    # One bar per UTC day from Feb 1 to today (Feb 10), with the days' usage as tooltips.
    chart = re.search(r"<svg.*?</svg>", body, re.S).group(0)
    assert chart.count('<rect class="bar"') == 10
    assert "Feb 03 UTC: 100,000" in chart and "Feb 05 UTC: 30,000" in chart

    # 30,000 tokens over the free 100,000 at 0.001 USD, next month's seats, 10.00 USD credits.
    upcoming = section(page, "subscription-1")
    assert "Tier 2: 30,000 x 0.001 USD 30.00 USD" in upcoming
    assert "1 x Hypernian seats (next period)" in upcoming
    assert "Subtotal 50.00 USD" in upcoming
    assert "Credits applied -10.00 USD" in upcoming
    assert section(page, "upcoming-amount-due-1") == "40.00 USD"

    credits = section(page, "credits")
    assert "Available balance 10.00 USD" in credits
    assert "Welcome credits (promotional) 60.00 USD 10.00 USD Jun 1, 2026 Active" in credits

    recent = section(page, "recent-invoices")
    assert recent.index("INV-0002") < recent.index("INV-0001")


def test_the_usage_chart_draws_only_the_period_and_adds_up_to_the_usage(northwind):
    tokens = northwind.subscriptions.get().items.get(price__recurring_usage_type="metered").price
    send_usage(tokens, northwind, 7, timestamp=FEB_3 - dt.timedelta(hours=8))  # 01:30, before start
    start = FEB_3 - dt.timedelta(hours=2)  # a period starting mid-day, 07:30
    with clock.frozen_at(FEB_10):
        series = portal.daily_usage(meter=tokens.meter, customer=northwind, start=start, end=FEB_10)
    assert series[0][0] == dt.datetime(2026, 2, 3, tzinfo=dt.UTC)
    assert len(series) == 8  # Feb 3 to Feb 10
    assert dict(series)[dt.datetime(2026, 2, 3, tzinfo=dt.UTC)] == 100000
    assert sum(value for _, value in series) == 130000


def test_the_invoice_list_shows_final_invoices_newest_first_and_no_drafts(client, northwind):
    draft = manual_invoice(northwind, finalize=False)
    open_link(client, northwind)
    page = get(client, "/portal/invoices/")
    assert page.status_code == 200
    rows = section(page, "invoices")
    assert rows.index("INV-0002") < rows.index("INV-0001")
    assert "INV-0002 Feb 1, 2026 Open 70.00 USD 20.00 USD" in rows
    assert "INV-0001 Jan 1, 2026 Open 20.00 USD 20.00 USD" in rows
    assert draft.public_id not in page.content.decode()


def test_the_invoice_page_shows_lines_periods_tier_breakdown_and_credits(client, northwind):
    invoice = Invoice.objects.get(number="INV-0002")
    open_link(client, northwind)
    page = get(client, f"/portal/invoices/{invoice.public_id}/")
    assert page.status_code == 200
    lines = section(page, "invoice-lines")
    # January's 150,000 tokens: 100,000 free, 50,000 at 0.001 USD, all paid by credits.
    assert "Jan 1, 2026 - Feb 1, 2026 150,000 50.00 USD -50.00 USD" in lines
    assert "Tier 1: 100,000 x 0.00 USD 0.00 USD" in lines
    assert "Tier 2: 50,000 x 0.001 USD 50.00 USD" in lines
    assert "Feb 1, 2026 - Mar 1, 2026 1 20.00 USD" in lines
    assert "Subtotal 70.00 USD" in lines
    assert "Credits applied -50.00 USD" in lines
    assert section(page, "invoice-amount-due") == "20.00 USD"
    assert f'href="/portal/invoices/{invoice.public_id}/pdf/"' in page.content.decode()


def test_portal_urls_never_carry_a_customer_id(client, northwind):
    open_link(client, northwind)
    for url in ["/portal/", "/portal/invoices/"]:
        hrefs = re.findall(r'(?:href|action)="([^"]+)"', get(client, url).content.decode())
        assert hrefs
        assert not [href for href in hrefs if "cus_" in href or "customer" in href]


# --- Bad links, foreign ids, closed accounts, ended sessions -----------------------------------


def test_an_expired_link_gets_a_clear_page_and_no_data(client, northwind, monkeypatch):
    link = portal.portal_link_create(customer=northwind, return_url="https://example.com/billing")
    monkeypatch.setattr(portal, "LINK_MAX_AGE", -1)
    page = get(client, link.path)
    assert page.status_code == 410
    assert "This link has expired" in text(page)
    assert "ask your billing contact for a new one" in text(page)
    assert 'href="https://example.com/billing"' in page.content.decode()
    assert "Northwind" not in page.content.decode()
    assert northwind.public_id not in page.content.decode()
    assert get(client, "/portal/").status_code == 403  # no session was opened


def test_a_link_can_be_used_until_it_expires_an_hour_later(client, northwind, monkeypatch):
    link = portal.portal_link_create(customer=northwind)
    created = link.created_at.timestamp()
    # The signer ages links by the wall clock (time.time), not the billing clock.
    monkeypatch.setattr(time, "time", lambda: created + 3599)
    assert get(client, link.path).status_code == 302
    # The same browser may open it again (reload, Back); any other is refused (single use).
    assert get(client, link.path).status_code == 302
    monkeypatch.setattr(time, "time", lambda: created + 3601)
    assert get(client, link.path).status_code == 410


def test_a_tampered_link_is_refused(client, northwind):
    other = CustomerFactory(name="Acme Research")
    token = portal.portal_link_create(customer=northwind).token
    payload, timestamp, signature = token.split(":")
    forged_payload = signing.TimestampSigner(salt="wrong").sign_object({"c": other.public_id})
    other_payload = portal.portal_link_create(customer=other).token.split(":")[0]
    bad_tokens = [
        f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}:{timestamp}:{signature}",
        f"{payload}:{timestamp}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        f"{other_payload}:{timestamp}:{signature}",  # A's signature on B's payload
        forged_payload,
        signing.dumps({"c": other.public_id}),  # signed, but not as a portal link
        token[:20],
        "nonsense",
    ]
    for bad in bad_tokens:
        page = get(client, f"/portal/enter/{bad}/")
        assert page.status_code == 403, bad
        assert "This link isn't valid" in text(page)
        for name in ("Northwind", "Acme"):
            assert name not in page.content.decode()
    assert get(client, "/portal/").status_code == 403


def test_a_customer_cannot_see_another_customers_invoice(client, northwind):
    other = CustomerFactory(name="Acme Research")
    theirs = manual_invoice(other, amount=12345)
    open_link(client, northwind)
    for url in [
        f"/portal/invoices/{theirs.public_id}/",
        f"/portal/invoices/{theirs.public_id}/pdf/",
    ]:
        page = get(client, url)
        assert page.status_code == 404
        assert page["Content-Type"].startswith("text/html")
        assert "No such invoice" in text(page)
        body = page.content.decode()
        assert theirs.number not in body and "123.45" not in body and "Acme" not in body
    missing = get(client, "/portal/invoices/in_doesnotexist/")
    assert missing.status_code == 404 and "No such invoice" in text(missing)


def test_a_deleted_customers_link_shows_the_account_is_closed(client, northwind):
    link = portal.portal_link_create(customer=northwind)
    services.customer_delete(customer=northwind)
    page = get(client, link.path)
    assert page.status_code == 410
    assert "This account is closed" in text(page)
    assert "INV-000" not in page.content.decode()
    assert get(client, "/portal/").status_code == 403


def test_a_session_ends_when_its_customer_is_deleted(client, northwind):
    open_link(client, northwind)
    services.customer_delete(customer=Customer.objects.get(pk=northwind.pk))
    for url in ["/portal/", "/portal/invoices/"]:
        page = get(client, url)
        assert page.status_code == 410
        assert "This account is closed" in text(page)
        assert "INV-000" not in page.content.decode()


def test_sessions_time_out_after_30_idle_minutes(client, northwind):
    open_link(client, northwind)
    assert client.session.get_expiry_age() == 30 * 60
    assert client.session[portal.SESSION_CUSTOMER_KEY] == northwind.pk
    # The customer, and the portal session row that staff can revoke: never the token.
    assert set(client.session.keys()) == {
        portal.SESSION_CUSTOMER_KEY,
        portal.SESSION_LINK_KEY,
        "_session_expiry",
    }

    # Each page renews the idle timeout.
    stored = Session.objects.get()
    Session.objects.filter(pk=stored.pk).update(
        expire_date=timezone.now() + dt.timedelta(minutes=1)
    )
    assert get(client, "/portal/invoices/").status_code == 200
    renewed = Session.objects.get().expire_date - timezone.now()
    assert dt.timedelta(minutes=29) < renewed <= dt.timedelta(minutes=30)

    # Past it, the session is gone.
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    page = get(client, "/portal/")
    assert page.status_code == 403
    assert "Your session has ended" in text(page)
    assert "Northwind" not in page.content.decode()


def test_no_session_and_signing_out_show_the_session_has_ended(client, northwind):
    page = get(client, "/portal/invoices/")
    assert page.status_code == 403 and "Your session has ended" in text(page)

    open_link(client, northwind)
    signed_out = client.post("/portal/sign-out/")
    assert signed_out.status_code == 200 and "You're signed out" in text(signed_out)
    assert get(client, "/portal/").status_code == 403


def test_opening_another_link_switches_customer_and_session_key(client, northwind):
    other = CustomerFactory(name="Acme Research")
    open_link(client, northwind)
    first_key = client.session.session_key
    open_link(client, other)
    assert client.session.session_key != first_key
    page = get(client, "/portal/")
    assert "Acme Research" in text(page) and "Northwind" not in text(page)


# --- Demo data ---------------------------------------------------------------------------------


def test_the_portal_renders_every_page_with_the_seed_demo_data(client):
    demo.seed_catalog()
    demo.seed_billing_history(events_per_customer=40)
    customers = list(Customer.objects.live())
    assert len(customers) >= 3
    for customer in customers:
        link = portal.portal_link_create(customer=customer)
        assert client.get(link.path).status_code == 302
        overview = client.get("/portal/")
        assert overview.status_code == 200, customer
        assert VIEWPORT in overview.content.decode()
        assert "<svg" in overview.content.decode()
        assert customer.name in text(overview)
        for grant in customer.credit_grants.all():
            assert (grant.name or "Billing credits") in section(overview, "credits")
        listing = client.get("/portal/invoices/")
        assert listing.status_code == 200
        invoices = list(customer.invoices.exclude(status="draft"))
        assert invoices, customer
        for invoice in invoices:
            assert invoice.number in text(listing)
            detail = client.get(f"/portal/invoices/{invoice.public_id}/")
            assert detail.status_code == 200
            assert VIEWPORT in detail.content.decode()
            assert section(detail, "invoice-amount-due") == format_minor_units(
                invoice.amount_due, invoice.currency
            )
        pdf = client.get(f"/portal/invoices/{invoices[0].public_id}/pdf/")
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
