"""The rules of a product's optional details (pure): a chosen id, `unit_label`, `url`,
`images`, `statement_descriptor`, `tax_details`; and of a price's `tax_behavior` and
`currency_options`. Each refusal names the parameter."""

from __future__ import annotations

import re
from typing import Any

from billing_site.errors import BillingError

PRODUCT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Routes under /v1/products that an id must not shadow.
RESERVED_PRODUCT_IDS = {"search"}
MAX_IMAGES = 8
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
MAX_CURRENCY_OPTIONS = 20
# Stripe's rule for statement descriptors: 5 to 22 characters, at least one letter, none of
# < > \ ' " *.
_DESCRIPTOR_FORBIDDEN = set("<>\\'\"*")


def check_product_id(value: str) -> str:
    if not PRODUCT_ID.fullmatch(value) or value in RESERVED_PRODUCT_IDS:
        raise BillingError(
            f"Invalid id '{value[:80]}': a product id is 1 to 64 letters, digits, '_' or '-'"
            + (", and not 'search'." if value in RESERVED_PRODUCT_IDS else "."),
            param="id",
        )
    return value


def check_url(value: str, *, param: str) -> str:
    if len(value) > 2048 or not re.fullmatch(r"https?://[^\s]+", value):
        raise BillingError(
            f"Invalid URL for {param}: it must start with http:// or https://, have no spaces "
            "and be at most 2048 characters.",
            param=param,
        )
    return value


def check_images(values: list[Any]) -> list[str]:
    if len(values) > MAX_IMAGES:
        raise BillingError(f"A product has at most {MAX_IMAGES} images.", param="images")
    return [check_url(str(value), param=f"images[{index}]") for index, value in enumerate(values)]


def check_statement_descriptor(value: str) -> str:
    if not 5 <= len(value) <= 22 or not any(c.isalpha() for c in value):
        raise BillingError(
            "statement_descriptor must be 5 to 22 characters with at least one letter.",
            param="statement_descriptor",
        )
    if _DESCRIPTOR_FORBIDDEN & set(value):
        raise BillingError(
            "statement_descriptor can't contain any of < > \\ ' \" *.",
            param="statement_descriptor",
        )
    return value


def check_unit_label(value: str) -> str:
    if len(value) > 12:
        raise BillingError("unit_label can be at most 12 characters.", param="unit_label")
    return value


def check_tax_behavior(value: str, *, param: str = "tax_behavior") -> str:
    if value not in TAX_BEHAVIORS:
        raise BillingError(
            f"Invalid {param}: must be one of {', '.join(TAX_BEHAVIORS)} (got '{value}').",
            param=param,
        )
    return value


def tax_behavior_change(current: str, new: str) -> str:
    """As in Stripe: set once from `unspecified`, then fixed."""
    check_tax_behavior(new)
    if current != "unspecified" and new != current:
        raise BillingError(
            f"tax_behavior is {current} and can't change once set to exclusive or inclusive.",
            param="tax_behavior",
            code="parameter_immutable",
        )
    return new
