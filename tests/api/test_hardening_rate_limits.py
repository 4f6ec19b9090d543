"""API request limits: per key and endpoint group, failed keys per client IP, shared via Redis."""

from __future__ import annotations

import socket
import uuid

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from billing_site.api import rate_limits
from billing_site.services import api_key_create

pytestmark = pytest.mark.django_db

WRONG_KEY = {"HTTP_AUTHORIZATION": "Bearer sk_wrong_key_0000000000000000"}


@pytest.fixture
def limits(settings, monkeypatch):
    """Small limits, and the wall clock held inside one window so no test straddles two."""
    settings.BILLING_API_RATE_LIMITS = {"default": "3/m", "ingest": "5/m"}
    settings.BILLING_API_INVALID_KEY_RATE_LIMIT = "3/m"
    monkeypatch.setattr(rate_limits, "_wall_time", lambda: 1_800_000_000.5)
    caches["default"].clear()
    yield settings
    # Only the local-memory cache is cleared: clear() on Redis would flush the whole database.
    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


def _auth(secret: str, **extra) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}", **extra}


def _post_form(client, path: str, secret: str):
    return client.post(
        path, data="", content_type="application/x-www-form-urlencoded", **_auth(secret)
    )


def _assert_rate_limited(response) -> None:
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "rate_limit"
    assert "Too many requests" in error["message"]
    assert int(response["Retry-After"]) >= 1


def test_a_key_over_its_limit_gets_a_429_rate_limit(client, api_secret, limits):
    for _ in range(3):
        assert client.get("/v1/customers", **_auth(api_secret)).status_code == 200
    _assert_rate_limited(client.get("/v1/customers", **_auth(api_secret)))
    # Writes count against the same allowance, and nothing is created once over it.
    _assert_rate_limited(_post_form(client, "/v1/customers", api_secret))
    # Another key has its own allowance.
    _, other = api_key_create(name="other")
    assert client.get("/v1/customers", **_auth(other)).status_code == 200


def test_the_next_window_starts_a_new_count(client, api_secret, limits, monkeypatch):
    for _ in range(3):
        client.get("/v1/customers", **_auth(api_secret))
    _assert_rate_limited(client.get("/v1/customers", **_auth(api_secret)))
    monkeypatch.setattr(rate_limits, "_wall_time", lambda: 1_800_000_000.5 + 60)
    assert client.get("/v1/customers", **_auth(api_secret)).status_code == 200


def test_ingestion_has_its_own_larger_allowance(client, api_secret, limits):
    for _ in range(3):
        client.get("/v1/customers", **_auth(api_secret))
    _assert_rate_limited(client.get("/v1/customers", **_auth(api_secret)))
    for _ in range(5):
        # Refused for its parameters (400), but served: the ingest allowance is separate.
        response = _post_form(client, "/v1/billing/meter_events", api_secret)
        assert response.status_code == 400
    _assert_rate_limited(_post_form(client, "/v1/billing/meter_events", api_secret))


def test_an_ip_sending_wrong_keys_is_refused_before_any_key_lookup(
    client, api_secret, limits, django_assert_max_num_queries
):
    for _ in range(3):
        assert client.get("/v1/customers", **WRONG_KEY).status_code == 401
    with django_assert_max_num_queries(0):
        _assert_rate_limited(client.get("/v1/customers", **WRONG_KEY))
    # Until the window ends, even a good key from that address waits; other addresses don't.
    _assert_rate_limited(client.get("/v1/customers", **_auth(api_secret)))
    other_ip = _auth(api_secret, REMOTE_ADDR="10.9.8.7")
    assert client.get("/v1/customers", **other_ip).status_code == 200


def test_behind_a_proxy_the_forwarded_client_address_is_limited(client, api_secret, limits):
    limits.BILLING_TRUSTED_PROXY_COUNT = 1
    attacker = {**WRONG_KEY, "HTTP_X_FORWARDED_FOR": "1.1.1.1, 10.0.0.1"}
    for _ in range(3):
        assert client.get("/v1/customers", **attacker).status_code == 401
    # The entry the client wrote itself (1.1.1.1) is not trusted; rotating it changes nothing.
    attacker["HTTP_X_FORWARDED_FOR"] = "2.2.2.2, 10.0.0.1"
    _assert_rate_limited(client.get("/v1/customers", **attacker))
    neighbour = _auth(api_secret, HTTP_X_FORWARDED_FOR="10.0.0.2")
    assert client.get("/v1/customers", **neighbour).status_code == 200


def test_rates_are_written_per_second_minute_or_hour():
    assert rate_limits.parse_rate("100/s") == rate_limits.Rate(100, 1)
    assert rate_limits.parse_rate("30/m") == rate_limits.Rate(30, 60)
    assert rate_limits.parse_rate(" 5000/H ") == rate_limits.Rate(5000, 3600)
    assert rate_limits.parse_rate("off") is None
    for bad in ("100", "0/s", "10/d", "-1/s", "ten/s"):
        with pytest.raises(ValueError, match="N/s"):
            rate_limits.parse_rate(bad)


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_reachable(), reason="needs Redis on 127.0.0.1:6379")
def test_with_redis_configured_every_process_shares_one_count(client, api_secret, limits):
    import redis

    prefix = f"billing-test-{uuid.uuid4().hex}"
    limits.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/14",
            "KEY_PREFIX": prefix,
        }
    }
    server = redis.Redis(host="127.0.0.1", port=6379, db=14)
    try:
        for _ in range(3):
            assert client.get("/v1/customers", **_auth(api_secret)).status_code == 200
        # The count lives in Redis, where every gunicorn process and server reads it.
        keys = server.keys(f"{prefix}:*")
        assert len(keys) == 1
        assert int(server.get(keys[0])) == 3
        assert 0 < server.ttl(keys[0]) <= 61
        _assert_rate_limited(client.get("/v1/customers", **_auth(api_secret)))
        # Another process's requests land on the same counter.
        server.incrby(keys[0], -3)
        assert client.get("/v1/customers", **_auth(api_secret)).status_code == 200
    finally:
        for key in server.keys(f"{prefix}:*"):
            server.delete(key)
        server.close()


def test_an_unreachable_cache_serves_requests_unlimited_rather_than_failing(
    client, api_secret, limits, caplog
):
    limits.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    for _ in range(5):
        assert client.get("/v1/customers", **_auth(api_secret)).status_code == 200
    assert "Rate limit cache unavailable" in caplog.text
