"""`POST /v1/invoices/{id}/add_lines`, `update_lines` and `remove_lines` on a draft: totals
follow to the cent, a batch changes all its lines or none, and bad input names the line."""

from __future__ import annotations

import pytest

from billing_site.errors import BillingError
from invoicing import services
from invoicing.models import Invoice, InvoiceLineItem
from tests.factories import licensed_price
from tests.helpers import JAN_1, error_body, ok_body, subscribe


@pytest.fixture
def draft(api, customer) -> dict:
    return ok_body(api.post("/v1/invoices", {"customer": customer.public_id, "currency": "usd"}))


def _price(api, unit_amount: int) -> str:
    product = ok_body(api.post("/v1/products", {"name": "Seats"}))
    return ok_body(
        api.post(
            "/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": unit_amount}
        )
    )["id"]


def test_add_update_and_remove_lines_change_the_totals(api, customer, draft):
    pending = ok_body(
        api.post(
            "/v1/invoiceitems", {"customer": customer.public_id, "currency": "usd", "amount": 450}
        )
    )
    price = _price(api, 1999)
    added = ok_body(
        api.post(
            f"/v1/invoices/{draft['id']}/add_lines",
            {
                "lines": [
                    {"invoice_item": pending["id"]},
                    {"pricing": {"price": price}, "quantity": 2},
                    {"amount": 125, "description": "Setup", "metadata": {"k": "v"}},
                ],
                "invoice_metadata": {"batch": "1"},
            },
        )
    )
    assert [line["amount"] for line in added["lines"]["data"]] == [450, 3998, 125]
    assert (added["subtotal"], added["total"], added["amount_due"]) == (4573, 4573, 4573)
    assert added["metadata"] == {"batch": "1"}
    assert ok_body(api.get(f"/v1/invoiceitems/{pending['id']}"))["invoice"] == draft["id"]
    seats, setup = added["lines"]["data"][1], added["lines"]["data"][2]
    assert setup["metadata"] == {"k": "v"}

    updated = ok_body(
        api.post(
            f"/v1/invoices/{draft['id']}/update_lines",
            {
                "lines": [
                    {"id": seats["id"], "quantity": 3},
                    {"id": setup["id"], "amount": 100, "description": "Setup (discounted)"},
                ]
            },
        )
    )
    by_id = {line["id"]: line for line in updated["lines"]["data"]}
    assert (by_id[seats["id"]]["amount"], by_id[seats["id"]]["quantity"]) == (5997, 3)
    assert by_id[setup["id"]]["description"] == "Setup (discounted)"
    assert updated["total"] == 450 + 5997 + 100

    pending_line = added["lines"]["data"][0]
    removed = ok_body(
        api.post(
            f"/v1/invoices/{draft['id']}/remove_lines",
            {
                "lines": [
                    {"id": pending_line["id"], "behavior": "unassign"},
                    {"id": setup["id"], "behavior": "delete"},
                ]
            },
        )
    )
    assert [line["id"] for line in removed["lines"]["data"]] == [seats["id"]]
    assert (removed["subtotal"], removed["total"]) == (5997, 5997)
    # Unassigned: pending again, for the customer's next invoice; deleted: gone.
    assert ok_body(api.get(f"/v1/invoiceitems/{pending['id']}"))["invoice"] is None
    assert not InvoiceLineItem.objects.filter(public_id=setup["id"]).exists()


def test_a_batch_with_one_bad_line_changes_nothing(api, customer, draft):
    error = error_body(
        api.post(
            f"/v1/invoices/{draft['id']}/add_lines",
            {"lines": [{"amount": 100}, {"pricing": {"price": "price_missing"}}]},
        )
    )
    assert (error["param"], error["code"]) == ("lines[1][pricing][price]", "resource_missing")
    error = error_body(
        api.post(
            f"/v1/invoices/{draft['id']}/add_lines",
            {"lines": [{"amount": 100}, {"amount": 5, "unit_amount_decimal": "1"}]},
        )
    )
    assert error["param"] == "lines[1][unit_amount_decimal]"
    assert not InvoiceLineItem.objects.exists()
    assert Invoice.objects.get(public_id=draft["id"]).total == 0


def test_bad_line_parameters_are_named(api, customer, draft):
    added = ok_body(api.post(f"/v1/invoices/{draft['id']}/add_lines", {"lines": [{"amount": 100}]}))
    line = added["lines"]["data"][0]["id"]
    url = f"/v1/invoices/{draft['id']}"
    cases = [
        (f"{url}/add_lines", {}, "lines", "parameter_missing"),
        (
            f"{url}/add_lines",
            {"lines": [{"amount": 1, "color": "red"}]},
            "lines[0][color]",
            "parameter_unknown",
        ),
        (
            f"{url}/add_lines",
            {"lines": [{"invoice_item": "ii_missing"}]},
            "lines[0][invoice_item]",
            "resource_missing",
        ),
        (
            f"{url}/remove_lines",
            {"lines": [{"id": line}]},
            "lines[0][behavior]",
            "parameter_missing",
        ),
        (
            f"{url}/remove_lines",
            {"lines": [{"id": line, "behavior": "shred"}]},
            "lines[0][behavior]",
            None,
        ),
        (
            f"{url}/remove_lines",
            {"lines": [{"id": "il_missing", "behavior": "delete"}]},
            "lines[0][id]",
            "resource_missing",
        ),
        (f"{url}/update_lines", {"lines": [{"quantity": 2}]}, "lines[0][id]", "parameter_missing"),
        (
            f"{url}/update_lines",
            {"lines": [{"id": line, "quantity": 0}]},
            "lines[0][quantity]",
            None,
        ),
    ]
    for path, params, param, code in cases:
        error = error_body(api.post(path, params))
        assert error["param"] == param, (params, error)
        if code:
            assert error["code"] == code, (params, error)
    assert Invoice.objects.get(public_id=draft["id"]).total == 100


