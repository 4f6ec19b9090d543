"""One presenter per object: an invoice line, a credit grant's status and the admin index's
sections are drawn once and shared by the admin, the portal and the PDF."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing_site import admin as site_admin
from billing_site import clock
from credits.presenters import grant_rows
from credits.services import credit_grant_create
from invoicing import portal, services
from invoicing.models import Invoice
from invoicing.pdf import render_invoice_html
from invoicing.presenters import line_row
from invoicing.services import ItemInput
from metering.ingest import meter_event_create
from tests.admin_pages import get, text
from tests.factories import CustomerFactory, hypernian_usage_price

JAN_1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JAN_10 = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
FEB_1 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
PERIOD = {"period_start": JAN_1, "period_end": FEB_1, "credits_applied": 0, "currency": "usd"}


def band(tier, units, unit_amount, amount, flat="0") -> dict[str, str | int | None]:
    return {
        "tier": tier,
        "units": units,
        "unit_amount_decimal": unit_amount,
        "flat_amount_decimal": flat,
        "amount_decimal": amount,
    }


def test_a_graduated_line_shows_every_band_to_staff_and_to_customers():
    row = line_row(
        description="Hypernian: usage",
        kind="metered",
        quantity=Decimal(150000),
        amount=5000,
        tier_breakdown=[band(1, "100000", "0", "0"), band(2, "50000", "0.1", "5000")],
        **PERIOD,
    )

    assert row.kind == "Usage (in arrears)"
    assert (row.quantity, row.amount) == ("150,000", "50.00 USD")
    assert [(t.label, t.units, t.unit_amount, t.amount) for t in row.tiers] == [
        ("Tier 1", "100,000", "0.00 USD", "0.00 USD"),
        ("Tier 2", "50,000", "0.001 USD", "50.00 USD"),
    ]
    assert row.customer_tiers == row.tiers


def test_a_plain_fee_shows_its_per_unit_band_to_staff_only():
    row = line_row(
        description="3 x Pro seats",
        kind="licensed",
        quantity=Decimal(3),
        amount=6000,
        tier_breakdown=[band(None, "3", "2000", "6000")],
        **PERIOD,
    )

    assert [(t.label, t.unit_amount, t.flat_amount) for t in row.tiers] == [
        ("Per unit", "20.00 USD", "")
    ]
    assert row.customer_tiers == []  # "3 x 20.00 USD" under "3 x Pro seats" says nothing new
    assert row.credits_applied == ""


def test_a_package_line_explains_its_rounding_to_customers():
    row = line_row(
        description="Exports",
        kind="metered",
        quantity=Decimal(2500),
        amount=1500,
        tier_breakdown=[band(None, "3", "500", "1500")],  # 3 packages of 1,000, rounded up
        **{**PERIOD, "credits_applied": 1500},
    )

    assert [t.units for t in row.customer_tiers] == ["3"]
    assert row.credits_applied == "15.00 USD"


def test_the_admin_the_portal_and_the_pdf_draw_the_same_tier_breakdown(client, operator):
    customer = CustomerFactory(name="Northwind")
    price = hypernian_usage_price()
    with clock.frozen_at(JAN_1):
        services.subscription_create(
            customer=customer, items=[ItemInput(price=price)], actor="tests"
        )
    with clock.frozen_at(JAN_10):
        meter_event_create(
            event_name="hypernian_api_tokens",
            payload={"stripe_customer_id": customer.public_id, "value": "150000"},
            timestamp=JAN_10,
        )
    services.billing_run(at=FEB_1 + dt.timedelta(hours=2))
    invoice = Invoice.objects.get(customer=customer, billing_reason="subscription_cycle")
    band_words = "50,000 x 0.001 USD"

    admin_page = text(get(client, f"/admin/invoicing/invoice/{invoice.pk}/change/", at=FEB_1))
    pdf_html = render_invoice_html(invoice).replace("\u00d7", "x")
    client.logout()
    assert client.get(portal.portal_link_create(customer=customer).path).status_code == 302
    portal_page = text(client.get(f"/portal/invoices/{invoice.public_id}/")).replace("\u00d7", "x")

    assert f"Tier 2: {band_words}" in admin_page
    assert f"Tier 2: {band_words}" in portal_page
    assert f"Tier 2: {band_words}" in pdf_html


@pytest.mark.django_db
def test_a_grant_not_yet_effective_is_scheduled_for_staff_and_not_yet_effective_for_customers():
    customer = CustomerFactory()
    credit_grant_create(
        customer=customer,
        amount=5000,
        currency="usd",
        category="promotional",
        effective_at=FEB_1,
        now=JAN_10,
    )

    staff_rows = grant_rows(customer=customer, at=JAN_10)
    customer_rows = grant_rows(
        customer=customer, at=JAN_10, status_labels=portal.GRANT_STATUS_LABELS
    )

    assert [(row.status, row.status_label) for row in staff_rows] == [("scheduled", "Scheduled")]
    assert [row.status_label for row in customer_rows] == ["Not yet effective"]
    assert [row.status for row in grant_rows(customer=customer, at=FEB_1)] == ["active"]


def test_apps_add_their_sections_to_the_admin_index(client, viewer, monkeypatch):
    seen = []

    def section(can_view) -> dict:
        seen.append(can_view(Invoice))
        return {"billing_test_section": "from an app"}

    monkeypatch.setitem(site_admin._index_context_providers, "test", section)
    page = get(client, "/admin/")

    assert page.context["billing_test_section"] == "from an app"
    assert page.context["dashboard"] is not None  # the invoicing app's own section stays
    assert seen == [True]  # a viewer may see invoices
