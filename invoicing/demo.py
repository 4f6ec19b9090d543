"""The demo data of `manage.py seed_demo`: the product docs' examples, created through services."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from billing_site import clock
from catalog.models import Price, Product
from catalog.services import Recurring, price_create, product_create
from catalog.terms import build_price_terms
from credits.services import credit_grant_create
from invoicing.models import Customer, Invoice
from invoicing.periods import period_boundary
from invoicing.services import (
    ItemInput,
    billing_run,
    customer_create,
    invoice_create,
    invoice_finalize,
    invoice_item_create,
    invoice_pay,
    subscription_create,
)
from metering.ingest import meter_events_ingest
from metering.models import Meter
from metering.services import meter_create
from metering.validation import EventInput


def _meter(event_name: str, display_name: str) -> Meter:
    existing = Meter.objects.filter(event_name=event_name).first()
    return existing or meter_create(event_name=event_name, display_name=display_name)


def _product(name: str, description: str) -> tuple[Product, bool]:
    existing = Product.objects.filter(name=name).first()
    if existing:
        return existing, False
    return product_create(name=name, description=description), True


def _monthly_usd_price(
    product: Product, lookup_key: str, nickname: str, terms, meter: Meter | None = None
) -> Price:
    """A monthly USD price, billed in advance, or in arrears from `meter` if given."""
    usage = {"usage_type": "metered", "meter": meter} if meter else {}
    return price_create(
        product=product,
        currency="usd",
        terms=terms,
        recurring=Recurring(interval="month", **usage),
        nickname=nickname,
        lookup_key=lookup_key,
    )


@transaction.atomic
def seed_catalog() -> list[Price]:
    """Hypernian (flat fee plus token overage) and Alpaca AI (per hundred tokens). Idempotent."""
    created: list[Price] = []

    tokens = _meter("hypernian_api_tokens", "Hypernian API tokens")
    hypernian, is_new = _product(
        "Hypernian", "200 USD a month, 100,000 API tokens included, then 0.001 USD a token."
    )
    if is_new:
        graduated = [
            {"up_to": 100000, "unit_amount": 0},
            {"up_to": "inf", "unit_amount_decimal": "0.1"},
        ]
        created += [
            _monthly_usd_price(
                hypernian,
                "hypernian_monthly_fee",
                "Hypernian monthly fee",
                build_price_terms(unit_amount=20000),
            ),
            _monthly_usd_price(
                hypernian,
                "hypernian_api_tokens",
                "Hypernian API tokens",
                build_price_terms(billing_scheme="tiered", tiers_mode="graduated", tiers=graduated),
                meter=tokens,
            ),
        ]

    alpaca_tokens = _meter("alpaca_ai_tokens", "Alpaca AI tokens")
    alpaca, is_new = _product(
        "Alpaca AI", "0.04 USD per hundred tokens, billed monthly in arrears."
    )
    if is_new:
        per_hundred = {"divide_by": 100, "round": "up"}
        created.append(
            _monthly_usd_price(
                alpaca,
                "alpaca_ai_tokens",
                "Alpaca AI tokens",
                build_price_terms(unit_amount=4, transform_quantity=per_hundred),
                meter=alpaca_tokens,
            )
        )
    return created


DEMO_CUSTOMERS = [
    # (name, email, price lookup keys, meter event name, typical tokens per event)
    (
        "Northwind Robotics",
        "billing@northwind.example",
        ["hypernian_monthly_fee", "hypernian_api_tokens"],
        "hypernian_api_tokens",
        400,
    ),
    (
        "Acme Research",
        "ap@acme-research.example",
        ["hypernian_monthly_fee", "hypernian_api_tokens"],
        "hypernian_api_tokens",
        120,
    ),
    ("Bluebird Labs", "finance@bluebird.example", ["alpaca_ai_tokens"], "alpaca_ai_tokens", 1200),
    (
        "Orbital Enterprises",
        "ap@orbital.example",
        ["hypernian_monthly_fee", "hypernian_api_tokens"],
        "hypernian_api_tokens",
        2500,
    ),
]
# The enterprise contract of the credit-burndown model: prepay, then spend credits.
PREPAID_CUSTOMER = "ap@orbital.example"
PREPAYMENT = 10_000_000  # 100,000.00 USD
PREPAID_CREDITS = 12_000_000  # 120,000.00 USD, for a year
HISTORY_MONTHS = 3


@dataclass
class SeedSummary:
    events: int = 0
    subscriptions: int = 0
    invoices: int = 0


def _prepay_and_grant(customer: Customer) -> None:
    """A one-off invoice for the prepayment, paid, then credits granted from it."""
    invoice = invoice_create(customer=customer, currency="usd", description="Enterprise contract")
    invoice_item_create(invoice=invoice, description="Hypernian Credits", amount=PREPAYMENT)
    invoice = invoice_finalize(invoice=invoice, actor="seed_demo")
    invoice = invoice_pay(invoice=invoice, actor="seed_demo")
    now = clock.now()
    credit_grant_create(
        customer=customer,
        amount=PREPAID_CREDITS,
        currency="usd",
        category="paid",
        name=f"Prepaid credits ({invoice.number})",
        expires_at=now + dt.timedelta(days=365),
        source_invoice=invoice,
        now=now,
    )


def _month_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seed_billing_history(
    *, events_per_customer: int, progress: Callable[[int], None] | None = None
) -> SeedSummary:
    """Three months of subscriptions, usage and invoices up to now, then this month so far.

    It replays the past through the real services with the clock set back, so every invoice is
    what the billing run would have produced. Identifiers are deterministic: running it again
    adds nothing, because the exactly-once guard refuses the repeats.
    """
    summary = SeedSummary()
    now = clock.now()
    anchor = period_boundary(_month_start(now), "month", 1, -HISTORY_MONTHS)
    prices = {price.lookup_key: price for price in Price.objects.filter(lookup_key__isnull=False)}
    rng = random.Random(20261121)
    plans = []
    for name, email, lookup_keys, event_name, typical in DEMO_CUSTOMERS:
        customer = Customer.objects.live().filter(email=email).first()
        if customer is None:
            customer = customer_create(name=name, email=email, description="Demo customer")
        if email == PREPAID_CUSTOMER and not customer.credit_grants.exists():
            with clock.frozen_at(anchor - dt.timedelta(days=2)):
                _prepay_and_grant(customer)
        if not customer.subscriptions.exists():
            with clock.frozen_at(anchor):
                subscription_create(
                    customer=customer,
                    items=[ItemInput(price=prices[key]) for key in lookup_keys],
                    actor="seed_demo",
                )
            summary.subscriptions += 1
        plans.append((customer, event_name, typical))

    per_month = max(1, events_per_customer // (HISTORY_MONTHS + 1)) if events_per_customer else 0
    for month in range(HISTORY_MONTHS + 1):
        start = period_boundary(anchor, "month", 1, month)
        end = min(period_boundary(anchor, "month", 1, month + 1), now)
        with clock.frozen_at(end):
            for customer, event_name, typical in plans:
                for first in range(0, per_month, 100):
                    batch = []
                    for number in range(first, min(first + 100, per_month)):
                        moment = start + (end - start) * rng.random()
                        busy = 1.8 if moment.weekday() < 5 and 12 <= moment.hour < 20 else 0.6
                        tokens = max(1, int(rng.gauss(typical, typical / 3) * busy))
                        batch.append(
                            EventInput(
                                event_name,
                                {"stripe_customer_id": customer.public_id, "value": str(tokens)},
                                f"demo-{customer.public_id}-{month}-{number}",
                                moment,
                            )
                        )
                    summary.events += len(meter_events_ingest(events=batch).accepted)
                    if progress:
                        progress(len(batch))
        if end < now:
            result = billing_run(at=end + dt.timedelta(hours=2))
            summary.invoices += result.invoices_finalized

    # Past months are paid; the invoice of the month that just ended is still open.
    last_close = period_boundary(anchor, "month", 1, HISTORY_MONTHS)
    for invoice in Invoice.objects.filter(
        customer__in=[customer for customer, _, _ in plans],
        status=Invoice.Status.OPEN,
        finalized_at__lt=last_close,
    ):
        invoice_pay(invoice=invoice, actor="seed_demo")
    return summary
