"""Writes to the product catalog. Prices are validated here, once, for the API and the admin."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from moneyed import get_currency

from billing_site import clock
from billing_site.errors import BillingError, ErrorCode
from billing_site.events.recording import record_event, record_update, snapshot
from billing_site.model_update import model_update
from catalog.models import Price, PriceTier, Product
from catalog.money import significant_decimal_places
from catalog.product_fields import (
    MAX_CURRENCY_OPTIONS,
    check_images,
    check_product_id,
    check_statement_descriptor,
    check_tax_behavior,
    check_unit_label,
    check_url,
    tax_behavior_change,
)
from catalog.rating import PriceTerms
from metering import services as metering_services
from metering.models import Meter

# Stripe caps a recurring interval at three years.
MAX_INTERVAL_COUNT = {"day": 3 * 365, "week": 3 * 52, "month": 3 * 12, "year": 3}


@dataclass(frozen=True)
class Recurring:
    interval: str
    interval_count: int = 1
    usage_type: str = "licensed"
    meter: Meter | None = None


@transaction.atomic
def product_create(
    *,
    name: str,
    description: str = "",
    active: bool = True,
    metadata: dict[str, str] | None = None,
    public_id: str | None = None,
    **details: Any,
) -> Product:
    """A product; `public_id` is an id the client chose (unique), `details` the optional
    PRODUCT_DETAIL_FIELDS, checked by `catalog.product_fields`."""
    name = (name or "").strip()
    if not name:
        raise BillingError(
            "A product needs a name.", param="name", code=ErrorCode.PARAMETER_MISSING
        )
    extra: dict[str, Any] = _checked_details(details)
    if public_id is not None:
        extra["public_id"] = check_product_id(public_id)
        if Product.objects.filter(public_id=public_id).exists():
            raise BillingError(
                f"Product already exists: a product with id '{public_id}' exists; choose "
                "another id.",
                param="id",
                code="resource_already_exists",
            )
    now = clock.now()
    product = Product.objects.create(
        name=name,
        description=description or "",
        active=active,
        metadata=metadata or {},
        created_at=now,
        updated_at=now,
        **extra,
    )
    record_event("product.created", product)
    return product


PRODUCT_DETAIL_FIELDS = {"unit_label", "url", "images", "statement_descriptor", "tax_details"}


def _checked_details(details: dict[str, Any]) -> dict[str, Any]:
    """The product details as stored; an empty value clears one."""
    unknown = set(details) - PRODUCT_DETAIL_FIELDS
    if unknown:
        raise BillingError(f"Products have no {', '.join(sorted(unknown))}.")
    checks = {
        "unit_label": check_unit_label,
        "url": lambda value: check_url(value, param="url"),
        "images": check_images,
        "statement_descriptor": check_statement_descriptor,
    }
    checked: dict[str, Any] = {}
    for name, value in details.items():
        if name == "tax_details":
            checked[name] = value or None
        elif not value:
            checked[name] = [] if name == "images" else ""
        else:
            checked[name] = checks[name](value)
    return checked


PRODUCT_MUTABLE_FIELDS = {
    "name",
    "description",
    "active",
    "metadata",
    "default_price",
    *PRODUCT_DETAIL_FIELDS,
}


@transaction.atomic
def product_update(*, product: Product, **changes: Any) -> Product:
    unexpected = set(changes) - PRODUCT_MUTABLE_FIELDS
    if unexpected:
        raise BillingError(f"Products can't change {', '.join(sorted(unexpected))}.")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            raise BillingError("A product needs a name.", param="name")
    if "metadata" in changes:
        changes["metadata"] = changes["metadata"] or {}
    changes.update(
        _checked_details({k: v for k, v in changes.items() if k in PRODUCT_DETAIL_FIELDS})
    )
    default_price = changes.get("default_price")
    if default_price is not None and default_price.product_id != product.pk:
        raise BillingError(
            f"The default price must belong to this product; {default_price.public_id} "
            f"belongs to another product.",
            param="default_price",
        )
    before = snapshot(product)
    product, _ = model_update(instance=product, fields=PRODUCT_MUTABLE_FIELDS, data=changes)
    record_update("product.updated", product, before)
    return product


@transaction.atomic
def product_delete(*, product: Product) -> None:
    if product.prices.exists():
        raise BillingError(
            "This product has prices, so it can't be deleted (invoices may refer to them). "
            "Archive it instead (active=false).",
            code=ErrorCode.RESOURCE_IN_USE,
        )
    before = snapshot(product)
    product.delete()
    record_event("product.deleted", data_object=before)


def validate_currency(currency: str) -> str:
    code = (currency or "").strip().upper()
    try:
        get_currency(code)
    except Exception:
        code = ""
    if len(code) != 3:
        raise BillingError(
            f"Invalid currency: '{currency}'. Use a three-letter ISO 4217 code such as usd.",
            param="currency",
        )
    return code


def _validate_recurring(recurring: Recurring | None) -> None:
    if recurring is None:
        return
    if recurring.interval not in MAX_INTERVAL_COUNT:
        raise BillingError(
            "Invalid recurring[interval]: must be one of day, week, month or year "
            f"(got '{recurring.interval}').",
            param="recurring[interval]",
        )
    maximum = MAX_INTERVAL_COUNT[recurring.interval]
    if not 1 <= recurring.interval_count <= maximum:
        raise BillingError(
            f"Invalid recurring[interval_count]: the billing period can be at most three years "
            f"({maximum} {recurring.interval}s) and at least one {recurring.interval} "
            f"(got {recurring.interval_count}).",
            param="recurring[interval_count]",
        )
    if recurring.usage_type not in Price.UsageType.values:
        raise BillingError(
            "Invalid recurring[usage_type]: must be licensed or metered "
            f"(got '{recurring.usage_type}').",
            param="recurring[usage_type]",
        )
    if recurring.usage_type == Price.UsageType.METERED:
        if recurring.meter is None:
            raise BillingError(
                "A metered price needs a meter: pass recurring[meter]=mtr_... "
                "(create the meter first).",
                param="recurring[meter]",
            )
        if not recurring.meter.is_active:
            raise BillingError(
                f"Meter {recurring.meter.public_id} ({recurring.meter.event_name}) is inactive; "
                "reactivate it or choose an active meter.",
                param="recurring[meter]",
            )
    elif recurring.meter is not None:
        raise BillingError(
            "Only metered prices can have a meter: set recurring[usage_type]=metered or remove "
            "recurring[meter].",
            param="recurring[meter]",
        )


@transaction.atomic
def price_create(
    *,
    product: Product,
    currency: str,
    terms: PriceTerms,
    recurring: Recurring | None = None,
    nickname: str = "",
    lookup_key: str | None = None,
    transfer_lookup_key: bool = False,
    active: bool = True,
    metadata: dict[str, str] | None = None,
    tax_behavior: str = "unspecified",
    currency_options: dict[str, dict[str, Any]] | None = None,
) -> Price:
    """Create a price from terms already checked by `catalog.terms.build_price_terms`.

    `currency_options` ({"eur": {"unit_amount_decimal": Decimal, "tax_behavior": str}}) are
    the price's amounts in other currencies, per unit only."""
    currency = validate_currency(currency)
    check_tax_behavior(tax_behavior)
    _validate_recurring(recurring)
    if lookup_key:
        holder = Price.objects.select_for_update().filter(lookup_key=lookup_key).first()
        if holder is not None:
            if not transfer_lookup_key:
                raise BillingError(
                    f"A price ({holder.public_id}) already uses the lookup key '{lookup_key}'. "
                    "Pass transfer_lookup_key=true to move it to the new price.",
                    param="lookup_key",
                )
            _release_lookup_key(holder)
    transform = terms.transform_quantity
    price = Price.objects.create(
        product=product,
        currency=currency,
        type=Price.Type.RECURRING if recurring else Price.Type.ONE_TIME,
        recurring_interval=recurring.interval if recurring else None,
        recurring_interval_count=recurring.interval_count if recurring else None,
        recurring_usage_type=recurring.usage_type if recurring else None,
        meter=recurring.meter if recurring else None,
        billing_scheme=terms.billing_scheme,
        unit_amount_decimal=terms.unit_amount if terms.billing_scheme == "per_unit" else None,
        tiers_mode=terms.tiers_mode,
        transform_divide_by=transform.divide_by if transform else None,
        transform_round=transform.round if transform else None,
        active=active,
        nickname=nickname or "",
        lookup_key=lookup_key or None,
        metadata=metadata or {},
        tax_behavior=tax_behavior,
        created_at=clock.now(),
    )
    if currency_options:
        price.currency_options = _checked_currency_options(price, currency_options)
        price.save(update_fields=["currency_options"])
    PriceTier.objects.bulk_create(
        PriceTier(
            price=price,
            position=position,
            up_to=None if tier.up_to is None else int(tier.up_to),
            unit_amount_decimal=tier.unit_amount,
            flat_amount_decimal=tier.flat_amount,
        )
        for position, tier in enumerate(terms.tiers)
    )
    record_event("price.created", price)
    return price


