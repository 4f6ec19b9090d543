"""`/v1/customers`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import ApiView, Listing, api_actor, get_by_param, get_by_public_id
from billing_site.api.lists import filter_by_params
from billing_site.api.params import Params
from invoicing import services
from invoicing.api.serializers import serialize_customer
from invoicing.api.test_clocks import live_test_clocks
from invoicing.models import Customer


def customer_param(params: Params, key: str = "customer") -> Customer:
    """The live customer a request names (`customer=cus_...`), with its test clock loaded."""
    return get_by_param(
        Customer.objects.live().select_related("test_clock"),
        params,
        key,
        "customer",
        required=True,
    )


def _customer_fields(params: Params) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, limit in (("name", 256), ("email", 512), ("description", 5000)):
        if key in params:
            fields[key] = params.string(key, max_length=limit, allow_blank=True) or ""
    return fields


class CustomerCollection(ApiView):
    resource = "customers"
    listing = Listing("/v1/customers", "customer", serialize_customer)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = filter_by_params(
            Customer.objects.live().select_related("test_clock"),
            params,
            test_clock="test_clock__public_id",
        )
        email = params.string("email", max_length=512)
        if email:
            queryset = queryset.filter(email__iexact=email)
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        metadata = params.new_metadata()
        test_clock = get_by_param(
            live_test_clocks(), params, "test_clock", "test_helpers.test_clock"
        )
        customer = services.customer_create(
            **_customer_fields(params), metadata=metadata, test_clock=test_clock
        )
        return serialize_customer(customer)


class CustomerDetail(ApiView):
    resource = "customers"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_customer(get_by_public_id(Customer.objects, public_id, "customer"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        changes = _customer_fields(params)
        metadata = params.updated_metadata(customer.metadata)
        if metadata is not None:
            changes["metadata"] = metadata
        return serialize_customer(services.customer_update(customer=customer, **changes))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        customer = get_by_public_id(Customer.objects.live(), public_id, "customer")
        # Stripe's behaviour: subscriptions end at once, usage so far is not invoiced.
        deleted = services.customer_delete(customer=customer, actor=api_actor(request))
        return serialize_customer(deleted)
