"""The meter admin: event counts, the usage chart, test events, the read-only event list, and
cancelling events under the 24-hour rule."""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_site import clock
from billing_site.charts import bar_chart_svg
from billing_site.errors import BillingError
from billing_site.roles import VIEWER
from metering import services
from metering.admin import CappedCountPaginator
from metering.cancellation import meter_event_cancel
from metering.ingest import meter_event_create
from metering.models import Meter, MeterEvent, MeterEventAdjustment
from metering.store import usage
from tests.factories import CustomerFactory, MeterFactory

NOW = dt.datetime(2026, 11, 21, 12, 30, tzinfo=dt.UTC)
METERS_URL = "/admin/metering/meter/"
EVENTS_URL = "/admin/metering/meterevent/"


def at(hours: float) -> dt.datetime:
    """NOW plus (or minus) some hours."""
    return NOW + dt.timedelta(hours=hours)


def send(meter, customer, value, *, identifier=None, timestamp=None, received=NOW):
    with clock.frozen_at(received):
        return meter_event_create(
            event_name=meter.event_name,
            payload={"stripe_customer_id": customer.public_id, "value": str(value)},
            identifier=identifier,
            timestamp=timestamp,
        )


def month_usage(meter, customer) -> Decimal:
    return usage(meter=meter, customer_id=customer.pk, start=at(-30 * 24), end=at(1))


def change_url(meter) -> str:
    return f"{METERS_URL}{meter.pk}/change/"


def send_test_event_url(meter) -> str:
    return f"{METERS_URL}{meter.pk}/send-test-event/"


def get(client, url, data=None):
    with clock.frozen_at(NOW):
        return client.get(url, data)


def post(client, url, data, **kwargs):
    with clock.frozen_at(NOW):
        return client.post(url, data, **kwargs)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def row_of(response, text: str) -> str:
    rows = re.findall(r"<tr.*?</tr>", response.content.decode(), re.S)
    matching = [row for row in rows if text in row]
    assert len(matching) == 1, f"expected one row with {text!r}"
    return matching[0]


def listed_identifiers(response) -> set[str]:
    return {event.identifier for event in response.context["cl"].result_list}


@pytest.fixture
def meter(db):
    return MeterFactory(event_name="api_tokens", display_name="API tokens")


@pytest.fixture
def viewer_client(client, db):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=VIEWER))
    client.force_login(user)
    return client


# --- Meter list ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_meter_list_shows_counted_events_and_the_last_event_time(admin_client, meter):
    quiet = MeterFactory(event_name="quiet_meter")
    customer = CustomerFactory()
    send(meter, customer, 5, timestamp=at(-2))
    send(meter, customer, 5, identifier="mistake", timestamp=at(-1))
    send(meter, customer, 5, timestamp=dt.datetime(2026, 11, 21, 11, 50, tzinfo=dt.UTC))
    with clock.frozen_at(NOW):
        meter_event_cancel(event_name=meter.event_name, identifier="mistake")

    response = get(admin_client, METERS_URL)

    busy_row = row_of(response, "api_tokens")
    assert f'?meter__id__exact={meter.pk}">2</a>' in busy_row  # the cancelled one doesn't count
    assert "Nov. 21, 2026, 11:50 a.m." in busy_row
    assert f'?meter__id__exact={quiet.pk}">0</a>' in row_of(response, "quiet_meter")


@pytest.mark.django_db
def test_meter_list_costs_as_many_queries_for_five_meters_as_for_one(admin_client, meter):
    customer = CustomerFactory()
    send(meter, customer, 1)
    with CaptureQueriesContext(connection) as one_meter:
        get(admin_client, METERS_URL)
    for _ in range(4):
        send(MeterFactory(), customer, 1)
    with CaptureQueriesContext(connection) as five_meters:
        response = get(admin_client, METERS_URL)

    assert len(response.context["cl"].result_list) == 5
    assert len(five_meters) == len(one_meter)


@pytest.mark.django_db
def test_meter_add_and_display_name_change_still_work_beside_the_chart(admin_client):
    added = post(
        admin_client,
        f"{METERS_URL}add/",
        {
            "display_name": "Storage",
            "event_name": "storage_gb",
            "formula": "sum",
            "customer_payload_key": "stripe_customer_id",
            "value_payload_key": "value",
        },
    )
    meter = Meter.objects.get(event_name="storage_gb")
    changed = post(admin_client, change_url(meter), {"display_name": "Storage (GB)"})

    assert (added.status_code, changed.status_code) == (302, 302)
    meter.refresh_from_db()
    assert meter.display_name == "Storage (GB)"


