"""The customer portal's access rules and reads: signed links, sessions, and what pages show.

Access (DESIGN "Security": signed, expiring, scoped to one customer):

- A portal link is `/portal/enter/<token>/`. The token is a `TimestampSigner` signature over
  `{"c": customer public id, "s": portal session id, "r": return_url}`, so nobody can forge one
  or point it at another customer, and it can be used until `LINK_MAX_AGE` has passed.
  Nothing is stored: the token is the record (the `bps_...` id is only for logs and the API).
- Opening a link puts only the customer's id (and the return URL) in the Django session, with an
  idle timeout of `SESSION_IDLE_SECONDS`. Every portal page reads the customer from the session;
  no portal URL carries a customer id, and invoices are looked up filtered by that customer.
- Link ages use the wall clock (`time.time()`, as Django's signer does), not the billing clock:
  a test clock moves billing time, not how long a credential has been around.

Reads: `portal_overview` (current period, usage and its chart, upcoming invoice, credits) and
`invoice_document` (an invoice as the detail page and the PDF show it). They return plain,
already formatted values so the templates stay dumb.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.safestring import SafeString

from billing_site.errors import BillingError
from billing_site.ids import generate_public_id
from catalog.money import format_minor_units
from credits.models import CreditGrant
from credits.selectors import balance_summary, grants_with_balances
from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription
from invoicing.selectors import invoice_preview
from invoicing.services.invoices import customer_now
from metering.charts import bar_chart_svg, format_value
from metering.selectors import usage, usage_by_window

# How long a portal link can be opened after it was made (seconds). Module-level so tests can
# monkeypatch it; read at call time.
LINK_MAX_AGE = 60 * 60
# A portal session ends after this long without a request (seconds); each page view renews it.
SESSION_IDLE_SECONDS = 30 * 60
SALT = "billing-portal"
SESSION_CUSTOMER_KEY = "portal_customer_id"
SESSION_RETURN_URL_KEY = "portal_return_url"

DAY = dt.timedelta(days=1)


# --- Links ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalLink:
    """A freshly signed portal link. `path` is relative: callers make it absolute."""

    id: str  # bps_..., Stripe's billing_portal.session id
    customer: Customer
    token: str
    created_at: dt.datetime
    expires_at: dt.datetime
    return_url: str | None

    @property
    def path(self) -> str:
        return reverse("portal:enter", args=[self.token])


class PortalAccessError(Exception):
    """Why a link or a session can't open the portal; the view shows a page for each kind."""

    kind = "invalid"

    def __init__(self, return_url: str | None = None):
        super().__init__(self.kind)
        self.return_url = return_url


class LinkInvalid(PortalAccessError):
    kind = "invalid"


class LinkExpired(PortalAccessError):
    kind = "expired"


class AccountClosed(PortalAccessError):
    kind = "closed"


class SessionEnded(PortalAccessError):
    kind = "session_ended"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def portal_link_create(*, customer: Customer, return_url: str | None = None) -> PortalLink:
    """Sign a link to this customer's portal. Writes nothing; refuses a deleted customer."""
    if customer.deleted_at is not None:
        raise BillingError(
            f"Customer {customer.public_id} has been deleted: its portal is closed.",
            param="customer",
        )
    session_id = generate_public_id("bps")
    created = dt.datetime.fromtimestamp(int(time.time()), tz=dt.UTC)
    payload: dict[str, Any] = {"c": customer.public_id, "s": session_id}
    if return_url:
        payload["r"] = return_url
    return PortalLink(
        id=session_id,
        customer=customer,
        token=_signer().sign_object(payload),
        created_at=created,
        expires_at=created + dt.timedelta(seconds=LINK_MAX_AGE),
        return_url=return_url,
    )


def portal_link_open(*, token: str) -> tuple[Customer, str | None]:
    """The customer a link opens, and its return URL; raises a PortalAccessError otherwise.

    An expired link's signature is still checked before its return URL is trusted, so a
    tampered link never counts as merely expired.
    """
    signer = _signer()
    try:
        payload = signer.unsign_object(token, max_age=LINK_MAX_AGE)
    except signing.SignatureExpired:
        payload = signer.unsign_object(token)
        raise LinkExpired(_return_url(payload)) from None
    except (signing.BadSignature, ValueError):
        raise LinkInvalid() from None
    public_id = payload.get("c") if isinstance(payload, dict) else None
    if not isinstance(public_id, str):
        raise LinkInvalid()
    customer = Customer.objects.filter(public_id=public_id).first()
    if customer is None:
        raise LinkInvalid()
    if customer.deleted_at is not None:
        raise AccountClosed(_return_url(payload))
    return customer, _return_url(payload)


