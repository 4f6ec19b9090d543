"""Search (`GET /v1/{customers,invoices,subscriptions,prices,products}/search`) in Stripe's query
language, through the official SDK where a client would use it."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_site import clock
from invoicing.models import Customer

pytestmark = pytest.mark.django_db


def _customer(api, **params) -> str:
    response = api.post("/v1/customers", params)
    assert response.status_code == 200, response.json()
    return response.json()["id"]


def _search(api, resource: str, query: str, **params):
    return api.get(f"/v1/{resource}/search", {"query": query, **params})


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["data"]]


def _error(response) -> dict:
    assert response.status_code == 400, response.json()
    return response.json()["error"]


# --- through the SDK --------------------------------------------------------------------------


def test_sdk_searches_customers_by_email_and_pages_through_every_match(sdk):
    wanted = [
        sdk.Customer.create(name=f"Jane {n}", email="jane@example.com", metadata={"n": str(n)})
        for n in range(5)
    ]
    sdk.Customer.create(name="Someone else", email="other@example.com")

    first = sdk.Customer.search(query='email:"jane@example.com"', limit=2)
    assert first.object == "search_result"
    assert first.url == "/v1/customers/search"
    assert first.has_more is True
    assert [c.id for c in first.data] == [wanted[4].id, wanted[3].id]  # newest first

    found = [c.id for c in sdk.Customer.search(query='email:"JANE@example.com"', limit=2)
             .auto_paging_iter()]  # fmt: skip
    assert found == [c.id for c in reversed(wanted)]

    last = sdk.Customer.search(query='email:"jane@example.com"', limit=2, page=first.next_page)
    last = sdk.Customer.search(query='email:"jane@example.com"', limit=2, page=last.next_page)
    assert [c.id for c in last.data] == [wanted[0].id]
    assert last.has_more is False and last.next_page is None


def test_sdk_gets_stripe_s_error_with_the_position_for_a_query_that_does_not_parse(sdk):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.Customer.search(query='email:"jane@example.com" AND name:')
    assert refused.value.http_status == 400
    assert refused.value.param == "query"
    assert "position 34" in refused.value.user_message  # the end of the query
    assert "end of query" in refused.value.user_message


def test_sdk_searches_prices_products_subscriptions_and_invoices(sdk):
    product = sdk.Product.create(name="Hypernian API", description="Tokens for the AI API")
    sdk.Product.create(name="Support plan", active=False)
    monthly = sdk.Price.create(
        product=product.id,
        currency="usd",
        unit_amount=2000,
        lookup_key="pro_monthly",
        recurring={"interval": "month"},
    )
    sdk.Price.create(product=product.id, currency="eur", unit_amount=1500)
    customer = sdk.Customer.create(name="Acme", email="billing@acme.test")
    subscription = sdk.Subscription.create(
        customer=customer.id, items=[{"price": monthly.id}], metadata={"plan": "pro"}
    )

    assert [p.id for p in sdk.Product.search(query='name~"hypernian" AND active:"true"')] == [
        product.id
    ]
    assert [p.id for p in sdk.Price.search(query='lookup_key:"pro_monthly"')] == [monthly.id]
    assert [p.id for p in sdk.Price.search(query=f'product:"{product.id}" currency:"USD"')] == [
        monthly.id
    ]
    found = sdk.Subscription.search(query='status:"active" AND metadata["plan"]:"pro"')
    assert [s.id for s in found] == [subscription.id]
    invoices = sdk.Invoice.search(query=f'customer:"{customer.id}" AND total>=2000')
    assert [i.subscription for i in invoices] == [subscription.id]
    assert sdk.Invoice.search(query=f'customer:"{customer.id}" AND total>2000').data == []


# --- the language -----------------------------------------------------------------------------


def test_substring_matching_ignores_case_and_needs_three_characters(api):
    jennifer = _customer(api, name="Jennifer Doe", email="jd@example.com")
    _customer(api, name="John Roe", email="jr@example.com")

    assert _ids(_search(api, "customers", 'name~"NNIF"')) == [jennifer]
    assert _ids(_search(api, "customers", 'name:"jennifer doe"')) == [jennifer]
    assert _ids(_search(api, "customers", 'name:"jennifer"')) == []  # `:` is the whole value
    error = _error(_search(api, "customers", 'name~"je"'))
    assert error["param"] == "query"
    assert "at least 3 characters" in error["message"]


def test_or_matches_either_clause_and_and_or_cannot_be_mixed(api):
    a = _customer(api, name="Alpha", email="a@example.com")
    b = _customer(api, name="Beta", email="b@example.com")
    _customer(api, name="Gamma", email="g@example.com")

    assert _ids(_search(api, "customers", 'name:"alpha" or email:"b@example.com"')) == [b, a]
    for query in ('name:"a" OR name:"b" AND name:"c"', 'name:"alpha" OR name:"beta" name:"x"'):
        error = _error(_search(api, "customers", query))
        assert "AND and OR can't be combined" in error["message"]


def test_metadata_matches_by_key_and_negation_keeps_objects_without_the_key(api):
    pro = _customer(api, name="Pro", metadata={"plan": "pro", "region": "eu"})
    free = _customer(api, name="Free", metadata={"plan": "free"})
    bare = _customer(api, name="No metadata")

    assert _ids(_search(api, "customers", 'metadata["plan"]:"pro"')) == [pro]
    assert _ids(_search(api, "customers", "metadata['plan']:'free'")) == [free]
    assert _ids(_search(api, "customers", '-metadata["plan"]:"pro"')) == [bare, free]
    assert _ids(_search(api, "customers", 'metadata["region"]:null')) == [bare, free]
    assert _ids(_search(api, "customers", '-metadata["region"]:null')) == [pro]


def test_created_compares_unix_seconds(api):
    old = Customer.objects.get(public_id=_customer(api, name="Old"))
    Customer.objects.filter(pk=old.pk).update(created_at=clock.now() - dt.timedelta(days=10))
    new = _customer(api, name="New")
    cutoff = int((clock.now() - dt.timedelta(days=1)).timestamp())

    assert _ids(_search(api, "customers", f"created>{cutoff}")) == [new]
    assert _ids(_search(api, "customers", f"created<={cutoff}")) == [old.public_id]
    assert _ids(_search(api, "customers", f"-created>{cutoff}")) == [old.public_id]


def test_null_checks_find_objects_without_a_value(api):
    with_email = _customer(api, name="Has email", email="x@example.com")
    without = _customer(api, name="No email")

    assert _ids(_search(api, "customers", "email:null")) == [without]
    assert _ids(_search(api, "customers", "-email:null")) == [with_email]
    # A field Stripe searches on that is always null here: null matches all, a value none.
    assert _ids(_search(api, "customers", "phone:null")) == [without, with_email]
    assert _ids(_search(api, "customers", 'phone:"+15550100"')) == []
    # Its negation matches nothing, and it still counts inside an OR.
    assert _ids(_search(api, "customers", "-phone:null")) == []
    either = _search(api, "customers", 'email:"x@example.com" OR phone:null')
    assert _ids(either) == [without, with_email]


def test_a_deleted_customer_is_not_found(api):
    gone = _customer(api, name="Gone", email="gone@example.com")
    api.delete(f"/v1/customers/{gone}")
    assert _ids(_search(api, "customers", 'email:"gone@example.com"')) == []


def test_one_off_invoices_are_found_by_subscription_null_and_status(api):
    customer = _customer(api, name="Invoiced")
    invoice = api.post("/v1/invoices", {"customer": customer, "currency": "usd"}).json()
    added = api.post(
        "/v1/invoiceitems", {"customer": customer, "invoice": invoice["id"], "amount": 4250}
    )
    assert added.status_code == 200, added.json()

    query = f'customer:"{customer}" subscription:null status:"draft" total:4250 currency:"usd"'
    assert _ids(_search(api, "invoices", query)) == [invoice["id"]]
    assert _ids(_search(api, "invoices", f'customer:"{customer}" total<4250')) == []
    assert _ids(_search(api, "invoices", f'customer:"{customer}" -status:"draft"')) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('email:"a@b.c" AND', "unexpected end of query at position 17"),
        ('email "a@b.c"', "unexpected '\"a@b.c\"' at position 6"),
        ('(email:"a@b.c")', "unexpected '(' at position 0"),
        ('email:"unterminated', "at position 6"),
        ("email:jane", "unexpected 'jane' at position 6"),
        ('colour:"red"', "colour (position 0) is not a searchable field for customer"),
        ('name>"abc"', "doesn't take the operator '>'"),
        ('created>"yesterday"', "expected a number"),
        ('metadata:"x"', 'as metadata["key"]:"value"'),
        ('email["k"]:"x"', 'email["k"] (position 0) is not a searchable field'),
        (" ", "the query is empty"),
        (" AND ".join(f'name:"n{n}"' for n in range(11)), "at most 10 clauses"),
    ],
)
def test_bad_queries_get_an_error_naming_what_and_where(api, query, message):
    error = _error(_search(api, "customers", query))
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "query"
    assert message in error["message"]


def test_search_is_routed_before_the_id_routes(api):
    for resource in ("customers", "invoices", "subscriptions", "prices", "products"):
        error = _error(api.get(f"/v1/{resource}/search"))
        assert error["param"] == "query"
        assert error["code"] == "parameter_missing"


def test_a_page_token_only_continues_its_own_query(api):
    for n in range(3):
        _customer(api, name=f"Paged {n}", email="paged@example.com")
    first = _search(api, "customers", 'email:"paged@example.com"', limit=1).json()
    assert first["has_more"] is True

    error = _error(_search(api, "customers", 'name~"paged"', page=first["next_page"]))
    assert error["param"] == "page"
    assert "different query" in error["message"]
    error = _error(_search(api, "customers", 'email:"paged@example.com"', page="forged"))
    assert error["param"] == "page"


def test_a_page_token_of_one_resource_does_not_continue_another(api, customer):
    for n in range(2):
        _customer(api, name=f"Paged {n}")
    customers = _search(api, "customers", "created>0", limit=1).json()
    assert customers["has_more"] is True
    error = _error(_search(api, "invoices", "created>0", page=customers["next_page"]))
    assert error["param"] == "page"


def test_the_last_second_there_is_can_be_searched(api):
    _customer(api, name="Now")
    assert _ids(_search(api, "customers", "created:253402300799")) == []
    assert _error(_search(api, "customers", "created:253402300800"))["param"] == "query"


def test_unknown_parameters_are_refused(api):
    error = _error(_search(api, "customers", 'name:"x"', starting_after="cus_1"))
    assert error["code"] == "parameter_unknown"
    assert error["param"] == "starting_after"


def test_products_fields_always_null_here(api):
    product = api.post("/v1/products", {"name": "Widget"}).json()["id"]
    assert _ids(_search(api, "products", "url:null")) == [product]
    assert _ids(_search(api, "products", 'shippable:"true"')) == []
    assert _ids(_search(api, "products", 'active:"false"')) == []
    error = _error(_search(api, "products", 'active:"maybe"'))
    assert 'expected "true" or "false"' in error["message"]


def test_metadata_keys_that_look_like_numbers_or_hold_quotes_match_literally(api):
    metadata = {"1": "one", 'say "hi"': "yes", "a__b": "c"}
    odd = api.post_json("/v1/customers", {"name": "Odd keys", "metadata": metadata}).json()["id"]
    api.post_json("/v1/customers", {"name": "Other", "metadata": {"2": "one"}})

    assert _ids(_search(api, "customers", 'metadata["1"]:"one"')) == [odd]
    assert _ids(_search(api, "customers", r'metadata["say \"hi\""]:"yes"')) == [odd]
    assert _ids(_search(api, "customers", 'metadata["a__b"]:"c"')) == [odd]


QUERY_PIECES = st.sampled_from(
    ['name', 'email', 'metadata["k"]', "created", ":", "~", ">=", "<", '"abc"', "'x'", "12",
     "-", " AND ", " or ", "null", "(", "]", '"', "\\", "é", " ", "metadata", "phone"]
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pieces=st.lists(QUERY_PIECES | st.text(max_size=3), min_size=1, max_size=8))
def test_any_query_is_answered_with_results_or_a_400_on_query(api_secret, pieces):
    from django.test import Client

    from tests.api_client import ApiClient

    response = _search(ApiClient(Client(), api_secret), "customers", "".join(pieces))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]["param"] == "query"


def test_search_results_expand_like_lists(api, customer):
    invoice = api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}).json()
    response = _search(
        api, "invoices", f'customer:"{customer.public_id}"', expand=["data.customer"]
    )
    assert _ids(response) == [invoice["id"]]
    assert response.json()["data"][0]["customer"]["id"] == customer.public_id
    error = _error(_search(api, "invoices", 'status:"draft"', expand=["data.nothing"]))
    assert error["param"] == "expand"


def test_each_search_needs_read_on_its_resource(api):
    from billing_site.services import api_key_create

    _, reader = api_key_create(name="crm", permissions={"customers": "read"})
    assert api.get("/v1/customers/search", {"query": 'name:"x"'}, secret=reader).status_code == 200
    refused = api.get("/v1/invoices/search", {"query": 'status:"open"'}, secret=reader)
    assert refused.status_code == 403


def test_a_page_costs_the_same_queries_whatever_its_size(api, customer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(12):
        api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"})

    def queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = _search(api, "invoices", 'status:"draft"', limit=limit)
        assert len(response.json()["data"]) == limit
        return len(captured)

    assert queries(2) == queries(12)
