"""`GET /v1/products/search` and `GET /v1/prices/search`: Stripe's query fields for each
(https://docs.stripe.com/search#query-fields-for-products, ...), in the query language of
`billing_site.api.search`."""

from __future__ import annotations

from billing_site.api.base import ApiView, Listing
from billing_site.api.search import (
    Boolean,
    Metadata,
    NeverSet,
    Search,
    SearchEndpoint,
    Text,
    Token,
)
from catalog.api import (
    prices_to_serialize,
    products_to_serialize,
    serialize_price,
    serialize_product,
)

PRODUCT_SEARCH = Search(
    listing=Listing("/v1/products", "product", serialize_product),
    docs_name="products",
    fields={
        "active": Boolean("active"),
        "description": Text("description"),
        "metadata": Metadata(),
        "name": Text("name"),
        "shippable": NeverSet(),
        "url": NeverSet(),
    },
)

PRICE_SEARCH = Search(
    listing=Listing("/v1/prices", "price", serialize_price),
    docs_name="prices",
    fields={
        "active": Boolean("active"),
        "currency": Token("currency", ignore_case=True),
        "lookup_key": Token("lookup_key", blank_is_null=True),
        "metadata": Metadata(),
        "product": Token("product__public_id"),
        "type": Token("type"),
    },
)


class ProductSearch(SearchEndpoint, ApiView):
    resource = "products"
    search = PRODUCT_SEARCH

    def queryset(self):
        return products_to_serialize()


class PriceSearch(SearchEndpoint, ApiView):
    resource = "products"
    search = PRICE_SEARCH

    def queryset(self):
        return prices_to_serialize()
