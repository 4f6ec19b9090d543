"""The invoicing admin as billing staff use it: add a subscription, read a customer's page,
change invoice statuses through confirmation pages, create a one-off invoice, find late usage,
advance a test clock, and the viewer role's limits."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from billing_site import clock
from catalog.rating import PriceTerms
from catalog.services import price_archive, price_create
from invoicing import services
from invoicing.models import (
    BillingRunFailure,
    Customer,
    Invoice,
    InvoiceEvent,
    Subscription,
)
from invoicing.models import TestClock as SimulationClock  # "Test…" would be collected
from tests.admin_pages import get, post, section, text
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ProductFactory,
    hypernian_usage_price,
    licensed_price,
)
from tests.helpers import FEB_1, JAN_1, JAN_15, manual_invoice, send_usage, subscribe

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/admin/invoicing/subscription/"
INVOICES = "/admin/invoicing/invoice/"
CUSTOMERS = "/admin/invoicing/customer/"
TEST_CLOCKS = "/admin/invoicing/testclock/"


# --- helpers ---------------------------------------------------------------------------------


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def carried(response) -> dict[str, list[str]]:
    """The hidden fields a preview page posts back on confirm."""
    data: dict[str, list[str]] = {}
    for name, value in response.context["carried"]:
        data.setdefault(name, []).append(value)
    return data


def run_action(client, action: str, invoices, *, confirm: bool):
    data = {"action": action, "_selected_action": [invoice.pk for invoice in invoices]}
    if confirm:
        data["post"] = "yes"
    return post(client, INVOICES, data)


# --- Add subscription ------------------------------------------------------------------------


def test_add_subscription_previews_the_first_invoice_and_only_the_confirm_writes(client, operator):
    customer = CustomerFactory(name="Northwind")
    seats = licensed_price(product=ProductFactory(name="Hypernian seats"), unit_amount=2000)
    tokens = hypernian_usage_price()

    step1 = get(client, f"{SUBSCRIPTIONS}add/")
    assert step1.status_code == 200
    assert "choose the customer" in text(step1)

    step2 = get(client, f"{SUBSCRIPTIONS}add/", {"customer": customer.pk})
    page = text(step2)
    assert "subscribe Northwind" in page
    assert "Hypernian seats" in page and "Hypernian" in page
    assert "from usage" in page  # the metered price has no quantity input

    form = {
        "customer": customer.pk,
        f"price_{seats.pk}": "on",
        f"quantity_{seats.pk}": "3",
        f"price_{tokens.pk}": "on",
        "collection_method": "charge_automatically",
    }
    preview = post(client, f"{SUBSCRIPTIONS}add/", {**form, "_preview": "1"})
    assert preview.status_code == 200
    first_invoice = section(preview, "first-invoice")
    assert "3 x Hypernian seats" in first_invoice
    assert "First invoice total: 60.00 USD" in first_invoice
    assert "2026-01-15 00:00 to 2026-02-15 00:00" in text(preview)
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()

    confirmed = post(client, f"{SUBSCRIPTIONS}add/", {**carried(preview), "_confirm": "1"})
    subscription = Subscription.objects.get()
    assert confirmed.status_code == 302
    assert confirmed["Location"] == f"{SUBSCRIPTIONS}{subscription.pk}/change/"
    assert subscription.customer == customer
    assert sorted((item.price_id, item.quantity) for item in subscription.items.all()) == sorted(
        [(seats.pk, 3), (tokens.pk, 1)]
    )
    first = subscription.invoices.get()
    assert (first.status, first.number, first.amount_due) == ("open", "INV-0001", 6000)
    assert first.events.get().actor == operator.username
    assert LogEntry.objects.filter(
        user=operator, object_id=str(subscription.pk), action_flag=ADDITION
    ).exists()


def test_mixed_currencies_are_refused_with_the_reason_and_nothing_is_written(client, operator):
    customer = CustomerFactory()
    usd = licensed_price(unit_amount=2000, currency="usd")
    eur = licensed_price(unit_amount=1800, currency="eur")
    form = {
        "customer": customer.pk,
        f"price_{usd.pk}": "on",
        f"price_{eur.pk}": "on",
        "collection_method": "charge_automatically",
    }

    for button in ("_preview", "_confirm"):
        response = post(client, f"{SUBSCRIPTIONS}add/", {**form, button: "1"})
        assert response.status_code == 200
        assert "All items must share one currency" in text(response)
        assert "Nothing has been saved" in text(response)

    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_a_price_archived_after_the_preview_is_refused_on_confirm(client, operator):
    customer = CustomerFactory()
    price = licensed_price()
    form = {
        "customer": customer.pk,
        f"price_{price.pk}": "on",
        f"quantity_{price.pk}": "1",
        "collection_method": "charge_automatically",
    }
    preview = post(client, f"{SUBSCRIPTIONS}add/", {**form, "_preview": "1"})
    assert preview.status_code == 200
    price_archive(price=price)

    response = post(client, f"{SUBSCRIPTIONS}add/", {**carried(preview), "_confirm": "1"})

    assert response.status_code == 200
    assert f"Price {price.public_id} is archived" in text(response)
    assert not Subscription.objects.exists()


def test_choosing_no_price_asks_for_one(client, operator):
    customer = CustomerFactory()
    licensed_price()
    response = post(
        client,
        f"{SUBSCRIPTIONS}add/",
        {"customer": customer.pk, "collection_method": "charge_automatically", "_preview": "1"},
    )
    assert "Choose at least one price." in text(response)


def test_send_invoice_without_days_until_due_is_refused_next_to_the_field(client, operator):
    customer = CustomerFactory()
    price = licensed_price()
    response = post(
        client,
        f"{SUBSCRIPTIONS}add/",
        {
            "customer": customer.pk,
            f"price_{price.pk}": "on",
            "collection_method": "send_invoice",
            "_preview": "1",
        },
    )
    assert response.context["form"].errors["days_until_due"] == [
        "collection_method=send_invoice needs days_until_due (for example 30)."
    ]
    assert not Subscription.objects.exists()


def test_subscription_page_toggles_cancel_at_period_end_through_the_service(client, operator):
    subscription = subscribe(CustomerFactory(), licensed_price())

    response = post(
        client,
        f"{SUBSCRIPTIONS}{subscription.pk}/change/",
        {"cancel_at_period_end": "on", "metadata": '{"plan": "pro"}'},
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True
    assert subscription.canceled_at == JAN_15  # set by subscription_update, at "now"
    assert subscription.metadata == {"plan": "pro"}


def test_cancel_now_confirms_then_bills_usage_so_far(client, operator):
    customer = CustomerFactory()
    tokens = hypernian_usage_price()
    subscription = subscribe(customer, licensed_price(), tokens)
    send_usage(tokens, customer, 120000, timestamp=JAN_1 + dt.timedelta(days=3), received=JAN_15)
    url = f"{SUBSCRIPTIONS}{subscription.pk}/cancel/"

    confirmation = get(client, url)
    assert confirmation.status_code == 200
    assert "Usage so far: 20.00 USD" in text(confirmation)  # 20,000 tokens past 100,000
    subscription.refresh_from_db()
    assert subscription.status == "active"

    response = post(client, url, {"invoice_now": "on"})

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == ("canceled", JAN_15)
    final = subscription.invoices.get(billing_reason="subscription_cancel")
    assert (final.status, final.amount_due) == ("open", 2000)
    assert LogEntry.objects.filter(
        user=operator, object_id=str(subscription.pk), action_flag=CHANGE
    ).exists()
    # A canceled subscription's page is read-only and offers no "Cancel now".
    page = get(client, f"{SUBSCRIPTIONS}{subscription.pk}/change/")
    assert "Cancel now" not in text(page)
    assert post(client, url, {}).status_code == 302
    assert "already canceled" in messages_of(get(client, SUBSCRIPTIONS))[0]


# --- Customer page ---------------------------------------------------------------------------


def test_customer_page_shows_subscriptions_invoices_usage_and_the_upcoming_invoice(
    client, operator
):
    customer = CustomerFactory(name="Northwind")
    seats = licensed_price(product=ProductFactory(name="Hypernian seats"), unit_amount=2000)
    tokens = hypernian_usage_price()
    subscription = subscribe(customer, seats, tokens)
    send_usage(tokens, customer, 90000, timestamp=JAN_1 + dt.timedelta(days=2), received=JAN_15)
    send_usage(tokens, customer, 60000, timestamp=JAN_1 + dt.timedelta(days=9), received=JAN_15)

    response = get(client, f"{CUSTOMERS}{customer.pk}/change/")

    assert response.status_code == 200
    assert subscription.public_id in section(response, "customer-subscriptions")
    invoices = section(response, "customer-invoices")
    assert "INV-0001" in invoices and "Open" in invoices and "20.00 USD" in invoices
    usage = section(response, "customer-usage")
    assert tokens.meter.display_name in usage and "150,000" in usage
    upcoming = section(response, "customer-upcoming-invoice")
    # Next month's seat in advance (20.00) plus 50,000 tokens past the included 100,000 at
    # 0.001 USD (50.00).
    assert "Upcoming total: 70.00 USD" in upcoming
    assert "Tier 2" in upcoming
    assert "None: billed on the real clock" in section(response, "customer-test-clock")


def test_customer_add_form_attaches_a_test_clock(client, operator):
    with clock.frozen_at(JAN_1):
        test_clock = services.test_clock_create(frozen_time=JAN_1, name="Simulation")

    response = post(
        client,
        f"{CUSTOMERS}add/",
        {"name": "Simulated Co", "email": "", "description": "", "metadata": "{}",
         "test_clock": test_clock.pk},
    )  # fmt: skip

    assert response.status_code == 302
    customer = Customer.objects.get(name="Simulated Co")
    assert customer.test_clock == test_clock
    page = get(client, f"{CUSTOMERS}{customer.pk}/change/")
    assert "Simulation" in section(page, "customer-test-clock")


# --- Invoice actions -------------------------------------------------------------------------


def test_finalize_goes_through_a_confirmation_page_and_is_logged(client, operator):
    invoice = manual_invoice(CustomerFactory(name="Acme"), finalize=False)

    confirmation = run_action(client, "finalize_invoices", [invoice], confirm=False)
    assert confirmation.status_code == 200
    assert "Finalize: are you sure?" in text(confirmation)
    assert "Finalized" in text(confirmation)  # what will happen to the row
    invoice.refresh_from_db()
    assert invoice.status == "draft"

    response = run_action(client, "finalize_invoices", [invoice], confirm=True)

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, invoice.amount_due) == ("open", "INV-0001", 5000)
    event = invoice.events.get()
    assert (event.from_status, event.to_status, event.actor) == ("draft", "open", operator.username)
    log = LogEntry.objects.get(user=operator, object_id=str(invoice.pk), action_flag=CHANGE)
    assert "Finalized" in log.get_change_message()


@pytest.mark.parametrize(
    ("action", "status"),
    [("mark_paid", "paid"), ("void_invoices", "void"), ("mark_uncollectible", "uncollectible")],
)
def test_status_actions_change_an_open_invoice_after_confirmation(client, operator, action, status):
    invoice = manual_invoice(CustomerFactory())

    confirmation = run_action(client, action, [invoice], confirm=False)
    assert confirmation.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == "open"

    run_action(client, action, [invoice], confirm=True)

    invoice.refresh_from_db()
    assert invoice.status == status
    assert invoice.events.last().actor == operator.username
    assert LogEntry.objects.filter(
        user=operator, object_id=str(invoice.pk), action_flag=CHANGE
    ).exists()


def test_paying_a_void_invoice_is_refused_with_the_reason_and_changes_nothing(client, operator):
    invoice = manual_invoice(CustomerFactory())
    with clock.frozen_at(JAN_15):
        services.invoice_void(invoice=invoice, actor="tests")
    events_before = InvoiceEvent.objects.count()

    confirmation = run_action(client, "mark_paid", [invoice], confirm=False)
    assert "Not changed: it is void (final)." in text(confirmation)
    assert "None of the selected invoices can change this way." in text(confirmation)

    response = run_action(client, "mark_paid", [invoice], confirm=True)

    assert response.status_code == 302
    assert messages_of(get(client, INVOICES)) == [
        f"Invoice {invoice.number} is void and can't be paid: a void invoice is final."
    ]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("void", 0)
    assert InvoiceEvent.objects.count() == events_before
    assert not LogEntry.objects.filter(object_id=str(invoice.pk)).exists()


def test_an_invoice_page_links_to_its_legal_status_changes(client, operator):
    invoice = manual_invoice(CustomerFactory())
    page = get(client, f"{INVOICES}{invoice.pk}/change/")
    tools = re.search(r'<ul class="object-tools">.*?</ul>', page.content.decode(), re.S).group(0)
    assert "Mark paid" in tools and "Void" in tools and "Finalize" not in tools

    url = f"{INVOICES}{invoice.pk}/transition/void/"
    assert "Void: are you sure?" in text(get(client, url))
    response = post(client, url, {"post": "yes"})

    assert response["Location"] == f"{INVOICES}{invoice.pk}/change/"
    invoice.refresh_from_db()
    assert invoice.status == "void"


# --- Invoice page ----------------------------------------------------------------------------


def test_invoice_page_shows_lines_tier_breakdown_history_and_totals(client, operator):
    customer = CustomerFactory()
    tokens = hypernian_usage_price()
    subscription = subscribe(customer, licensed_price(unit_amount=2000), tokens)
    send_usage(tokens, customer, 150000, timestamp=JAN_1 + dt.timedelta(days=9), received=JAN_15)
    renewal = services.subscription_close_period(subscription=subscription, at=FEB_1)
    services.invoice_finalize(invoice=renewal, actor="billing run", at=FEB_1)

    response = get(client, f"{INVOICES}{renewal.pk}/change/", at=FEB_1)

    assert response.status_code == 200
    lines = section(response, "invoice-lines")
    assert "Hypernian: usage Jan 1, 2026 to Jan 31, 2026" in lines
    assert "150,000" in lines
    assert "Tier 1: 100,000 x 0.00 USD 100,000 0.00 USD" in lines
    assert "Tier 2: 50,000 x 0.001 USD 50,000 50.00 USD" in lines
    assert "Amount due 70.00 USD" in lines
    history = section(response, "invoice-history")
    assert "draft → open billing run" in history
    # Read-only: no save button, and no form fields to change.
    assert 'name="_save"' not in response.content.decode()


# --- Create invoice --------------------------------------------------------------------------


def _invoice_header(customer, **overrides) -> dict:
    return {
        "invoice-customer": customer.pk,
        "invoice-currency": "usd",
        "invoice-collection_method": "send_invoice",
        "invoice-days_until_due": "30",
        "invoice-description": "",
        **overrides,
    }


def _items(*rows) -> dict:
    data = {"items-TOTAL_FORMS": str(len(rows)), "items-INITIAL_FORMS": "0"}
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"items-{index}-{key}"] = value
    return data


def test_create_invoice_for_hypernian_credits_then_mark_it_paid(client, operator):
    customer = CustomerFactory(name="Northwind")
    header = _invoice_header(customer)

    assert "Step 1 of 3" in text(get(client, f"{INVOICES}add/"))
    items_step = post(client, f"{INVOICES}add/", {**header, "_to_items": "1"})
    assert "Step 2 of 3: invoice Northwind" in text(items_step)
    assert "sent for payment within 30 days" in text(items_step)

    credits_row = {"description": "Hypernian Credits", "amount": "100000.00", "quantity": "1"}
    added = post(client, f"{INVOICES}add/", {**header, **_items(credits_row), "_add_item": "1"})
    assert added.context["formset"].total_form_count() == 2  # "Add another item"

    review = post(
        client,
        f"{INVOICES}add/",
        {**header, **_items(credits_row, {"quantity": "1"}), "_preview": "1"},
    )
    assert review.status_code == 200
    assert "Hypernian Credits" in section(review, "invoice-review")
    assert "Amount due: 100,000.00 USD" in section(review, "invoice-review")
    assert not Invoice.objects.exists()

    created = post(client, f"{INVOICES}add/", {**carried(review), "_create_send": "1"})

    invoice = Invoice.objects.get()
    assert created["Location"] == f"{INVOICES}{invoice.pk}/change/"
    assert (invoice.status, invoice.number) == ("open", "INV-0001")
    assert (invoice.amount_due, invoice.currency, invoice.billing_reason) == (
        10000000,
        "USD",
        "manual",
    )
    assert invoice.due_date == JAN_15 + dt.timedelta(days=30)
    [line] = invoice.lines.all()
    assert (line.description, line.amount) == ("Hypernian Credits", 10000000)
    assert LogEntry.objects.filter(
        user=operator, object_id=str(invoice.pk), action_flag=ADDITION
    ).exists()
    assert "Finalized invoice INV-0001 for Northwind: 100,000.00 USD due." in messages_of(
        get(client, f"{INVOICES}{invoice.pk}/change/")
    )

    run_action(client, "mark_paid", [invoice], confirm=True)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == (
        "paid",
        10000000,
        0,
    )


def test_create_draft_with_a_one_time_price_keeps_it_a_draft(client, operator):
    customer = CustomerFactory()
    setup = price_create(
        product=ProductFactory(name="Onboarding"),
        currency="usd",
        terms=PriceTerms(billing_scheme="per_unit", unit_amount=Decimal(25000)),
        recurring=None,
    )
    data = {
        **_invoice_header(customer),
        **_items({"price": str(setup.pk), "quantity": "2"}),
    }
    review = post(client, f"{INVOICES}add/", {**data, "_preview": "1"})
    assert "Amount due: 500.00 USD" in text(review)

    post(client, f"{INVOICES}add/", {**carried(review), "_create_draft": "1"})

    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number, invoice.amount_due) == ("draft", None, 50000)
    assert invoice.lines.get().description == "Onboarding"


def test_create_invoice_refuses_sub_cent_amounts_and_empty_invoices(client, operator):
    customer = CustomerFactory()
    header = _invoice_header(customer)

    too_precise = post(
        client,
        f"{INVOICES}add/",
        {**header, **_items({"description": "Fee", "amount": "10.001"}), "_preview": "1"},
    )
    assert "USD amounts have at most 2 decimal places." in text(too_precise)
    assert "Nothing has been saved" in text(too_precise)

    empty = post(
        client, f"{INVOICES}add/", {**header, **_items({"quantity": "1"}), "_create_send": "1"}
    )
    assert "Add at least one line item." in text(empty)
    assert not Invoice.objects.exists()


def test_create_invoice_refuses_an_unknown_currency_on_the_first_step(client, operator):
    customer = CustomerFactory()
    response = post(
        client,
        f"{INVOICES}add/",
        {**_invoice_header(customer, **{"invoice-currency": "usx"}), "_to_items": "1"},
    )
    assert "Invalid currency: 'usx'" in text(response)
    assert "Step 1 of 3" in text(response)


def test_a_manual_draft_can_be_deleted_but_a_finalized_invoice_cannot(admin_client):
    draft = manual_invoice(CustomerFactory(), finalize=False)
    final = manual_invoice(CustomerFactory())

    assert get(admin_client, f"{INVOICES}{final.pk}/delete/").status_code == 403
    response = post(admin_client, f"{INVOICES}{draft.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(Invoice.objects.all()) == [final]


# --- Late usage ------------------------------------------------------------------------------


def test_late_usage_lists_events_that_arrived_after_their_invoice_was_finalized(client, operator):
    customer = CustomerFactory(name="Northwind")
    tokens = hypernian_usage_price(meter=MeterFactory(display_name="API tokens"))
    subscription = subscribe(customer, tokens)
    send_usage(tokens, customer, 120000, timestamp=JAN_15, received=JAN_15)
    renewal = services.subscription_close_period(subscription=subscription, at=FEB_1)
    finalized = services.invoice_finalize(
        invoice=renewal, actor="billing run", at=FEB_1 + dt.timedelta(hours=1)
    )
    day_after = FEB_1 + dt.timedelta(days=1)
    late_at = FEB_1 - dt.timedelta(hours=2)
    send_usage(tokens, customer, 7000, timestamp=late_at, received=day_after, identifier="late-1")
    send_usage(tokens, customer, 500, timestamp=late_at, received=day_after, identifier="late-2")

    invoice_list = get(client, INVOICES, at=day_after)
    assert "/admin/invoicing/invoice/late-usage/" in invoice_list.content.decode()
    response = get(client, f"{INVOICES}late-usage/", at=day_after)

    assert response.status_code == 200
    row = section(response, "late-usage")
    assert re.search(
        rf"Northwind \({customer.public_id}\) API tokens {finalized.number} "
        r"2026-01-01 00:00 to 2026-02-01 00:00 2026-02-01 01:00 120,000 7,500 2",
        row,
    ), row
    # The event count links to exactly the late events in the meter event list.
    events = get(client, response.context["rows"][0]["events_url"], at=day_after)
    assert sorted(event.identifier for event in events.context["cl"].result_list) == [
        "late-1",
        "late-2",
    ]
    finalized.refresh_from_db()
    assert finalized.total == 2000  # billed 120,000 tokens; the late ones are not billed


def test_late_usage_page_says_when_there_is_none(client, viewer):
    response = get(client, f"{INVOICES}late-usage/")
    assert response.status_code == 200
    assert "No late usage." in text(response)


# --- Test clocks -----------------------------------------------------------------------------


def test_a_test_clock_is_created_and_advanced_through_a_period_close(client, operator):
    response = post(
        client, f"{TEST_CLOCKS}add/", {"name": "January run", "frozen_time": "2026-01-01T00:00:00"}
    )
    assert response.status_code == 302
    test_clock = SimulationClock.objects.get()
    assert (test_clock.name, test_clock.frozen_time) == ("January run", JAN_1)
    customer = CustomerFactory(test_clock=test_clock)
    subscription = subscribe(customer, licensed_price(unit_amount=2000))  # bills January

    advance_url = f"{TEST_CLOCKS}{test_clock.pk}/advance/"
    assert get(client, advance_url).status_code == 200
    advanced = post(client, advance_url, {"frozen_time": "2026-02-01T02:00:00"})

    assert advanced.status_code == 200
    renewal = subscription.invoices.get(billing_reason="subscription_cycle")
    assert (renewal.status, renewal.amount_due) == ("open", 2000)
    summary = section(advanced, "advance-summary")
    assert "Invoices created (1)" in summary and "Invoices finalized (1)" in summary
    assert renewal.number in summary
    test_clock.refresh_from_db()
    assert (test_clock.frozen_time, test_clock.status) == (
        dt.datetime(2026, 2, 1, 2, tzinfo=dt.UTC),
        "ready",
    )
    assert LogEntry.objects.filter(
        user=operator, object_id=str(test_clock.pk), action_flag=CHANGE
    ).exists()
    [listed] = get(client, TEST_CLOCKS).context["cl"].result_list
    assert (listed.name, listed.customer_count) == ("January run", 1)


def test_a_test_clock_refuses_to_move_backwards(client, operator):
    with clock.frozen_at(JAN_1):
        test_clock = services.test_clock_create(frozen_time=FEB_1, name="Sim")

    response = post(
        client, f"{TEST_CLOCKS}{test_clock.pk}/advance/", {"frozen_time": "2026-01-15T00:00:00"}
    )

    assert response.status_code == 200
    assert (
        response.context["form"]
        .errors["frozen_time"][0]
        .startswith("A test clock only moves forward")
    )
    test_clock.refresh_from_db()
    assert (test_clock.frozen_time, test_clock.status) == (FEB_1, "ready")


# --- Billing run failures --------------------------------------------------------------------


def test_billing_run_failures_are_listed_and_can_be_marked_resolved(client, operator):
    subscription = subscribe(CustomerFactory(), licensed_price())
    failure = BillingRunFailure.objects.create(
        subscription=subscription, step="close period", error="ValueError: boom", created_at=FEB_1
    )

    listing = get(client, "/admin/invoicing/billingrunfailure/", {"resolved": "no"})
    assert "ValueError: boom" in text(listing)
    post(
        client,
        "/admin/invoicing/billingrunfailure/",
        {"action": "mark_resolved", "_selected_action": [failure.pk]},
    )

    failure.refresh_from_db()
    assert failure.resolved_at == JAN_15


# --- Roles -----------------------------------------------------------------------------------


def test_a_viewer_reads_every_page_but_cannot_change_anything(client, viewer):
    customer = CustomerFactory()
    subscription = subscribe(customer, licensed_price())
    invoice = subscription.invoices.get()
    with clock.frozen_at(JAN_1):
        test_clock = services.test_clock_create(frozen_time=JAN_1)

    for url in (
        INVOICES,
        f"{INVOICES}{invoice.pk}/change/",
        f"{CUSTOMERS}{customer.pk}/change/",
        SUBSCRIPTIONS,
        f"{SUBSCRIPTIONS}{subscription.pk}/change/",
        TEST_CLOCKS,
        f"{TEST_CLOCKS}{test_clock.pk}/change/",
        "/admin/invoicing/billingrunfailure/",
    ):
        assert get(client, url).status_code == 200, url

    invoice_list = get(client, INVOICES).content.decode()
    assert "mark_paid" not in invoice_list and "Create invoice" not in invoice_list
    invoice_page = text(get(client, f"{INVOICES}{invoice.pk}/change/"))
    assert "Mark paid" not in invoice_page
    assert "Cancel now" not in text(get(client, f"{SUBSCRIPTIONS}{subscription.pk}/change/"))

    for url in (
        f"{INVOICES}add/",
        f"{SUBSCRIPTIONS}add/",
        f"{SUBSCRIPTIONS}{subscription.pk}/cancel/",
        f"{INVOICES}{invoice.pk}/transition/mark-paid/",
        f"{TEST_CLOCKS}{test_clock.pk}/advance/",
    ):
        assert get(client, url).status_code == 403, url
        assert post(client, url, {"post": "yes"}).status_code == 403, url

    run_action(client, "mark_paid", [invoice], confirm=True)
    invoice.refresh_from_db()
    assert invoice.status == "open"
    subscription.refresh_from_db()
    assert subscription.status == "active"
    test_clock.refresh_from_db()
    assert test_clock.frozen_time == JAN_1
