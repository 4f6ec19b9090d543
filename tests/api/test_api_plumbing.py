"""Auth, body decoding, errors, pagination and idempotency: shared by every endpoint."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from billing_site import clock
from billing_site.api.params import ParameterError, decode_form
from billing_site.models import ApiKey, IdempotencyKey
from billing_site.services import api_key_create, api_key_revoke, hash_api_secret
from invoicing.models import Customer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- form decoding ----------------------------------------------------------------------------


def test_bracket_nesting_decodes_into_objects_and_lists():
    body = (
        "currency=usd&tiers[0][up_to]=100000&tiers[0][unit_amount]=0"
        "&tiers[1][up_to]=inf&tiers[1][unit_amount_decimal]=0.1"
        "&recurring[interval]=month&metadata[plan]=pro&expand[]=product&expand[]=tiers"
    )
    assert decode_form(body) == {
        "currency": "usd",
        "tiers": [
            {"up_to": "100000", "unit_amount": "0"},
            {"up_to": "inf", "unit_amount_decimal": "0.1"},
        ],
        "recurring": {"interval": "month"},
        "metadata": {"plan": "pro"},
        "expand": ["product", "tiers"],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name=a&name=b", "given twice"),
        ("tiers[0]=x&tiers[0][up_to]=1", "conflicts"),
        ("tiers[0][up_to]=1&tiers[2][up_to]=inf", "consecutive indexes"),
        ("tiers[x=1", "Malformed parameter name"),
    ],
)
def test_malformed_form_bodies_are_refused_with_the_reason(body, message):
    with pytest.raises(ParameterError, match=message):
        decode_form(body)


def test_json_bodies_are_accepted(api):
    response = api.post_json("/v1/customers", {"name": "Acme", "metadata": {"crm": "7"}})
    assert response.status_code == 200
    assert response.json()["metadata"] == {"crm": "7"}
    assert Customer.objects.get().name == "Acme"


def test_invalid_json_gets_a_clear_error(api, client, api_secret):
    response = client.post(
        "/v1/customers",
        data="{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_secret}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid JSON body")
    assert not Customer.objects.exists()


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_without_a_key_is_refused(client):
    response = client.get("/v1/customers")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "did not provide an API key" in error["message"]


@pytest.mark.django_db
def test_a_wrong_key_is_refused_and_creates_nothing(client):
    response = client.post(
        "/v1/customers", data={"name": "Nope"}, HTTP_AUTHORIZATION="Bearer sk_wrong_0123456789"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_invalid"
    assert "sk_wron" in response.json()["error"]["message"]
    assert "0123456789" not in response.json()["error"]["message"]
    assert not Customer.objects.exists()


def test_a_revoked_key_stops_working(api, api_secret):
    assert api.get("/v1/customers").status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(secret_hash=hash_api_secret(api_secret)))
    assert api.get("/v1/customers").status_code == 401


@pytest.mark.django_db
def test_basic_auth_with_the_key_as_username_works(client, api_secret):
    import base64

    token = base64.b64encode(f"{api_secret}:".encode()).decode()
    assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Basic {token}").status_code == 200


@pytest.mark.django_db
def test_create_api_key_prints_the_key_once_as_the_last_line_and_stores_only_its_hash(capsys):
    call_command("create_api_key", "--name", "production")
    output = capsys.readouterr().out.strip().splitlines()
    secret = output[-1]
    assert secret.startswith("sk_")
    stored = ApiKey.objects.get(name="production")
    assert stored.secret_hash == hash_api_secret(secret)
    assert secret not in {stored.secret_hash, stored.secret_prefix}


@pytest.mark.django_db
def test_create_api_key_without_a_name_fails_clearly():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="needs a name"):
        call_command("create_api_key", "--name", "  ")
    assert not ApiKey.objects.exists()


# --- errors -----------------------------------------------------------------------------------


def test_unknown_urls_get_a_json_404(api):
    response = api.get("/v1/widgets")
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]


def test_an_unknown_parameter_is_refused_and_nothing_is_saved(api):
    response = api.post("/v1/customers", {"name": "Acme", "nmae": "typo"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "message": "Received unknown parameter: nmae",
        "param": "nmae",
    }
    assert not Customer.objects.exists()


def test_a_missing_object_is_a_404_with_resource_missing(api):
    response = api.get("/v1/customers/cus_nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert response.json()["error"]["message"] == "No such customer: 'cus_nope'"


def test_metadata_limits_are_enforced(api):
    response = api.post("/v1/customers", {"metadata": {"k" * 41: "v"}})
    assert response.status_code == 400
    assert "at most 40 characters" in response.json()["error"]["message"]
    response = api.post("/v1/customers", {"metadata": {f"k{i}": "v" for i in range(51)}})
    assert response.status_code == 400
    assert not Customer.objects.exists()


# --- pagination -------------------------------------------------------------------------------


def _customers(api, count: int) -> list[str]:
    return [api.post("/v1/customers", {"name": f"C{i}"}).json()["id"] for i in range(count)]


def test_lists_paginate_newest_first_with_has_more_and_cursors(api):
    ids = _customers(api, 5)
    newest_first = list(reversed(ids))

    page = api.get("/v1/customers", {"limit": 2}).json()
    assert page["object"] == "list"
    assert page["url"] == "/v1/customers"
    assert [c["id"] for c in page["data"]] == newest_first[:2]
    assert page["has_more"] is True

    page = api.get("/v1/customers", {"limit": 2, "starting_after": newest_first[1]}).json()
    assert [c["id"] for c in page["data"]] == newest_first[2:4]
    assert page["has_more"] is True

    page = api.get("/v1/customers", {"limit": 2, "starting_after": newest_first[3]}).json()
    assert [c["id"] for c in page["data"]] == newest_first[4:]
    assert page["has_more"] is False

    page = api.get("/v1/customers", {"limit": 2, "ending_before": newest_first[4]}).json()
    assert [c["id"] for c in page["data"]] == newest_first[2:4]
    assert page["has_more"] is True


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"starting_after": "cus_missing"}, "starting_after"),
        ({"starting_after": "a", "ending_before": "b"}, "ending_before"),
    ],
)
def test_bad_pagination_parameters_are_refused(api, params, param):
    response = api.get("/v1/customers", params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


# --- idempotency ------------------------------------------------------------------------------
# A key reused with other parameters or on another endpoint: test_idempotency_semantics.py.


def test_a_replayed_idempotency_key_returns_the_first_response_and_creates_once(api):
    first = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="key-1")
    second = api.post("/v1/customers", {"name": "Acme"}, idempotency_key="key-1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1


def test_a_validation_error_is_answered_again_not_replayed(api):
    # Stripe saves no result for a request that failed validation (more in
    # test_idempotency_semantics.py): the retry runs and is refused the same way.
    first = api.post("/v1/customers", {"email": "not-an-email"}, idempotency_key="bad")
    second = api.post("/v1/customers", {"email": "not-an-email"}, idempotency_key="bad")
    assert first.status_code == second.status_code == 400
    assert first.json() == second.json()
    assert "Idempotent-Replayed" not in second
    assert not Customer.objects.exists()


def test_idempotency_keys_are_scoped_to_the_api_key(api, client):
    _, other_secret = api_key_create(name="other")
    api.post("/v1/customers", {"name": "Acme"}, idempotency_key="shared")
    api.post("/v1/customers", {"name": "Acme"}, idempotency_key="shared", secret=other_secret)
    assert Customer.objects.count() == 2


def test_idempotency_keys_expire_after_24_hours(api):
    api.post("/v1/customers", {"name": "Acme"}, idempotency_key="k")
    with clock.frozen_at(clock.now() + dt.timedelta(hours=25)):
        response = api.post("/v1/customers", {"name": "Other"}, idempotency_key="k")
    assert response.status_code == 200
    assert Customer.objects.count() == 2
    assert IdempotencyKey.objects.get(key="k").response_body["name"] == "Other"


@pytest.mark.postgres
def test_concurrent_requests_with_one_idempotency_key_create_one_customer(
    live_server, transactional_db
):
    _, secret = api_key_create(name="race")
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        response = requests.post(
            f"{live_server.url}/v1/customers",
            data={"name": "Racer"},
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-key"},
            timeout=30,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Customer.objects.count() == 1
    assert set(statuses) <= {200, 409}
    assert 200 in statuses


# --- settings ---------------------------------------------------------------------------------


def _check_deploy(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        # DJANGO_ALLOW_ASYNC_UNSAFE is set for the browser tests; deploy checks flag it.
        if key
        not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "billing_site.settings.production", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


GOOD_PRODUCTION_ENV = {
    "SECRET_KEY": "x7Kp2mQ9vL4nR8sT1wY6zA3bC5dE0fG-hJ_iK9lM2nO4pQ7rS1tU3vW5xY8zA0bC",
    "ALLOWED_HOSTS": "billing.example.com",
    "DATABASE_URL": "sqlite:////tmp/billing-check-deploy.sqlite3",
}


def test_production_settings_pass_check_deploy_when_configured():
    result = _check_deploy(GOOD_PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "a1b2c3" * 10}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must list"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS must list"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"DATABASE_URL": ""}, "DATABASE_URL must be set"),
    ],
)
def test_production_settings_refuse_insecure_defaults(override, message):
    result = _check_deploy({**GOOD_PRODUCTION_ENV, **override})
    assert result.returncode != 0
    assert message in result.stderr


def test_a_multipart_body_is_refused_instead_of_misread(api, client, api_secret):
    response = client.post(
        "/v1/customers", {"name": "Acme"}, HTTP_AUTHORIZATION=f"Bearer {api_secret}"
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["error"]["message"]
    assert not Customer.objects.exists()
