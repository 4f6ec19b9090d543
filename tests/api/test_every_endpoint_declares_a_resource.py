"""Every API endpoint names the resource a restricted key needs permission on, so a new endpoint
can't forget it: the URL resolver is walked here, and a class without one fails to define."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from billing_site.api.base import ApiView, UnrecognizedUrl
from billing_site.key_permissions import PRESETS, RESOURCES


def _api_views(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if route.startswith(("v1/", "v2/")):
                yield route, view_class


API_VIEWS = list(_api_views())


def test_the_resolver_walk_finds_the_whole_api():
    routes = {route for route, _ in API_VIEWS}
    assert {"v1/customers", "v1/invoiceitems", "v2/billing/meter_event_stream"} <= routes
    assert len(API_VIEWS) > 40


@pytest.mark.parametrize(("route", "view_class"), API_VIEWS, ids=[r for r, _ in API_VIEWS])
def test_every_api_route_is_an_api_view_that_declares_a_known_resource(route, view_class):
    assert view_class is not None and issubclass(view_class, ApiView), route
    if view_class is UnrecognizedUrl:
        assert view_class.resource is None  # the 404 for unknown URLs guards no data
    else:
        assert view_class.resource in RESOURCES, route


@pytest.mark.parametrize(
    ("route", "resource"),
    [
        ("v1/prices/<str:public_id>", "products"),
        ("v1/billing/meters/<str:public_id>/event_summaries", "meters"),
        ("v1/billing/meter_event_adjustments", "meter_events"),
        ("v2/billing/meter_event_session", "meter_events"),
        ("v2/billing/meter_event_stream", "meter_events"),
        ("v1/subscription_items/<str:public_id>", "subscriptions"),
        ("v1/invoices/<str:public_id>/lines", "invoices"),
        ("v1/invoices/create_preview", "invoices"),
        ("v1/invoiceitems", "invoices"),
        ("v1/billing/credit_balance_summary", "credits"),
        ("v1/test_helpers/test_clocks/<str:public_id>/advance", "test_clocks"),
        ("v1/billing_portal/sessions", "billing_portal"),
    ],
)
def test_endpoints_that_belong_to_a_parent_resource_share_its_permission(route, resource):
    assert dict(API_VIEWS)[route].resource == resource


def test_the_read_only_preset_reads_every_resource_an_endpoint_declares():
    declared = {view.resource for _, view in API_VIEWS if view.resource is not None}
    assert declared <= set(PRESETS["read_only"])
    assert set(RESOURCES) == declared  # no resource is declared by nobody


def test_a_view_without_a_resource_fails_when_its_class_is_defined():
    with pytest.raises(TypeError, match=r"declares no resource.*every API view sets `resource`"):

        class Forgetful(ApiView):
            def get(self, request, params):
                return {}


def test_a_misspelt_resource_fails_too():
    with pytest.raises(TypeError, match="declares resource = 'customer'"):

        class Misspelt(ApiView):
            resource = "customer"
