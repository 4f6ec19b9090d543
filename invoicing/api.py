"""`/v1/customers`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiView, get_by_public_id, paginate
from billing_site.api.params import Params, merge_metadata
from billing_site.clock import to_unix
from invoicing import services
from invoicing.models import Customer


def serialize_customer(customer: Customer) -> dict[str, Any]:
    if customer.deleted_at is not None:
        return {"id": customer.public_id, "object": "customer", "deleted": True}
    return {
        "id": customer.public_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": to_unix(customer.created_at),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": customer.description or None,
        "discount": None,
        "email": customer.email or None,
        "invoice_prefix": None,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": customer.metadata,
        "name": customer.name or None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def _customer_fields(params: Params) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, limit in (("name", 256), ("email", 512), ("description", 5000)):
        if key in params:
            fields[key] = params.string(key, max_length=limit, allow_blank=True) or ""
    return fields


class CustomerCollection(ApiView):
    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = Customer.objects.live()
        email = params.string("email", max_length=512)
        if email:
            queryset = queryset.filter(email__iexact=email)
        return paginate(
            queryset,
            params,
            url="/v1/customers",
            resource="customer",
            serialize=serialize_customer,
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        metadata = merge_metadata({}, params.metadata())
        customer = services.customer_create(**_customer_fields(params), metadata=metadata)
        return serialize_customer(customer)


class CustomerDetail(ApiView):
    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_customer(get_by_public_id(Customer.objects, public_id, "customer"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        changes = _customer_fields(params)
        metadata = params.metadata()
        if metadata is not None:
            changes["metadata"] = merge_metadata(customer.metadata, metadata)
        return serialize_customer(services.customer_update(customer=customer, **changes))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        return serialize_customer(services.customer_delete(customer=customer))
