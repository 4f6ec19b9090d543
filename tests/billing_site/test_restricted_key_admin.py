"""Restricted keys in the admin (issue 10, row 10): operators create restricted keys only (a
preset or per-resource permissions); only superusers create full-access keys."""

from __future__ import annotations

import pytest

from billing_site.key_permissions import PRESETS
from billing_site.models import ApiKey
from billing_site.services import api_key_authenticate, api_key_create
from tests.admin_pages import text

pytestmark = pytest.mark.django_db

ADD = "/admin/billing_site/apikey/add/"


def test_an_operator_is_offered_presets_and_custom_permissions_but_not_full_access(
    client, operator
):
    page = client.get(ADD)

    assert page.status_code == 200
    choices = [value for value, _ in page.context["adminform"].form.fields["access"].choices]
    assert choices == ["read_only", "ingest_only", "custom"]
    assert "Full access" not in text(page)
    assert "meter_events" in text(page)  # one permission row per resource


def test_an_operator_creates_a_read_only_key(client, operator):
    response = client.post(ADD, {"name": "Reporting", "access": "read_only"})

    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("rk_")
    assert api_key_authenticate(secret=secret).permissions == PRESETS["read_only"]
    assert "Read only" in text(response)


def test_an_operator_creates_a_key_with_per_resource_permissions(client, operator):
    response = client.post(
        ADD,
        {
            "name": "CRM sync",
            "access": "custom",
            "permission_customers": "write",
            "permission_invoices": "read",
            "permission_products": "none",
        },
    )

    key = ApiKey.objects.get(name="CRM sync")
    assert key.permissions == {"customers": "write", "invoices": "read"}
    assert response.context["secret"].startswith("rk_")


def test_an_operator_cannot_create_a_full_access_key(client, operator):
    response = client.post(ADD, {"name": "Sneaky", "access": "full_access"})

    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice. full_access is not one of the available choices." in text(
        response
    )
    assert not ApiKey.objects.exists()


def test_custom_permissions_that_grant_nothing_are_refused(client, operator):
    response = client.post(ADD, {"name": "Useless", "access": "custom"})

    assert "needs read or write on at least one resource" in text(response)
    assert not ApiKey.objects.exists()


def test_a_superuser_creates_a_full_access_key_or_a_restricted_one(admin_client):
    page = admin_client.get(ADD)
    choices = [value for value, _ in page.context["adminform"].form.fields["access"].choices]
    assert choices[0] == "full_access"

    full = admin_client.post(ADD, {"name": "Production", "access": "full_access"})
    ingest = admin_client.post(ADD, {"name": "Ingest", "access": "ingest_only"})

    assert full.context["secret"].startswith("sk_")
    assert api_key_authenticate(secret=full.context["secret"]).permissions is None
    assert ingest.context["secret"].startswith("rk_")
    assert ApiKey.objects.get(name="Ingest").permissions == PRESETS["ingest_only"]


def test_the_key_list_and_page_show_what_each_key_may_do(admin_client):
    full, _ = api_key_create(name="Production")
    api_key_create(name="Ingest", permissions=PRESETS["ingest_only"])
    api_key_create(name="CRM", permissions={"customers": "write"})

    listing = text(admin_client.get("/admin/billing_site/apikey/"))
    detail = text(admin_client.get(f"/admin/billing_site/apikey/{full.pk}/change/"))

    assert "Full access" in listing and "Ingest only" in listing
    assert "customers: write" in listing
    assert "Access: Full access" in detail