def _return_url(payload: Any) -> str | None:
    url = payload.get("r") if isinstance(payload, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def portal_session_start(session, *, customer: Customer, return_url: str | None) -> None:
    """Bind a browser session to one customer (`session` is `request.session`)."""
    # A new session key: a session id planted before the link was opened is worth nothing.
    session.cycle_key()
    session[SESSION_CUSTOMER_KEY] = customer.pk
    if return_url:
        session[SESSION_RETURN_URL_KEY] = return_url
    else:
        session.pop(SESSION_RETURN_URL_KEY, None)
    session.set_expiry(SESSION_IDLE_SECONDS)


def portal_session_end(session) -> None:
    session.pop(SESSION_CUSTOMER_KEY, None)
    session.pop(SESSION_RETURN_URL_KEY, None)


def portal_session_customer(session) -> Customer:
    """The customer of a live portal session, renewing its idle timeout."""
    customer_id = session.get(SESSION_CUSTOMER_KEY)
    if customer_id is None:
        raise SessionEnded()
    return_url = session.get(SESSION_RETURN_URL_KEY)
    customer = Customer.objects.select_related("test_clock").filter(pk=customer_id).first()
    if customer is None or customer.deleted_at is not None:
        # The session stays (and times out) so every page keeps saying why, not "ended".
        raise AccountClosed(return_url)
    # Saving the session on every page moves its expiry: the timeout counts idle time.
    session.set_expiry(SESSION_IDLE_SECONDS)
    session.modified = True
    return customer


# --- Invoices ---------------------------------------------------------------------------------


def portal_invoices(*, customer: Customer) -> QuerySet[Invoice]:
    """The customer's invoices as the portal lists them: finalized ones, newest first.

    Drafts are internal (they may still change during the grace period), so they're left out.
    """
    return (
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.Status.DRAFT)
        .order_by("-finalized_at", "-pk")
    )


def portal_invoice(*, customer: Customer, public_id: str) -> Invoice | None:
    """One of this customer's invoices (drafts included, for a clear 'not final yet' page).

    Always filtered by the session's customer: another customer's invoice is simply not found.
    """
    return Invoice.objects.filter(customer=customer, public_id=public_id).first()


@dataclass(frozen=True)
class TierRow:
    label: str
    units: str
    unit_amount: str
    flat_amount: str  # "" when there is none
    amount: str


@dataclass(frozen=True)
class LineRow:
    description: str
    kind: str
    period_start: dt.datetime
    period_end: dt.datetime
    quantity: str
    amount: str
    credits_applied: str  # "" when none
    tiers: list[TierRow]


@dataclass(frozen=True)
class InvoiceDocument:
    """An invoice as the portal's detail page and the PDF show it (amounts formatted)."""

    invoice: Invoice
    customer: Customer
    number: str
    status: str
    status_label: str
    lines: list[LineRow]
    subtotal: str
    total_credits: str
    has_credits: bool
    total: str
    amount_due: str
    amount_paid: str
    amount_remaining: str
    issued_at: dt.datetime | None
    due_date: dt.datetime | None
    charged_automatically: bool
    has_pdf: bool


STATUS_LABELS = {
    Invoice.Status.DRAFT: "Draft",
    Invoice.Status.OPEN: "Open",
    Invoice.Status.PAID: "Paid",
    Invoice.Status.VOID: "Void",
    Invoice.Status.UNCOLLECTIBLE: "Uncollectible",
}


def tier_rows(breakdown: list[dict[str, Any]], currency: str) -> list[TierRow]:
    """A line's `tier_breakdown` (minor-unit decimal strings) in words and major units."""
    rows = []
    for row in breakdown:
        flat = Decimal(row.get("flat_amount_decimal") or 0)
        rows.append(
            TierRow(
                label=f"Tier {row['tier']}" if row.get("tier") else "Per unit",
                units=format_value(Decimal(row["units"])),
                unit_amount=format_minor_units(Decimal(row["unit_amount_decimal"]), currency),
                flat_amount=format_minor_units(flat, currency) if flat else "",
                amount=format_minor_units(Decimal(row["amount_decimal"]), currency),
            )
        )
    return rows


