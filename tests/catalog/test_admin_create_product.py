"""The admin's "Create product" flow: form, preview, confirm, and every kind of bad input.

Staff type amounts in major units; the catalog stores minor units. Nothing is written until
the confirm POST, and an error anywhere means nothing at all is written (not even a meter
created inline). "Both unit_amount and unit_amount_decimal" can't be expressed here (the
admin has one amount field per price and per tier cell); tests/api covers it.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from catalog.models import Price, PriceTier, Product
from metering.models import Meter
from metering.services import meter_create, meter_deactivate
from tests.factories import ProductFactory, licensed_price

CREATE_URL = reverse("admin:catalog_product_create")

PRICE_DEFAULTS = {
    "pricing_model": "flat_rate",
    "currency": "USD",
    "amount": "",
    "package_size": "",
    "package_rounding": "up",
    "billing_period": "month",
    "interval_count": "",
    "interval": "month",
    "meter": "",
    "new_meter_display_name": "",
    "new_meter_event_name": "",
    "new_meter_formula": "sum",
    "nickname": "",
    "lookup_key": "",
}


def form_data(*prices: dict, name: str = "Hypernian", description: str = "") -> dict:
    """POST data for the create page: the product and prices (tiers as (up_to, unit, flat))."""
    data = {
        "name": name,
        "description": description,
        "prices-TOTAL_FORMS": str(len(prices)),
        "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "1",
        "prices-MAX_NUM_FORMS": "20",
    }
    for index, price in enumerate(prices):
        fields = {**PRICE_DEFAULTS, **price}
        tiers = fields.pop("tiers", ())
        for key, value in fields.items():
            data[f"prices-{index}-{key}"] = value
        for row, (up_to, unit_amount, flat_amount) in enumerate(tiers):
            data[f"prices-{index}-tiers-{row}-up_to"] = up_to
            data[f"prices-{index}-tiers-{row}-unit_amount"] = unit_amount
            data[f"prices-{index}-tiers-{row}-flat_amount"] = flat_amount
    return data


HYPERNIAN_FLAT = {"pricing_model": "flat_rate", "amount": "200.00", "nickname": "Hypernian base"}
HYPERNIAN_TOKENS = {
    "pricing_model": "graduated",
    "meter": "new",
    "new_meter_display_name": "Hypernian API tokens",
    "new_meter_event_name": "hypernian_api_tokens",
    "tiers": [("100000", "0.00", ""), ("", "0.001", "")],
}
ALPACA_PACKAGE = {
    "pricing_model": "package",
    "amount": "0.04",
    "package_size": "100",
    "package_rounding": "up",
    "meter": "new",
    "new_meter_display_name": "Alpaca AI tokens",
    "new_meter_event_name": "alpaca_ai_tokens",
}


def hidden_fields(response) -> dict[str, list[str]]:
    """The hidden inputs of the preview page, as the browser would post them back."""
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]*)" value="([^"]*)">', response.content.decode()
    ):
        fields.setdefault(html.unescape(name), []).append(html.unescape(value))
    return fields


def confirm(admin_client, preview_response, url: str = CREATE_URL):
    data = hidden_fields(preview_response)
    data.pop("csrfmiddlewaretoken", None)
    return admin_client.post(url, {**data, "_confirm": "Create product"})


def around(response, field_name: str) -> str:
    """The form row (or tier row) holding ``field_name``, unescaped: where its errors show."""
    page = response.content.decode()
    at = page.index(f'name="{field_name}"')
    if "-tiers-" in field_name:
        start, end = page.rindex('<tr class="tier-row', 0, at), page.index("</tr>", at)
    else:
        start = page.rindex('<div class="form-row', 0, at)
        end = page.find('<div class="form-row', at)
    return html.unescape(page[start:end])


def counts() -> tuple[int, int, int, int]:
    return (
        Product.objects.count(),
        Price.objects.count(),
        PriceTier.objects.count(),
        Meter.objects.count(),
    )


@pytest.fixture
def active_meter(db) -> Meter:
    return meter_create(event_name="api_calls", display_name="API calls")


@pytest.fixture
def inactive_meter(db) -> Meter:
    return meter_deactivate(meter=meter_create(event_name="old_calls", display_name="Old calls"))


# --- the page ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_page_renders_with_one_price_and_add_another_price(admin_client):
    response = admin_client.get(CREATE_URL)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/catalog/product/create_product.html"
    page = response.content.decode()
    assert "Add another price" in page
    assert 'name="prices-TOTAL_FORMS" value="1"' in page
    assert 'name="prices-0-pricing_model"' in page
    assert 'name="prices-0-tiers-0-up_to"' in page
    # The empty price cloned by "Add another price".
    assert 'name="prices-__prefix__-amount"' in page
    assert "billing_site/create_product.js" in page
    assert "Create product" in page  # breadcrumbs


@pytest.mark.django_db
def test_add_product_opens_the_create_product_page(admin_client):
    response = admin_client.get(reverse("admin:catalog_product_add"))

    assert response.status_code == 302
    assert response.url == CREATE_URL


@pytest.mark.django_db
def test_add_price_leads_to_the_create_product_page(admin_client):
    response = admin_client.get(reverse("admin:catalog_price_add"))

    assert response.status_code == 302
    assert response.url == CREATE_URL


@pytest.mark.django_db
def test_only_active_meters_are_offered(admin_client, active_meter, inactive_meter):
    page = admin_client.get(CREATE_URL).content.decode()

    assert f'value="{active_meter.public_id}"' in page
    assert f'value="{inactive_meter.public_id}"' not in page
    assert "Create a new meter" in page


@pytest.mark.django_db
def test_staff_without_add_permission_gets_403(client):
    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_product", "view_price"])
    )
    client.force_login(staff)

    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, form_data(HYPERNIAN_FLAT)).status_code == 403
    product = ProductFactory()
    add_prices = reverse("admin:catalog_product_add_prices", args=[product.pk])
    assert client.get(add_prices).status_code == 403
    assert counts() == (1, 0, 0, 0)


@pytest.mark.django_db
def test_staff_without_meter_permission_cannot_create_a_meter_inline(client):
    staff = User.objects.create_user("pricer", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_product", "view_product", "add_price"])
    )
    client.force_login(staff)

    assert "Create a new meter" not in client.get(CREATE_URL).content.decode()
    response = client.post(CREATE_URL, form_data(HYPERNIAN_TOKENS))

    assert response.status_code == 200
    assert "You don't have permission to create meters." in around(response, "prices-0-meter")
    assert counts() == (0, 0, 0, 0)


# --- the seed examples, end to end -------------------------------------------------------------


@pytest.mark.django_db
def test_hypernian_preview_shows_terms_in_words_and_writes_nothing(admin_client):
    response = admin_client.post(CREATE_URL, form_data(HYPERNIAN_FLAT, HYPERNIAN_TOKENS))

    assert response.status_code == 200
    assert response.templates[0].name == "admin/catalog/product/create_product_preview.html"
    page = html.unescape(response.content.decode())
    assert "200.00 USD per unit" in page
    assert "Graduated pricing: each band is charged at its own rate" in page
    assert "First 100,000 units: 0.00 USD per unit" in page
    assert "100,001 and up: 0.001 USD per unit" in page
    assert "New meter: Hypernian API tokens (event name hypernian_api_tokens" in page
    assert 'name="_confirm"' in page
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_hypernian_confirm_creates_product_two_prices_tiers_and_meter(admin_client):
    preview = admin_client.post(
        CREATE_URL,
        form_data(HYPERNIAN_FLAT, HYPERNIAN_TOKENS, description="LLM API"),
    )
    response = confirm(admin_client, preview)

    product = Product.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:catalog_product_change", args=[product.pk])
    assert (product.name, product.description, product.active) == ("Hypernian", "LLM API", True)

    flat, tokens = product.prices.order_by("pk")
    assert flat.unit_amount_decimal == Decimal("20000")
    assert (flat.currency, flat.type, flat.billing_scheme) == ("USD", "recurring", "per_unit")
    assert (flat.recurring_interval, flat.recurring_interval_count) == ("month", 1)
    assert (flat.recurring_usage_type, flat.meter) == ("licensed", None)
    assert flat.nickname == "Hypernian base"

    meter = Meter.objects.get()
    assert (meter.event_name, meter.display_name, meter.formula) == (
        "hypernian_api_tokens",
        "Hypernian API tokens",
        "sum",
    )
    assert (tokens.billing_scheme, tokens.tiers_mode, tokens.unit_amount_decimal) == (
        "tiered",
        "graduated",
        None,
    )
    assert (tokens.recurring_usage_type, tokens.meter) == ("metered", meter)
    assert (tokens.recurring_interval, tokens.recurring_interval_count) == ("month", 1)
    tiers = list(tokens.tiers.values_list("position", "up_to", "unit_amount_decimal"))
    assert tiers == [(0, 100000, Decimal("0")), (1, None, Decimal("0.1"))]
    assert not tokens.tiers.exclude(flat_amount_decimal=0).exists()

    logged = LogEntry.objects.filter(action_flag=ADDITION)
    assert logged.count() == 4  # the product, the meter and both prices


@pytest.mark.django_db
def test_alpaca_per_package_price_is_stored_in_cents_with_divide_by(admin_client):
    preview = admin_client.post(CREATE_URL, form_data(ALPACA_PACKAGE, name="Alpaca AI"))

    assert "0.04 USD per 100 units (rounded up)" in preview.content.decode()
    assert counts() == (0, 0, 0, 0)
    confirm(admin_client, preview)

    price = Price.objects.get(product__name="Alpaca AI")
    assert price.unit_amount_decimal == Decimal("4")
    assert (price.transform_divide_by, price.transform_round) == (100, "up")
    assert (price.billing_scheme, price.recurring_usage_type) == ("per_unit", "metered")
    assert price.meter.event_name == "alpaca_ai_tokens"
    assert (price.recurring_interval, price.recurring_interval_count) == ("month", 1)


@pytest.mark.django_db
def test_per_unit_price_on_an_existing_meter_yearly(admin_client, active_meter):
    price_input = {
        "pricing_model": "per_unit",
        "amount": "0.00000000000001",  # 14 decimals in USD = 12 decimals of a cent
        "meter": active_meter.public_id,
        "billing_period": "year",
        "lookup_key": "calls_yearly",
    }
    confirm(admin_client, admin_client.post(CREATE_URL, form_data(price_input)))

    price = Price.objects.get()
    assert price.unit_amount_decimal == Decimal("0.000000000001")
    assert (price.meter, price.recurring_interval, price.lookup_key) == (
        active_meter,
        "year",
        "calls_yearly",
    )
    assert Meter.objects.count() == 1


@pytest.mark.django_db
def test_volume_tiers_with_flat_fees_and_a_custom_period(admin_client, active_meter):
    price_input = {
        "pricing_model": "volume",
        "meter": active_meter.public_id,
        "billing_period": "custom",
        "interval": "week",
        "interval_count": "2",
        "tiers": [("1,000", "0.05", "10.00"), ("inf", "0.04", "")],
    }
    preview = admin_client.post(CREATE_URL, form_data(price_input))
    page = html.unescape(preview.content.decode())
    assert "Up to 1,000 units: 0.05 USD per unit + 10.00 USD flat" in page
    assert "Every 2 weeks" in page
    confirm(admin_client, preview)

    price = Price.objects.get()
    assert (price.tiers_mode, price.recurring_interval, price.recurring_interval_count) == (
        "volume",
        "week",
        2,
    )
    tiers = list(price.tiers.values_list("up_to", "unit_amount_decimal", "flat_amount_decimal"))
    assert tiers == [(1000, Decimal("5"), Decimal("1000")), (None, Decimal("4"), Decimal("0"))]


@pytest.mark.django_db
def test_one_off_flat_rate_in_yen(admin_client):
    price_input = {"amount": "5000", "currency": "jpy", "billing_period": "one_off"}
    confirm(admin_client, admin_client.post(CREATE_URL, form_data(price_input)))

    price = Price.objects.get()
    assert (price.type, price.currency, price.unit_amount_decimal) == (
        "one_time",
        "JPY",
        Decimal("5000"),
    )
    assert price.recurring_interval is None


@pytest.mark.django_db
def test_add_prices_to_an_existing_product(admin_client):
    product = ProductFactory(name="Hypernian")
    old = licensed_price(product=product, unit_amount=10000)
    url = reverse("admin:catalog_product_add_prices", args=[product.pk])

    page = admin_client.get(url).content.decode()
    assert "Add prices to Hypernian" in page
    assert 'name="name"' not in page  # the product itself isn't edited here
    preview = admin_client.post(url, form_data(HYPERNIAN_FLAT))
    response = confirm(admin_client, preview, url=url)

    assert response.status_code == 302
    assert Product.objects.count() == 1
    new = product.prices.exclude(pk=old.pk).get()
    assert new.unit_amount_decimal == Decimal("20000")


@pytest.mark.django_db
def test_go_back_and_edit_shows_the_submitted_values_without_saving(admin_client):
    data = form_data(HYPERNIAN_FLAT, HYPERNIAN_TOKENS)
    response = admin_client.post(CREATE_URL, {**data, "_edit": "Go back and edit"})

    page = response.content.decode()
    assert response.templates[0].name == "admin/catalog/product/create_product.html"
    assert 'value="Hypernian"' in page
    assert 'name="prices-1-tiers-0-up_to" id="id_prices-1-tiers-0-up_to" value="100000"' in page
    assert "errornote" not in page
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_add_another_price_and_add_tier_work_without_javascript(admin_client):
    data = form_data(HYPERNIAN_TOKENS)

    with_price = admin_client.post(CREATE_URL, {**data, "_add_price": "1"}).content.decode()
    assert 'name="prices-TOTAL_FORMS" value="2"' in with_price
    assert 'name="prices-1-pricing_model"' in with_price
    assert "errornote" not in with_price

    with_tier = admin_client.post(CREATE_URL, {**data, "_add_tier": "prices-0"})
    page = with_tier.content.decode()
    # The new blank row goes before the open-ended last tier.
    assert 'name="prices-0-tiers-1-up_to" id="id_prices-0-tiers-1-up_to" value=""' in page
    assert 'name="prices-0-tiers-2-unit_amount" id="id_prices-0-tiers-2-unit_amount" ' in page
    assert 'value="0.001"' in page
    assert counts() == (0, 0, 0, 0)


# --- bad input: a clear error next to the field, and nothing written ---------------------------


def metered(**fields) -> dict:
    return {
        "pricing_model": "per_unit",
        "amount": "0.001",
        "meter": "new",
        "new_meter_display_name": "Tokens",
        "new_meter_event_name": "tokens",
        **fields,
    }


BAD_INPUT = [
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("100000", "0", ""), ("5000", "0.001", ""), ("", "0", "")]},
        "prices-0-tiers-1-up_to",
        "Tier 2: up_to must be greater than tier 1's up_to (100000), got 5000.",
        id="tiers-out-of-order",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("100000", "0", ""), ("200000", "0.001", "")]},
        "prices-0-tiers-1-up_to",
        "Tier 2: the last tier must have up_to 'inf'",
        id="tiers-not-ending-in-inf",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("inf", "0", ""), ("200000", "0.001", "")]},
        "prices-0-tiers-0-up_to",
        "Tier 1: only the last tier can have up_to 'inf'",
        id="inf-before-the-last-tier",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("100000", "", ""), ("", "0.001", "")]},
        "prices-0-tiers-0-unit_amount",
        "Tier 1: enter a per-unit amount or a flat fee (0 for a free tier).",
        id="tier-without-amount",
    ),
    pytest.param(
        {"amount": "0.000000000000001"},
        "prices-0-amount",
        "Price can have at most 14 decimal places in USD (12 decimal places of its minor unit)",
        id="more-than-12-decimals-of-a-cent",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("100000", "0", ""), ("", "0.000000000000001", "")]},
        "prices-0-tiers-1-unit_amount",
        "Tier 2: per-unit amount can have at most 14 decimal places in USD",
        id="more-than-12-decimals-in-a-tier",
    ),
    pytest.param(
        {"amount": "0.0000000000001", "currency": "jpy", "billing_period": "one_off"},
        "prices-0-amount",
        "Price can have at most 12 decimal places in JPY",
        id="more-than-12-decimals-of-a-yen",
    ),
    pytest.param(
        {"amount": "-200.00"},
        "prices-0-amount",
        "Price must not be negative, got '-200.00'",
        id="negative-amount",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "tiers": [("100000", "0", "-1"), ("", "0.001", "")]},
        "prices-0-tiers-0-flat_amount",
        "Tier 1: flat fee must not be negative, got '-1'",
        id="negative-tier-flat-fee",
    ),
    pytest.param(
        {"amount": "twenty"},
        "prices-0-amount",
        "Price must be an amount in USD such as 200.00 or 0.001, got 'twenty'.",
        id="not-a-number",
    ),
    pytest.param(
        {"amount": ""},
        "prices-0-amount",
        "Enter the price in USD, e.g. 200.00 or 0.001.",
        id="missing-amount",
    ),
    pytest.param(
        {"amount": "200.00", "currency": "xyz"},
        "prices-0-currency",
        "Unknown currency 'xyz': use a three-letter ISO 4217 code",
        id="unknown-currency",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "package_size": "100"},
        "prices-0-package_size",
        "A package size can't be combined with tiered pricing",
        id="transform-quantity-with-tiers",
    ),
    pytest.param(
        {**ALPACA_PACKAGE, "package_size": "0"},
        "prices-0-package_size",
        "Package size must be greater than 0, got '0'.",
        id="divide-by-zero",
    ),
    pytest.param(
        {**ALPACA_PACKAGE, "package_size": "-100"},
        "prices-0-package_size",
        "Package size must be greater than 0, got '-100'.",
        id="divide-by-negative",
    ),
    pytest.param(
        {**ALPACA_PACKAGE, "package_size": ""},
        "prices-0-package_size",
        "Package size is required: the number of units in a package.",
        id="package-without-size",
    ),
    pytest.param(
        metered(meter=""),
        "prices-0-meter",
        "A usage-based price bills the usage of a meter: choose one, or create a new meter.",
        id="metered-without-meter",
    ),
    pytest.param(
        {
            **HYPERNIAN_FLAT,
            "meter": "new",
            "new_meter_display_name": "X",
            "new_meter_event_name": "x",
        },
        "prices-0-meter",
        "A flat-rate price is billed in advance per quantity and has no meter",
        id="licensed-with-new-meter",
    ),
    pytest.param(
        metered(new_meter_event_name="has spaces"),
        "prices-0-new_meter_event_name",
        "Invalid event_name: it is 1 to 100 characters with no spaces",
        id="new-meter-with-bad-event-name",
    ),
    pytest.param(
        metered(new_meter_event_name=""),
        "prices-0-new_meter_event_name",
        "Enter the event name your product will send usage with.",
        id="new-meter-without-event-name",
    ),
    pytest.param(
        metered(billing_period="custom", interval="month", interval_count="37"),
        "prices-0-interval_count",
        "the billing period can be at most three years (36 months)",
        id="interval-count-past-3-years",
    ),
    pytest.param(
        {**HYPERNIAN_FLAT, "billing_period": "custom", "interval": "year", "interval_count": "4"},
        "prices-0-interval_count",
        "the billing period can be at most three years (3 years)",
        id="yearly-interval-count-past-3-years",
    ),
    pytest.param(
        {**HYPERNIAN_FLAT, "billing_period": "custom", "interval": "day", "interval_count": "0"},
        "prices-0-interval_count",
        "at least one day (got 0)",
        id="interval-count-zero",
    ),
    pytest.param(
        metered(billing_period="one_off"),
        "prices-0-billing_period",
        "Usage-based prices bill each period's usage, so they can't be one-off",
        id="one-off-usage-based",
    ),
    pytest.param(
        {**HYPERNIAN_FLAT, "tiers": [("", "5.00", "")]},
        "prices-0-tiers-0-up_to",
        "Tiers only apply to the tiered pricing models",
        id="tiers-with-flat-rate",
    ),
    pytest.param(
        {**HYPERNIAN_TOKENS, "amount": "5.00"},
        "prices-0-amount",
        "A tiered price takes its amounts from the tier table",
        id="amount-with-tiers",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("price_input", "field_name", "message"), BAD_INPUT)
def test_bad_price_input_is_shown_next_to_its_field_and_nothing_is_written(
    admin_client, price_input, field_name, message
):
    before = counts()

    response = admin_client.post(CREATE_URL, form_data(price_input))

    assert response.status_code == 200
    assert response.templates[0].name == "admin/catalog/product/create_product.html"
    assert "Please correct the errors below." in response.content.decode()
    if field_name.endswith("up_to") and "Tiers only apply" in message:
        # A tier-table error, shown above the table rather than on a row.
        page = html.unescape(response.content.decode())
        table = page[page.index('class="module aligned price-tiers') : page.index(field_name)]
        assert message in table
    else:
        assert message in around(response, field_name)
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "meter_field",
    ["inactive", "active_with_flat_rate"],
    ids=["metered-on-inactive-meter", "licensed-with-meter"],
)
def test_meter_rules(admin_client, active_meter, inactive_meter, meter_field):
    if meter_field == "inactive":
        price_input = metered(meter=inactive_meter.public_id)
        message = (
            f"Meter {inactive_meter.public_id} (old_calls) is inactive; reactivate it or "
            "choose an active meter."
        )
    else:
        price_input = {**HYPERNIAN_FLAT, "meter": active_meter.public_id}
        message = "A flat-rate price is billed in advance per quantity and has no meter"
    before = counts()

    response = admin_client.post(CREATE_URL, form_data(price_input))

    assert response.status_code == 200
    assert message in around(response, "prices-0-meter")
    assert counts() == before


@pytest.mark.django_db
def test_an_error_on_the_second_price_writes_nothing_not_even_the_first_prices_meter(
    admin_client, inactive_meter
):
    before = counts()
    second = {**ALPACA_PACKAGE, "meter": inactive_meter.public_id}

    response = admin_client.post(CREATE_URL, form_data(HYPERNIAN_TOKENS, second))

    assert "is inactive; reactivate it" in around(response, "prices-1-meter")
    assert "errorlist" not in around(response, "prices-0-meter")
    assert counts() == before
    assert not Meter.objects.filter(event_name="hypernian_api_tokens").exists()


@pytest.mark.django_db
def test_errors_on_several_prices_are_all_shown(admin_client):
    response = admin_client.post(
        CREATE_URL,
        form_data({"amount": "-1"}, {**ALPACA_PACKAGE, "package_size": "0"}),
    )

    assert "Price must not be negative" in around(response, "prices-0-amount")
    assert "Package size must be greater than 0" in around(response, "prices-1-package_size")


@pytest.mark.django_db
def test_a_new_meter_whose_event_name_is_taken(admin_client, active_meter):
    price_input = metered(new_meter_event_name=active_meter.event_name)

    response = admin_client.post(CREATE_URL, form_data(price_input))

    assert "A meter with event_name 'api_calls' already exists." in around(
        response, "prices-0-new_meter_event_name"
    )
    assert Meter.objects.count() == 1


@pytest.mark.django_db
def test_missing_product_name(admin_client):
    response = admin_client.post(CREATE_URL, form_data(HYPERNIAN_FLAT, name=""))

    assert "This field is required." in around(response, "name")
    assert counts() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_confirm_revalidates_and_writes_nothing_if_things_changed_since_the_preview(
    admin_client,
):
    preview = admin_client.post(CREATE_URL, form_data({**HYPERNIAN_FLAT, "lookup_key": "base"}))
    # Someone else takes the lookup key between the preview and the confirm.
    licensed_price(product=ProductFactory(name="Other"))
    Price.objects.update(lookup_key="base")
    before = counts()

    response = confirm(admin_client, preview)

    assert response.status_code == 200
    assert "already uses the lookup key 'base'" in around(response, "prices-0-lookup_key")
    assert counts() == before
    assert not Product.objects.filter(name="Hypernian").exists()


@pytest.mark.django_db
def test_a_get_never_writes_and_confirm_needs_post(admin_client):
    admin_client.get(CREATE_URL, form_data(HYPERNIAN_FLAT) | {"_confirm": "1"})

    assert counts() == (0, 0, 0, 0)
