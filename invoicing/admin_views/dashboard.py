"""The admin dashboard (the admin index): what needs attention, and headline numbers.

Reads only. Every number comes with the URL of the admin list behind it, and a section is only
computed for staff who can view that list (`can_view`). The number of queries is fixed: each
card is one or two aggregate queries, whatever the number of invoices, grants or events, and the
usage charts are one query per meter shown, for at most `MAX_METERS` meters. Usage is read
through the event store (`metering.store`), like everywhere outside `metering`.

"Now" is `billing_site.clock.now()`. Months and days are UTC, like every period in billing.

It lives with the app that owns invoices (the cards are mostly about invoices) rather than in
`billing_site`, which imports no app: `invoicing.admin` adds it to the admin index through
`billing_site.admin.add_index_context`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils.safestring import SafeString

from billing_site import clock
from billing_site.admin_kit import change_url
from billing_site.charts import bar_chart_svg
from billing_site.events.models import WebhookEndpoint
from billing_site.events.selectors import failing_webhook_endpoints
from billing_site.formatting import format_value
from catalog.money import format_minor_units, from_minor_units
from credits.models import CreditGrant
from credits.selectors import grants_expiring
from credits.services import grant_balances
from invoicing.models import BillingRunFailure, Invoice
from invoicing.selectors import late_usage_lines
from metering.models import Meter
from metering.store import event_counts_by_meter, usage_by_window

DRAFTS_LISTED = 5
GRANTS_LISTED = 5
WEBHOOK_ENDPOINTS_LISTED = 5
GRANTS_EXPIRING_WITHIN = dt.timedelta(days=30)
LATE_USAGE_CAP = 200  # the late usage page lists at most this many rows too
REVENUE_MONTHS = 6
MAX_REVENUE_CURRENCIES = 3
USAGE_DAYS = 14
MAX_METERS = 6

S = Invoice.Status
INVOICED = [S.OPEN, S.PAID, S.UNCOLLECTIBLE]  # finalized and not void


@dataclass(frozen=True)
class Link:
    """A piece of text, linked when the viewer may open the list behind it (url else None)."""

    text: str
    url: str | None = None
    detail: str = ""


@dataclass
class Card:
    """One "needs attention" card: a count, amounts per currency, and the next few rows."""

    key: str
    title: str
    count: Link
    empty_message: str
    amounts: list[Link] = field(default_factory=list)
    rows: list[Link] = field(default_factory=list)
    note: str = ""

    @property
    def is_empty(self) -> bool:
        return self.count.text == "0"


@dataclass(frozen=True)
class RevenueSeries:
    currency: str
    chart: SafeString
    this_month: Link
    months: list[Link]


@dataclass(frozen=True)
class MeterTrend:
    meter: Meter
    url: str
    chart: SafeString
    today: str
    total: str | None  # the 14-day total; None for `last` meters, where a sum means nothing


@dataclass
class Dashboard:
    now: dt.datetime
    cards: list[Card] = field(default_factory=list)
    revenue: list[RevenueSeries] | None = None  # None: the viewer can't see invoices
    other_revenue_currencies: list[str] = field(default_factory=list)
    usage: list[MeterTrend] | None = None  # None: the viewer can't see meters
    more_meters: Link | None = None

    @property
    def is_empty(self) -> bool:
        return not self.cards and self.revenue is None and self.usage is None


def admin_dashboard(
    *, can_view: Callable[[type], bool], now: dt.datetime | None = None
) -> Dashboard:
    now = (now or clock.now()).astimezone(dt.UTC)
    dashboard = Dashboard(now=now)
    if can_view(Invoice):
        dashboard.cards += _invoice_cards(now)
        dashboard.cards.append(_late_usage_card(now))
    if can_view(CreditGrant):
        dashboard.cards.append(_expiring_grants_card(now))
    if can_view(BillingRunFailure):
        dashboard.cards.append(_failures_card())
    if can_view(WebhookEndpoint):
        dashboard.cards.append(_failing_webhooks_card(now))
    if can_view(Invoice):
        dashboard.revenue, dashboard.other_revenue_currencies = _revenue(now)
    if can_view(Meter):
        dashboard.usage, dashboard.more_meters = _usage_trends(now)
    return dashboard


# --- Helpers -----------------------------------------------------------------------------------


def _changelist(model, **params) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _iso(moment: dt.datetime) -> str:
    # Whole seconds: the admin list gets the same cutoff as the count, and a readable URL.
    return moment.replace(microsecond=0).isoformat()


def duration_words(delta: dt.timedelta) -> str:
    """A short time span for a card: '23 min', '5 h 10 min', '3 days'."""
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes // (24 * 60)} days"


def _month_start(moment: dt.datetime, months_back: int = 0) -> dt.datetime:
    """Midnight UTC on the first of the month, `months_back` months before `moment`'s."""
    first = moment.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first - relativedelta(months=months_back)


