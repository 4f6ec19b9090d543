"""Fuzz every API endpoint with malformed bodies, ids and headers.

Endpoints come from the URL resolver, so a new endpoint is fuzzed without touching this file.
For every request: no 5xx, the answer is JSON (Stripe's error shape when refused), and a
refused request leaves the database exactly as it was. Bounded to a few hundred requests.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_site.models import ApiKey, IdempotencyKey

pytestmark = pytest.mark.django_db

DOMAIN_APPS = ("billing_site", "catalog", "metering", "credits", "invoicing")
# Keys are read (last_used_at) and error answers stored for replay on purpose; not domain data.
NOT_COMPARED = {ApiKey, IdempotencyKey}


def _api_routes() -> list[tuple[str, list[str]]]:
    """(route with <converters>, HTTP methods) for every endpoint under /v1/ and /v2/."""
    routes: list[tuple[str, list[str]]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern) and prefix.startswith(("v1/", "v2/")):
                view_class = getattr(pattern.callback, "view_class", None)
                allowed = getattr(view_class, "http_method_names", ["get"])
                methods = [m.upper() for m in allowed if hasattr(view_class, m)]
                if "GET" in methods:
                    methods.append("HEAD")
                # The catch-all (a regex) answers any other path under the prefix.
                path = prefix + ("no_such_endpoint" if route.startswith("^") else route)
                routes.append((path, methods))

    walk(get_resolver().url_patterns, "")
    return routes


ROUTES = _api_routes()

# Parameter names the endpoints read, so requests get past "unknown parameter" into the typed
# readers and the services; then some odd names.
# fmt: off
NAMES = [
    "name", "email", "description", "metadata", "metadata[plan]", "currency", "unit_amount",
    "unit_amount_decimal", "product", "recurring[interval]", "recurring[usage_type]",
    "recurring[meter]", "billing_scheme", "tiers_mode", "tiers[0][up_to]",
    "tiers[0][unit_amount]", "customer", "items[0][price]", "items[0][quantity]", "limit",
    "starting_after", "ending_before", "expand[]", "event_name", "payload[value]",
    "payload[stripe_customer_id]", "identifier", "timestamp", "display_name",
    "default_aggregation[formula]", "amount[type]", "amount[monetary][value]",
    "amount[monetary][currency]", "category", "expires_at", "subscription", "quantity",
    "price", "amount", "active", "nickname", "lookup_key", "type", "cancel[identifier]",
    "status", "invoice", "collection_method", "days_until_due", "auto_advance",
    "cancel_at_period_end", "frozen_time", "return_url", "ids[]", "lookup_keys[]",
    "transform_quantity[divide_by]", "transform_quantity[round]", "period[start]",
    "period[end]", "invoice_now", "prorate", "billing_cycle_anchor", "tiers[1][up_to]",
    "tiers[0][flat_amount]", "unit_amount", "value_settings[event_payload_key]",
    "a[b][c][d][e][f][g][h]", "x[", "[]", "tiers[²][up_to]", "na\x00me", "metadata[k\x00]",
]
NASTY_VALUES = [
    "", " ", "\x00", "a\x00b", "9" * 5000, "99999999999999999999", "-1", "0", "-0", "1",
    "1e308", "1E+20", "1e-400", "NaN", "inf", "-inf", "true", "x" * 6000, "²", "253402300800",
    "99999999999999", "0.0000000000001", "usd", "month", "metered", "sum", "cancel", "tokens",
    "promotional", "graduated", "per_unit", "tiered", "cus_", "[]", "{}",
]
# fmt: on
# Parameters whose domain limits are not in place yet (issue 10, row 5, domain part): left out
# until they are, so the fuzzer guards everything else meanwhile.
PENDING_DOMAIN_LIMITS: set[str] = set()
NAMES = [name for name in NAMES if name not in PENDING_DOMAIN_LIMITS]

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "multipart/form-data; boundary=xyz",
    "",
]
ODD_JSON = [
    '{"name": "a", "name": "b"}',
    '{"limit": ' + "9" * 5000 + "}",
    '{"amount": NaN}',
    '{"metadata": ' + "[" * 1200 + "]" * 1200 + "}",
    '{"metadata": {"k": "\\u0000"}}',
    '{"name": "\\ud800"}',
    "[1, 2]",
    "null",
    '"text"',
    "{",
]


def _quote(text: str) -> str:
    return quote(text, safe="[]", errors="surrogatepass")


def _often(strategy_a, strategy_b):
    """`strategy_a` about four times in five. (Hypothesis favours small integers, so a plain
    `integers(0, 9) == 0` coin comes up far more often than one time in ten.)"""
    return st.sampled_from([True, True, True, True, False]).flatmap(
        lambda pick: strategy_a if pick else strategy_b
    )


def _valid_bodies(ids: dict[str, str]) -> dict[str, dict[str, str]]:
    """A body each create endpoint accepts, to spoil one field at a time: that reaches the
    rules deep inside the services, which random bodies rarely get past the required ones to."""
    customer, price = ids["customers"], ids["prices"]
    return {
        "v1/customers": {"name": "Acme"},
        "v1/products": {"name": "Widget"},
        "v1/prices": {
            "product": ids["products"],
            "currency": "usd",
            "unit_amount": "2000",
            "recurring[interval]": "month",
        },
        "v1/billing/meters": {
            "display_name": "Calls",
            "event_name": "calls",
            "default_aggregation[formula]": "sum",
        },
        "v1/billing/meter_events": {
            "event_name": "tokens",
            "payload[stripe_customer_id]": customer,
            "payload[value]": "1",
        },
        "v1/subscriptions": {"customer": customer, "items[0][price]": price},
        "v1/invoiceitems": {"customer": customer, "amount": "100", "currency": "usd"},
        "v1/test_helpers/test_clocks": {"frozen_time": "1800000000"},
        "v1/billing/credit_grants": {
            "customer": customer,
            "category": "paid",
            "amount[type]": "monetary",
            "amount[monetary][currency]": "usd",
            "amount[monetary][value]": "500",
            "applicability_config[scope][price_type]": "metered",
        },
    }


def _encode_form(pairs) -> str:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs)


def _strategies(ids: dict[str, str]):
    known_ids = sorted(ids.values())
    scalars = st.one_of(st.sampled_from(NASTY_VALUES + known_ids), TEXT)
    names = _often(st.sampled_from(NAMES), TEXT)
    form = st.lists(st.tuples(names, scalars), max_size=6, unique_by=lambda pair: pair[0]).map(
        _encode_form
    )
    json_scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),  # lone surrogates included
        st.sampled_from(NASTY_VALUES + known_ids),
    )
    json_keys = _often(st.sampled_from([n for n in NAMES if "[" not in n]), st.text(max_size=10))
    json_values = st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=4)
        ),
        max_leaves=12,
    )
    json_body = _often(
        st.dictionaries(json_keys, json_values, max_size=6).map(json.dumps),
        st.sampled_from(ODD_JSON),
    )
    return form, json_body


@st.composite
def api_requests(draw, ids: dict[str, str]) -> dict[str, Any]:
    form, json_body = _strategies(ids)
    route, methods = draw(st.sampled_from(ROUTES))
    method = draw(_often(st.sampled_from(methods), st.sampled_from(["HEAD", "PUT", "PATCH"])))
    resource = route.split("/<")[0].removeprefix("v1/")
    own_id = st.just(ids[resource]) if resource in ids else st.sampled_from(sorted(ids.values()))
    public_id = draw(_often(own_id, TEXT.filter(lambda t: t and "/" not in t)))
    path = "/" + route.replace("<str:public_id>", _quote(public_id).replace("%2F", ""))
    valid = _valid_bodies(ids).get(route)
    kinds = ["form", "json", "bytes", "none"] + (["one_bad_field"] * 4 if valid else [])
    body_kind = draw(st.sampled_from(kinds))
    if body_kind == "one_bad_field":
        bad = {draw(st.sampled_from([*valid, *NAMES])): draw(st.sampled_from(NASTY_VALUES))}
        body = _encode_form({**valid, **bad}.items()).encode()
        content_type = "application/x-www-form-urlencoded"
    elif body_kind == "form":
        body, content_type = draw(form).encode(), "application/x-www-form-urlencoded"
    elif body_kind == "json":
        body, content_type = draw(json_body).encode("utf-8", "surrogatepass"), "application/json"
    elif body_kind == "bytes":
        body, content_type = draw(st.binary(max_size=200)), draw(st.sampled_from(CONTENT_TYPES))
    else:
        body, content_type = b"", draw(st.sampled_from(CONTENT_TYPES))
    query = draw(_often(st.just(""), form))
    headers = {}
    if draw(_often(st.just(False), st.just(True))):
        headers["HTTP_IDEMPOTENCY_KEY"] = draw(
            st.one_of(TEXT, st.sampled_from(["k\x00", "k" * 300]))
        )
    if draw(st.sampled_from([False] * 9 + [True])):
        headers["HTTP_AUTHORIZATION"] = draw(
            st.one_of(TEXT, st.sampled_from(["Basic !!!", "Bearer "]))
        )
    return {
        "method": method,
        "path": path + (f"?{query}" if query else ""),
        "body": body,
        "content_type": content_type,
        "headers": headers,
    }


def _snapshot() -> dict[str, list[tuple]]:
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values_list())
        for model in apps.get_models()
        if model._meta.app_label in DOMAIN_APPS and model not in NOT_COMPARED
    }


@pytest.fixture
def seeded_ids(api) -> dict[str, str]:
    """One object of each kind, by the URL segment that names it, so ids point at something."""

    def create(path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, params)
        assert response.status_code == 200, response.json()
        return response.json()

    customer = create("/v1/customers", {"name": "Fuzz"})["id"]
    product = create("/v1/products", {"name": "Fuzz product"})["id"]
    monthly = {"interval": "month"}
    price = create(
        "/v1/prices",
        {"product": product, "currency": "usd", "unit_amount": 2000, "recurring": monthly},
    )["id"]
    meter = create(
        "/v1/billing/meters",
        {
            "display_name": "Tokens",
            "event_name": "tokens",
            "default_aggregation": {"formula": "sum"},
        },
    )["id"]
    subscription = create("/v1/subscriptions", {"customer": customer, "items": [{"price": price}]})
    grant = create(
        "/v1/billing/credit_grants",
        {
            "customer": customer,
            "category": "paid",
            "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 500}},
            "applicability_config": {"scope": {"price_type": "metered"}},
        },
    )["id"]
    clock = create("/v1/test_helpers/test_clocks", {"frozen_time": 1_800_000_000})["id"]
    invoice = api.get("/v1/invoices").json()["data"][0]
    return {
        "customers": customer,
        "products": product,
        "prices": price,
        "billing/meters": meter,
        "subscriptions": subscription["id"],
        "subscription_items": subscription["items"]["data"][0]["id"],
        "billing/credit_grants": grant,
        "test_helpers/test_clocks": clock,
        "invoices": invoice["id"],
        "invoiceitems": invoice["lines"]["data"][0]["id"],
    }


@pytest.fixture
def stream_token(api) -> str:
    return api.post("/v2/billing/meter_event_session").json()["authentication_token"]


def test_the_fuzzer_reaches_every_api_endpoint():
    paths = {route for route, _ in ROUTES}
    assert "v1/customers/<str:public_id>" in paths
    assert "v2/billing/meter_event_stream" in paths
    assert len(paths) >= 40


def test_malformed_requests_never_get_a_5xx_and_refused_ones_write_nothing(
    client, api_secret, seeded_ids, stream_token
):
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=api_requests(seeded_ids))
    def check(request: dict[str, Any]) -> None:
        before = _snapshot()
        # The v2 stream authenticates with a session token instead of the key.
        secret = stream_token if "meter_event_stream" in request["path"] else api_secret
        response = client.generic(
            request["method"],
            request["path"],
            data=request["body"],
            content_type=request["content_type"],
            **{"HTTP_AUTHORIZATION": f"Bearer {secret}", **request["headers"]},
        )
        summary = f"{request['method']} {request['path'][:300]!r} -> {response.status_code}"
        assert response.status_code < 500, summary + " " + response.content[:500].decode()
        if request["method"] == "HEAD":
            assert response.content == b"", summary
            return
        assert response["Content-Type"] == "application/json", summary
        body = response.json()
        if response.status_code >= 400:
            error = body["error"]
            assert error["type"] in {"invalid_request_error", "idempotency_error"}, summary
            assert isinstance(error["message"], str) and error["message"], summary
            assert _snapshot() == before, f"{summary} changed the database: {body}"

    check()
