"""Shared fixtures. Factories live in tests/factories.py."""

from __future__ import annotations

import pytest

# Fixtures for admin page tests (staff with a role): tests/admin_pages.py; the ClickHouse event
# store (chdb) for its contract run and for whole runs with METER_EVENT_STORE=clickhouse.
pytest_plugins = ["tests.admin_pages", "tests.metering.clickhouse_fixtures"]


@pytest.fixture
def customer(db):
    """A customer with nothing yet: no subscriptions, invoices or credits."""
    from tests.factories import CustomerFactory

    return CustomerFactory()


@pytest.fixture
def api_secret(db) -> str:
    from billing_site.services import api_key_create

    _, secret = api_key_create(name="tests")
    return secret


@pytest.fixture
def api(client, api_secret):
    """A Django test client that talks to the API with a valid key, form-encoded like the SDK."""
    from tests.api_client import ApiClient

    return ApiClient(client, api_secret)


@pytest.fixture
def stripe_client(live_server, db):
    """Stripe's official SDK (StripeClient) talking to the live test server with a fresh key."""
    from billing_site.services import api_key_create
    from tests.api_client import sdk_client

    _, secret = api_key_create(name="sdk tests")
    return sdk_client(live_server, secret)


@pytest.fixture
def demo_prices(db) -> dict[str, str]:
    """The demo catalog seeded (invoicing.demo.seed_catalog): its prices' ids by lookup key."""
    from catalog.models import Price
    from invoicing.demo import seed_catalog

    seed_catalog()
    return {price.lookup_key: price.public_id for price in Price.objects.all()}


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (real row locks, parallel connections, exact decimals); "
        "run with DATABASE_URL=postgres://... (CI does)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_pycollect_makeitem(collector, name, obj):
    """Collect only test functions defined in the test module itself.

    Services are named after Stripe's objects (`test_clock_advance`); importing one into a test
    module must not turn it into a test.
    """
    import inspect

    module = getattr(collector, "obj", None)
    defined_elsewhere = module is not None and getattr(obj, "__module__", None) != module.__name__
    if (inspect.isfunction(obj) or inspect.isclass(obj)) and defined_elsewhere:
        return []
    return None
