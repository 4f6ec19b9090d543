"""`/v1/products` and `/v1/prices`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import (
    ApiError,
    ApiView,
    Listing,
    get_by_param,
    get_by_public_id,
    paginate,
)
from billing_site.api.expand import Id, Included, register_expandable
from billing_site.api.lists import OneOf, filter_by_params
from billing_site.api.params import Params
from billing_site.clock import to_unix
from billing_site.errors import BillingError, ErrorCode
from billing_site.formatting import decimal_string, integer_or_none
from catalog import services
from catalog.api_fields import (
    read_currency_options,
    read_product_details,
    serialize_currency_options,
)
from catalog.models import Price, PriceTier, Product
from catalog.terms import build_price_terms
from metering.models import Meter


def serialize_product(product: Product) -> dict[str, Any]:
    return {
        "id": product.public_id,
        "object": "product",
        "active": product.active,
        "created": to_unix(product.created_at),
        "default_price": product.default_price.public_id if product.default_price_id else None,
        "description": product.description or None,
        "images": product.images,
        "livemode": False,
        "marketing_features": [],
        "metadata": product.metadata,
        "name": product.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": product.statement_descriptor or None,
        "tax_code": (product.tax_details or {}).get("tax_code"),
        "tax_details": product.tax_details,
        "type": "service",
        "unit_label": product.unit_label or None,
        "updated": to_unix(product.updated_at),
        "url": product.url or None,
    }


def _serialize_tier(tier: PriceTier) -> dict[str, Any]:
    return {
        "flat_amount": integer_or_none(tier.flat_amount_decimal),
        "flat_amount_decimal": decimal_string(tier.flat_amount_decimal),
        "unit_amount": integer_or_none(tier.unit_amount_decimal),
        "unit_amount_decimal": decimal_string(tier.unit_amount_decimal),
        "up_to": tier.up_to,
    }


def serialize_price(price: Price) -> dict[str, Any]:
    recurring = None
    if price.type == Price.Type.RECURRING:
        recurring = {
            "interval": price.recurring_interval,
            "interval_count": price.recurring_interval_count,
            "meter": price.meter.public_id if price.meter_id else None,
            "trial_period_days": None,
            "usage_type": price.recurring_usage_type,
        }
    transform = None
    if price.transform_divide_by:
        transform = {"divide_by": price.transform_divide_by, "round": price.transform_round}
    body: dict[str, Any] = {
        "id": price.public_id,
        "object": "price",
        "active": price.active,
        "billing_scheme": price.billing_scheme,
        "created": to_unix(price.created_at),
        "currency": price.currency.lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": price.lookup_key,
        "metadata": price.metadata,
        "nickname": price.nickname or None,
        "product": price.product.public_id,
        "recurring": recurring,
        "tax_behavior": price.tax_behavior,
        "tiers_mode": price.tiers_mode,
        "transform_quantity": transform,
        "type": price.type,
        "unit_amount": integer_or_none(price.unit_amount_decimal),
        "unit_amount_decimal": decimal_string(price.unit_amount_decimal),
    }
    if price.billing_scheme == Price.BillingScheme.TIERED:
        body["tiers"] = [_serialize_tier(tier) for tier in price.tiers.all()]
    if price.currency_options:
        body["currency_options"] = serialize_currency_options(price)
    return body


def serialize_plan(price: Price) -> dict[str, Any]:
    """Stripe's legacy `plan`, which subscription items still carry next to their price."""
    transform = None
    if price.transform_divide_by:
        transform = {"divide_by": price.transform_divide_by, "round": price.transform_round}
    return {
        "id": price.public_id,
        "object": "plan",
        "active": price.active,
        "amount": integer_or_none(price.unit_amount_decimal),
        "amount_decimal": decimal_string(price.unit_amount_decimal),
        "billing_scheme": price.billing_scheme,
        "created": to_unix(price.created_at),
        "currency": price.currency.lower(),
        "interval": price.recurring_interval,
        "interval_count": price.recurring_interval_count,
        "livemode": False,
        "metadata": price.metadata,
        "meter": price.meter.public_id if price.meter_id else None,
        "nickname": price.nickname or None,
        "product": price.product.public_id,
        "tiers_mode": price.tiers_mode,
        "transform_usage": transform,
        "trial_period_days": None,
        "usage_type": price.recurring_usage_type,
    }


def prices_to_serialize() -> Any:
    return Price.objects.select_related("product", "meter").prefetch_related("tiers")


