"""The admin kit every app's admin uses: the UTC field, dry runs, carried fields, the action
loop and the display helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.messages import ERROR, SUCCESS
from django.test import RequestFactory
from django.utils import timezone

from billing_site.admin_kit import (
    COMMON_CURRENCIES,
    UTCDateTimeField,
    call_for_each,
    carried_fields,
    change_link,
    change_url,
    dry_run,
    utc_label,
)
from billing_site.errors import BillingError
from catalog.models import Product
from tests.factories import ProductFactory


def test_utc_date_time_field_reads_the_input_as_utc_whatever_the_active_time_zone():
    field = UTCDateTimeField()
    with timezone.override("America/New_York"):
        value = field.clean("2026-03-01T09:30:00")
    assert value == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def test_the_currency_suggestions_are_one_list_of_distinct_iso_codes():
    assert COMMON_CURRENCIES[:4] == ["USD", "EUR", "GBP", "JPY"]
    assert len(set(COMMON_CURRENCIES)) == len(COMMON_CURRENCIES)
    assert all(len(code) == 3 and code.isupper() for code in COMMON_CURRENCIES)


@pytest.mark.django_db
def test_a_dry_run_returns_what_the_build_saw_and_writes_nothing():
    def build() -> str:
        return ProductFactory(name="Preview only").name

    assert dry_run(build) == "Preview only"
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_a_refusal_inside_a_dry_run_propagates_after_the_rollback():
    def build() -> None:
        ProductFactory()
        raise BillingError("Refused", param="name")

    with pytest.raises(BillingError, match="Refused"):
        dry_run(build)
    assert not Product.objects.exists()


def test_carried_fields_keep_every_value_but_the_token_and_the_submit_buttons():
    request = RequestFactory().post(
        "/", {"csrfmiddlewaretoken": "t", "_confirm": "1", "name": "Pro", "prices": ["1", "2"]}
    )
    assert carried_fields(request, {"_confirm"}) == [
        ("name", "Pro"),
        ("prices", "1"),
        ("prices", "2"),
    ]


class _RecordingAdmin:
    """What call_for_each needs of a ModelAdmin: log_change and message_user."""

    def __init__(self) -> None:
        self.logged: list[tuple[object, str]] = []
        self.messages: list[tuple[str, int]] = []

    def log_change(self, request, obj, message) -> None:
        self.logged.append((obj, message))

    def message_user(self, request, message, level) -> None:
        self.messages.append((message, level))


def test_call_for_each_logs_every_change_and_says_how_many_in_one_message():
    model_admin = _RecordingAdmin()
    count = call_for_each(
        model_admin,
        None,
        ["a", "b"],
        lambda name: name.upper(),
        log=lambda name: f"Renamed to {name}.",
        summary=lambda count: f"Renamed {count} item(s).",
    )
    assert count == 2
    # The log entry is for what the service returned.
    assert model_admin.logged == [("A", "Renamed to A."), ("B", "Renamed to B.")]
    assert model_admin.messages == [("Renamed 2 item(s).", SUCCESS)]


def test_call_for_each_reports_a_refusal_and_goes_on_with_the_others():
    def service(name: str) -> None:
        if name == "b":
            raise BillingError("b is already archived.")

    model_admin = _RecordingAdmin()
    count = call_for_each(
        model_admin,
        None,
        ["a", "b", "c"],
        service,
        log=lambda name: "Archived.",
        summary=lambda count: f"Archived {count}.",
    )
    assert count == 2
    assert [obj for obj, _ in model_admin.logged] == ["a", "c"]
    assert model_admin.messages == [("b is already archived.", ERROR), ("Archived 2.", SUCCESS)]


def test_call_for_each_can_stay_quiet_when_nothing_changed():
    def refuse(name: str) -> None:
        raise BillingError("Too late.")

    model_admin = _RecordingAdmin()
    call_for_each(
        model_admin,
        None,
        ["a"],
        refuse,
        log=lambda name: "Cancelled.",
        summary=lambda count: f"Cancelled {count}.",
        summary_when_none=False,
    )
    assert model_admin.messages == [("Too late.", ERROR)]


@pytest.mark.django_db
def test_call_for_each_writes_real_admin_log_entries(rf):
    from django.contrib.admin import site

    product = ProductFactory()
    request = rf.post("/")
    request.user = User.objects.create_superuser("boss", password="pw")
    request._messages = _NoMessages()
    call_for_each(
        site.get_model_admin(Product),
        request,
        [product],
        lambda product: None,
        log=lambda product: "Archived.",
        summary=lambda count: f"Archived {count}.",
    )
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.get_change_message()) == (
        str(product.pk),
        CHANGE,
        "Archived.",
    )


class _NoMessages:
    def add(self, level, message, extra_tags=""):
        pass


@pytest.mark.django_db
def test_change_link_points_at_the_admin_page_and_shows_a_dash_for_nothing():
    product = ProductFactory(name="Pro")
    assert change_url(product) == f"/admin/catalog/product/{product.pk}/change/"
    assert change_link(product) == f'<a href="{change_url(product)}">Pro</a>'
    assert change_link(product, "<Pro>") == f'<a href="{change_url(product)}">&lt;Pro&gt;</a>'
    assert change_link(None) == "-"


def test_utc_label_spells_a_moment_as_staff_read_it():
    at = dt.datetime(2026, 1, 15, 9, 30, 5, tzinfo=dt.UTC)
    assert utc_label(at) == "2026-01-15 09:30:05 UTC"
    assert utc_label(at, seconds=False) == "2026-01-15 09:30 UTC"