def shown_tiers(breakdown: list[dict[str, Any]], quantity: Decimal, currency: str) -> list[TierRow]:
    """The breakdown worth showing under a line: tiered prices and packages, not "1 x fee"."""
    if any(row.get("tier") or Decimal(row["units"]) != quantity for row in breakdown):
        return tier_rows(breakdown, currency)
    return []


def _line_row(line: InvoiceLineItem, currency: str) -> LineRow:
    return LineRow(
        description=line.description,
        kind=line.get_kind_display(),
        period_start=line.period_start,
        period_end=line.period_end,
        quantity=format_value(line.quantity),
        amount=format_minor_units(line.amount, currency),
        credits_applied=(
            format_minor_units(line.credits_applied, currency) if line.credits_applied else ""
        ),
        tiers=shown_tiers(line.tier_breakdown, line.quantity, currency),
    )


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    currency = invoice.currency
    lines = list(invoice.lines.order_by("pk"))
    return InvoiceDocument(
        invoice=invoice,
        customer=invoice.customer,
        number=invoice.number or invoice.public_id,
        status=invoice.status,
        status_label=STATUS_LABELS[invoice.status],
        lines=[_line_row(line, currency) for line in lines],
        subtotal=format_minor_units(invoice.subtotal, currency),
        total_credits=format_minor_units(invoice.total_credits, currency),
        has_credits=invoice.total_credits != 0,
        total=format_minor_units(invoice.total, currency),
        amount_due=format_minor_units(invoice.amount_due, currency),
        amount_paid=format_minor_units(invoice.amount_paid, currency),
        amount_remaining=format_minor_units(invoice.amount_remaining, currency),
        issued_at=invoice.finalized_at,
        due_date=invoice.due_date,
        charged_automatically=(
            invoice.collection_method == Subscription.CollectionMethod.CHARGE_AUTOMATICALLY
        ),
        has_pdf=invoice.status != Invoice.Status.DRAFT,
    )


@dataclass(frozen=True)
class InvoiceSummary:
    invoice: Invoice
    number: str
    status: str
    status_label: str
    total: str
    amount_due: str


def invoice_summary(invoice: Invoice) -> InvoiceSummary:
    return InvoiceSummary(
        invoice=invoice,
        number=invoice.number or invoice.public_id,
        status=invoice.status,
        status_label=STATUS_LABELS[invoice.status],
        total=format_minor_units(invoice.total, invoice.currency),
        amount_due=format_minor_units(invoice.amount_due, invoice.currency),
    )


# --- Overview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterUsage:
    name: str
    price_name: str
    start: dt.datetime
    end: dt.datetime
    quantity: str
    chart: SafeString


@dataclass(frozen=True)
class UpcomingLine:
    description: str
    period_start: dt.datetime
    period_end: dt.datetime
    quantity: str
    amount: str
    credits_applied: str
    tiers: list[TierRow]


@dataclass
class SubscriptionOverview:
    subscription: Subscription
    period_start: dt.datetime
    period_end: dt.datetime
    items: list[str] = field(default_factory=list)
    usage: list[MeterUsage] = field(default_factory=list)
    upcoming_lines: list[UpcomingLine] = field(default_factory=list)
    upcoming_subtotal: str = ""
    upcoming_credits: str = ""
    upcoming_has_credits: bool = False
    upcoming_amount_due: str = ""
    upcoming_error: str = ""


@dataclass(frozen=True)
class GrantRow:
    name: str
    category: str
    amount: str
    remaining: str
    status: str
    effective_at: dt.datetime
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class BalanceRow:
    currency: str
    available: str
    ledger: str


@dataclass
class Overview:
    customer: Customer
    now: dt.datetime
    subscriptions: list[SubscriptionOverview]
    grants: list[GrantRow]
    balances: list[BalanceRow]
    recent_invoices: list[InvoiceSummary]