PRICE_MUTABLE_FIELDS = {
    "active",
    "nickname",
    "lookup_key",
    "metadata",
    "tax_behavior",
    "currency_options",
}


@transaction.atomic
def price_update(*, price: Price, transfer_lookup_key: bool = False, **changes: Any) -> Price:
    immutable = set(changes) - PRICE_MUTABLE_FIELDS
    if immutable:
        raise BillingError(
            f"A price's {', '.join(sorted(immutable))} can't be changed after creation. "
            "Archive this price (active=false) and create a new one.",
            param=sorted(immutable)[0],
        )
    lookup_key = changes.get("lookup_key")
    if lookup_key:
        holder = (
            Price.objects.select_for_update()
            .filter(lookup_key=lookup_key)
            .exclude(pk=price.pk)
            .first()
        )
        if holder is not None:
            if not transfer_lookup_key:
                raise BillingError(
                    f"A price ({holder.public_id}) already uses the lookup key '{lookup_key}'. "
                    "Pass transfer_lookup_key=true to move it to this price.",
                    param="lookup_key",
                )
            _release_lookup_key(holder)
    if "lookup_key" in changes:
        changes["lookup_key"] = changes["lookup_key"] or None
    if "metadata" in changes:
        changes["metadata"] = changes["metadata"] or {}
    if "tax_behavior" in changes:
        changes["tax_behavior"] = tax_behavior_change(price.tax_behavior, changes["tax_behavior"])
    if "currency_options" in changes:
        changes["currency_options"] = _checked_currency_options(
            price, {**price.currency_options, **changes["currency_options"]}
        )
    before = snapshot(price)
    price, _ = model_update(instance=price, fields=PRICE_MUTABLE_FIELDS, data=changes)
    record_update("price.updated", price, before)
    return price


