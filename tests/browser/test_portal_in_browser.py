"""A customer uses the portal in a real browser; a forged link is refused."""

from __future__ import annotations

import io

from playwright.sync_api import expect
from pypdf import PdfReader

from invoicing.demo import seed_billing_history, seed_catalog
from invoicing.models import Customer, Invoice
from invoicing.portal import portal_link_create


def _northwind(transactional_db):
    seed_catalog()
    seed_billing_history(events_per_customer=1600)  # past the 100,000 included tokens
    return Customer.objects.get(name="Northwind Robotics")


def test_a_customer_sees_usage_the_upcoming_invoice_and_downloads_a_pdf(
    page, live_server, transactional_db, screenshot
):
    customer = _northwind(transactional_db)
    link = portal_link_create(customer=customer)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{live_server.url}{link.path}")

    expect(page.get_by_text("Northwind Robotics").first).to_be_visible()
    expect(page.locator("svg").first).to_be_visible()  # the usage chart
    expect(page.get_by_text("Upcoming invoice", exact=False).first).to_be_visible()
    screenshot("portal-overview-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Invoices").first.click()
    latest = Invoice.objects.filter(customer=customer, status="open").get()
    expect(page.get_by_text(latest.number).first).to_be_visible()
    screenshot("portal-invoices")

    page.get_by_text(latest.number).first.click()
    expect(page.get_by_text("Tier 2", exact=False).first).to_be_visible()
    screenshot("portal-invoice-detail")

    with page.expect_download() as download_info:
        page.get_by_text("Download PDF", exact=False).first.click()
    download = download_info.value
    assert download.suggested_filename == f"{latest.number}.pdf"
    with open(download.path(), "rb") as pdf:
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.read())).pages)
    assert latest.number in text
    assert f"{latest.total / 100:,.2f}" in text


def test_a_forged_link_is_refused_with_a_clear_page(
    page, live_server, transactional_db, screenshot
):
    customer = _northwind(transactional_db)
    token = portal_link_create(customer=customer).token
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    response = page.goto(f"{live_server.url}/portal/enter/{forged}/")
    assert response.status in (400, 403, 404)
    expect(page.get_by_text("isn't valid", exact=False).first).to_be_visible()
    assert "Northwind" not in page.content()
    screenshot("portal-forged-link")
