"""The credits admin as billing staff use it: the "New credit grant" page, "Grant credits" from a
paid prepayment invoice, "Expire now" and "Void" through confirmation pages, a customer's credits
after usage was billed, the grant list and the read-only ledger, and the viewer role's limits."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_site import clock
from billing_site.errors import BillingError
from credits.admin_forms import suggested_expiry
from credits.models import CreditBalanceTransaction, CreditGrant
from credits.presenters import STAFF_STATUS_LABELS
from invoicing import services
from invoicing.models import Invoice
from invoicing.services import billing_run
from tests.admin_pages import get, post, section, text
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    ProductFactory,
    hypernian_usage_price,
    licensed_price,
)
from tests.helpers import FEB_1, JAN_1, JAN_15, grant_credits, send_usage, subscribe

pytestmark = pytest.mark.django_db

JAN_10 = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
NEXT_JAN_1 = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
NEXT_JAN_15 = dt.datetime(2027, 1, 15, tzinfo=dt.UTC)

GRANTS = "/admin/credits/creditgrant/"
LEDGER = "/admin/credits/creditbalancetransaction/"
INVOICES = "/admin/invoicing/invoice/"
CUSTOMERS = "/admin/invoicing/customer/"
T = CreditBalanceTransaction


# --- helpers ---------------------------------------------------------------------------------


def object_tools(response) -> str:
    match = re.search(r'<ul class="object-tools">.*?</ul>', response.content.decode(), re.S)
    return match.group(0) if match else ""


def messages_after(client, response) -> list[str]:
    """The messages a redirect leaves for the page it points at."""
    assert response.status_code == 302, response.status_code
    landed = get(client, response["Location"])
    return [str(message) for message in landed.context["messages"]]


def grant_form(customer, **overrides) -> dict:
    """The "New credit grant" form as staff fill it in for the docs' example."""
    data = {
        "customer": customer.pk,
        "name": "Purchased Credits",
        "amount": "120000.00",
        "currency": "usd",
        "category": "paid",
        "expiry": "date",
        "expires_at": "2027-01-15T00:00:00",
        "priority": "50",
        "scope": "all_metered",
        "effective_at": "",
        **overrides,
    }
    return {key: value for key, value in data.items() if value is not None}


def counts() -> tuple[int, int]:
    return CreditGrant.objects.count(), T.objects.count()


def prepayment_invoice(customer, *, paid: bool) -> Invoice:
    """The credit burndown's first step: a one-off 100,000.00 USD invoice, finalized."""
    with clock.frozen_at(JAN_15):
        invoice = services.invoice_create(customer=customer, currency="usd")
        services.invoice_item_create(
            invoice=invoice, description="Hypernian Credits", amount=10000000
        )
        invoice = services.invoice_finalize(invoice=invoice, actor="tests")
        if paid:
            invoice = services.invoice_pay(invoice=invoice, actor="tests", paid_out_of_band=True)
    return Invoice.objects.get(pk=invoice.pk)


def burned_down_grant():
    """120,000 USD granted on Jan 1; 150,000 tokens used in January, billed on Feb 1 at
    50.00 USD (the first 100,000 are free) from the credits."""
    customer = CustomerFactory(name="Northwind")
    tokens = hypernian_usage_price()
    subscribe(customer, tokens)
    credits = grant_credits(customer, expires_at=NEXT_JAN_1)
    send_usage(tokens, customer, 150000, timestamp=JAN_10, received=JAN_15)
    with clock.frozen_at(FEB_1 + dt.timedelta(hours=2)):
        billing_run(at=FEB_1 + dt.timedelta(hours=2))
    usage_invoice = customer.invoices.get(billing_reason="subscription_cycle")
    # Paid from credits, it stays open with nothing due (so voiding it can give them back).
    assert (usage_invoice.status, usage_invoice.total_credits) == ("open", 5000)
    return customer, credits, usage_invoice


# --- New credit grant ------------------------------------------------------------------------


