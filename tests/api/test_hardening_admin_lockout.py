"""Admin logins are throttled by django-axes: 5 wrong passwords lock that username from that
address for 15 minutes, even against the right password."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery"


@pytest.fixture
def admin_user() -> User:
    return User.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def _log_in(client, password: str, ip: str = "203.0.113.5"):
    return client.post(LOGIN, {"username": "boss", "password": password}, REMOTE_ADDR=ip)


def _logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_documented_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert dt.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def test_after_five_wrong_passwords_the_right_one_is_refused(client, admin_user):
    for _ in range(4):
        assert _log_in(client, "guess").status_code == 200  # the form again, with an error
    assert _log_in(client, "guess").status_code == 429
    response = _log_in(client, PASSWORD)
    assert response.status_code == 429
    assert "too many login attempts" in response.content.decode()
    assert not _logged_in(client)


def test_the_lockout_is_for_that_address_so_strangers_cant_lock_staff_out(client, admin_user):
    for _ in range(5):
        _log_in(client, "guess", ip="198.51.100.66")
    assert _log_in(client, PASSWORD, ip="203.0.113.5").status_code == 302
    assert _logged_in(client)


def test_the_lockout_ends_after_the_cool_off(client, admin_user):
    for _ in range(5):
        _log_in(client, "guess")
    assert _log_in(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
    assert _log_in(client, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_a_successful_login_resets_the_failure_count(client, admin_user):
    for _ in range(4):
        _log_in(client, "guess")
    assert _log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _log_in(client, "guess")
    assert _log_in(client, PASSWORD).status_code == 302
