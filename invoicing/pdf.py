"""Invoice PDFs, rendered by WeasyPrint from `templates/portal/invoice_pdf.html`.

The PDF is built only from local resources: the template inlines its CSS, fonts are the
system's, and the URL fetcher refuses everything but `data:` URLs, so rendering never waits on
the network and a crafted value can't make the server fetch anything.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from invoicing.models import Invoice
from invoicing.presenters import invoice_document

TEMPLATE = "portal/invoice_pdf.html"


def seller() -> dict[str, str]:
    """Who issues the invoices. Optional settings; the defaults suit the demo."""
    return {
        "name": getattr(settings, "BILLING_SELLER_NAME", "Usage Billing"),
        "address": getattr(settings, "BILLING_SELLER_ADDRESS", ""),
        "email": getattr(settings, "BILLING_SELLER_EMAIL", ""),
    }


def _local_fetcher() -> Any:
    """A URL fetcher that only serves `data:` URLs (newer WeasyPrint takes a URLFetcher)."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # older WeasyPrint: a fetcher is a plain function
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"Invoice PDFs don't load external resources ({url[:60]}).")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch
    return URLFetcher(allowed_protocols={"data"})


def pdf_filename(invoice: Invoice) -> str:
    """`INV-0001.pdf`; anything but letters, digits, dot, dash and underscore becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", invoice.label) + ".pdf"


def render_invoice_html(invoice: Invoice) -> str:
    return render_to_string(TEMPLATE, {"doc": invoice_document(invoice), "seller": seller()})


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The finalized invoice as a PDF document. Refuses drafts: they may still change."""
    if invoice.status == Invoice.Status.DRAFT:
        raise ValueError(f"Invoice {invoice.public_id} is a draft: only final invoices print.")
    # Imported here: WeasyPrint loads Pango and fonts, which only PDF requests should pay for.
    from weasyprint import HTML

    return HTML(string=render_invoice_html(invoice), url_fetcher=_local_fetcher()).write_pdf()
