"""Staff go through the admin's create flows in a real browser."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from playwright.sync_api import expect

from catalog.models import Price, PriceTier, Product
from credits.models import CreditGrant
from metering.models import Meter
from tests.factories import CustomerFactory


def fill_price(
    page, index, pricing_model, *, amount=None, billing_period=None, new_meter=None, tiers=()
):
    """Fill in price `index` of the create-product form as staff would, field by field:
    `new_meter` is (display name, event name), `tiers` are (up to, unit amount) rows."""
    prefix = f"prices-{index}"
    page.select_option(f"select[name={prefix}-pricing_model]", pricing_model)
    if amount is not None:
        page.fill(f"input[name={prefix}-amount]", amount)
    if billing_period is not None:
        page.select_option(f"select[name={prefix}-billing_period]", billing_period)
    if new_meter is not None:
        display_name, event_name = new_meter
        page.select_option(f"select[name={prefix}-meter]", "new")
        page.fill(f"input[name={prefix}-new_meter_display_name]", display_name)
        page.fill(f"input[name={prefix}-new_meter_event_name]", event_name)
    for row, (up_to, unit_amount) in enumerate(tiers):
        page.fill(f"input[name={prefix}-tiers-{row}-up_to]", up_to)
        page.fill(f"input[name={prefix}-tiers-{row}-unit_amount]", unit_amount)


def test_staff_create_the_hypernian_product_with_two_prices(staff_page, live_server, screenshot):
    page = staff_page
    page.goto(f"{live_server.url}/admin/catalog/product/add/")
    expect(page.locator("#create-product-form")).to_be_visible()
    page.fill("input[name=name]", "Hypernian")
    page.fill(
        "textarea[name=description], input[name=description]", "AI API, 100,000 tokens included"
    )

    fill_price(page, 0, "flat_rate", amount="200.00", billing_period="month")

    page.click("#add-price")
    expect(page.locator("select[name=prices-1-pricing_model]")).to_be_visible()
    fill_price(
        page,
        1,
        "graduated",
        new_meter=("Hypernian API tokens", "hypernian_api_tokens"),
        tiers=[("100000", "0.00"), ("inf", "0.001")],
    )
    screenshot("admin-create-product-form")

    page.locator("input[name=_preview]").click()
    expect(page.get_by_text("First 100,000 units")).to_be_visible()
    expect(page.get_by_text("100,001 and up: 0.001 USD per unit")).to_be_visible()
    screenshot("admin-create-product-preview")
    assert not Product.objects.exists()  # a preview writes nothing

    page.locator("button[name=_confirm], input[name=_confirm]").first.click()
    expect(page.locator(".messagelist")).to_contain_text("Hypernian")
    screenshot("admin-create-product-done")

    product = Product.objects.get(name="Hypernian")
    fee = Price.objects.get(product=product, recurring_usage_type="licensed")
    tokens = Price.objects.get(product=product, recurring_usage_type="metered")
    assert fee.unit_amount_decimal == Decimal(20000)
    assert tokens.meter == Meter.objects.get(event_name="hypernian_api_tokens")
    assert list(
        PriceTier.objects.filter(price=tokens).values_list("up_to", "unit_amount_decimal")
    ) == [
        (100000, Decimal(0)),
        (None, Decimal("0.1")),
    ]


def test_staff_see_an_invalid_tier_next_to_the_tier(staff_page, live_server, screenshot):
    page = staff_page
    page.goto(f"{live_server.url}/admin/catalog/product/add/")
    page.fill("input[name=name]", "Broken")
    fill_price(
        page, 0, "volume", new_meter=("Tokens", "tokens"), tiers=[("500", "1.00"), ("100", "0.50")]
    )
    page.locator("input[name=_preview]").click()
    expect(page.get_by_text(re.compile("Tier 2"))).to_be_visible()
    screenshot("admin-create-product-tier-error")
    assert not Product.objects.exists()
    assert not Meter.objects.exists()


def test_staff_grant_credits_with_the_new_credit_grant_page(staff_page, live_server, screenshot):
    customer = CustomerFactory(name="Enterprise Co")
    page = staff_page
    page.goto(f"{live_server.url}/admin/credits/creditgrant/add/?customer={customer.pk}")
    page.fill("input[name=name]", "Enterprise prepayment")
    page.fill("input[name=amount]", "120000.00")
    page.check("#id_expiry_1")
    expires = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    expires_input = page.locator("input[name=expires_at]")
    if expires_input.get_attribute("type") == "datetime-local":
        expires = f"{expires}T00:00"
    expires_input.fill(expires)
    page.fill("input[name=priority]", "40")
    page.check("#id_category_0")
    screenshot("admin-new-credit-grant-form")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_be_visible()
    screenshot("admin-new-credit-grant-done")

    grant = CreditGrant.objects.get(customer=customer)
    assert (grant.amount, grant.currency, grant.priority, grant.category) == (
        12_000_000,
        "USD",
        40,
        "paid",
    )
    assert grant.expires_at is not None and grant.expires_at.date().isoformat()[:4] >= str(
        dt.date.today().year
    )
