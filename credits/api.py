"""`/v1/billing/credit_grants`, `/v1/billing/credit_balance_transactions`,
`/v1/billing/credit_balance_summary`."""

from __future__ import annotations

from typing import Any

from billing_site.api.base import (
    ApiError,
    ApiView,
    Listing,
    api_actor,
    get_by_param,
    get_by_public_id,
)
from billing_site.api.expand import Id, register_expandable
from billing_site.api.lists import filter_by_params
from billing_site.api.params import Params
from billing_site.clock import to_unix
from billing_site.errors import BillingError
from catalog.models import Price
from credits import selectors, services
from credits.models import CreditBalanceTransaction, CreditGrant

T = CreditBalanceTransaction


def _monetary(amount: int, currency: str) -> dict[str, Any]:
    return {"monetary": {"currency": currency.lower(), "value": amount}, "type": "monetary"}


def _customer_ref(customer) -> str:
    return customer.public_id


def serialize_grant(grant: CreditGrant) -> dict[str, Any]:
    if grant.applies_to_all_metered:
        scope: dict[str, Any] = {"price_type": "metered"}
    else:
        scope = {"prices": [{"id": price.public_id} for price in grant.prices.all()]}
    return {
        "id": grant.public_id,
        "object": "billing.credit_grant",
        "amount": _monetary(grant.amount, grant.currency),
        "applicability_config": {"scope": scope},
        "category": grant.category,
        "created": to_unix(grant.created_at),
        "customer": _customer_ref(grant.customer),
        "customer_account": None,
        "effective_at": to_unix(grant.effective_at),
        "expires_at": to_unix(grant.expires_at),
        "livemode": False,
        "metadata": grant.metadata,
        "name": grant.name or None,
        "priority": grant.priority,
        "test_clock": (
            grant.customer.test_clock.public_id if grant.customer.test_clock_id else None
        ),
        "updated": to_unix(grant.updated_at),
        "voided_at": to_unix(grant.voided_at),
    }


def serialize_transaction(transaction: CreditBalanceTransaction) -> dict[str, Any]:
    money = _monetary(transaction.amount, transaction.grant.currency)
    is_credit = transaction.type == T.Type.CREDIT
    # Stripe's shape names the invoice under a key per reason; the other reasons' key is null.
    detail_key = T.Reason.INVOICE_VOIDED if is_credit else T.Reason.CREDITS_APPLIED
    detail: dict[str, Any] = {"amount": money, "type": transaction.reason, detail_key: None}
    if transaction.reason == detail_key and transaction.invoice_id:
        detail[detail_key] = {
            "invoice": transaction.invoice.public_id,
            "invoice_line_item": (
                transaction.invoice_line.public_id if transaction.invoice_line_id else None
            ),
        }
    return {
        "id": transaction.public_id,
        "object": "billing.credit_balance_transaction",
        "created": to_unix(transaction.created_at),
        "credit": detail if is_credit else None,
        "credit_grant": transaction.grant.public_id,
        "debit": None if is_credit else detail,
        "effective_at": to_unix(transaction.effective_at),
        "livemode": False,
        "test_clock": (
            transaction.customer.test_clock.public_id
            if transaction.customer.test_clock_id
            else None
        ),
        "type": transaction.type,
    }


def grants_to_serialize():
    return CreditGrant.objects.select_related("customer__test_clock").prefetch_related("prices")


def _customer(params: Params):
    # Through the relation, because credits sits below invoicing, which owns customers.
    customer_model = CreditGrant._meta.get_field("customer").related_model
    return get_by_param(
        customer_model.objects.select_related("test_clock"),
        params,
        "customer",
        "customer",
        required=True,
    )


class CreditGrantCollection(ApiView):
    resource = "credits"
    listing = Listing("/v1/billing/credit_grants", "billing.credit_grant", serialize_grant)

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = grants_to_serialize()
        if "customer" in params:
            queryset = queryset.filter(customer=_customer(params))
        return self.listing.page(queryset, params)

    def post(self, request, params: Params) -> dict[str, Any]:
        customer = _customer(params)
        amount = params.nested("amount", required=True)
        amount.choice("type", ["monetary"], required=True)
        monetary = amount.nested("monetary", required=True)
        currency = monetary.string("currency", required=True)
        value = monetary.integer("value", required=True, minimum=-(10**15), maximum=10**15)
        monetary.reject_unknown()
        amount.reject_unknown()
        config = params.nested("applicability_config", required=True)
        scope = config.nested("scope", required=True)
        config.reject_unknown()
        price_type = scope.string("price_type")
        raw_prices = scope.list_of("prices")
        scope.reject_unknown()
        if price_type and raw_prices:
            raise ApiError(
                "Give either applicability_config[scope][price_type] or "
                "applicability_config[scope][prices], not both.",
                param="applicability_config[scope]",
            )
        if not price_type and not raw_prices:
            raise ApiError(
                "applicability_config[scope] needs price_type=metered or a list of prices.",
                param="applicability_config[scope]",
            )
        if price_type and price_type != "metered":
            raise ApiError(
                "applicability_config[scope][price_type] can only be metered.",
                param="applicability_config[scope][price_type]",
            )
        prices = None
        if raw_prices:
            prices = []
            for index, raw in enumerate(raw_prices):
                entry = Params(
                    raw if isinstance(raw, dict) else None,
                    f"applicability_config[scope][prices][{index}]",
                )
                price = get_by_param(Price.objects.all(), entry, "id", "price", required=True)
                entry.reject_unknown()
                prices.append(price)
        priority = params.integer("priority", minimum=-(10**6), maximum=10**6)
        grant = services.credit_grant_create(
            customer=customer,
            amount=value,
            currency=currency,
            category=params.string("category") or CreditGrant.Category.PAID,
            name=params.string("name", max_length=100) or "",
            prices=prices,
            priority=50 if priority is None else priority,
            effective_at=params.timestamp("effective_at"),
            expires_at=params.timestamp("expires_at"),
            metadata=params.new_metadata(),
            used_currencies=selectors.subscription_currencies(customer),
            now=customer.billing_now(),
            actor=api_actor(request),
        )
        return serialize_grant(grants_to_serialize().get(pk=grant.pk))


