"""The custom admin pages about one object (`admin_kit.object_page`, `custom_page_urls`): what a
user without the permission, an unknown action and an id that names nothing get; and the
columns linking to a related object (`admin_kit.link_column`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from billing_site.admin_kit import link_column
from billing_site.roles import VIEWER
from tests.admin_pages import get
from tests.factories import CustomerFactory, licensed_price
from tests.helpers import grant_credits, manual_invoice, subscribe

pytestmark = pytest.mark.django_db


def test_an_unknown_action_on_a_grant_or_an_invoice_is_refused(client, operator):
    grant = grant_credits(CustomerFactory())
    invoice = manual_invoice(CustomerFactory())
    assert get(client, f"/admin/credits/creditgrant/{grant.pk}/void/confirm/").status_code == 200
    assert get(client, f"/admin/credits/creditgrant/{grant.pk}/nope/confirm/").status_code == 403
    page = f"/admin/invoicing/invoice/{invoice.pk}/transition/"
    assert get(client, f"{page}finalize/").status_code == 200
    assert get(client, f"{page}nope/").status_code == 403


@pytest.mark.parametrize(
    "page",
    [
        "/admin/credits/creditgrant/999999/void/confirm/",
        "/admin/invoicing/invoice/999999/transition/void/",
        "/admin/invoicing/invoice/999999/grant-credits/",
        "/admin/invoicing/subscription/999999/cancel/",
        "/admin/invoicing/testclock/999999/advance/",
    ],
)
def test_an_id_that_names_nothing_goes_to_the_admin_index_as_django_does(client, operator, page):
    response = get(client, page)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    response = get(client, response["Location"])
    assert "exist. Perhaps it was deleted?" in response.content.decode()


@pytest.mark.parametrize(
    "page",
    [
        "/admin/credits/creditgrant/{grant}/void/confirm/",
        "/admin/invoicing/invoice/{invoice}/transition/void/",
        "/admin/invoicing/subscription/{subscription}/cancel/",
    ],
)
def test_a_viewer_may_not_open_a_page_that_changes_the_object(client, staff, page):
    customer = CustomerFactory()
    ids = {
        "grant": grant_credits(customer).pk,
        "invoice": manual_invoice(customer).pk,
        "subscription": subscribe(customer, licensed_price()).pk,
    }
    client.force_login(staff(VIEWER))
    assert get(client, page.format(**ids)).status_code == 403


def test_a_link_column_links_the_related_object_by_label_and_shows_a_dash_for_none():
    invoice = manual_invoice(CustomerFactory())
    column = link_column("source.invoice", "Invoice", label="label")
    linked = column(None, SimpleNamespace(source=SimpleNamespace(invoice=invoice)))
    assert f"/admin/invoicing/invoice/{invoice.pk}/change/" in linked
    assert f">{invoice.label}</a>" in linked
    assert column(None, SimpleNamespace(source=SimpleNamespace(invoice=None))) == "-"
    assert column.short_description == "Invoice"
