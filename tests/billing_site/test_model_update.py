"""model_update: the one helper services use for allow-listed updates."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_site import clock
from billing_site.model_update import model_update
from catalog.models import Product
from tests.factories import CustomerFactory, ProductFactory

JAN_1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FEB_1 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def test_only_the_allowed_fields_are_written_and_updated_at_moves_to_the_billing_clock():
    with clock.frozen_at(JAN_1):
        product = ProductFactory(name="Basic", description="old")
    with clock.frozen_at(FEB_1):
        product, changed = model_update(
            instance=product,
            fields=["name"],
            data={"name": "Pro", "description": "not allowed here"},
        )
    assert changed
    stored = Product.objects.get(pk=product.pk)
    assert (stored.name, stored.description, stored.updated_at) == ("Pro", "old", FEB_1)


def test_columns_that_were_not_asked_for_are_never_overwritten():
    product = ProductFactory(name="Basic", active=True)
    # Someone else archives the product meanwhile; this stale copy still says active.
    Product.objects.filter(pk=product.pk).update(active=False)
    model_update(instance=product, fields=["name", "active"], data={"name": "Pro"})
    stored = Product.objects.get(pk=product.pk)
    assert (stored.name, stored.active) == ("Pro", False)


def test_nothing_is_written_when_the_data_holds_none_of_the_fields():
    with clock.frozen_at(JAN_1):
        product = ProductFactory()
    with clock.frozen_at(FEB_1):
        _, changed = model_update(instance=product, fields=["name"], data={})
    assert not changed
    assert Product.objects.get(pk=product.pk).updated_at == JAN_1


def test_models_without_updated_at_are_updated_too():
    customer = CustomerFactory(name="Ada")
    customer, changed = model_update(instance=customer, fields=["name"], data={"name": "Grace"})
    assert changed
    customer.refresh_from_db()
    assert customer.name == "Grace"


def test_a_field_the_model_does_not_have_is_a_bug_of_the_caller():
    with pytest.raises(ValueError, match="Product has no field 'colour'"):
        model_update(instance=ProductFactory(), fields=["colour"], data={"colour": "red"})
