"""Product and price pages of the admin: lists with filters, read-only terms, archiving."""

from __future__ import annotations

import html
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from catalog.models import Price, Product
from catalog.rating import PriceTerms, TransformQuantity
from catalog.services import Recurring, price_create, product_create
from metering.models import Meter
from tests.factories import MeterFactory, hypernian_usage_price, licensed_price


@dataclass
class Catalog:
    hypernian: Product
    hypernian_flat: Price
    hypernian_tokens: Price
    alpaca: Product
    alpaca_tokens: Price


@pytest.fixture
def catalog(db) -> Catalog:
    hypernian = product_create(name="Hypernian", description="LLM API")
    flat = licensed_price(product=hypernian, unit_amount=20000)
    tokens = hypernian_usage_price(product=hypernian)
    alpaca = product_create(name="Alpaca AI")
    package = price_create(
        product=alpaca,
        currency="usd",
        terms=PriceTerms(
            billing_scheme="per_unit",
            unit_amount=Decimal(4),
            transform_quantity=TransformQuantity(divide_by=100, round="up"),
        ),
        recurring=Recurring(
            interval="month",
            usage_type="metered",
            meter=MeterFactory(event_name="alpaca_ai_tokens"),
        ),
        nickname="Alpaca tokens",
        lookup_key="alpaca_tokens",
    )
    return Catalog(hypernian, flat, tokens, alpaca, package)


def text(response) -> str:
    return html.unescape(response.content.decode())


# --- products ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?active__exact=1", "?active__exact=0", "?q=hypern", "?o=4"])
def test_product_list_renders_with_filters_search_and_price_counts(admin_client, catalog, query):
    response = admin_client.get(reverse("admin:catalog_product_changelist") + query)

    assert response.status_code == 200
    if query in ("", "?active__exact=1", "?q=hypern"):
        assert catalog.hypernian.public_id in text(response)
        counts = {p.pk: p.price_count for p in response.context["cl"].result_list}
        assert counts[catalog.hypernian.pk] == 2


@pytest.mark.django_db
def test_product_search_by_description_and_public_id(admin_client, catalog):
    url = reverse("admin:catalog_product_changelist")

    by_description = admin_client.get(url, {"q": "LLM"}).context["cl"].result_list
    by_id = admin_client.get(url, {"q": catalog.alpaca.public_id}).context["cl"].result_list

    assert list(by_description) == [catalog.hypernian]
    assert list(by_id) == [catalog.alpaca]


@pytest.mark.django_db
def test_product_page_lists_prices_read_only_with_links(admin_client, catalog):
    url = reverse("admin:catalog_product_change", args=[catalog.hypernian.pk])

    page = text(admin_client.get(url))

    price_url = reverse("admin:catalog_price_change", args=[catalog.hypernian_tokens.pk])
    assert f'<a href="{price_url}">{catalog.hypernian_tokens.public_id}</a>' in page
    assert "First 100,000 units: 0.00 USD per unit; 100,001 and up: 0.001 USD per unit" in page
    assert "200.00 USD per unit" in page
    add_prices = reverse("admin:catalog_product_add_prices", args=[catalog.hypernian.pk])
    assert f'href="{add_prices}"' in page


@pytest.mark.django_db
def test_product_edit_goes_through_product_update(admin_client, catalog):
    product = catalog.hypernian
    url = reverse("admin:catalog_product_change", args=[product.pk])

    response = admin_client.post(
        url,
        {"name": "Hypernian Pro", "description": "LLM API", "active": "", "metadata": '{"a": "b"}'},
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.active, product.metadata) == ("Hypernian Pro", False, {"a": "b"})
    assert product.updated_at > product.created_at  # set by the service, not the admin


@pytest.mark.django_db
def test_archiving_products_asks_for_confirmation_first(admin_client, catalog):
    url = reverse("admin:catalog_product_changelist")
    action = {"action": "archive_products", "_selected_action": [catalog.hypernian.pk]}

    confirmation = admin_client.post(url, action)

    assert confirmation.status_code == 200
    page = text(confirmation)
    assert "Archive products: are you sure?" in page
    assert f"Hypernian ({catalog.hypernian.public_id})" in page and "2 prices" in page
    assert "Its prices are not archived" in page
    assert 'value="Yes, archive 1 product"' in page
    catalog.hypernian.refresh_from_db()
    assert catalog.hypernian.active

    done = admin_client.post(url, {**action, "post": "yes"})

    assert done.status_code == 302
    catalog.hypernian.refresh_from_db()
    assert not catalog.hypernian.active
    assert LogEntry.objects.get(object_id=str(catalog.hypernian.pk)).change_message == "Archived."


