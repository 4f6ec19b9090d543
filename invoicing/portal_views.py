"""The customer portal's pages. Thin: access rules and reads live in `invoicing.portal`, and
invoices are drawn by `invoicing.presenters` (shared with the admin and the PDF).

Every page but `enter` takes its customer from the session (`portal_page`), never from the URL.
Anything that stops a page (a bad link, an ended session, a closed account, an unknown invoice)
gets `portal/error.html` with a status code and a sentence the customer can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from invoicing import portal
from invoicing.models import Customer, Invoice
from invoicing.pdf import pdf_filename, render_invoice_pdf
from invoicing.presenters import invoice_document, invoice_summary

logger = logging.getLogger(__name__)

INVOICES_PER_PAGE = 25

# (status, title, message) per refusal. No page says which customer or invoice was involved.
ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid": (
        403,
        "This link isn't valid",
        "The link may have been cut short or changed. Open the whole link again, or ask your "
        "billing contact for a new one.",
    ),
    "expired": (
        410,
        "This link has expired or was already used",
        "A portal link opens the portal once, for a limited time: ask your billing contact for "
        "a new one.",
    ),
    "closed": (
        410,
        "This account is closed",
        "There is no billing portal for a closed account. Contact your billing contact if you "
        "need copies of past invoices.",
    ),
    "session_ended": (
        403,
        "Your session has ended",
        "For your security, portal sessions end after a while without activity. Go back to "
        "the billing page that brought you here, or ask your billing contact for a new link.",
    ),
    "invoice_missing": (
        404,
        "No such invoice",
        "There is no invoice at this address in your account.",
    ),
    "invoice_draft": (
        409,
        "This invoice isn't final yet",
        "It is still being prepared and may change. It will appear in your invoices, with a PDF "
        "to download, once it is finalized.",
    ),
}


def error_page(
    request: HttpRequest,
    kind: str,
    *,
    return_url: str | None = None,
    customer: Customer | None = None,
) -> HttpResponse:
    """The refusal page. `customer` (the session's own) only adds the portal's navigation."""
    status, title, message = ERRORS[kind]
    return TemplateResponse(
        request,
        "portal/error.html",
        {
            "title": title,
            "message": message,
            "return_url": return_url,
            "kind": kind,
            "customer": customer,
        },
        status=status,
    )


def portal_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the session's customer (or show why not) and keep the page out of caches."""

    @wraps(view)
    @never_cache
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            customer = portal.portal_session_customer(request.session)
        except portal.PortalAccessError as refusal:
            return error_page(request, refusal.kind, return_url=refusal.return_url)
        return view(request, customer, *args, **kwargs)

    return wrapper


def _render(request: HttpRequest, template: str, customer: Customer, **context: Any):
    return TemplateResponse(
        request,
        template,
        {
            "customer": customer,
            "return_url": request.session.get(portal.SESSION_RETURN_URL_KEY),
            **context,
        },
    )


@never_cache
@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Open a signed link, once: bind this browser's session to the link's customer, then go
    home. The token is a credential: it is never logged (the log filter masks this URL)."""
    try:
        link, return_url = portal.portal_link_open(token=token, browser_session=request.session)
    except portal.PortalAccessError as refusal:
        logger.info("Portal link refused: %s", refusal.kind)
        return error_page(request, refusal.kind, return_url=refusal.return_url)
    portal.portal_session_start(request.session, link=link, return_url=return_url)
    logger.info("Portal session %s started for %s", link.public_id, link.customer.public_id)
    # Redirecting also takes the token out of the address bar (and of later Referer headers).
    return redirect("portal:overview")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    return_url = request.session.get(portal.SESSION_RETURN_URL_KEY)
    portal.portal_session_end(request.session)
    return TemplateResponse(request, "portal/signed_out.html", {"return_url": return_url})


@require_GET
@portal_page
def overview(request: HttpRequest, customer: Customer) -> HttpResponse:
    return _render(
        request,
        "portal/overview.html",
        customer,
        overview=portal.portal_overview(customer=customer),
        nav="overview",
    )


@require_GET
@portal_page
def invoice_list(request: HttpRequest, customer: Customer) -> HttpResponse:
    page = Paginator(portal.portal_invoices(customer=customer), INVOICES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return _render(
        request,
        "portal/invoice_list.html",
        customer,
        page=page,
        invoices=[invoice_summary(invoice) for invoice in page],
        nav="invoices",
    )


def invoice_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A GET page about one of the session customer's finalized invoices (`public_id` in the
    URL): the view gets the invoice, or the customer gets why not."""

    @require_GET
    @portal_page
    @wraps(view)
    def wrapper(request: HttpRequest, customer: Customer, public_id: str) -> HttpResponse:
        invoice = portal.portal_invoice(customer=customer, public_id=public_id)
        return_url = request.session.get(portal.SESSION_RETURN_URL_KEY)
        if invoice is None:
            return error_page(request, "invoice_missing", return_url=return_url, customer=customer)
        if invoice.status == Invoice.Status.DRAFT:
            return error_page(request, "invoice_draft", return_url=return_url, customer=customer)
        return view(request, customer, invoice)

    return wrapper


@invoice_page
def invoice_detail(request: HttpRequest, customer: Customer, invoice: Invoice) -> HttpResponse:
    return _render(
        request,
        "portal/invoice_detail.html",
        customer,
        doc=invoice_document(invoice),
        nav="invoices",
    )


@invoice_page
def invoice_pdf(request: HttpRequest, customer: Customer, invoice: Invoice) -> HttpResponse:
    response = HttpResponse(render_invoice_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=pdf_filename(invoice)
    )
    return response