# --- Usage chart ----------------------------------------------------------------------------------


@pytest.fixture
def chart_usage(meter):
    alice, bob = CustomerFactory(), CustomerFactory()
    send(meter, alice, 2, timestamp=dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC))
    send(meter, alice, 5, timestamp=dt.datetime(2026, 11, 21, 10, 15, tzinfo=dt.UTC))
    send(meter, alice, 1, timestamp=dt.datetime(2026, 11, 21, 11, 20, tzinfo=dt.UTC))
    send(meter, bob, 7, timestamp=dt.datetime(2026, 11, 21, 11, 40, tzinfo=dt.UTC))
    return alice, bob


@pytest.mark.django_db
def test_meter_page_charts_hourly_usage_of_all_customers_over_48_hours(
    admin_client, meter, chart_usage
):
    response = get(admin_client, change_url(meter))

    content = page_text(response)
    assert response.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img"' in content
    assert content.count('<rect class="bar"') == 48
    assert "<title>21 Nov 10:00 UTC: 5</title>" in content
    assert "<title>21 Nov 11:00 UTC: 8</title>" in content  # both customers
    assert "<title>21 Nov 12:00 UTC: 0</title>" in content  # the current hour is the last bar
    assert "Send test event" in content
    assert f"{EVENTS_URL}?meter__id__exact={meter.pk}" in content


@pytest.mark.django_db
def test_meter_page_charts_daily_usage_over_30_days(admin_client, meter, chart_usage):
    response = get(admin_client, change_url(meter), {"window": "day"})

    content = page_text(response)
    assert content.count('<rect class="bar"') == 30
    assert "<title>20 Nov UTC: 2</title>" in content
    assert "<title>21 Nov UTC: 13</title>" in content


@pytest.mark.django_db
def test_meter_page_charts_one_customers_usage(admin_client, meter, chart_usage):
    alice, _ = chart_usage

    response = get(admin_client, change_url(meter), {"customer": alice.public_id})

    content = page_text(response)
    assert content.count('<rect class="bar"') == 48
    assert "<title>21 Nov 11:00 UTC: 1</title>" in content  # without bob's 7
    assert f"customer={alice.public_id}" in content  # "View events" keeps the customer


@pytest.mark.django_db
def test_meter_page_with_an_unknown_customer_says_so_instead_of_charting(admin_client, meter):
    response = get(admin_client, change_url(meter), {"customer": "cus_nope"})

    assert response.status_code == 200
    assert "No customer with id 'cus_nope'" in page_text(response)
    assert 'class="usage-chart"' not in page_text(response)


# --- Send test event ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_test_event_stores_the_event_and_logs_who_sent_it(admin_client, meter):
    customer = CustomerFactory()
    assert get(admin_client, send_test_event_url(meter)).status_code == 200

    response = post(
        admin_client,
        send_test_event_url(meter),
        {
            "customer": customer.pk,
            "value": "3.5",
            "identifier": "test-1",
            "timestamp": "2026-11-21T09:15:00",
        },
        follow=True,
    )

    assert month_usage(meter, customer) == Decimal("3.5")
    event = MeterEvent.objects.get(identifier="test-1")
    assert event.timestamp == dt.datetime(2026, 11, 21, 9, 15, tzinfo=dt.UTC)
    assert event.payload == {"stripe_customer_id": customer.public_id, "value": "3.5"}
    assert any("test-1" in message and "recorded" in message for message in messages_of(response))
    log = LogEntry.objects.get(action_flag=ADDITION)
    assert (log.object_id, log.user.username) == (str(event.pk), "admin")


