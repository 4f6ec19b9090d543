"""Late usage: metered usage that arrived after its invoice was finalized (stored, not billed),
per invoice line, with a link to the late events."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from billing_site.admin_kit import page_context, render
from billing_site.formatting import format_value
from invoicing.selectors import LateUsage, late_usage


def late_usage_view(model_admin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    found = late_usage()
    found.sort(
        key=lambda late: (
            str(late.invoice.customer).lower(),
            late.line.price.meter.display_name.lower(),
            late.line.period_start,
        )
    )
    rows = [
        {
            "customer": late.invoice.customer,
            "meter": late.line.price.meter,
            "invoice": late.invoice,
            "line": late.line,
            "billed_quantity": format_value(late.line.quantity),
            "late_quantity": format_value(late.late_quantity),
            "late_events": late.late_events,
            "events_url": _late_events_url(late),
        }
        for late in found
    ]
    context = page_context(
        model_admin, request, title="Late usage", page_label="Late usage", rows=rows
    )
    return render(model_admin, request, "admin/invoicing/invoice/late_usage.html", context)


def _late_events_url(late: LateUsage) -> str:
    """The meter event list, filtered to this line's late events."""
    line = late.line
    query = {
        "meter__id__exact": line.price.meter.pk,
        "customer": late.invoice.customer.public_id,
        "timestamp__gte": line.period_start.isoformat(),
        "timestamp__lt": line.period_end.isoformat(),
        "received_at__gt": late.invoice.finalized_at.isoformat(),
    }
    return f"{reverse('admin:metering_meterevent_changelist')}?{urlencode(query)}"
