"""Portal links are credentials (issue 10, row 12): a link opens one browser session and can't be
replayed, staff can revoke a customer's links and sessions, and the token never reaches a log."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.test import Client

from billing_site.log_masking import GunicornLogger, MaskPortalTokens, mask_portal_tokens
from billing_site.roles import OPERATOR
from invoicing import portal
from invoicing.models import PortalSession
from invoicing.services import portal_session_claim
from tests.admin_pages import text
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/invoicing/customer/"


@pytest.fixture
def customer(db):
    return CustomerFactory(name="Northwind Robotics")


def test_a_link_opens_one_session_and_a_second_browser_gets_the_used_page(client, customer):
    link = portal.portal_link_create(customer=customer, actor="api (tests)")

    first = client.get(link.path)
    replay = Client().get(link.path)  # someone else with the same link (a forwarded email)

    assert (first.status_code, first["Location"]) == (302, "/portal/")
    assert client.get("/portal/").status_code == 200
    assert replay.status_code == 410
    assert "This link has expired or was already used" in text(replay)
    assert "Northwind" not in replay.content.decode()
    row = PortalSession.objects.get(public_id=link.id)
    assert (row.created_by, row.customer) == ("api (tests)", customer)
    assert row.opened_at is not None


def test_only_one_of_two_claims_of_the_same_link_wins(customer):
    link = PortalSession.objects.get(public_id=portal.portal_link_create(customer=customer).id)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    assert [portal_session_claim(link=link, at=now) for _ in range(2)] == [True, False]


def test_the_api_records_the_key_that_made_a_portal_session(api, customer):
    response = api.post("/v1/billing_portal/sessions", {"customer": customer.public_id})

    assert response.status_code == 200
    assert PortalSession.objects.get(public_id=response.json()["id"]).created_by == "api (tests)"


def test_staff_revoke_a_customers_links_and_sessions_from_the_portal_link_page(
    client, staff, customer
):
    browsing = Client()
    opened = portal.portal_link_create(customer=customer)
    assert browsing.get(opened.path).status_code == 302
    unused = portal.portal_link_create(customer=customer)
    operator = staff(OPERATOR)
    client.force_login(operator)

    page = client.get(f"{CUSTOMERS}{customer.pk}/portal-link/")
    assert page.status_code == 200
    assert opened.id in text(page) and "Opened (used)" in text(page)
    assert unused.id in text(page) and "Not opened yet" in text(page)
    assert 'value="Revoke all portal links and sessions"' in page.content.decode()

    revoked = client.post(f"{CUSTOMERS}{customer.pk}/portal-link/", {"revoke": "1"})

    assert revoked.status_code == 200
    assert "Revoked 2 portal links and sessions" in text(revoked)
    ended = browsing.get("/portal/")
    assert ended.status_code == 403 and "Your session has ended" in text(ended)
    assert Client().get(unused.path).status_code == 410
    assert set(PortalSession.objects.values_list("revoked_by", flat=True)) == {operator.username}
    assert "Revoked 2 portal link(s)" in LogEntry.objects.get().change_message
    # A new link works as usual afterwards.
    assert Client().get(portal.portal_link_create(customer=customer).path).status_code == 302


# --- Logs --------------------------------------------------------------------------------------


def test_the_request_log_masks_a_refused_links_token(client, customer, caplog):
    link = portal.portal_link_create(customer=customer)
    client.get(link.path)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert Client().get(link.path).status_code == 410

    logged = [record.getMessage() for record in caplog.records if record.name == "django.request"]
    assert logged == ["Gone: /portal/enter/[masked]/"]
    assert link.token not in caplog.text


def test_settings_put_the_mask_on_the_request_and_runserver_loggers():
    for name in ("django.request", "django.server"):
        assert settings.LOGGING["loggers"][name]["filters"] == ["mask_portal_tokens"]
        assert any(isinstance(f, MaskPortalTokens) for f in logging.getLogger(name).filters)


def test_the_runserver_access_log_line_is_masked():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s',
        ("GET /portal/enter/eyJjIjoiY3VzX3gifQ:1v2:sig/ HTTP/1.1", "302", "0"), None,
    )  # fmt: skip

    assert MaskPortalTokens().filter(record) is True
    assert record.getMessage() == '"GET /portal/enter/[masked]/ HTTP/1.1" 302 0'


def test_gunicorns_access_log_fields_are_masked():
    token = "eyJjIjoiY3VzX3gifQ:1v2:s1g"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/portal/enter/{token}/",
        "PATH_INFO": f"/portal/enter/{token}/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"https://billing.example/portal/enter/{token}/",
    }
    response = SimpleNamespace(status="302 Found", sent=0, headers=[])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    logger = GunicornLogger.__new__(GunicornLogger)  # atoms() needs no configuration

    atoms = logger.atoms(response, request, environ, dt.timedelta(seconds=0))

    assert atoms["r"] == "GET /portal/enter/[masked]/ HTTP/1.1"
    assert atoms["U"] == "/portal/enter/[masked]/"
    assert atoms["f"] == "https://billing.example/portal/enter/[masked]/"
    assert token not in repr(atoms)


def test_the_mask_leaves_other_paths_alone():
    assert (
        mask_portal_tokens("GET /portal/invoices/in_123/ 200") == "GET /portal/invoices/in_123/ 200"
    )
    assert mask_portal_tokens("/portal/enter/abc:def?x=1") == "/portal/enter/[masked]?x=1"
