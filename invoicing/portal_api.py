"""`POST /v1/billing_portal/sessions`: a signed portal link for one customer, in Stripe's shape.

The session is stored (`PortalSession`: who made it, when it was opened) but its signed token is
not, and the link opens the portal once (see `invoicing.portal`). As on Stripe, there is no
endpoint to retrieve or list sessions afterwards.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from billing_site.api.base import ApiView, api_actor, get_by_public_id
from billing_site.api.params import ParameterError, Params
from billing_site.clock import to_unix
from billing_site.errors import ErrorCode
from invoicing.models import Customer
from invoicing.portal import PortalLink, portal_link_create

logger = logging.getLogger(__name__)

_http_url = URLValidator(schemes=["http", "https"])


def serialize_portal_session(link: PortalLink, url: str) -> dict[str, Any]:
    return {
        "id": link.id,
        "object": "billing_portal.session",
        # One portal, set up by this server: the id names it, there is no configuration API.
        "configuration": "bpc_default",
        "created": to_unix(link.created_at),
        "customer": link.customer.public_id,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": link.return_url,
        "url": url,
    }


def _return_url(params: Params) -> str | None:
    url = params.string("return_url", max_length=2000)
    if url is None:
        return None
    try:
        _http_url(url)
    except ValidationError:
        raise ParameterError(
            f"Invalid URL: return_url must be an http or https URL (got '{url[:100]}').",
            param="return_url",
            code=ErrorCode.URL_INVALID,
        ) from None
    return url


class BillingPortalSessionCollection(ApiView):
    resource = "billing_portal"

    def post(self, request, params: Params) -> dict[str, Any]:
        public_id = params.string("customer", required=True)
        customer = get_by_public_id(
            Customer.objects.live(), public_id, "customer", param="customer"
        )
        link = portal_link_create(
            customer=customer, return_url=_return_url(params), actor=api_actor(request)
        )
        logger.info("Portal session %s created for %s via the API", link.id, customer.public_id)
        return serialize_portal_session(link, request.build_absolute_uri(link.path))
