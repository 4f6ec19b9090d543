"""The API's reading and writing of a product's optional details and a price's
`currency_options` (their rules: `catalog.product_fields`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing_site.api.params import Params
from billing_site.errors import BillingError
from billing_site.formatting import decimal_string, integer_or_none
from catalog.models import Price
from catalog.terms import InvalidPriceTerms, build_price_terms


def read_product_details(params: Params) -> dict[str, Any]:
    """`unit_label`, `url`, `images`, `statement_descriptor`, `tax_details` (and the older
    top-level `tax_code`) as given; an empty string clears one on update."""
    details: dict[str, Any] = {}
    for key, limit in (("unit_label", 100), ("url", 5000), ("statement_descriptor", 100)):
        if key in params:
            details[key] = params.string(key, max_length=limit, allow_blank=True) or ""
    if "images" in params:
        details["images"] = [str(image) for image in params.list_of("images") or []]
    tax_details = params.nested("tax_details")
    tax_code = params.string("tax_code", max_length=100)
    if tax_details is not None or tax_code is not None:
        given = {"performance_location": None, "tax_code": tax_code}
        if tax_details is not None:
            given["tax_code"] = tax_details.string("tax_code", max_length=100) or tax_code
            given["performance_location"] = tax_details.string(
                "performance_location", max_length=100
            )
            tax_details.reject_unknown()
        details["tax_details"] = given
    elif params.raw("tax_details") == "":
        details["tax_details"] = None
    return details


def read_currency_options(params: Params) -> dict[str, dict[str, Any]] | None:
    """`currency_options[eur][unit_amount]` (or `unit_amount_decimal`) and `[tax_behavior]`;
    tiers and custom amounts per currency are not supported (refused by name)."""
    options = params.nested("currency_options")
    if options is None:
        return None
    read: dict[str, dict[str, Any]] = {}
    for currency in list(options.data):
        option = options.nested(currency, required=True)
        assert option is not None
        terms = None
        if "unit_amount" in option or "unit_amount_decimal" in option:
            try:
                terms = build_price_terms(
                    unit_amount=option.raw("unit_amount"),
                    unit_amount_decimal=option.raw("unit_amount_decimal"),
                )
            except InvalidPriceTerms as error:
                raise BillingError(error.message, param=option.name(error.param)) from error
        read[currency] = {
            "unit_amount_decimal": terms.unit_amount if terms is not None else None,
            "tax_behavior": option.string("tax_behavior"),
        }
        option.reject_unknown()
    return read


def serialize_currency_options(price: Price) -> dict[str, dict[str, Any]]:
    """Stripe's `currency_options`: the price's own currency and each other one."""

    def option(unit_amount, tax_behavior) -> dict[str, Any]:
        return {
            "custom_unit_amount": None,
            "tax_behavior": tax_behavior,
            "unit_amount": integer_or_none(unit_amount),
            "unit_amount_decimal": decimal_string(unit_amount),
        }

    options = {price.currency.lower(): option(price.unit_amount_decimal, price.tax_behavior)}
    for currency, stored in sorted(price.currency_options.items()):
        options[currency] = option(Decimal(stored["unit_amount_decimal"]), stored["tax_behavior"])
    return options
