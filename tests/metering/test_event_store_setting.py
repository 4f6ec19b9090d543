"""METER_EVENT_STORE: one setting picks the event store; a bad value stops the start-up."""

from __future__ import annotations

import runpy

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import billing_site.settings.base
from metering.store import EVENT_STORES, event_store

SQLITE_URL = "sqlite:////tmp/settings-check.sqlite3"
POSTGRES_URL = "postgres://billing@db.invalid:5432/billing"


def _load_settings(monkeypatch, database_url: str, store: str | None) -> dict:
    monkeypatch.setenv("DATABASE_URL", database_url)
    if store is None:
        monkeypatch.delenv("METER_EVENT_STORE", raising=False)
    else:
        monkeypatch.setenv("METER_EVENT_STORE", store)
    # A fresh run of the settings file: the loaded settings stay as they are.
    return runpy.run_path(billing_site.settings.base.__file__)


@pytest.mark.parametrize(
    ("database_url", "store", "chosen"),
    [
        (SQLITE_URL, None, "orm"),
        (POSTGRES_URL, None, "postgresql"),
        (POSTGRES_URL, "orm", "orm"),
        (POSTGRES_URL, "", "postgresql"),
    ],
)
def test_the_store_follows_the_database_unless_set(monkeypatch, database_url, store, chosen):
    assert _load_settings(monkeypatch, database_url, store)["METER_EVENT_STORE"] == chosen


def test_an_unknown_store_is_refused_naming_the_choices(monkeypatch):
    with pytest.raises(
        ImproperlyConfigured, match=r"one of postgresql, orm, clickhouse .* got 'clickhous'"
    ):
        _load_settings(monkeypatch, POSTGRES_URL, "clickhous")


def test_the_postgresql_store_is_refused_on_another_database(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match=r"needs a PostgreSQL database.*sqlite3"):
        _load_settings(monkeypatch, SQLITE_URL, "postgresql")


def test_every_store_the_setting_allows_exists():
    assert set(settings.METER_EVENT_STORES) == set(EVENT_STORES)


def test_the_configured_store_is_the_one_the_setting_names(settings):
    settings.METER_EVENT_STORE = "orm"
    assert event_store().name == "orm"
