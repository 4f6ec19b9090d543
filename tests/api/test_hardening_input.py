"""Malformed input on any endpoint: a Stripe-shaped 4xx naming the parameter, nothing written.

Also: wrong keys are masked, duplicate JSON keys are refused like duplicate form keys, HEAD
answers like GET without a body, and whatever fails inside a view is still a JSON answer.
"""

from __future__ import annotations

import json

import pytest
from django.db import DataError, OperationalError
from django.urls import resolve

from billing_site.api.auth import mask_secret
from billing_site.api.params import MAX_FORM_FIELDS, decode_form
from invoicing.models import Customer

pytestmark = pytest.mark.django_db


def _auth(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _post_raw(client, secret, path, body, content_type="application/x-www-form-urlencoded"):
    return client.post(path, data=body, content_type=content_type, **_auth(secret))


def _assert_refused(response, *, status=400, param=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


# --- row 5: text the database can't store ----------------------------------------------------


def test_a_nul_byte_in_a_form_string_is_refused_naming_the_parameter(client, api_secret):
    response = _post_raw(client, api_secret, "/v1/customers", "name=Ac%00me")
    error = _assert_refused(response, param="name")
    assert "NUL" in error["message"]
    assert not Customer.objects.exists()


def test_a_nul_byte_in_metadata_is_refused_naming_the_key(api):
    response = api.post_json("/v1/customers", {"metadata": {"crm": "7\u0000"}})
    _assert_refused(response, param="metadata[crm]")
    response = api.post("/v1/customers", {"metadata": {"c\x00rm": "7"}})
    _assert_refused(response, param="metadata[c\\u0000rm]")
    assert not Customer.objects.exists()


def test_a_lone_surrogate_in_json_is_refused(api):
    response = api.post_json("/v1/customers", {"name": "\ud800"})
    _assert_refused(response, param="name")
    assert not Customer.objects.exists()


def test_a_nul_byte_in_a_url_id_is_refused_naming_the_id(api):
    _assert_refused(api.get("/v1/customers/cus_%00x"), param="id")
    _assert_refused(api.post("/v1/customers/cus_%00x", {"name": "x"}), param="id")
    _assert_refused(api.delete("/v1/customers/cus_%00x"), param="id")


def test_a_nul_byte_in_a_query_parameter_is_refused(api):
    _assert_refused(
        api.get("/v1/customers", {"starting_after": "cus_\x00"}), param="starting_after"
    )


def test_an_unknown_parameter_with_a_nul_is_quoted_escaped(api):
    error = _assert_refused(api.post("/v1/customers", {"na\x00me": "x"}), param="na\\u0000me")
    assert error["code"] == "parameter_unknown"
    assert "\x00" not in error["message"]


@pytest.mark.parametrize("key", ["key\x00", "key\nSet-Cookie: x=1", "key\ud800"])
def test_an_idempotency_key_that_cant_be_stored_or_echoed_is_refused_before_running(api, key):
    # The key is echoed in a response header: a line break there was a 500 after the customer
    # had already been created.
    response = api.post("/v1/customers", {"name": "Acme"}, idempotency_key=key)
    _assert_refused(response, param="Idempotency-Key")
    assert not Customer.objects.exists()


# --- row 5: shapes and sizes the decoder must bound ------------------------------------------


def test_json_nested_a_thousand_deep_is_refused(client, api_secret):
    body = '{"metadata":' * 1000 + "1" + "}" * 1000
    error = _assert_refused(
        _post_raw(client, api_secret, "/v1/customers", body, "application/json")
    )
    assert "nested" in error["message"]
    body = '{"metadata":' + "[" * 1000 + "]" * 1000 + "}"
    _assert_refused(_post_raw(client, api_secret, "/v1/customers", body, "application/json"))
    assert not Customer.objects.exists()


def test_an_integer_past_pythons_digit_limit_is_refused_naming_it(client, api_secret):
    body = '{"name": "Acme", "balance": ' + "9" * 5000 + "}"
    response = _post_raw(client, api_secret, "/v1/customers", body, "application/json")
    error = _assert_refused(response, param="balance")
    assert "digits" in error["message"]
    response = api_get_limit(client, api_secret, "9" * 5000)
    _assert_refused(response, param="limit")
    assert not Customer.objects.exists()


def api_get_limit(client, secret, limit):
    return client.get(f"/v1/customers?limit={limit}", **_auth(secret))


def test_nan_and_infinity_are_not_json_numbers(client, api_secret):
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = '{"name": "Acme", "metadata": {"score": ' + literal + "}}"
        response = _post_raw(client, api_secret, "/v1/customers", body, "application/json")
        _assert_refused(response, param="metadata[score]")
    assert not Customer.objects.exists()


def test_a_non_ascii_digit_array_index_is_an_error_not_a_crash(client, api_secret):
    response = _post_raw(client, api_secret, "/v1/customers", "expand[²]=x")
    assert response.status_code == 400
    assert not Customer.objects.exists()


def test_too_many_form_fields_are_refused_quickly(client, api_secret):
    body = "&".join(["expand[]=x"] * (MAX_FORM_FIELDS + 1))
    _assert_refused(_post_raw(client, api_secret, "/v1/customers", body))
    # Appending with [] stays linear: 10,000 list items decode at once.
    assert len(decode_form("&".join(["expand[]=x"] * MAX_FORM_FIELDS))["expand"]) == 10_000


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024])
def test_a_body_over_the_limit_gets_the_json_413(client, api_secret, size):
    # 3 MB is past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which answered an HTML 400.
    body = "name=" + "a" * size
    response = _post_raw(client, api_secret, "/v1/customers", body)
    _assert_refused(response, status=413)
    assert not Customer.objects.exists()