# --- prices ------------------------------------------------------------------------------------


PRICE_FILTERS = [
    "",
    "?active__exact=1",
    "?active__exact=0",
    "?type__exact=recurring",
    "?type__exact=one_time",
    "?recurring_usage_type__exact=metered",
    "?recurring_usage_type__exact=licensed",
    "?billing_scheme__exact=tiered",
    "?billing_scheme__exact=per_unit",
    "?currency=USD",
    "?q=alpaca",
    "?q=alpaca_tokens",
]


@pytest.mark.django_db
@pytest.mark.parametrize("query", PRICE_FILTERS)
def test_price_list_renders_with_every_filter(admin_client, catalog, query):
    response = admin_client.get(reverse("admin:catalog_price_changelist") + query)

    assert response.status_code == 200


@pytest.mark.django_db
def test_price_list_filters_pick_the_right_prices(admin_client, catalog):
    url = reverse("admin:catalog_price_changelist")

    def listed(**params) -> set[Price]:
        return set(admin_client.get(url, params).context["cl"].result_list)

    assert listed(billing_scheme__exact="tiered") == {catalog.hypernian_tokens}
    assert listed(recurring_usage_type__exact="licensed") == {catalog.hypernian_flat}
    assert listed(product__id__exact=catalog.alpaca.pk) == {catalog.alpaca_tokens}
    assert listed(q="Hypernian") == {catalog.hypernian_flat, catalog.hypernian_tokens}
    assert listed(q="alpaca_tokens") == {catalog.alpaca_tokens}


@pytest.mark.django_db
def test_price_list_shows_pricing_summary_in_words(admin_client, catalog):
    page = text(admin_client.get(reverse("admin:catalog_price_changelist")))

    assert "0.04 USD per 100 units (rounded up)" in page
    assert "First 100,000 units: 0.00 USD per unit; 100,001 and up: 0.001 USD per unit" in page


@pytest.mark.django_db
def test_price_list_queries_do_not_grow_with_the_number_of_prices(
    admin_client, catalog, django_assert_max_num_queries
):
    url = reverse("admin:catalog_price_changelist")
    admin_client.get(url)  # warm caches (content types, session)
    for _ in range(5):
        hypernian_usage_price(product=catalog.hypernian, meter=Meter.objects.first())

    with django_assert_max_num_queries(12):
        assert admin_client.get(url).status_code == 200


@pytest.mark.django_db
def test_price_page_shows_terms_in_words_and_tiers_read_only(admin_client, catalog):
    price = catalog.hypernian_tokens
    response = admin_client.get(reverse("admin:catalog_price_change", args=[price.pk]))

    page = text(response)
    assert response.status_code == 200
    assert "<li>First 100,000 units: 0.00 USD per unit</li>" in page
    assert "<li>100,001 and up: 0.001 USD per unit</li>" in page
    assert "Tiers (read-only)" in page
    assert "0.001 USD" in page
    # Only nickname, lookup key, metadata and active are inputs; no tier inputs at all.
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {"active", "nickname", "lookup_key", "metadata"}
    assert 'name="tiers-0-unit_amount_decimal"' not in page
    assert "Delete" not in page


@pytest.mark.django_db
def test_package_price_page_shows_its_amount_read_only(admin_client, catalog):
    price = catalog.alpaca_tokens

    page = text(admin_client.get(reverse("admin:catalog_price_change", args=[price.pk])))

    assert "0.04 USD (4 in minor units)" in page
    assert "100 units per package, rounded up" in page


def _change_data(price: Price, **changes) -> dict:
    data = {
        "active": "on" if price.active else "",
        "nickname": price.nickname,
        "lookup_key": price.lookup_key or "",
        "metadata": "{}",
        "tiers-TOTAL_FORMS": str(price.tiers.count()),
        "tiers-INITIAL_FORMS": str(price.tiers.count()),
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "0",
    }
    for index, tier in enumerate(price.tiers.all()):
        data[f"tiers-{index}-id"] = str(tier.pk)
        data[f"tiers-{index}-price"] = str(price.pk)
    return {**data, **changes}