def _checked_currency_options(
    price: Price, options: dict[str, dict[str, Any]]
) -> dict[str, dict[str, str]]:
    """The options as stored: lower-case currency to its per-unit amount (a decimal string of
    minor units) and tax behavior."""
    if options and price.billing_scheme != Price.BillingScheme.PER_UNIT:
        raise BillingError(
            "currency_options are supported on per-unit prices only (not tiered ones).",
            param="currency_options",
        )
    if len(options) > MAX_CURRENCY_OPTIONS:
        raise BillingError(
            f"A price has at most {MAX_CURRENCY_OPTIONS} currency_options.",
            param="currency_options",
        )
    stored: dict[str, dict[str, str]] = {}
    for code, option in options.items():
        param = f"currency_options[{code}]"
        try:
            currency = validate_currency(code).lower()
        except BillingError as error:
            raise BillingError(error.message, param=param) from error
        if currency == price.currency.lower():
            raise BillingError(
                f"{param}: {currency} is the price's own currency; set its amount with "
                "unit_amount.",
                param=param,
            )
        amount = option.get("unit_amount_decimal")
        if amount is None:
            raise BillingError(
                f"Missing required param: {param}[unit_amount].",
                param=f"{param}[unit_amount]",
                code=ErrorCode.PARAMETER_MISSING,
            )
        amount = Decimal(str(amount))
        if amount < 0 or significant_decimal_places(amount) > 12:
            raise BillingError(
                f"{param}[unit_amount_decimal] must be at least 0 with at most 12 decimals.",
                param=f"{param}[unit_amount_decimal]",
            )
        behavior = check_tax_behavior(
            option.get("tax_behavior") or "unspecified", param=f"{param}[tax_behavior]"
        )
        stored[currency] = {"unit_amount_decimal": str(amount), "tax_behavior": behavior}
    return stored


