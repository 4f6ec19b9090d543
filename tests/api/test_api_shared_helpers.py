"""The helpers every app's API shares: list filters, lookups by parameter, timestamps, metadata,
and the value formatters at the bottom of the import graph."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing_site.api.base import api_actor, get_by_param
from billing_site.api.lists import OneOf, filter_by_params
from billing_site.api.params import ParameterError, Params
from billing_site.errors import NotFound
from billing_site.formatting import decimal_string, format_value, integer_or_none
from invoicing.models import Customer
from tests.factories import CustomerFactory


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.100000000000"), "0.1"),
        (Decimal("2E+3"), "2000"),
        (Decimal("-0.000"), "0"),
        (Decimal("-1.50"), "-1.5"),
        (None, None),
    ],
)
def test_decimal_strings_have_no_exponent_and_no_trailing_zeros(value, text):
    assert decimal_string(value) == text


def test_integer_twins_are_null_for_fractional_amounts():
    assert (integer_or_none(Decimal("2000.000")), integer_or_none(Decimal("0.5"))) == (2000, None)
    assert integer_or_none(None) is None


def test_usage_values_read_like_numbers_people_write():
    assert format_value(Decimal("25.000000000000")) == "25"
    assert format_value(Decimal("1234.5")) == "1,234.5"
    assert format_value(Decimal("1E+5")) == "100,000"
    assert format_value(Decimal("-0.0")) == "0"


def test_metadata_for_a_new_object_drops_keys_set_to_empty():
    assert Params({"metadata": {"plan": "pro", "gone": ""}}).new_metadata() == {"plan": "pro"}
    assert Params({}).new_metadata() == {}
    assert Params({"metadata": ""}).new_metadata() == {}


def test_metadata_updates_merge_unset_or_clear_and_none_means_untouched():
    current = {"plan": "pro", "team": "ml"}
    merged = Params({"metadata": {"plan": "max", "team": ""}}).updated_metadata(current)
    assert merged == {"plan": "max"}
    assert Params({"metadata": ""}).updated_metadata(current) == {}
    assert Params({}).updated_metadata(current) is None
    assert current == {"plan": "pro", "team": "ml"}  # the caller's dict is never changed


def test_timestamps_are_unix_seconds_up_to_the_last_second_of_year_9999():
    params = Params({"at": "1735689600", "last": "253402300799", "late": "253402300800"})
    assert params.timestamp("at") == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert params.timestamp("last") == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert params.timestamp("absent") is None
    with pytest.raises(ParameterError) as caught:
        params.timestamp("late")
    assert caught.value.param == "late"
    with pytest.raises(ParameterError) as caught:
        Params({"period": {}}).nested("period").timestamp("end", required=True)
    assert (caught.value.param, caught.value.code) == ("period[end]", "parameter_missing")


@pytest.mark.django_db
def test_list_filters_narrow_by_each_given_parameter_and_ignore_empty_ones():
    CustomerFactory(name="Ada", email="ada@example.com")
    CustomerFactory(name="Bob", email="bob@example.com")
    filters = {"name": "name", "email": OneOf("email", ["ada@example.com", "bob@example.com"])}

    def names(data):
        queryset = filter_by_params(Customer.objects.all(), Params(data), **filters)
        return sorted(queryset.values_list("name", flat=True))

    assert names({"email": "ada@example.com"}) == ["Ada"]
    assert names({"name": "Bob", "email": "ada@example.com"}) == []
    assert names({"name": ""}) == ["Ada", "Bob"]
    with pytest.raises(ParameterError) as caught:
        names({"email": "eve@example.com"})
    assert caught.value.param == "email"


@pytest.mark.django_db
def test_an_object_named_by_a_parameter_is_loaded_or_the_error_names_the_parameter():
    customer = CustomerFactory()
    item = Params({"customer": customer.public_id}, "items[0]")
    assert get_by_param(Customer.objects.all(), item, "customer", "customer") == customer
    assert get_by_param(Customer.objects.all(), Params({}), "customer", "customer") is None
    with pytest.raises(ParameterError):
        get_by_param(Customer.objects.all(), Params({}), "customer", "customer", required=True)
    with pytest.raises(NotFound) as caught:
        get_by_param(Customer.objects.all(), Params({"c": "cus_nope"}), "c", "customer")
    assert (caught.value.param, caught.value.message) == ("c", "No such customer: 'cus_nope'")


def test_the_audit_trail_names_the_api_key():
    class Request:
        class api_key:  # stands in for the ApiKey row the base view puts on the request
            name = "backend"

    assert api_actor(Request()) == "api (backend)"


def test_the_formatting_module_imports_no_app():
    import ast
    import pathlib

    import billing_site.formatting as formatting

    tree = ast.parse(pathlib.Path(formatting.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "decimal"}