def test_new_credit_grant_for_the_docs_example_creates_the_grant_and_its_ledger_row(
    client, operator
):
    customer = CustomerFactory(name="Northwind")

    page = get(client, f"{GRANTS}add/", {"customer": customer.pk})
    assert page.status_code == 200
    assert "New credit grant" in text(page)
    form = page.context["form"]
    assert form["customer"].value() == customer.pk
    assert (form["priority"].value(), form["category"].value()) == (50, "paid")
    assert (form["expiry"].value(), form["scope"].value()) == ("never", "all_metered")

    response = post(client, f"{GRANTS}add/", grant_form(customer))

    credits = CreditGrant.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{GRANTS}{credits.pk}/change/"
    assert (credits.customer, credits.name, credits.amount, credits.currency) == (
        customer,
        "Purchased Credits",
        12000000,
        "USD",
    )
    assert (credits.category, credits.priority, credits.applies_to_all_metered) == (
        "paid",
        50,
        True,
    )
    assert (credits.effective_at, credits.expires_at) == (JAN_15, NEXT_JAN_15)
    assert credits.source_invoice is None
    [row] = T.objects.all()
    assert (row.grant, row.type, row.reason, row.amount) == (
        credits,
        "credit",
        "credits_granted",
        12000000,
    )
    assert LogEntry.objects.filter(
        user=operator, object_id=str(credits.pk), action_flag=ADDITION
    ).exists()

    grant_page = get(client, response["Location"])
    assert "Granted 120,000.00 USD of credits to Northwind" in text(grant_page)
    assert "All metered prices" in text(grant_page)
    assert "Credits granted 120,000.00 USD" in section(grant_page, "grant-ledger")
    assert 'name="_save"' not in grant_page.content.decode()  # read-only


def test_a_grant_can_be_scoped_to_specific_metered_prices(client, operator):
    customer = CustomerFactory()
    tokens = hypernian_usage_price()
    other = hypernian_usage_price(
        product=ProductFactory(name="Search"), meter=MeterFactory(event_name="searches")
    )

    page = get(client, f"{GRANTS}add/", {"customer": customer.pk})
    offered = set(page.context["form"].fields["prices"].queryset)
    assert offered == {tokens, other}  # active metered prices in USD, nothing else

    response = post(
        client,
        f"{GRANTS}add/",
        grant_form(customer, scope="prices", prices=[tokens.pk], expiry="never", expires_at=""),
    )

    assert response.status_code == 302
    credits = CreditGrant.objects.get()
    assert credits.applies_to_all_metered is False
    assert list(credits.prices.all()) == [tokens]
    assert credits.expires_at is None
    assert tokens.public_id in text(get(client, response["Location"]))


def test_a_test_clock_customer_is_granted_at_its_clock_time(client, operator):
    with clock.frozen_at(JAN_1):
        simulation = services.test_clock_create(frozen_time=JAN_1, name="Sim")
    customer = CustomerFactory(test_clock=simulation)

    post(client, f"{GRANTS}add/", grant_form(customer, expiry="never"))

    credits = CreditGrant.objects.get()
    assert (credits.effective_at, credits.created_at) == (JAN_1, JAN_1)


