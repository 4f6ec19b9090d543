"""`GET /v1/account` (the seller, from settings) and the smaller request defaults of the current
API version (a credit grant's `category` defaults to `paid`)."""

from __future__ import annotations

import pytest

from billing_site.services import api_key_create
from credits.models import CreditGrant

pytestmark = pytest.mark.django_db


def test_the_account_is_the_seller_from_settings(api, settings):
    settings.BILLING_ACCOUNT_ID = "acct_1AlpacaAI"
    settings.BILLING_SELLER_NAME = "Alpaca AI"
    settings.BILLING_SELLER_EMAIL = "billing@alpaca.test"
    settings.BILLING_SELLER_COUNTRY = "FR"
    settings.BILLING_DEFAULT_CURRENCY = "eur"

    account = api.get("/v1/account").json()

    assert account["id"] == "acct_1AlpacaAI"
    assert account["object"] == "account"
    assert account["business_profile"]["name"] == "Alpaca AI"
    assert account["settings"]["dashboard"]["display_name"] == "Alpaca AI"
    assert account["email"] == account["business_profile"]["support_email"]
    assert account["email"] == "billing@alpaca.test"
    assert (account["country"], account["default_currency"]) == ("FR", "eur")
    # Payments are recorded here, never collected or paid out.
    assert account["charges_enabled"] is False and account["payouts_enabled"] is False


def test_the_sdk_retrieves_the_account(live_server, transactional_db):
    from tests.api_client import sdk_client

    client = sdk_client(live_server, api_key_create(name="account")[1])
    account = client.v1.accounts.retrieve_current()
    assert account.object == "account"
    assert account.id.startswith("acct_")
    assert account.default_currency == "usd"


def test_a_restricted_key_needs_the_account_permission(api, client):
    _, reader = api_key_create(name="crm", permissions={"customers": "read"})
    refused = api.get("/v1/account", secret=reader)
    assert refused.status_code == 403
    _, allowed = api_key_create(name="reporting", permissions={"account": "read"})
    assert api.get("/v1/account", secret=allowed).status_code == 200
    assert api.post("/v1/account", {}, secret=allowed).status_code == 404  # read only here


def test_a_credit_grant_without_category_is_paid(api, customer):
    response = api.post(
        "/v1/billing/credit_grants",
        {
            "customer": customer.public_id,
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
            "applicability_config": {"scope": {"price_type": "metered"}},
        },
    )
    assert response.status_code == 200, response.json()
    assert response.json()["category"] == "paid"
    assert CreditGrant.objects.get().category == CreditGrant.Category.PAID


def test_an_unknown_credit_grant_category_is_still_refused(api, customer):
    response = api.post(
        "/v1/billing/credit_grants",
        {
            "customer": customer.public_id,
            "category": "gift",
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
            "applicability_config": {"scope": {"price_type": "metered"}},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "category"
    assert not CreditGrant.objects.exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BILLING_ACCOUNT_ID", "acct_with-dash", "acct_ followed by letters and digits"),
        ("BILLING_ACCOUNT_ID", "1234", "acct_ followed by letters and digits"),
        ("BILLING_SELLER_COUNTRY", "USA", "two-letter ISO country code"),
        ("BILLING_DEFAULT_CURRENCY", "dollars", "three-letter ISO currency code"),
    ],
)
def test_a_malformed_seller_setting_stops_the_start_up(monkeypatch, variable, value, message):
    import runpy

    from django.core.exceptions import ImproperlyConfigured

    import billing_site.settings.base

    monkeypatch.setenv(variable, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        runpy.run_path(billing_site.settings.base.__file__)


def test_seller_settings_are_normalised_to_stripe_s_case(monkeypatch):
    import runpy

    import billing_site.settings.base

    monkeypatch.setenv("BILLING_SELLER_COUNTRY", "fr")
    monkeypatch.setenv("BILLING_DEFAULT_CURRENCY", "EUR")
    loaded = runpy.run_path(billing_site.settings.base.__file__)
    assert (loaded["BILLING_SELLER_COUNTRY"], loaded["BILLING_DEFAULT_CURRENCY"]) == ("FR", "eur")