@pytest.mark.django_db
def test_send_test_event_to_an_inactive_meter_shows_the_reason_and_stores_nothing(
    admin_client, meter
):
    services.meter_deactivate(meter=meter)
    customer = CustomerFactory()

    response = post(
        admin_client, send_test_event_url(meter), {"customer": customer.pk, "value": "1"}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "is inactive and refuses events" in form.non_field_errors()[0]
    assert not MeterEvent.objects.exists()


@pytest.mark.django_db
def test_send_test_event_with_a_used_identifier_is_refused_next_to_the_identifier(
    admin_client, meter
):
    customer = CustomerFactory()
    send(meter, customer, 2, identifier="dup")

    response = post(
        admin_client,
        send_test_event_url(meter),
        {"customer": customer.pk, "value": "40", "identifier": "dup"},
    )

    errors = response.context["adminform"].form.errors
    assert "already recorded" in errors["identifier"][0]
    assert month_usage(meter, customer) == 2
    assert MeterEvent.objects.count() == 1


@pytest.mark.django_db
def test_send_test_event_too_old_is_refused_next_to_the_timestamp(admin_client, meter):
    customer = CustomerFactory()

    response = post(
        admin_client,
        send_test_event_url(meter),
        {"customer": customer.pk, "value": "1", "timestamp": "2026-10-01T00:00"},
    )

    errors = response.context["adminform"].form.errors
    assert "more than 35 days in the past" in errors["timestamp"][0]
    assert not MeterEvent.objects.exists()


# --- Event list -----------------------------------------------------------------------------------


@pytest.fixture
def listed_events(meter):
    other_meter = MeterFactory(event_name="storage_gb")
    alice, bob = CustomerFactory(), CustomerFactory()
    send(meter, alice, 1, identifier="alice-cancelled", timestamp=at(-3))
    send(meter, alice, 1, identifier="alice-counted", timestamp=at(-2))
    send(meter, bob, 1, identifier="bob-counted", timestamp=at(-50))
    send(other_meter, bob, 1, identifier="bob-storage", timestamp=at(-1))
    with clock.frozen_at(NOW):
        meter_event_cancel(event_name=meter.event_name, identifier="alice-cancelled")
    return other_meter, alice, bob


@pytest.mark.django_db
def test_event_list_filters_by_cancelled(admin_client, listed_events):
    cancelled = get(admin_client, EVENTS_URL, {"cancelled": "yes"})
    counted = get(admin_client, EVENTS_URL, {"cancelled": "no"})

    assert listed_identifiers(cancelled) == {"alice-cancelled"}
    assert listed_identifiers(counted) == {"alice-counted", "bob-counted", "bob-storage"}


def date_filter_link(response, label: str) -> str:
    changelist = response.context["cl"]
    (dates,) = [spec for spec in changelist.filter_specs if spec.title == "timestamp"]
    return next(c["query_string"] for c in dates.choices(changelist) if c["display"] == label)


@pytest.mark.django_db
def test_event_list_filters_by_meter_customer_date_and_search(admin_client, listed_events):
    other_meter, alice, bob = listed_events

    by_meter = get(admin_client, EVENTS_URL, {"meter__id__exact": other_meter.pk})
    by_customer = get(admin_client, EVENTS_URL, {"customer": alice.public_id})
    unfiltered = get(admin_client, EVENTS_URL)
    by_date = get(admin_client, EVENTS_URL + date_filter_link(unfiltered, "Today (UTC)"))
    by_search = get(admin_client, EVENTS_URL, {"q": bob.public_id})

    assert len(listed_identifiers(unfiltered)) == 4
    assert listed_identifiers(by_meter) == {"bob-storage"}
    assert listed_identifiers(by_customer) == {"alice-cancelled", "alice-counted"}
    assert listed_identifiers(by_date) == {"alice-cancelled", "alice-counted", "bob-storage"}
    assert listed_identifiers(by_search) == {"bob-counted", "bob-storage"}


@pytest.mark.django_db
def test_event_list_stops_counting_past_its_cap(admin_client, meter, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    customer = CustomerFactory()
    for _ in range(3):
        send(meter, customer, 1)

    capped = get(admin_client, EVENTS_URL)
    narrowed = get(admin_client, EVENTS_URL, {"cancelled": "yes"})

    assert "More than 2 meter events" in capped.content.decode()
    assert len(listed_identifiers(capped)) == 3
    assert "0 meter events" in narrowed.content.decode()


@pytest.mark.django_db
def test_events_can_be_viewed_but_never_added_changed_or_deleted(admin_client, meter):
    send(meter, CustomerFactory(), 1, identifier="kept")
    event = MeterEvent.objects.get()

    listing = get(admin_client, EVENTS_URL)
    detail = get(admin_client, f"{EVENTS_URL}{event.pk}/change/")

    assert 'value="delete_selected"' not in listing.content.decode()
    assert detail.status_code == 200 and "kept" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert get(admin_client, f"{EVENTS_URL}add/").status_code == 403
    assert get(admin_client, f"{EVENTS_URL}{event.pk}/delete/").status_code == 403
    assert post(admin_client, f"{EVENTS_URL}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MeterEvent.objects.filter(identifier="kept").exists()


# --- Cancelling events ----------------------------------------------------------------------------


def cancel_action(*events, confirm: bool) -> dict:
    data = {"action": "cancel_events", "_selected_action": [event.pk for event in events]}
    if confirm:
        data["post"] = "yes"
    return data


@pytest.mark.django_db
def test_cancel_action_asks_for_confirmation_then_cancels_and_usage_drops(admin_client, meter):
    customer = CustomerFactory()
    send(meter, customer, 10, identifier="keep", received=at(-5))
    send(meter, customer, 4, identifier="oops", received=at(-5))
    oops = MeterEvent.objects.get(identifier="oops")

    confirmation = post(admin_client, EVENTS_URL, cancel_action(oops, confirm=False))

    assert confirmation.status_code == 200
    assert "admin/metering/meterevent/cancel_confirmation.html" in [
        template.name for template in confirmation.templates
    ]
    assert "oops" in confirmation.content.decode()
    assert "Yes, cancel 1 event" in confirmation.content.decode()
    assert month_usage(meter, customer) == 14  # nothing happens before the confirmation

    done = post(admin_client, EVENTS_URL, cancel_action(oops, confirm=True), follow=True)

    oops.refresh_from_db()
    assert oops.cancelled_at == NOW
    assert month_usage(meter, customer) == 10
    assert "Cancelled 1 meter event(s)." in messages_of(done)
    assert MeterEventAdjustment.objects.get().created_by == "admin"
    log = LogEntry.objects.get(action_flag=CHANGE)
    assert (log.object_id, log.user.username) == (str(oops.pk), "admin")


@pytest.mark.django_db
def test_cancel_action_refuses_events_received_more_than_24_hours_ago(admin_client, meter):
    customer = CustomerFactory()
    send(meter, customer, 10, identifier="old", received=at(-25))
    send(meter, customer, 4, identifier="fresh", received=at(-1))
    old, fresh = (
        MeterEvent.objects.get(identifier="old"),
        MeterEvent.objects.get(identifier="fresh"),
    )

    confirmation = post(admin_client, EVENTS_URL, cancel_action(old, fresh, confirm=False))
    done = post(admin_client, EVENTS_URL, cancel_action(old, fresh, confirm=True), follow=True)

    assert "Received more than 24 hours ago" in confirmation.content.decode()
    assert "Yes, cancel 1 event" in confirmation.content.decode()
    assert (
        "The meter event 'old' was received at 2026-11-20 11:30 UTC; events can only be "
        "cancelled within 24 hours of receipt." in messages_of(done)
    )
    old.refresh_from_db()
    assert old.cancelled_at is None
    assert month_usage(meter, customer) == 10  # the old event still counts, the fresh one not


@pytest.mark.django_db
def test_cancelling_an_already_cancelled_event_reports_it(admin_client, meter):
    send(meter, CustomerFactory(), 1, identifier="twice")
    with clock.frozen_at(NOW):
        meter_event_cancel(event_name=meter.event_name, identifier="twice")
    event = MeterEvent.objects.get()

    confirmation = post(admin_client, EVENTS_URL, cancel_action(event, confirm=False))
    done = post(admin_client, EVENTS_URL, cancel_action(event, confirm=True), follow=True)

    assert "None of the selected events can be cancelled." in confirmation.content.decode()
    assert "The meter event 'twice' is already cancelled." in messages_of(done)
    assert MeterEventAdjustment.objects.count() == 1


# --- Deactivating meters: a confirmation page first ----------------------------------------------


@pytest.mark.django_db
def test_deactivating_meters_asks_for_confirmation_saying_ingestion_stops(admin_client, meter):
    customer = CustomerFactory()
    send(meter, customer, 4)
    inactive = MeterFactory(event_name="old_tokens", display_name="Old tokens")
    services.meter_deactivate(meter=inactive)
    action = {"action": "deactivate_meters", "_selected_action": [meter.pk, inactive.pk]}

    page = post(admin_client, METERS_URL, action)

    assert page.status_code == 200
    words = " ".join(re.sub(r"<[^>]+>", " ", page_text(page)).split())
    assert "stops ingestion" in words and "refused" in words
    assert "API tokens" in words and "2026-11-21 12:30:00 UTC" in words  # its last event
    assert "Not changed: already inactive." in words
    assert 'value="Yes, deactivate 1 meter"' in page.content.decode()
    meter.refresh_from_db()
    assert meter.is_active  # the first POST only asks

    done = post(admin_client, METERS_URL, {**action, "post": "yes"})

    assert done.status_code == 302
    meter.refresh_from_db()
    assert not meter.is_active
    assert LogEntry.objects.get(object_id=str(meter.pk)).change_message == "Deactivated."
    with pytest.raises(BillingError) as refused:
        send(meter, customer, 1)
    assert refused.value.code == "archived_meter"


# --- Viewers ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_sees_usage_but_cannot_send_test_events_or_cancel(viewer_client, meter):
    customer = CustomerFactory()
    send(meter, customer, 4, identifier="watched")
    event = MeterEvent.objects.get()

    meter_page = get(viewer_client, change_url(meter))
    form_page = get(viewer_client, send_test_event_url(meter))
    sent = post(viewer_client, send_test_event_url(meter), {"customer": customer.pk, "value": "9"})
    listing = get(viewer_client, EVENTS_URL)
    post(viewer_client, EVENTS_URL, cancel_action(event, confirm=True))

    assert meter_page.status_code == 200 and 'class="usage-chart"' in meter_page.content.decode()
    assert "Send test event" not in meter_page.content.decode()
    assert (form_page.status_code, sent.status_code) == (403, 403)
    assert listing.status_code == 200 and "watched" in listing.content.decode()
    assert "cancel_events" not in listing.content.decode()
    event.refresh_from_db()
    assert event.cancelled_at is None
    assert month_usage(meter, customer) == 4


# --- The SVG chart helper -----------------------------------------------------------------------


def hours(*values) -> list[tuple[dt.datetime, Decimal]]:
    return [(at(index), Decimal(value)) for index, value in enumerate(values)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


SVG = "{http://www.w3.org/2000/svg}"


def test_chart_draws_one_bar_per_window_with_a_tooltip_and_the_highest_value():
    svg = bar_chart_svg(hours("3", "12.500000000000", "0"), title="API tokens")

    root = parse(svg)
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == 3
    assert [bar.find(f"{SVG}title").text for bar in bars] == [
        "2026-11-21 12:30 UTC: 3",
        "2026-11-21 13:30 UTC: 12.5",
        "2026-11-21 14:30 UTC: 0",
    ]
    assert root.get("role") == "img"
    assert root.get("aria-label").startswith("API tokens: 3 bars from 2026-11-21 12:30")
    assert "12.5" in [text.text for text in root.findall(f".//{SVG}g[@class='value-axis']/*")]
    assert float(bars[1].get("height")) > float(bars[0].get("height")) > 0


def test_chart_draws_negative_windows_below_the_baseline():
    root = parse(bar_chart_svg(hours("10", "-5"), title="Corrections"))

    baseline = float(root.find(f"{SVG}line").get("y1"))
    positive, negative = root.findall(f".//{SVG}rect[@class='bar']")
    assert float(positive.get("y")) + float(positive.get("height")) == pytest.approx(baseline)
    assert float(negative.get("y")) == pytest.approx(baseline)
    assert "-5" in [text.text for text in root.findall(f".//{SVG}g[@class='value-axis']/*")]


def test_chart_of_an_empty_series_says_no_usage():
    root = parse(bar_chart_svg([], title="API tokens"))

    assert root.findall(f".//{SVG}rect") == []
    assert root.find(f"{SVG}text").text == "No usage in this period"
    assert root.get("aria-label") == "API tokens: No usage in this period"


def test_chart_of_only_zeros_keeps_its_bars_and_says_no_usage():
    root = parse(bar_chart_svg(hours("0", "0"), title="API tokens"))

    assert len(root.findall(f".//{SVG}rect[@class='bar']")) == 2
    assert "No usage in this period" in [text.text for text in root.iter(f"{SVG}text")]


def test_chart_escapes_its_text():
    title = '<script>alert("x")</script> & co'

    svg = bar_chart_svg(hours("1"), title=title)

    assert "<script>" not in svg
    root = parse(svg)  # well-formed: the title is text, not markup
    assert root.find(f"{SVG}title").text == title
    assert root.get("aria-label").startswith(title)
