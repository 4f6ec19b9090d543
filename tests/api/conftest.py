"""Fixtures for the API tests that drive the server through Stripe's official Python SDK."""

from __future__ import annotations

import pytest


@pytest.fixture
def sdk(live_server, transactional_db):
    """The `stripe` module's global client pointed at the live test server with a fresh key,
    without retries; its settings are put back afterwards."""
    import stripe

    from billing_site.services import api_key_create

    _, secret = api_key_create(name="sdk tests")
    saved = (stripe.api_key, stripe.api_base, stripe.max_network_retries)
    stripe.api_key, stripe.api_base, stripe.max_network_retries = secret, live_server.url, 0
    yield stripe
    stripe.api_key, stripe.api_base, stripe.max_network_retries = saved