# --- Needs attention ---------------------------------------------------------------------------


def _invoice_cards(now: dt.datetime) -> list[Card]:
    """Drafts, open and overdue invoices: one aggregate query, plus one for the next drafts."""
    cutoff = now.replace(microsecond=0)
    overdue = Q(status=S.OPEN, due_date__lt=cutoff)
    rows = (
        Invoice.objects.filter(status__in=[S.DRAFT, S.OPEN])
        .values("status", "currency")
        .annotate(
            count=Count("pk"),
            due=Sum("amount_due"),
            overdue_count=Count("pk", filter=overdue),
            overdue_due=Sum("amount_due", filter=overdue),
        )
        .order_by("currency")
    )
    draft_count = open_count = overdue_count = 0
    open_amounts: list[Link] = []
    overdue_amounts: list[Link] = []
    overdue_params = {"status__exact": S.OPEN, "due_date__lt": _iso(cutoff)}
    for row in rows:
        if row["status"] == S.DRAFT:
            draft_count += row["count"]
            continue
        currency = row["currency"]
        open_count += row["count"]
        open_amounts.append(
            Link(
                format_minor_units(row["due"] or 0, currency),
                _changelist(Invoice, status__exact=S.OPEN, currency__exact=currency),
            )
        )
        if row["overdue_count"]:
            overdue_count += row["overdue_count"]
            overdue_amounts.append(
                Link(
                    format_minor_units(row["overdue_due"] or 0, currency),
                    _changelist(Invoice, **overdue_params, currency__exact=currency),
                )
            )

    drafts = Card(
        key="drafts",
        title="Drafts waiting to finalize",
        count=Link(str(draft_count), _changelist(Invoice, status__exact=S.DRAFT)),
        empty_message="Nothing waiting: no draft invoices.",
        rows=_next_drafts(now) if draft_count else [],
        note="Period-end drafts finalize on their own after the grace period.",
    )
    open_card = Card(
        key="open",
        title="Open invoices",
        count=Link(str(open_count), _changelist(Invoice, status__exact=S.OPEN)),
        empty_message="Nothing open: every finalized invoice is settled.",
        amounts=open_amounts,
        note="Amount due per currency.",
    )
    overdue_card = Card(
        key="overdue",
        title="Overdue invoices",
        count=Link(str(overdue_count), _changelist(Invoice, **overdue_params)),
        empty_message="Nothing overdue.",
        amounts=overdue_amounts,
        note="Open past their due date. Invoices charged automatically are due when finalized.",
    )
    return [drafts, open_card, overdue_card]


