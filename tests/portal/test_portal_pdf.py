"""Invoice PDFs from the portal: a finalized invoice downloads as a PDF whose text (read back with
pypdf) has the number, the customer, the lines, the credits, the totals and the due date; a draft
or another customer's invoice gets a page, never a PDF."""

from __future__ import annotations

import datetime as dt
import html
import io
import re

import pytest
from pypdf import PdfReader

from billing_site import clock
from catalog.money import format_minor_units
from credits.services import credit_grant_create
from invoicing import portal, services
from invoicing.models import Invoice
from invoicing.pdf import _local_fetcher, pdf_filename, render_invoice_pdf
from invoicing.services import ItemInput
from metering.ingest import meter_event_create
from tests.admin_pages import TYPOGRAPHY
from tests.factories import CustomerFactory, hypernian_usage_price
from tests.helpers import FEB_1, JAN_1, JAN_15

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    words = " ".join(page.extract_text() for page in reader.pages).split()
    return " ".join(words).translate(TYPOGRAPHY)


def one_off_invoice(customer, *, finalize=True) -> Invoice:
    """Two items, sent with 30 days to pay, finalized on Jan 15."""
    with clock.frozen_at(JAN_15):
        invoice = services.invoice_create(customer=customer, currency="usd", days_until_due=30)
        services.invoice_item_create(invoice=invoice, description="Onboarding", amount=150000)
        services.invoice_item_create(invoice=invoice, description="Training day", amount=73450)
        if finalize:
            services.invoice_finalize(invoice=invoice, actor="tests")
    return Invoice.objects.get(pk=invoice.pk)


def sign_in(client, customer) -> None:
    link = portal.portal_link_create(customer=customer)
    assert client.get(link.path).status_code == 302


def test_a_finalized_invoice_downloads_as_a_pdf_with_number_total_and_due_date(client):
    customer = CustomerFactory(name="Northwind Robotics", email="billing@northwind.example")
    invoice = one_off_invoice(customer)
    assert (invoice.number, invoice.total) == ("INV-0001", 223450)
    sign_in(client, customer)

    response = client.get(f"/portal/invoices/{invoice.public_id}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-0001.pdf"'
    assert "no-store" in response["Cache-Control"]
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert "INV-0001" in text
    assert format_minor_units(invoice.total, "usd") == "2,234.50 USD"
    assert "Total 2,234.50 USD" in text
    assert "Amount due 2,234.50 USD" in text
    assert "Northwind Robotics" in text and "billing@northwind.example" in text
    assert "Onboarding Jan 15, 2026 1 1,500.00 USD" in text
    assert "Training day Jan 15, 2026 1 734.50 USD" in text
    assert "Issued Jan 15, 2026" in text
    assert "Due date Feb 14, 2026" in text


def test_the_pdf_shows_tier_breakdown_and_credits_of_a_usage_invoice(client):
    customer = CustomerFactory(name="Acme Research")
    tokens = hypernian_usage_price()
    with clock.frozen_at(JAN_1):
        services.subscription_create(customer=customer, items=[ItemInput(price=tokens)])
        credit_grant_create(
            customer=customer, amount=1234, currency="usd", category="paid", name="Prepaid"
        )
    with clock.frozen_at(JAN_15):
        meter_event_create(
            event_name=tokens.meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": "160000"},
        )
    services.billing_run(at=FEB_1 + dt.timedelta(hours=2))
    invoice = Invoice.objects.get(customer=customer, billing_reason="subscription_cycle")
    # 60,000 tokens over the free 100,000 at 0.001 USD = 60.00 USD, 12.34 USD of it credited.
    assert (invoice.total, invoice.total_credits, invoice.amount_due) == (6000, 1234, 4766)

    text = pdf_text(render_invoice_pdf(invoice))

    assert invoice.number in text
    assert "Tier 1: 100,000 x 0.00 USD 0.00 USD" in text
    assert "Tier 2: 60,000 x 0.001 USD 60.00 USD" in text
    assert "Jan 1, 2026 - Feb 1, 2026" in text
    assert "Total 60.00 USD" in text
    assert "Credits applied -12.34 USD" in text
    assert "Amount due 47.66 USD" in text


def test_a_draft_invoice_gets_a_page_not_a_pdf(client):
    customer = CustomerFactory()
    draft = one_off_invoice(customer, finalize=False)
    sign_in(client, customer)

    for url in [f"/portal/invoices/{draft.public_id}/pdf/", f"/portal/invoices/{draft.public_id}/"]:
        response = client.get(url)
        assert response.status_code == 409
        assert response["Content-Type"].startswith("text/html")
        assert "Content-Disposition" not in response
        page = html.unescape(response.content.decode())
        assert "This invoice isn't final yet" in page
        assert "once it is finalized" in page
        assert "2,234.50" not in page
    with pytest.raises(ValueError, match="draft"):
        render_invoice_pdf(draft)


def test_another_customers_pdf_is_not_found(client):
    mine, theirs = CustomerFactory(), CustomerFactory(name="Acme Research")
    their_invoice = one_off_invoice(theirs)
    sign_in(client, mine)

    response = client.get(f"/portal/invoices/{their_invoice.public_id}/pdf/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "No such invoice" in response.content.decode()
    assert their_invoice.number not in response.content.decode()


def test_pdf_text_is_escaped_and_the_filename_is_safe():
    customer = CustomerFactory(name='<img src="http://example.invalid/x.png"> Robots & Co')
    invoice = one_off_invoice(customer)
    text = pdf_text(render_invoice_pdf(invoice))
    # Shown as text (the line may wrap after a slash), never loaded as an image.
    assert '<img src="http://' in text and 'x.png"> Robots & Co' in text
    fetcher = _local_fetcher()
    for url in ["http://example.invalid/x.png", "file:///etc/passwd"]:
        with pytest.raises(ValueError):
            getattr(fetcher, "fetch", fetcher)(url)
    invoice.number = 'ACME/2026 "01"'
    assert pdf_filename(invoice) == "ACME_2026__01_.pdf"
    assert re.fullmatch(r"[\w.-]+", pdf_filename(invoice))
