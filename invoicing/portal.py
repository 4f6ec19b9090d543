"""The customer portal's access rules and reads: signed links, sessions, and what pages show.

Access (DESIGN "Security": signed, expiring, scoped to one customer):

- A portal link is `/portal/enter/<token>/`. The token is a `TimestampSigner` signature over
  `{"c": customer public id, "s": portal session id, "r": return_url}`, so nobody can forge one
  or point it at another customer, and it can be opened until `LINK_MAX_AGE` has passed.
- A link opens **one** browser session: its `PortalSession` row (`bps_...`, who made it, when)
  is claimed when it is opened, and a second use gets the "expired or already used" page. The
  token itself is never stored or logged (`billing_site.log_masking` masks it in log lines).
  Staff can revoke a customer's links, which also ends the sessions they opened.
- Opening a link puts only the customer's id, the portal session's row id (and the return URL)
  in the Django session, with an idle timeout of `SESSION_IDLE_SECONDS`, then redirects to a
  token-free URL. Every portal page reads the customer from the session; no portal URL carries
  a customer id, and invoices are looked up filtered by that customer.
- Link ages use the wall clock (`time.time()`, as Django's signer does), not the billing clock:
  a test clock moves billing time, not how long a credential has been around.

Reads: `portal_overview` (current period, usage and its chart, upcoming invoice, credits). It
returns plain, already formatted values so the templates stay dumb; invoices, their lines and
credit grants are drawn by the presenters the admin and the PDF share (`invoicing.presenters`,
`credits.presenters`).
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

from billing_site.charts import bar_chart_svg
from billing_site.errors import BillingError
from billing_site.formatting import format_value
from credits.models import CreditGrant
from credits.presenters import BalanceRow, GrantRow, balance_rows, grant_rows
from invoicing import services
from invoicing.models import Customer, Invoice, PortalSession, Subscription
from invoicing.presenters import InvoiceSummary, UpcomingInvoice, invoice_summary, upcoming_invoice
from invoicing.selectors import invoice_preview
from metering.store import usage, usage_by_window

# How long a portal link can be opened after it was made (seconds). Module-level so tests can
# monkeypatch it; read at call time.
LINK_MAX_AGE = 60 * 60
# A portal session ends after this long without a request (seconds); each page view renews it.
SESSION_IDLE_SECONDS = 30 * 60
SALT = "billing-portal"
SESSION_CUSTOMER_KEY = "portal_customer_id"
SESSION_LINK_KEY = "portal_session_id"  # the PortalSession row that opened it, for revocation
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


def _wall_now() -> dt.datetime:
    """Now by the wall clock, to the second, as the signer ages links."""
    return dt.datetime.fromtimestamp(int(time.time()), tz=dt.UTC)


def portal_link_create(
    *, customer: Customer, return_url: str | None = None, actor: str = ""
) -> PortalLink:
    """Sign a link to this customer's portal and record who made it (`actor`: the API key's
    or the staff user's name). Refuses a deleted customer."""
    if customer.deleted_at is not None:
        raise BillingError(
            f"Customer {customer.public_id} has been deleted: its portal is closed.",
            param="customer",
        )
    created = _wall_now()
    expires = created + dt.timedelta(seconds=LINK_MAX_AGE)
    session = services.portal_session_create(
        customer=customer, actor=actor, at=created, expires_at=expires
    )
    payload: dict[str, Any] = {"c": customer.public_id, "s": session.public_id}
    if return_url:
        payload["r"] = return_url
    return PortalLink(
        id=session.public_id,
        customer=customer,
        token=_signer().sign_object(payload),
        created_at=created,
        expires_at=expires,
        return_url=return_url,
    )


def portal_link_open(*, token: str, browser_session) -> tuple[PortalSession, str | None]:
    """The portal session a link opens (claimed: it opens only once), and its return URL;
    raises a PortalAccessError otherwise. `browser_session` is `request.session`: the browser
    that opened the link may open it again (Back, reload) without counting as a second use.

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
    session_id = payload.get("s") if isinstance(payload, dict) else None
    if not isinstance(public_id, str) or not isinstance(session_id, str):
        raise LinkInvalid()
    link = (
        PortalSession.objects.select_related("customer")
        .filter(public_id=session_id, customer__public_id=public_id)
        .first()
    )
    if link is None:
        raise LinkInvalid()
    return_url = _return_url(payload)
    if link.customer.deleted_at is not None:
        raise AccountClosed(return_url)
    if link.revoked_at is not None:
        raise LinkExpired(return_url)
    reopened = browser_session.get(SESSION_LINK_KEY) == link.pk
    if not reopened and not services.portal_session_claim(link=link, at=_wall_now()):
        raise LinkExpired(return_url)  # already used
    return link, return_url


def portal_access_revoke(*, customer: Customer, actor: str) -> int:
    """Revoke the customer's links that can still be opened and end the sessions they opened.
    Returns how many were revoked."""
    return services.portal_sessions_revoke(customer=customer, actor=actor, at=_wall_now())


@dataclass(frozen=True)
class RecentLink:
    link: PortalSession
    status: str  # in words, for staff


RECENT_LINKS = 10


def portal_links_recent(*, customer: Customer) -> list[RecentLink]:
    """The customer's latest links, newest first, with what became of each."""
    now = _wall_now()
    rows = []
    for link in customer.portal_sessions.order_by("-pk")[:RECENT_LINKS]:
        if link.revoked_at is not None:
            status = f"Revoked by {link.revoked_by or 'staff'}"
        elif link.opened_at is not None:
            status = "Opened (used)"
        elif link.expires_at <= now:
            status = "Expired, never opened"
        else:
            status = "Not opened yet"
        rows.append(RecentLink(link=link, status=status))
    return rows