@pytest.mark.django_db
def test_editing_a_price_changes_only_the_mutable_fields(admin_client, catalog):
    price = catalog.hypernian_tokens
    url = reverse("admin:catalog_price_change", args=[price.pk])

    response = admin_client.post(
        url,
        _change_data(
            price,
            nickname="Tokens",
            lookup_key="hypernian_tokens",
            # Attempts to change amounts: not form fields, so ignored.
            unit_amount_decimal="999",
            currency="eur",
            billing_scheme="per_unit",
            **{"tiers-1-unit_amount_decimal": "5", "tiers-1-up_to": "7"},
        ),
    )

    assert response.status_code == 302
    price.refresh_from_db()
    assert (price.nickname, price.lookup_key) == ("Tokens", "hypernian_tokens")
    assert (price.currency, price.billing_scheme, price.unit_amount_decimal) == (
        "USD",
        "tiered",
        None,
    )
    assert list(price.tiers.values_list("up_to", "unit_amount_decimal")) == [
        (100000, Decimal("0")),
        (None, Decimal("0.1")),
    ]


@pytest.mark.django_db
def test_posting_a_new_unit_amount_does_not_change_it(admin_client, catalog):
    price = catalog.hypernian_flat
    url = reverse("admin:catalog_price_change", args=[price.pk])

    response = admin_client.post(url, _change_data(price, unit_amount_decimal="1", unit_amount="1"))

    assert response.status_code == 302
    price.refresh_from_db()
    assert price.unit_amount_decimal == Decimal("20000")


@pytest.mark.django_db
def test_a_lookup_key_already_in_use_is_refused(admin_client, catalog):
    price = catalog.hypernian_flat
    url = reverse("admin:catalog_price_change", args=[price.pk])

    response = admin_client.post(url, _change_data(price, lookup_key="alpaca_tokens"))

    assert response.status_code == 200
    assert "already exists" in text(response)
    price.refresh_from_db()
    assert price.lookup_key is None


@pytest.mark.django_db
def test_archive_and_unarchive_actions(admin_client, catalog):
    url = reverse("admin:catalog_price_changelist")
    selected = [catalog.hypernian_flat.pk, catalog.alpaca_tokens.pk]

    action = {"action": "archive_prices", "_selected_action": selected}
    confirmation = admin_client.post(url, action)  # a confirmation page first: nothing changes

    assert confirmation.status_code == 200
    assert "can't be used for new subscriptions" in text(confirmation)
    assert not Price.objects.filter(active=False).exists()
    response = admin_client.post(url, {**action, "post": "yes"})

    assert response.status_code == 302
    assert set(Price.objects.filter(active=False)) == {
        catalog.hypernian_flat,
        catalog.alpaca_tokens,
    }
    assert catalog.hypernian_tokens in Price.objects.filter(active=True)
    assert LogEntry.objects.filter(action_flag=CHANGE, change_message="Archived.").count() == 2

    admin_client.post(
        url, {"action": "unarchive_prices", "_selected_action": [catalog.alpaca_tokens.pk]}
    )

    assert set(Price.objects.filter(active=False)) == {catalog.hypernian_flat}


@pytest.mark.django_db
def test_prices_cannot_be_deleted(admin_client, catalog):
    price = catalog.hypernian_flat
    changelist = admin_client.get(reverse("admin:catalog_price_changelist"))

    assert "delete_selected" not in changelist.content.decode()
    response = admin_client.get(reverse("admin:catalog_price_delete", args=[price.pk]))
    assert response.status_code == 403
    assert Price.objects.filter(pk=price.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("metadata", "stored"), [("", {}), ('{"plan": "pro"}', {"plan": "pro"})])
def test_price_metadata_can_be_set_and_cleared(admin_client, catalog, metadata, stored):
    price = catalog.hypernian_flat
    url = reverse("admin:catalog_price_change", args=[price.pk])

    response = admin_client.post(url, _change_data(price, metadata=metadata))

    assert response.status_code == 302
    price.refresh_from_db()
    assert price.metadata == stored


@pytest.mark.django_db
def test_metadata_must_map_keys_to_strings(admin_client, catalog):
    url = reverse("admin:catalog_product_change", args=[catalog.alpaca.pk])

    response = admin_client.post(
        url, {"name": "Alpaca AI", "description": "", "active": "on", "metadata": '{"n": 1}'}
    )

    assert response.status_code == 200
    assert "Metadata is a JSON object of keys to string values" in text(response)
    catalog.alpaca.refresh_from_db()
    assert catalog.alpaca.metadata == {}
