"""`GET /v1/account`: the seller this server bills for, in the shape of Stripe's account object.

Everything comes from settings (`BILLING_ACCOUNT_ID`, `BILLING_SELLER_NAME`,
`BILLING_SELLER_EMAIL`, `BILLING_SELLER_COUNTRY`, `BILLING_DEFAULT_CURRENCY`). The fields about
collecting money say what is true here: payments are recorded, never collected or paid out, so
`charges_enabled` and `payouts_enabled` are false and there are no capabilities.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from billing_site.api.base import ApiView
from billing_site.api.params import Params


def serialize_account() -> dict[str, Any]:
    email = settings.BILLING_SELLER_EMAIL or None
    return {
        "id": settings.BILLING_ACCOUNT_ID,
        "object": "account",
        "business_profile": {
            "mcc": None,
            "name": settings.BILLING_SELLER_NAME,
            "product_description": None,
            "support_address": None,
            "support_email": email,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {},
        "charges_enabled": False,
        "country": settings.BILLING_SELLER_COUNTRY,
        "default_currency": settings.BILLING_DEFAULT_CURRENCY,
        "details_submitted": True,
        "email": email,
        "metadata": {},
        "payouts_enabled": False,
        "settings": {
            "dashboard": {"display_name": settings.BILLING_SELLER_NAME, "timezone": "Etc/UTC"},
        },
        "type": "standard",
    }


class AccountDetail(ApiView):
    resource = "account"
    http_method_names = ["get", "head"]

    def get(self, request, params: Params) -> dict[str, Any]:
        return serialize_account()