def _return_url(payload: Any) -> str | None:
    url = payload.get("r") if isinstance(payload, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def portal_session_start(session, *, link: PortalSession, return_url: str | None) -> None:
    """Bind a browser session to the customer of an opened link (`session` is
    `request.session`)."""
    # A new session key: a session id planted before the link was opened is worth nothing.
    session.cycle_key()
    session[SESSION_CUSTOMER_KEY] = link.customer_id
    session[SESSION_LINK_KEY] = link.pk
    if return_url:
        session[SESSION_RETURN_URL_KEY] = return_url
    else:
        session.pop(SESSION_RETURN_URL_KEY, None)
    session.set_expiry(SESSION_IDLE_SECONDS)


def portal_session_end(session) -> None:
    for key in (SESSION_CUSTOMER_KEY, SESSION_LINK_KEY, SESSION_RETURN_URL_KEY):
        session.pop(key, None)


def portal_session_customer(session) -> Customer:
    """The customer of a live portal session, renewing its idle timeout. A session whose link
    staff revoked has ended."""
    customer_id = session.get(SESSION_CUSTOMER_KEY)
    link_id = session.get(SESSION_LINK_KEY)
    if customer_id is None or link_id is None:
        raise SessionEnded()
    return_url = session.get(SESSION_RETURN_URL_KEY)
    link = (
        PortalSession.objects.select_related("customer__test_clock")
        .filter(pk=link_id, customer_id=customer_id)
        .first()
    )
    if link is None or link.revoked_at is not None:
        raise SessionEnded(return_url)
    customer = link.customer
    if customer.deleted_at is not None:
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


# --- Overview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeterUsage:
    name: str
    price_name: str
    start: dt.datetime
    end: dt.datetime
    quantity: str
    chart: SafeString


@dataclass
class SubscriptionOverview:
    subscription: Subscription
    period_start: dt.datetime
    period_end: dt.datetime
    items: list[str] = field(default_factory=list)
    usage: list[MeterUsage] = field(default_factory=list)
    upcoming: UpcomingInvoice | None = None
    upcoming_error: str = ""


# The customer's words for a grant's status (`CreditGrant.status_at`).
GRANT_STATUS_LABELS = {
    CreditGrant.STATUS_ACTIVE: "Active",
    CreditGrant.STATUS_SCHEDULED: "Not yet effective",
    CreditGrant.STATUS_EXPIRED: "Expired",
    CreditGrant.STATUS_VOIDED: "Voided",
}


@dataclass
class Overview:
    customer: Customer
    now: dt.datetime
    subscriptions: list[SubscriptionOverview]
    grants: list[GrantRow]  # status_label in GRANT_STATUS_LABELS' words
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


def _subscription_overview(
    subscription: Subscription, customer: Customer, now: dt.datetime
) -> SubscriptionOverview:
    start, end = subscription.current_period_start, subscription.current_period_end
    usage_end = min(max(now, start), end)
    overview = SubscriptionOverview(subscription=subscription, period_start=start, period_end=end)
    for item in subscription.items.all():
        price = item.price
        name = price.display_name
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
    overview.upcoming = upcoming_invoice(preview)
    return overview


RECENT_INVOICES = 3


def portal_overview(*, customer: Customer) -> Overview:
    now = customer.billing_now()
    subscriptions = (
        customer.subscriptions.filter(status=Subscription.Status.ACTIVE)
        .prefetch_related("items__price__product", "items__price__meter", "items__price__tiers")
        .order_by("pk")
    )
    return Overview(
        customer=customer,
        now=now,
        subscriptions=[_subscription_overview(sub, customer, now) for sub in subscriptions],
        grants=grant_rows(customer=customer, at=now, status_labels=GRANT_STATUS_LABELS),
        balances=balance_rows(customer=customer),
        recent_invoices=[
            invoice_summary(invoice)
            for invoice in portal_invoices(customer=customer)[:RECENT_INVOICES]
        ],
    )
