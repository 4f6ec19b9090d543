"""The currency field of the admin's forms that create billing objects (credit grants, invoices).

Typed with the page's suggestions (the ``currency-codes`` datalist of
``billing_site.admin_kit.COMMON_CURRENCIES``) and checked by catalog's one currency rule,
``catalog.services.validate_currency``, which also upper-cases it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from billing_site.errors import BillingError
from catalog.services import validate_currency

__all__ = ["CurrencyField"]


class CurrencyField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("initial", "USD")
        kwargs.setdefault("widget", forms.TextInput(attrs={"list": "currency-codes", "size": 5}))
        super().__init__(max_length=3, **kwargs)

    def clean(self, value: Any) -> str:
        code = super().clean(value)
        try:
            return validate_currency(code)
        except BillingError as error:
            raise forms.ValidationError(error.message) from None