def _release_lookup_key(holder: Price) -> None:
    """Take the lookup key off the price that holds it (it moves to another price)."""
    before = snapshot(holder)
    Price.objects.filter(pk=holder.pk).update(lookup_key=None)
    record_update("price.updated", holder, before)


def price_archive(*, price: Price) -> Price:
    return price_update(price=price, active=False)


# --- A product with its prices (and their new meters), in one transaction ---------------------


@dataclass(frozen=True)
class NewMeter:
    """A meter to create together with the price that bills it (see metering.services)."""

    event_name: str
    display_name: str
    formula: str = Meter.Formula.SUM


@dataclass(frozen=True)
class PriceInput:
    """One price for `product_create_with_prices`: the arguments of `price_create`, plus an
    optional meter to create first; it becomes the meter of `recurring`."""

    currency: str
    terms: PriceTerms
    recurring: Recurring | None = None
    new_meter: NewMeter | None = None
    nickname: str = ""
    lookup_key: str | None = None


@dataclass
class CreatedCatalog:
    product: Product
    product_is_new: bool
    meters: list[Meter] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)


class PricesRejected(BillingError):
    """Some prices of `product_create_with_prices` were refused; nothing was written.

    `errors` maps the index of each refused price to its service's error, so that every one
    can be shown at once. The message and `param` are the first error's, with `param` nested
    under `prices[<index>]` in the API's bracket notation.
    """

    def __init__(self, errors: dict[int, BillingError]) -> None:
        index, first = next(iter(errors.items()))
        super().__init__(first.message, param=_nested_param(index, first.param), code=first.code)
        self.errors = errors


def _nested_param(index: int, param: str | None) -> str:
    if not param:
        return f"prices[{index}]"
    head, bracket, rest = param.partition("[")
    return f"prices[{index}][{head}]{bracket}{rest}"


@transaction.atomic
def product_create_with_prices(
    *,
    prices: Sequence[PriceInput],
    product: Product | None = None,
    name: str = "",
    description: str = "",
) -> CreatedCatalog:
    """Create a product (unless adding prices to `product`), then its prices, all or nothing.

    Every price is tried, each in its own savepoint, so that all refusals are reported at once
    (`PricesRejected`); a refused product raises its `BillingError` before any price is tried.
    """
    created = CreatedCatalog(
        product=product or product_create(name=name, description=description.strip()),
        product_is_new=product is None,
    )
    errors: dict[int, BillingError] = {}
    for index, price_input in enumerate(prices):
        try:
            with transaction.atomic():
                price, meter = _price_create_with_meter(created.product, price_input)
        except BillingError as error:
            errors[index] = error
            continue
        created.prices.append(price)
        if meter is not None:
            created.meters.append(meter)
    if errors:
        raise PricesRejected(errors)
    return created


def _price_create_with_meter(
    product: Product, price_input: PriceInput
) -> tuple[Price, Meter | None]:
    recurring, meter = price_input.recurring, None
    if price_input.new_meter is not None:
        meter = metering_services.meter_create(
            event_name=price_input.new_meter.event_name,
            display_name=price_input.new_meter.display_name,
            formula=price_input.new_meter.formula,
        )
        if recurring is not None:
            recurring = dataclasses.replace(recurring, meter=meter)
    price = price_create(
        product=product,
        currency=price_input.currency,
        terms=price_input.terms,
        recurring=recurring,
        nickname=price_input.nickname,
        lookup_key=price_input.lookup_key,
    )
    return price, meter
