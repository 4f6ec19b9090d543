"""`GET /v1/customers/search`, `/v1/subscriptions/search`, `/v1/invoices/search`: Stripe's
query fields for each (https://docs.stripe.com/search#query-fields-for-customers, ...), in the
query language of `billing_site.api.search`."""

from __future__ import annotations

from billing_site.api.base import ApiView
from billing_site.api.search import (
    Metadata,
    NeverSet,
    Number,
    Search,
    SearchEndpoint,
    Text,
    Timestamp,
    Token,
)
from invoicing.api.customers import CustomerCollection
from invoicing.api.invoices import InvoiceCollection
from invoicing.api.serializers import invoices_to_serialize, subscriptions_to_serialize
from invoicing.api.subscriptions import SubscriptionCollection
from invoicing.models import Customer

CUSTOMER_SEARCH = Search(
    listing=CustomerCollection.listing,
    docs_name="customers",
    fields={
        "created": Timestamp("created_at"),
        "email": Text("email"),
        "metadata": Metadata(),
        "name": Text("name"),
        "phone": NeverSet(),
    },
)

SUBSCRIPTION_SEARCH = Search(
    listing=SubscriptionCollection.listing,
    docs_name="subscriptions",
    fields={
        "created": Timestamp("created_at"),
        "metadata": Metadata(),
        "status": Token("status"),
    },
)

INVOICE_SEARCH = Search(
    listing=InvoiceCollection.listing,
    docs_name="invoices",
    fields={
        "created": Timestamp("created_at"),
        "currency": Token("currency", ignore_case=True),
        "customer": Token("customer__public_id"),
        "last_finalization_error_code": NeverSet(),
        "last_finalization_error_type": NeverSet(),
        "metadata": Metadata(),
        "number": Token("number"),
        "receipt_number": NeverSet(),
        "status": Token("status"),
        "subscription": Token("subscription__public_id"),
        "total": Number("total"),
    },
)


class CustomerSearch(SearchEndpoint, ApiView):
    resource = "customers"
    search = CUSTOMER_SEARCH

    def queryset(self):
        return Customer.objects.live().select_related("test_clock")


class SubscriptionSearch(SearchEndpoint, ApiView):
    resource = "subscriptions"
    search = SUBSCRIPTION_SEARCH

    def queryset(self):
        return subscriptions_to_serialize()


class InvoiceSearch(SearchEndpoint, ApiView):
    resource = "invoices"
    search = INVOICE_SEARCH

    def queryset(self):
        return invoices_to_serialize()
