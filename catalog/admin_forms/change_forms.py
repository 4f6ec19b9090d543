"""The change forms of existing products and prices (the standard admin pages)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import Price, Product

__all__ = ["PriceChangeForm", "ProductChangeForm"]


def _clean_metadata(value: Any) -> dict[str, str]:
    # An emptied JSON field comes back as None, but the column is a NOT NULL dict.
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(
            'Metadata is a JSON object of keys to string values, e.g. {"plan": "pro"}.'
        )
    return value


class ProductChangeForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ["name", "description", "active", "metadata"]

    def clean_metadata(self) -> dict[str, str]:
        return _clean_metadata(self.cleaned_data.get("metadata"))


class PriceChangeForm(forms.ModelForm):
    """Only what services.price_update may change; every amount stays read-only."""

    class Meta:
        model = Price
        fields = sorted(services.PRICE_MUTABLE_FIELDS)

    def clean_metadata(self) -> dict[str, str]:
        return _clean_metadata(self.cleaned_data.get("metadata"))