def _next_drafts(now: dt.datetime) -> list[Link]:
    drafts = (
        Invoice.objects.filter(status=S.DRAFT)
        .select_related("customer__test_clock")
        .order_by(F("finalize_after").asc(nulls_last=True), "pk")[:DRAFTS_LISTED]
    )
    rows = []
    for invoice in drafts:
        customer = invoice.customer
        # A test clock's customers are billed at the clock's time, not the wall clock's.
        customer_now = customer.billing_now() if customer.test_clock_id else now
        if invoice.finalize_after is None and invoice.subscription_id:
            detail = "held for review (past the amount limits): see billing run failures"
        elif invoice.finalize_after is None:
            detail = "one-off: finalized when someone sends it"
        elif invoice.finalize_after > customer_now:
            detail = f"finalizes in {duration_words(invoice.finalize_after - customer_now)}"
        else:
            detail = "due to finalize at the next billing run"
        if customer.test_clock_id:
            detail += " (test clock)"
        total = format_minor_units(invoice.total, invoice.currency)
        rows.append(Link(f"{customer} · {total}", change_url(invoice), detail))
    return rows


def _late_usage_card(now: dt.datetime) -> Card:
    count = len(late_usage_lines(now=now))
    shown = f"{LATE_USAGE_CAP}+" if count > LATE_USAGE_CAP else str(count)
    return Card(
        key="late-usage",
        title="Late usage",
        count=Link(shown, reverse("admin:invoicing_invoice_late_usage")),
        empty_message="No late usage.",
        note="Invoice lines with usage that arrived after the invoice was finalized (not billed).",
    )


def _expiring_grants_card(now: dt.datetime) -> Card:
    before = now.replace(microsecond=0) + GRANTS_EXPIRING_WITHIN
    grants = sorted(grants_expiring(before=before), key=lambda grant: (grant.expires_at, grant.pk))
    listed = grants[:GRANTS_LISTED]
    balances = grant_balances(grant.pk for grant in listed) if listed else {}
    rows = []
    for grant in listed:
        left = format_minor_units(balances.get(grant.pk, 0), grant.currency)
        when = (
            f"expires in {duration_words(grant.expires_at - now)}"
            if grant.expires_at > now
            else "expires at the next billing run"
        )
        rows.append(Link(f"{grant} · {grant.customer} · {left} left", change_url(grant), when))
    return Card(
        key="expiring-grants",
        title="Credit grants expiring in 30 days",
        # The credit grant list has no "expiring soon" filter; these are the selector's lookups.
        count=Link(
            str(len(grants)),
            _changelist(
                CreditGrant,
                expires_at__lte=_iso(before),
                expired_at__isnull="True",
                voided_at__isnull="True",
            ),
        ),
        empty_message="No credits expiring in the next 30 days.",
        rows=rows,
    )


def _failures_card() -> Card:
    count = BillingRunFailure.objects.filter(resolved_at__isnull=True).count()
    return Card(
        key="failures",
        title="Failed billing runs",
        count=Link(str(count), _changelist(BillingRunFailure, resolved="no")),
        empty_message="No unresolved failures.",
        note="Subscriptions the billing run could not process; retried at the next run.",
    )


def _failing_webhooks_card(now: dt.datetime) -> Card:
    """Webhook endpoints failing now, or disabled for failing: one count, and the first few."""
    failing = failing_webhook_endpoints()
    count = failing.count()
    rows = []
    for endpoint in failing[:WEBHOOK_ENDPOINTS_LISTED] if count else []:
        since = endpoint.failing_since
        if endpoint.is_enabled:
            detail = f"failing for {duration_words(now - since)}" if since else "failing"
        else:
            detail = "disabled: every delivery failed for too long"
        rows.append(Link(endpoint.url, change_url(endpoint), detail))
    disable_after = duration_words(
        dt.timedelta(seconds=settings.BILLING_WEBHOOK_DISABLE_AFTER_SECONDS)
    )
    return Card(
        key="failing-webhooks",
        title="Failing webhook endpoints",
        count=Link(str(count), _changelist(WebhookEndpoint, health="failing")),
        empty_message="Every webhook endpoint is delivering.",
        rows=rows,
        note=f"An endpoint whose deliveries all fail for {disable_after} is disabled; fix the "
        "receiver, then enable it and resend what it missed.",
    )