def products_to_serialize() -> Any:
    return Product.objects.select_related("default_price")


def register_expandables() -> None:
    """What `expand[]` can reach in catalog's objects (billing_site/api/expand.py)."""
    register_expandable(
        "product",
        resource="products",
        load=products_to_serialize,
        serialize=serialize_product,
        fields={"default_price": Id("price")},
    )
    # Stripe returns tiers only when expanded; returning them always costs one prefetched
    # query and saves every client a second request.
    register_expandable(
        "price",
        resource="products",
        load=prices_to_serialize,
        serialize=serialize_price,
        fields={
            "product": Id("product"),
            "tiers": Included(),
            "currency_options": Included(),
        },
    )


# --- products ---------------------------------------------------------------------------------


class ProductCollection(ApiView):
    resource = "products"
    listing = Listing("/v1/products", "product", serialize_product)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = products_to_serialize()
        active = params.boolean("active")
        if active is not None:
            queryset = queryset.filter(active=active)
        ids = params.list_of("ids")
        if ids:
            queryset = queryset.filter(public_id__in=[str(i) for i in ids])
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        product = services.product_create(
            name=params.string("name", required=True, max_length=250),
            description=params.string("description", allow_blank=True) or "",
            active=params.boolean("active") is not False,
            metadata=params.new_metadata(),
            public_id=params.string("id", max_length=200),
            **read_product_details(params),
        )
        default_price_data = params.nested("default_price_data")
        if default_price_data is not None:
            price = create_default_price(product, default_price_data)
            product = services.product_update(product=product, default_price=price)
        return serialize_product(product)


class ProductDetail(ApiView):
    resource = "products"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        product = get_by_public_id(products_to_serialize(), public_id, "product")
        return serialize_product(product)

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        product = get_by_public_id(Product.objects.all(), public_id, "product")
        changes: dict[str, Any] = {}
        if "name" in params:
            changes["name"] = params.string("name", max_length=250, allow_blank=True)
        if "description" in params:
            changes["description"] = params.string("description", allow_blank=True) or ""
        active = params.boolean("active")
        if active is not None:
            changes["active"] = active
        metadata = params.updated_metadata(product.metadata)
        if metadata is not None:
            changes["metadata"] = metadata
        changes.update(read_product_details(params))
        if "default_price" in params:
            price_id = params.string("default_price", allow_blank=True)
            changes["default_price"] = (
                get_by_public_id(Price.objects.all(), price_id, "price", param="default_price")
                if price_id
                else None
            )
        return serialize_product(services.product_update(product=product, **changes))

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        product = get_by_public_id(Product.objects.all(), public_id, "product")
        services.product_delete(product=product)
        return {"id": public_id, "object": "product", "deleted": True}


def create_default_price(product: Product, data: Params) -> Price:
    """`default_price_data`: the product's first price, made with it; errors name the
    parameter inside default_price_data."""
    try:
        price = services.price_create(
            product=product,
            currency=data.string("currency", required=True),
            terms=_read_terms(data),
            recurring=_read_recurring(data),
            tax_behavior=data.string("tax_behavior") or "unspecified",
            currency_options=read_currency_options(data),
            metadata=data.new_metadata(),
        )
    except (ValueError, BillingError) as error:
        param = getattr(error, "param", None)
        if param and not param.startswith("default_price_data"):
            head, bracket, rest = param.partition("[")
            error.param = f"default_price_data[{head}]" + (bracket + rest if bracket else "")
        raise
    data.reject_unknown()
    return price


# --- prices -----------------------------------------------------------------------------------


def _read_recurring(params: Params) -> services.Recurring | None:
    recurring = params.nested("recurring")
    if recurring is None:
        return None
    interval = recurring.string("interval", required=True)
    interval_count = recurring.integer("interval_count")
    usage_type = recurring.string("usage_type") or Price.UsageType.LICENSED
    meter = get_by_param(Meter.objects.all(), recurring, "meter", "meter")
    recurring.reject_unknown()
    return services.Recurring(
        interval=interval,
        interval_count=1 if interval_count is None else interval_count,
        usage_type=usage_type,
        meter=meter,
    )


def _read_terms(params: Params):
    tiers = params.list_of("tiers")
    transform = params.nested("transform_quantity")
    transform_data = None
    if transform is not None:
        transform.mark_read("divide_by", "round")
        transform.reject_unknown()
        transform_data = transform.data
    return build_price_terms(
        billing_scheme=params.string("billing_scheme"),
        unit_amount=params.raw("unit_amount"),
        unit_amount_decimal=params.raw("unit_amount_decimal"),
        tiers_mode=params.string("tiers_mode"),
        tiers=tiers,
        transform_quantity=transform_data,
    )