BAD_INPUTS = {
    # case: (form overrides, given the fixtures), field, message
    "zero amount": (lambda f: {"amount": "0"}, "amount", "must be greater than zero"),
    "negative amount": (lambda f: {"amount": "-100.00"}, "amount", "must be greater than zero"),
    "sub-cent amount": (
        lambda f: {"amount": "120000.001"},
        "amount",
        "USD amounts have at most 2 decimal places.",
    ),
    "currency the subscriptions don't use": (
        lambda f: {"currency": "eur"},
        "currency",
        "This customer's subscriptions bill in USD, so credits in EUR could never be used.",
    ),
    "unknown currency": (lambda f: {"currency": "usx"}, "currency", "Invalid currency: 'usx'"),
    "expiry before the effective date": (
        lambda f: {"effective_at": "2026-03-01T00:00:00", "expires_at": "2026-02-01T00:00:00"},
        "expires_at",
        "expires_at must be after effective_at.",
    ),
    "specific date without a date": (
        lambda f: {"expires_at": ""},
        "expires_at",
        "Choose the expiry date, or “No expiry”.",
    ),
    "priority above 100": (
        lambda f: {"priority": "101"},
        "priority",
        "priority must be between 0 and 100 (got 101); lower is spent first.",
    ),
    "negative priority": (
        lambda f: {"priority": "-1"},
        "priority",
        "priority must be between 0 and 100 (got -1)",
    ),
    "both scopes": (
        lambda f: {"scope": "all_metered", "prices": [f["tokens"].pk]},
        "prices",
        "either to all metered prices or to specific prices, not both",
    ),
    "specific prices without a price": (
        lambda f: {"scope": "prices"},
        "prices",
        "Choose at least one metered price, or “All metered prices”.",
    ),
    "a non-metered price": (
        lambda f: {"scope": "prices", "prices": [f["seats"].pk]},
        "prices",
        "isn't metered: credits only pay for metered usage.",
    ),
    "a price in another currency": (
        lambda f: {"scope": "prices", "prices": [f["eur_tokens"].pk]},
        "prices",
        "is in EUR, the grant in USD.",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_shows_a_clear_error_next_to_its_field_and_creates_nothing(
    client, operator, case
):
    customer = CustomerFactory()
    seats = licensed_price(product=ProductFactory(name="Seats"))
    tokens = hypernian_usage_price()
    subscribe(customer, seats, tokens)  # bills in USD
    from catalog.services import Recurring, price_create

    eur_tokens = price_create(
        product=ProductFactory(name="EU tokens"),
        currency="eur",
        terms=tokens.terms,
        recurring=Recurring(interval="month", usage_type="metered", meter=tokens.meter),
    )
    overrides, field, message = BAD_INPUTS[case]
    fixtures = {"seats": seats, "tokens": tokens, "eur_tokens": eur_tokens}
    before = counts()

    response = post(client, f"{GRANTS}add/", grant_form(customer, **overrides(fixtures)))

    assert response.status_code == 200
    errors = response.context["form"].errors.get(field, [])
    assert any(message in error for error in errors), (field, errors)
    assert "Nothing has been saved." in text(response)
    assert counts() == before


# --- Grant credits from a paid invoice -------------------------------------------------------


def test_grant_credits_from_a_paid_prepayment_invoice_is_prefilled_and_links_the_grant(
    client, operator
):
    customer = CustomerFactory(name="Northwind")
    invoice = prepayment_invoice(customer, paid=True)
    invoice_page = get(client, f"{INVOICES}{invoice.pk}/change/")
    assert "Grant credits" in object_tools(invoice_page)
    url = f"{INVOICES}{invoice.pk}/grant-credits/"

    page = get(client, url)

    assert page.status_code == 200
    assert "Invoice INV-0001 of Northwind" in text(page)
    assert "is paid: 100,000.00 USD" in text(page)
    form = page.context["form"]
    assert "customer" not in form.fields  # the invoice's customer, fixed
    assert form["amount"].value() == Decimal("100000.00")
    assert 'value="100000.00"' in page.content.decode()
    assert form["name"].value() == "Prepaid credits (INV-0001)"
    assert form["expiry"].value() == "date"
    assert 'value="2027-01-15T00:00:00"' in page.content.decode()  # a year after Jan 15
    assert (form["category"].value(), form["scope"].value()) == ("paid", "all_metered")

    data = grant_form(customer, name="Prepaid credits (INV-0001)")
    del data["customer"]
    response = post(client, url, data)

    credits = CreditGrant.objects.get()
    assert response["Location"] == f"{GRANTS}{credits.pk}/change/"
    assert (credits.customer, credits.source_invoice, credits.amount) == (
        customer,
        invoice,
        12000000,
    )
    assert credits.expires_at == NEXT_JAN_15
    assert T.objects.get().reason == "credits_granted"
    assert LogEntry.objects.filter(
        user=operator, object_id=str(credits.pk), action_flag=ADDITION
    ).exists()
    granted = section(get(client, f"{INVOICES}{invoice.pk}/change/"), "invoice-credit-grants")
    assert "Prepaid credits (INV-0001)" in granted and "120,000.00 USD" in granted
    # A second visit warns that credits were already granted from this invoice.
    assert "Credits were already granted from this invoice" in text(get(client, url))


@pytest.mark.parametrize(
    ("now", "suggested"),
    [
        (dt.datetime(2026, 1, 15, 9, 30, 5, 123456, tzinfo=dt.UTC), "2027-01-15 09:30:05"),
        # No Feb 29 next year: the last day of February instead.
        (dt.datetime(2028, 2, 29, 12, 0, tzinfo=dt.UTC), "2029-02-28 12:00:00"),
        (dt.datetime(2027, 2, 28, 12, 0, tzinfo=dt.UTC), "2028-02-28 12:00:00"),
    ],
)
def test_grant_credits_suggests_an_expiry_a_year_later_to_the_second(now, suggested):
    assert f"{suggested_expiry(now):%Y-%m-%d %H:%M:%S}" == suggested


def test_grant_credits_is_refused_for_an_unpaid_invoice(client, operator):
    customer = CustomerFactory()
    invoice = prepayment_invoice(customer, paid=False)
    url = f"{INVOICES}{invoice.pk}/grant-credits/"

    assert "Grant credits" not in object_tools(get(client, f"{INVOICES}{invoice.pk}/change/"))
    refused = get(client, url)
    assert refused["Location"] == f"{INVOICES}{invoice.pk}/change/"
    assert messages_after(client, refused) == [
        "Invoice INV-0001 is open: grant prepaid credits only once it is paid. "
        "Nothing has been granted."
    ]
    data = grant_form(customer)
    del data["customer"]
    assert post(client, url, data).status_code == 302
    assert counts() == (0, 0)
    # The service refuses it too, whoever calls it.
    with pytest.raises(BillingError) as refusal:
        grant_credits(customer, source_invoice=invoice, at=JAN_15)
    assert refusal.value.param == "source_invoice"
    assert counts() == (0, 0)


def test_grant_credits_is_not_offered_on_a_subscription_invoice(client, operator):
    customer = CustomerFactory()
    subscription = subscribe(customer, licensed_price())
    first = subscription.invoices.get()
    with clock.frozen_at(JAN_1):
        services.invoice_pay(invoice=first, actor="tests", paid_out_of_band=True)

    assert "Grant credits" not in object_tools(get(client, f"{INVOICES}{first.pk}/change/"))
    refused = get(client, f"{INVOICES}{first.pk}/grant-credits/")
    assert "credits are granted from a paid one-off invoice" in messages_after(client, refused)[0]


# --- Expire now and Void ---------------------------------------------------------------------


def test_expire_now_confirms_then_debits_what_remains(client, operator):
    _, credits, _ = burned_down_grant()
    url = f"{GRANTS}{credits.pk}/expire/confirm/"
    at = FEB_1 + dt.timedelta(days=1)
    assert "Expire now" in object_tools(get(client, f"{GRANTS}{credits.pk}/change/", at=at))

    confirmation = get(client, url, at=at)
    assert confirmation.status_code == 200
    summary = section(confirmation, "grant-action-summary")
    assert "Remaining, to be debited 119,950.00 USD" in summary
    credits.refresh_from_db()
    assert credits.expired_at is None
    ledger_before = T.objects.count()

    response = post(client, url, {"post": "yes"}, at=at)

    assert response["Location"] == f"{GRANTS}{credits.pk}/change/"
    credits.refresh_from_db()
    assert (credits.expired_at, credits.expires_at) == (at, at)
    assert T.objects.count() == ledger_before + 1
    debit = T.objects.latest("pk")
    assert (debit.type, debit.reason, debit.amount) == ("debit", "credits_expired", 11995000)
    log = LogEntry.objects.get(user=operator, object_id=str(credits.pk), action_flag=CHANGE)
    assert log.get_change_message() == "Expired at 2026-02-02 00:00:00 UTC; 119,950.00 USD debited."
    page = get(client, f"{GRANTS}{credits.pk}/change/", at=at)
    assert "Expired -119,950.00 USD" in section(page, "grant-ledger")
    assert "Expire now" not in object_tools(page)


def test_void_confirms_and_voiding_again_or_expiring_a_voided_grant_is_refused(client, operator):
    customer = CustomerFactory()
    credits = grant_credits(customer, 5000)
    void_url = f"{GRANTS}{credits.pk}/void/confirm/"
    expire_url = f"{GRANTS}{credits.pk}/expire/confirm/"

    confirmation = get(client, void_url)
    assert "Void: are you sure?" in text(confirmation)
    assert "Remaining, to be debited 50.00 USD" in section(confirmation, "grant-action-summary")
    assert CreditGrant.objects.get().voided_at is None

    post(client, void_url, {"post": "yes"})

    credits.refresh_from_db()
    assert credits.voided_at == JAN_15
    debit = T.objects.latest("pk")
    assert (debit.type, debit.reason, debit.amount) == ("debit", "credits_voided", 5000)
    assert LogEntry.objects.filter(
        user=operator, object_id=str(credits.pk), action_flag=CHANGE
    ).exists()
    page = get(client, f"{GRANTS}{credits.pk}/change/")
    assert "Void" not in object_tools(page) and "Expire now" not in object_tools(page)
    ledger_before = T.objects.count()

    again = post(client, void_url, {"post": "yes"})
    assert messages_after(client, again) == [f"Credit grant {credits.public_id} is already voided."]
    assert messages_after(client, get(client, void_url)) == [
        f"Credit grant {credits.public_id} is already voided."
    ]
    expired = post(client, expire_url, {"post": "yes"})
    assert messages_after(client, expired) == [
        f"Credit grant {credits.public_id} is voided; a voided grant can't expire."
    ]
    credits.refresh_from_db()
    assert (credits.voided_at, credits.expired_at) == (JAN_15, None)
    assert T.objects.count() == ledger_before
    assert LogEntry.objects.filter(object_id=str(credits.pk), action_flag=CHANGE).count() == 1


def test_void_warns_when_a_draft_in_its_grace_period_expected_the_credits(client, operator):
    customer = CustomerFactory()
    tokens = hypernian_usage_price()
    subscription = subscribe(customer, tokens)
    credits = grant_credits(customer, expires_at=NEXT_JAN_1)
    send_usage(tokens, customer, 150000, timestamp=JAN_10, received=JAN_15)
    draft = services.subscription_close_period(subscription=subscription, at=FEB_1)
    assert draft.status == "draft"  # finalizes after the grace period

    confirmation = get(client, f"{GRANTS}{credits.pk}/void/confirm/", at=FEB_1)

    assert "Remaining, to be debited 120,000.00 USD" in text(confirmation)
    assert "Draft invoices still in their grace period expect 50.00 USD of these credits" in text(
        confirmation
    )


# --- Customer page ---------------------------------------------------------------------------


def test_customer_page_shows_remaining_credits_expiry_and_ledger_after_usage(client, operator):
    customer, credits, usage_invoice = burned_down_grant()

    page = get(client, f"{CUSTOMERS}{customer.pk}/change/", at=FEB_1 + dt.timedelta(hours=3))

    grants = section(page, "customer-credit-grants")
    assert re.search(
        rf"Purchased Credits \({credits.public_id}\) Paid 120,000.00 USD 119,950.00 USD 50 "
        r"2026-01-01 00:00 2027-01-01 00:00 Active",
        grants,
    ), grants
    assert "USD 119,950.00 USD 119,950.00 USD" in section(page, "customer-credit-balances")
    ledger = section(page, "customer-credit-ledger")
    assert re.search(
        rf"2026-02-01 02:00 Purchased Credits Debit Applied to an invoice -50.00 USD "
        rf"{usage_invoice.number}",
        ledger,
    ), ledger
    assert "2026-01-01 00:00 Purchased Credits Credit Credits granted 120,000.00 USD" in ledger
    assert f"{GRANTS}add/?customer={customer.pk}" in object_tools(page)


# --- Lists -----------------------------------------------------------------------------------


def test_grant_list_shows_remaining_and_status_with_one_query_for_the_page(client, operator):
    customer, burned, _ = burned_down_grant()
    at = FEB_1 + dt.timedelta(days=1)

    with CaptureQueriesContext(connection) as one_grant:
        get(client, GRANTS, at=at)
    scheduled = grant_credits(customer, 1000, at=at, effective_at=at + dt.timedelta(days=7))
    lapsed = grant_credits(customer, 2000, at=JAN_1, expires_at=JAN_15)
    voided = grant_credits(customer, 3000, at=JAN_1)
    with clock.frozen_at(JAN_15):
        from credits.services import credit_grant_void

        credit_grant_void(grant=voided)
    with CaptureQueriesContext(connection) as four_grants:
        listing = get(client, GRANTS, at=at)

    assert len(four_grants) == len(one_grant)
    rows = {row.pk: row for row in listing.context["cl"].result_list}
    assert rows[burned.pk].remaining == 11995000
    assert (rows[voided.pk].remaining, rows[lapsed.pk].remaining) == (0, 2000)
    assert "119,950.00 USD" in text(listing)
    assert get(client, GRANTS, {"status": "bogus"}, at=at).status_code == 200
    for status, expected in [
        ("active", burned),
        ("scheduled", scheduled),
        ("expired", lapsed),
        ("voided", voided),
    ]:
        filtered = get(client, GRANTS, {"status": status}, at=at).context["cl"].result_list
        assert list(filtered) == [expected], status
    assert "Scheduled" in text(listing) and "Voided" in text(listing)


def test_the_grant_list_words_statuses_as_staff_read_them(client, operator, monkeypatch):
    """The status column and the status filter use the staff wording (one home for it), not
    the model's codes."""
    burned_down_grant()
    monkeypatch.setitem(STAFF_STATUS_LABELS, CreditGrant.STATUS_ACTIVE, "Active (spendable)")

    listing = get(client, GRANTS, at=FEB_1 + dt.timedelta(days=1))

    assert text(listing).count("Active (spendable)") == 2  # the row and the filter


def test_the_ledger_is_listed_read_only(client, operator):
    customer = CustomerFactory()
    credits = grant_credits(customer, 5000)
    with clock.frozen_at(JAN_15):
        from credits.services import credit_grant_void

        credit_grant_void(grant=credits)

    listing = get(client, LEDGER, {"q": credits.public_id})
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 2
    voids = get(client, LEDGER, {"reason__exact": "credits_voided"}).context["cl"].result_list
    assert [row.amount for row in voids] == [5000]
    row = T.objects.latest("pk")
    page = get(client, f"{LEDGER}{row.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert "-50.00 USD" in text(page)
    assert get(client, f"{LEDGER}add/").status_code == 403
    assert post(client, f"{LEDGER}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert get(client, f"{GRANTS}{credits.pk}/delete/").status_code == 403
    assert T.objects.count() == 2


# --- Roles -----------------------------------------------------------------------------------


def test_a_viewer_reads_credit_pages_but_gets_403_on_every_write(client, viewer):
    customer = CustomerFactory()
    credits = grant_credits(customer, 5000)
    invoice = prepayment_invoice(customer, paid=True)
    before = counts()

    for url in (
        GRANTS,
        f"{GRANTS}{credits.pk}/change/",
        LEDGER,
        f"{CUSTOMERS}{customer.pk}/change/",
    ):
        assert get(client, url).status_code == 200, url
    grant_page = get(client, f"{GRANTS}{credits.pk}/change/")
    assert "Void" not in object_tools(grant_page)
    assert "Grant credits" not in object_tools(get(client, f"{INVOICES}{invoice.pk}/change/"))
    customer_page = get(client, f"{CUSTOMERS}{customer.pk}/change/")
    assert "New credit grant" not in text(customer_page)
    assert "Purchased Credits" in section(customer_page, "customer-credit-grants")

    for url in (
        f"{GRANTS}add/",
        f"{GRANTS}{credits.pk}/void/confirm/",
        f"{GRANTS}{credits.pk}/expire/confirm/",
        f"{INVOICES}{invoice.pk}/grant-credits/",
    ):
        assert get(client, url).status_code == 403, url
        assert post(client, url, {**grant_form(customer), "post": "yes"}).status_code == 403, url

    assert counts() == before
    credits.refresh_from_db()
    assert (credits.voided_at, credits.expired_at) == (None, None)