def test_a_pending_item_of_another_customer_or_currency_is_not_added(api, customer, draft):
    other = ok_body(api.post("/v1/customers", {"name": "Other"}))
    theirs = ok_body(
        api.post("/v1/invoiceitems", {"customer": other["id"], "currency": "usd", "amount": 1})
    )
    euros = ok_body(
        api.post(
            "/v1/invoiceitems", {"customer": customer.public_id, "currency": "eur", "amount": 1}
        )
    )
    for item in (theirs, euros):
        error = error_body(
            api.post(
                f"/v1/invoices/{draft['id']}/add_lines", {"lines": [{"invoice_item": item["id"]}]}
            )
        )
        assert error["param"] == "lines[0][invoice_item]"
        assert "only a pending item of this customer in usd" in error["message"]


def test_lines_of_a_finalized_invoice_are_refused(api, customer, draft):
    added = ok_body(api.post(f"/v1/invoices/{draft['id']}/add_lines", {"lines": [{"amount": 300}]}))
    line = added["lines"]["data"][0]["id"]
    ok_body(api.post(f"/v1/invoices/{draft['id']}/finalize"))
    url = f"/v1/invoices/{draft['id']}"
    for path, params in (
        (f"{url}/add_lines", {"lines": [{"amount": 1}]}),
        (f"{url}/update_lines", {"lines": [{"id": line, "amount": 1}]}),
        (f"{url}/remove_lines", {"lines": [{"id": line, "behavior": "delete"}]}),
    ):
        error = error_body(api.post(path, params))
        assert error["code"] == "invoice_not_editable"
        assert "only draft invoices can" in error["message"]
    assert Invoice.objects.get(public_id=draft["id"]).total == 300


@pytest.mark.django_db
def test_subscription_lines_keep_their_amount(api, customer):
    subscription = subscribe(customer, licensed_price(unit_amount=2000), at=JAN_1)
    invoice = subscription.invoices.get()
    # A subscription's first invoice is finalized at once: make a draft from the next close.
    subscription.refresh_from_db()
    draft = services.subscription_close_period(
        subscription=subscription, at=subscription.current_period_end
    )
    assert invoice.status == "open" and draft.status == "draft"
    fee = draft.lines.get()
    url = f"/v1/invoices/{draft.public_id}"
    error = error_body(
        api.post(f"{url}/remove_lines", {"lines": [{"id": fee.public_id, "behavior": "delete"}]})
    )
    assert (error["param"], "can't be removed" in error["message"]) == ("lines[0][id]", True)
    error = error_body(
        api.post(f"{url}/update_lines", {"lines": [{"id": fee.public_id, "amount": 1}]})
    )
    assert "only its description and metadata can change" in error["message"]
    renamed = ok_body(
        api.post(
            f"{url}/update_lines",
            {"lines": [{"id": fee.public_id, "description": "Plan", "metadata": {"a": "b"}}]},
        )
    )
    assert (renamed["lines"]["data"][0]["description"], renamed["total"]) == ("Plan", 2000)


def test_a_copy_of_a_line_read_before_another_request_changed_it_is_not_trusted(api, customer):
    # Two requests on one line: each read it before the other's transaction. The second must
    # act on the line as it is now, never on its stale copy.
    first = services.invoice_create(customer=customer, currency="usd")
    line = services.invoice_item_create(invoice=first, description="Setup", amount=700)
    stale = InvoiceLineItem.objects.get(pk=line.pk)
    services.invoice_lines_remove(invoice=first, removals=[(line, "unassign", "lines[0]")])
    second = services.invoice_create(
        customer=customer, currency="usd", pending_invoice_items_behavior="include"
    )
    assert InvoiceLineItem.objects.get(pk=line.pk).invoice_id == second.pk

    with pytest.raises(BillingError) as refused:
        services.invoice_lines_remove(invoice=first, removals=[(stale, "delete", "lines[0]")])
    assert refused.value.param == "lines[0][id]"
    # The item stays where it went, billed once, on the second invoice only.
    assert InvoiceLineItem.objects.get(pk=line.pk).invoice_id == second.pk
    assert (Invoice.objects.get(pk=first.pk).total, Invoice.objects.get(pk=second.pk).total) == (
        0,
        700,
    )
