"""API keys in the admin (issue 10, rows 11 and 12): a new secret is shown once, in the page
that answers the POST, and never travels in a cookie; revoking asks for confirmation first."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from billing_site.models import ApiKey
from billing_site.services import api_key_authenticate, api_key_create
from tests.admin_pages import text

pytestmark = pytest.mark.django_db

KEYS = "/admin/billing_site/apikey/"


def test_a_new_secret_is_shown_once_in_the_page_and_never_put_in_a_cookie(admin_client):
    response = admin_client.post(f"{KEYS}add/", {"name": "Ingest worker", "access": "full_access"})

    assert response.status_code == 200  # the page itself, not a redirect to a message
    secret = response.context["secret"]
    key = ApiKey.objects.get(name="Ingest worker")
    assert api_key_authenticate(secret=secret) == key
    assert f'value="{secret}"' in response.content.decode()
    assert "this is the only time it is shown" in text(response)
    assert "no-store" in response["Cache-Control"]
    # Not in the messages cookie (signed, not encrypted), nor in any other cookie.
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert "messages" not in response.cookies
    later = admin_client.get(KEYS)
    assert secret not in later.content.decode()
    assert all(secret not in morsel.value for morsel in later.cookies.values())
    assert secret not in LogEntry.objects.get(object_id=str(key.pk)).change_message


def test_revoking_keys_asks_for_confirmation_then_the_keys_stop_working(admin_client):
    key, secret = api_key_create(name="Old laptop")
    revoked, _ = api_key_create(name="Already revoked")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=key.created_at)
    action = {"action": "revoke_keys", "_selected_action": [key.pk, revoked.pk]}

    confirmation = admin_client.post(KEYS, action)

    assert confirmation.status_code == 200
    page = text(confirmation)
    assert "Revoke API keys: are you sure?" in page
    assert "refused (401" in page and "can't be undone" in page
    assert f"{key.secret_prefix}…" in page and "never" in page  # not used yet
    assert "Not changed: already revoked." in page
    assert api_key_authenticate(secret=secret) == key  # the first POST only asks

    done = admin_client.post(KEYS, {**action, "post": "yes"})

    assert done.status_code == 302
    assert api_key_authenticate(secret=secret) is None
    entry = LogEntry.objects.get(object_id=str(key.pk))
    assert (entry.action_flag, entry.change_message) == (CHANGE, "Revoked.")