class PriceCollection(ApiView):
    resource = "products"

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = prices_to_serialize()
        active = params.boolean("active")
        if active is not None:
            queryset = queryset.filter(active=active)
        queryset = filter_by_params(
            queryset,
            params,
            product="product__public_id",
            type=OneOf("type", Price.Type.values),
        )
        currency = params.string("currency")
        if currency:
            queryset = queryset.filter(currency=currency.upper())
        lookup_keys = params.list_of("lookup_keys")
        if lookup_keys:
            queryset = queryset.filter(lookup_key__in=[str(k) for k in lookup_keys])
        recurring = params.nested("recurring")
        if recurring is not None:
            queryset = filter_by_params(
                queryset,
                recurring,
                interval=OneOf("recurring_interval", Price.Interval.values),
                usage_type=OneOf("recurring_usage_type", Price.UsageType.values),
                meter="meter__public_id",
            )
            recurring.reject_unknown()
        return paginate(
            queryset, params, url="/v1/prices", resource="price", serialize=serialize_price
        )

    def post(self, request, params: Params) -> dict[str, Any]:
        product = self._product(params)
        currency = params.string("currency", required=True)
        terms = _read_terms(params)
        recurring = _read_recurring(params)
        price = services.price_create(
            product=product,
            currency=currency,
            terms=terms,
            recurring=recurring,
            nickname=params.string("nickname", max_length=250, allow_blank=True) or "",
            lookup_key=params.string("lookup_key", max_length=200),
            transfer_lookup_key=bool(params.boolean("transfer_lookup_key")),
            active=params.boolean("active") is not False,
            metadata=params.new_metadata(),
            tax_behavior=params.string("tax_behavior") or "unspecified",
            currency_options=read_currency_options(params),
        )
        return serialize_price(prices_to_serialize().get(pk=price.pk))

    @staticmethod
    def _product(params: Params) -> Product:
        product_id = params.string("product")
        product_data = params.nested("product_data")
        if product_id and product_data is not None:
            raise ApiError(
                "You may only specify one of these parameters: product, product_data.",
                param="product_data",
            )
        if product_data is not None:
            product = services.product_create(
                name=product_data.string("name", required=True, max_length=250),
                active=product_data.boolean("active") is not False,
                metadata=product_data.new_metadata(),
            )
            product_data.reject_unknown()
            return product
        if not product_id:
            raise ApiError(
                "Missing required param: product (or product_data[name] to create one).",
                param="product",
                code=ErrorCode.PARAMETER_MISSING,
            )
        return get_by_public_id(Product.objects.all(), product_id, "product", param="product")


# Parameters a client might try to update; they get a clear "immutable" error, not "unknown".
_IMMUTABLE_PRICE_PARAMS = (
    "unit_amount",
    "unit_amount_decimal",
    "currency",
    "tiers",
    "tiers_mode",
    "billing_scheme",
    "transform_quantity",
    "recurring",
    "product",
)


class PriceDetail(ApiView):
    resource = "products"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_price(get_by_public_id(prices_to_serialize(), public_id, "price"))

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        price = get_by_public_id(prices_to_serialize(), public_id, "price")
        for name in _IMMUTABLE_PRICE_PARAMS:
            if name in params:
                raise ApiError(
                    f"A price's {name} can't be changed after creation. Archive this price "
                    "(active=false) and create a new one with the new terms.",
                    param=name,
                    code=ErrorCode.PARAMETER_IMMUTABLE,
                )
        changes: dict[str, Any] = {}
        active = params.boolean("active")
        if active is not None:
            changes["active"] = active
        if "nickname" in params:
            changes["nickname"] = params.string("nickname", max_length=250, allow_blank=True) or ""
        if "lookup_key" in params:
            changes["lookup_key"] = params.string("lookup_key", max_length=200, allow_blank=True)
        metadata = params.updated_metadata(price.metadata)
        if metadata is not None:
            changes["metadata"] = metadata
        if "tax_behavior" in params:
            changes["tax_behavior"] = params.string("tax_behavior", required=True)
        options = read_currency_options(params)
        if options is not None:
            changes["currency_options"] = options
        price = services.price_update(
            price=price, transfer_lookup_key=bool(params.boolean("transfer_lookup_key")), **changes
        )
        return serialize_price(price)