def _midnight(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def daily_usage(
    *, meter, customer: Customer, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, Decimal]]:
    """Usage per UTC day over [start, end), for the chart.

    `usage_by_window` needs day-aligned bounds, so it runs from start's midnight to the
    midnight after end. The first and last days are then recomputed exactly over the part that
    lies inside [start, end), so usage from before the period (on its first day) is not drawn
    and, for a sum or count meter, the bars add up to the usage so far.
    """
    if end <= start:
        return []
    series = usage_by_window(
        meter=meter,
        start=_midnight(start),
        end=_midnight(end - dt.timedelta(microseconds=1)) + DAY,
        window="day",
        customer_id=customer.pk,
    )
    for index in {0, len(series) - 1}:
        day, _ = series[index]
        exact = usage(
            meter=meter,
            customer_id=customer.pk,
            start=max(day, start),
            end=min(day + DAY, end),
        )
        series[index] = (day, exact)
    return series


def grant_status(grant: CreditGrant, now: dt.datetime) -> str:
    if grant.voided_at is not None:
        return "Voided"
    if grant.expired_at is not None or (grant.expires_at is not None and grant.expires_at <= now):
        return "Expired"
    if grant.effective_at > now:
        return "Not yet effective"
    return "Active"


def _subscription_overview(
    subscription: Subscription, customer: Customer, now: dt.datetime
) -> SubscriptionOverview:
    start, end = subscription.current_period_start, subscription.current_period_end
    usage_end = min(max(now, start), end)
    overview = SubscriptionOverview(subscription=subscription, period_start=start, period_end=end)
    for item in subscription.items.all():
        price = item.price
        name = price.nickname or price.product.name
        if not price.is_metered:
            overview.items.append(f"{item.quantity} x {name}")
            continue
        overview.items.append(f"{name} (billed on usage)")
        meter = price.meter
        quantity = usage(meter=meter, customer_id=customer.pk, start=start, end=usage_end)
        series = daily_usage(meter=meter, customer=customer, start=start, end=usage_end)
        overview.usage.append(
            MeterUsage(
                name=meter.display_name,
                price_name=name,
                start=start,
                end=usage_end,
                quantity=format_value(quantity),
                chart=bar_chart_svg(
                    series, title=f"{meter.display_name} per day", label_format="%b %d"
                ),
            )
        )
    try:
        preview = invoice_preview(customer=customer, subscription=subscription)
    except BillingError as error:
        overview.upcoming_error = error.message
        return overview
    currency = preview.currency
    overview.upcoming_lines = [
        UpcomingLine(
            description=line.description,
            period_start=line.period.start,
            period_end=line.period.end,
            quantity=format_value(line.quantity),
            amount=format_minor_units(line.amount, currency),
            credits_applied=(
                format_minor_units(line.credits_applied, currency) if line.credits_applied else ""
            ),
            tiers=shown_tiers(line.tier_breakdown, line.quantity, currency),
        )
        for line in preview.lines
    ]
    overview.upcoming_subtotal = format_minor_units(preview.subtotal, currency)
    overview.upcoming_credits = format_minor_units(preview.total_credits, currency)
    overview.upcoming_has_credits = preview.total_credits != 0
    overview.upcoming_amount_due = format_minor_units(preview.amount_due, currency)
    return overview


RECENT_INVOICES = 3


def portal_overview(*, customer: Customer) -> Overview:
    now = customer_now(customer)
    subscriptions = (
        customer.subscriptions.filter(status=Subscription.Status.ACTIVE)
        .prefetch_related("items__price__product", "items__price__meter", "items__price__tiers")
        .order_by("pk")
    )
    return Overview(
        customer=customer,
        now=now,
        subscriptions=[_subscription_overview(sub, customer, now) for sub in subscriptions],
        grants=[
            GrantRow(
                name=row.grant.name or "Billing credits",
                category=row.grant.get_category_display(),
                amount=format_minor_units(row.grant.amount, row.grant.currency),
                remaining=format_minor_units(row.remaining, row.grant.currency),
                status=grant_status(row.grant, now),
                effective_at=row.grant.effective_at,
                expires_at=row.grant.expires_at,
            )
            for row in grants_with_balances(customer=customer)
        ],
        balances=[
            BalanceRow(
                currency=currency,
                available=format_minor_units(balance.available, currency),
                ledger=format_minor_units(balance.ledger, currency),
            )
            for currency, balance in sorted(balance_summary(customer=customer).items())
        ],
        recent_invoices=[
            invoice_summary(invoice)
            for invoice in portal_invoices(customer=customer)[:RECENT_INVOICES]
        ],
    )