# --- row 13 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 4, 8, 9, 10, 11, 12, 15, 19, 46, 400])
def test_a_wrong_key_is_never_echoed_in_full(client, length):
    secret = ("sk_" + "abcdefghijklmnopqrstuvwxyz0123456789" * 12)[:length]
    response = client.get("/v1/customers", **_auth(secret))
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message.startswith("Invalid API Key provided: ")
    shown = message.removeprefix("Invalid API Key provided: ")
    assert secret not in message
    visible = shown.replace("*", "")
    assert len(visible) <= min(11, max(0, length - 8))


def test_a_full_length_wrong_key_is_masked_like_stripe():
    secret = "sk_" + "x" * 39 + "abcd"
    assert mask_secret(secret) == "sk_xxxx" + "*" * 35 + "abcd"
    assert mask_secret("sk_12345abcd") == "****" * 2 + "abcd"


def test_duplicate_json_keys_are_refused_like_duplicate_form_keys(client, api_secret):
    body = '{"name": "Acme", "name": "Other"}'
    form = _post_raw(client, api_secret, "/v1/customers", "name=Acme&name=Other")
    response = _post_raw(client, api_secret, "/v1/customers", body, "application/json")
    error = _assert_refused(response, param="name")
    assert (
        error["message"] == form.json()["error"]["message"] == "Parameter 'name' was given twice."
    )
    body = '{"metadata": {"crm": "1", "crm": "2"}}'
    response = _post_raw(client, api_secret, "/v1/customers", body, "application/json")
    _assert_refused(response, param="metadata[crm]")
    assert not Customer.objects.exists()


def test_head_answers_like_get_without_a_body(api, client, api_secret):
    customer = api.post("/v1/customers", {"name": "Acme"}).json()
    for path in ("/v1/customers", f"/v1/customers/{customer['id']}"):
        get = client.get(path, **_auth(api_secret))
        head = client.head(path, **_auth(api_secret))
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head["Content-Type"] == "application/json"
        assert int(head["Content-Length"]) == len(get.content)
    assert client.head("/v1/customers/cus_missing", **_auth(api_secret)).status_code == 404
    assert client.head("/v1/customers").status_code == 401


# --- failures inside a view are still JSON ---------------------------------------------------


def _break_customer_list(monkeypatch, exception):
    view_class = resolve("/v1/customers").func.view_class

    def broken(self, request, params, **kwargs):
        raise exception

    monkeypatch.setattr(view_class, "get", broken)
    monkeypatch.setattr(view_class, "post", broken)


def test_an_unexpected_error_is_a_stripe_shaped_api_error(api, monkeypatch, caplog):
    _break_customer_list(monkeypatch, RuntimeError("boom"))
    response = api.get("/v1/customers")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "api_error"
    assert "boom" not in response.json()["error"]["message"]
    assert any(record.name == "django.request" for record in caplog.records)


def test_a_lost_database_connection_is_a_retryable_503(api, monkeypatch):
    _break_customer_list(monkeypatch, OperationalError("server closed the connection"))
    response = api.get("/v1/customers")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert response["Stripe-Should-Retry"] == "true"
    assert response["Retry-After"] == "1"
    # A POST without an Idempotency-Key may have been applied: the SDK must not retry it blindly.
    response = api.post("/v1/customers", {"name": "x"})
    assert response.status_code == 503
    assert response["Stripe-Should-Retry"] == "false"


def test_a_value_the_database_cant_hold_is_a_400_not_a_500(api, monkeypatch):
    _break_customer_list(monkeypatch, DataError("integer out of range"))
    response = api.post("/v1/customers", {"name": "x"}, idempotency_key="k1")
    error = _assert_refused(response)
    assert error["code"] == "parameter_invalid"
    _break_customer_list(monkeypatch, OverflowError("date value out of range"))
    _assert_refused(api.get("/v1/customers"))


def test_json_error_bodies_are_json_even_for_odd_content_types(client, api_secret):
    response = client.post(
        "/v1/customers",
        data=json.dumps({"name": "x"}),
        content_type="text/plain",
        **_auth(api_secret),
    )
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.postgres
def test_a_killed_database_connection_fails_one_request_as_json_and_the_next_reconnects(
    client, transactional_db
):
    import psycopg
    from django.db import connection

    from billing_site.services import api_key_create

    _, secret = api_key_create(name="reconnect")
    assert client.get("/v1/customers", **_auth(secret)).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    failed = client.get("/v1/customers", **_auth(secret))
    assert failed.status_code in (500, 503)
    assert failed.json()["error"]["type"] == "api_error"
    assert client.get("/v1/customers", **_auth(secret)).status_code == 200
