"""Idempotency as Stripe documents it (https://docs.stripe.com/api/idempotent_requests): a request
whose parameters fail validation saves no result, so a corrected retry with the same key runs; a
refusal after validation is saved and replayed; a key reused on another endpoint or with other
parameters is an `idempotency_error`."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe

from billing_site.models import IdempotencyKey
from invoicing.models import Customer, Invoice

pytestmark = pytest.mark.django_db


def test_a_corrected_retry_after_a_validation_error_runs_with_the_same_key(api):
    refused = api.post("/v1/customers", {"name": "Acme", "colour": "red"}, idempotency_key="k1")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "parameter_unknown"
    assert not IdempotencyKey.objects.filter(key="k1").exists()

    created = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k1")
    assert created.status_code == 200
    replayed = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k1")
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert list(Customer.objects.values_list("name", flat=True)) == ["Acme"]


@pytest.mark.parametrize(
    "bad",
    [
        {"email": "not-an-email"},  # a service's rule naming the parameter
        {"metadata": {"k" * 41: "v"}},  # a parameter reader's rule
        {"test_clock": "clock_missing"},  # an object named by a parameter that doesn't exist
    ],
)
def test_no_validation_error_keeps_the_key(api, bad):
    refused = api.post("/v1/customers", {"name": "Acme", **bad}, idempotency_key="k2")
    assert refused.status_code == 400
    assert refused.json()["error"]["param"]
    assert api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k2").status_code == 200
    assert Customer.objects.count() == 1


def test_a_refusal_after_validation_is_saved_and_replayed(api, customer):
    invoice = api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}).json()
    api.post(
        "/v1/invoiceitems",
        {"customer": customer.public_id, "invoice": invoice["id"], "amount": 1000},
    )
    void_url = f"/v1/invoices/{invoice['id']}/void"
    refused = api.post(void_url, idempotency_key="void-1")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invoice_not_editable"  # a draft can't be voided

    finalized = api.post(f"/v1/invoices/{invoice['id']}/finalize", idempotency_key="fin-1")
    assert finalized.json().get("status") == "open", finalized.json()
    # The same key replays the saved refusal; it does not void the now open invoice.
    again = api.post(void_url, idempotency_key="void-1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == refused.json()
    assert Invoice.objects.get(public_id=invoice["id"]).status == "open"


def test_a_key_reused_with_other_parameters_is_an_idempotency_error(api):
    api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k3")
    response = api.post("/v1/customers", {"name": "Other"}, idempotency_key="k3")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert "same parameters" in response.json()["error"]["message"]
    assert list(Customer.objects.values_list("name", flat=True)) == ["Acme"]


def test_a_key_reused_on_another_endpoint_is_an_idempotency_error(api):
    api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k4")
    response = api.post("/v1/products", {"name": "Acme"}, idempotency_key="k4")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert "'POST /v1/customers' vs 'POST /v1/products'" in error["message"]
    assert not api.get("/v1/products").json()["data"]


def test_the_sdk_retries_a_corrected_request_and_sees_idempotency_errors(live_server, db):
    from billing_site.services import api_key_create
    from tests.api_client import sdk_client

    client = sdk_client(live_server, api_key_create(name="sdk idempotency")[1])
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"email": "nope"}, {"idempotency_key": "sdk-1"})
    created = client.v1.customers.create({"email": "ok@example.com"}, {"idempotency_key": "sdk-1"})
    assert created.email == "ok@example.com"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.com"}, {"idempotency_key": "sdk-1"})
    assert Customer.objects.count() == 1


@pytest.mark.postgres
def test_parallel_bad_and_corrected_requests_with_one_key_create_one_customer(
    live_server, transactional_db
):
    """Half the senders have a typo, half are corrected: the typos are refused (and let the key
    go), the corrected ones run once between them; the rest replay or wait (409)."""
    import threading

    import requests

    from billing_site.services import api_key_create

    _, secret = api_key_create(name="race")
    barrier = threading.Barrier(8)
    answers: list[tuple[str, int]] = []

    def send(data: dict[str, str]) -> None:
        barrier.wait()
        response = requests.post(
            f"{live_server.url}/v1/customers",
            data=data,
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-key"},
            timeout=30,
        )
        answers.append(("bad" if "colour" in data else "good", response.status_code))

    bodies = [{"name": "Racer", "colour": "red"}, {"name": "Racer"}] * 4
    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Customer.objects.count() <= 1
    assert {status for kind, status in answers if kind == "bad"} <= {400, 409}
    assert {status for kind, status in answers if kind == "good"} <= {200, 400, 409}
    # Whatever the interleaving, a corrected retry now succeeds with the same key, once.
    retry = requests.post(
        f"{live_server.url}/v1/customers",
        data={"name": "Racer"},
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-key"},
        timeout=30,
    )
    assert retry.status_code == 200
    assert Customer.objects.count() == 1
    assert IdempotencyKey.objects.get(key="race-key").response_status == 200


def test_a_request_whose_key_a_retry_took_over_applies_nothing(api, monkeypatch):
    # The request runs so long that a retry takes its key over (as if its worker had died):
    # when it then finishes, what it wrote rolls back, so the request is applied once, by the
    # retry.
    from billing_site import clock
    from invoicing.api import customers as customers_api

    create = customers_api.services.customer_create

    def slow_create(**kwargs):
        customer = create(**kwargs)
        taken_at = clock.now() + dt.timedelta(seconds=1)
        IdempotencyKey.objects.filter(key="slow").update(created_at=taken_at)
        return customer

    monkeypatch.setattr(customers_api.services, "customer_create", slow_create)
    response = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="slow")

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "idempotency_error"
    assert not Customer.objects.exists()
    # The record stays the retry's: still in progress, never answered by the slow request.
    assert IdempotencyKey.objects.get(key="slow").response_status is None