class CreditGrantDetail(ApiView):
    resource = "credits"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_grant(
            get_by_public_id(grants_to_serialize(), public_id, "billing.credit_grant")
        )

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        grant = get_by_public_id(grants_to_serialize(), public_id, "billing.credit_grant")
        changes: dict[str, Any] = {}
        if "expires_at" in params:
            raw = params.raw("expires_at")
            changes["expires_at"] = None if raw == "" else params.timestamp("expires_at")
        metadata = params.updated_metadata(grant.metadata)
        if metadata is not None:
            changes["metadata"] = metadata
        services.credit_grant_update(grant=grant, actor=api_actor(request), **changes)
        return serialize_grant(grants_to_serialize().get(pk=grant.pk))


class CreditGrantAction(ApiView):
    resource = "credits"
    http_method_names = ["post"]
    action = ""

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        grant = get_by_public_id(grants_to_serialize(), public_id, "billing.credit_grant")
        at = grant.customer.billing_now()
        actor = api_actor(request)
        if self.action == "void":
            services.credit_grant_void(grant=grant, at=at, actor=actor)
        else:
            services.credit_grant_expire(grant=grant, at=at, actor=actor)
        return serialize_grant(grants_to_serialize().get(pk=grant.pk))


def transactions_to_serialize():
    return T.objects.select_related("grant", "invoice", "invoice_line", "customer__test_clock")


def register_expandables() -> None:
    """What `expand[]` can reach in credits' objects (billing_site/api/expand.py)."""
    register_expandable(
        "billing.credit_grant",
        resource="credits",
        load=grants_to_serialize,
        serialize=serialize_grant,
        fields={"customer": Id("customer"), "test_clock": Id("test_helpers.test_clock")},
    )
    register_expandable(
        "billing.credit_balance_transaction",
        resource="credits",
        load=transactions_to_serialize,
        serialize=serialize_transaction,
        fields={
            "credit_grant": Id("billing.credit_grant"),
            "test_clock": Id("test_helpers.test_clock"),
            "debit.credits_applied.invoice": Id("invoice"),
            "credit.credits_application_invoice_voided.invoice": Id("invoice"),
        },
    )
    register_expandable("billing.credit_balance_summary", fields={"customer": Id("customer")})


class CreditBalanceTransactionCollection(ApiView):
    resource = "credits"
    listing = Listing(
        "/v1/billing/credit_balance_transactions",
        "billing.credit_balance_transaction",
        serialize_transaction,
    )

    def get(self, request, params: Params) -> dict[str, Any]:
        queryset = filter_by_params(
            transactions_to_serialize().filter(customer=_customer(params)),
            params,
            credit_grant="grant__public_id",
        )
        return self.listing.page(queryset, params)


class CreditBalanceTransactionDetail(ApiView):
    resource = "credits"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        return serialize_transaction(
            get_by_public_id(
                transactions_to_serialize(), public_id, "billing.credit_balance_transaction"
            )
        )


class CreditBalanceSummary(ApiView):
    resource = "credits"

    def get(self, request, params: Params) -> dict[str, Any]:
        customer = _customer(params)
        filter_ = params.nested("filter", required=True)
        kind = filter_.choice("type", ["applicability_scope", "credit_grant"], required=True)
        grant = None
        if kind == "credit_grant":
            grant = get_by_param(
                CreditGrant.objects.filter(customer=customer),
                filter_,
                "credit_grant",
                "billing.credit_grant",
                required=True,
            )
        else:
            scope = filter_.nested("applicability_scope", required=True)
            price_type = scope.string("price_type")
            scope.list_of("prices")
            if price_type not in (None, "metered"):
                raise BillingError(
                    "filter[applicability_scope][price_type] can only be metered.",
                    param="filter[applicability_scope][price_type]",
                )
            scope.reject_unknown()
        filter_.reject_unknown()
        balances = selectors.balance_summary(customer=customer, grant=grant)
        return {
            "object": "billing.credit_balance_summary",
            "balances": [
                {
                    "available_balance": _monetary(balance.available, currency),
                    "ledger_balance": _monetary(balance.ledger, currency),
                }
                for currency, balance in sorted(balances.items())
            ],
            "customer": customer.public_id,
            "customer_account": None,
            "livemode": False,
        }
