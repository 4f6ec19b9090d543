"""A customer's currency (Stripe's `customer.currency`): set once, by its first subscription or
invoice, and the default currency of its pending invoice items from then on."""

from __future__ import annotations

from invoicing.models import Customer


def customer_currency_settle(*, customer: Customer, currency: str) -> None:
    """Record `currency` as the customer's if it has none yet. A conditional UPDATE, so two
    first invoices at once can't overwrite each other: the first one's currency stays."""
    if customer.currency:
        return
    Customer.objects.filter(pk=customer.pk, currency="").update(currency=currency.upper())
    customer.currency = Customer.objects.values_list("currency", flat=True).get(pk=customer.pk)
