"""Glue between services' BillingError and admin forms."""

from __future__ import annotations

from django import forms

from billing_site.errors import BillingError


def add_billing_error(
    form: forms.Form, error: BillingError, param_to_field: dict[str, str]
) -> None:
    """Show a service's error next to the form field its `param` names (or at the top)."""
    field = param_to_field.get(error.param or "", error.param)
    if field in form.fields:
        form.add_error(field, error.message)
    else:
        form.add_error(None, error.message)