# --- Headline numbers ----------------------------------------------------------------------


def _revenue(now: dt.datetime) -> tuple[list[RevenueSeries], list[str]]:
    """Invoiced revenue (finalized, not void) by UTC month of finalization: one query."""
    months = [_month_start(now, back) for back in range(REVENUE_MONTHS - 1, -1, -1)]
    end = _month_start(now, -1)
    totals: dict[str, dict[dt.datetime, int]] = {}
    rows = (
        Invoice.objects.filter(
            status__in=INVOICED, finalized_at__gte=months[0], finalized_at__lt=end
        )
        .annotate(month=TruncMonth("finalized_at", tzinfo=dt.UTC))
        .values("currency", "month")
        .annotate(total=Sum("total"))
        .order_by()
    )
    for row in rows:
        totals.setdefault(row["currency"], {})[row["month"]] = row["total"] or 0
    currencies = sorted(totals, key=lambda code: (-sum(totals[code].values()), code))
    series = []
    for currency in currencies[:MAX_REVENUE_CURRENCIES]:
        per_month = totals[currency]
        links = [
            Link(
                f"{start:%b %Y}",
                _invoiced_url(currency, start, month_end),
                format_minor_units(per_month.get(start, 0), currency),
            )
            for start, month_end in zip(months, [*months[1:], end], strict=True)
        ]
        chart = bar_chart_svg(
            [
                (start, from_minor_units(per_month.get(start, 0), currency).amount)
                for start in months
            ],
            title=f"Invoiced revenue per month, {currency}",
            label_format="%b %Y",
            empty_message="Nothing invoiced",
        )
        this_month = Link(
            format_minor_units(per_month.get(months[-1], 0), currency),
            _invoiced_url(currency, months[-1], end),
        )
        series.append(RevenueSeries(currency, chart, this_month, links))
    return series, currencies[MAX_REVENUE_CURRENCIES:]


def _invoiced_url(currency: str, start: dt.datetime, end: dt.datetime) -> str:
    return _changelist(
        Invoice,
        currency__exact=currency,
        status__in=",".join(INVOICED),
        finalized_at__gte=_iso(start),
        finalized_at__lt=_iso(end),
    )


def _usage_trends(now: dt.datetime) -> tuple[list[MeterTrend], Link | None]:
    """Daily usage over the last 14 UTC days (today included) for the busiest active meters."""
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    start = end - dt.timedelta(days=USAGE_DAYS)
    active = Meter.objects.filter(status=Meter.Status.ACTIVE).order_by("display_name", "pk")
    # The busiest first (most events in the 14 days), then by name.
    recent_events = event_counts_by_meter(start=start, end=end)
    busy = sorted(active.filter(pk__in=recent_events), key=lambda m: -recent_events[m.pk])
    meters = busy[: MAX_METERS + 1]
    if len(meters) <= MAX_METERS:
        meters += active.exclude(pk__in=recent_events)[: MAX_METERS + 1 - len(meters)]
    more = None
    if len(meters) > MAX_METERS:
        meters = meters[:MAX_METERS]
        total = active.count()
        more = Link(
            f"{total - MAX_METERS} more active meters",
            _changelist(Meter, status__exact=Meter.Status.ACTIVE),
        )
    trends = []
    for meter in meters:
        series = usage_by_window(meter=meter, start=start, end=end, window="day")
        values = [value for _, value in series]
        trends.append(
            MeterTrend(
                meter=meter,
                url=f"{change_url(meter)}?{urlencode({'window': 'day'})}",
                chart=bar_chart_svg(
                    series,
                    title=f"{meter.display_name}: {meter.get_formula_display().lower()} per day",
                    label_format="%d %b",
                ),
                today=format_value(values[-1] if values else Decimal(0)),
                total=(
                    None
                    if meter.formula == Meter.Formula.LAST
                    else format_value(sum(values, Decimal(0)))
                ),
            )
        )
    return trends, more
