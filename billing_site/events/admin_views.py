"""The webhook admin's own pages: an endpoint's actions behind a confirmation page (enable,
disable, roll secret, send a test event), "Reveal secret" for superusers, and Resend.

Each calls one service (`billing_site.events.endpoints`, `.delivery`), logs who did it in the
admin log, and says what happened. A new secret (rolled or revealed) is shown in the page that
answers the POST, never in a message or after a redirect, and that page is not cached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)

from billing_site.admin_kit import (
    add_billing_error,
    change_url,
    confirmation_page,
    object_page,
    utc_label,
)
from billing_site.errors import BillingError
from billing_site.events import endpoints
from billing_site.events.admin_forms import ROLL_PARAM_TO_FIELD, RollSecretForm
from billing_site.events.delivery import webhook_delivery_resend, webhook_endpoint_send_test
from billing_site.events.models import Event, WebhookAttempt, WebhookEndpoint
from billing_site.events.presenters import attempt_outcome, events_label, status_label
from billing_site.events.selectors import latest_event_for


def can_operate_webhooks(request: HttpRequest) -> bool:
    """Enable, disable, roll, test and resend: what operators may do and viewers not."""
    return request.user.has_perm("billing_site.change_webhookendpoint")


def _attempt_message(model_admin, request: HttpRequest, what: str, attempt: WebhookAttempt):
    level = messages.SUCCESS if attempt.succeeded else messages.WARNING
    model_admin.message_user(request, f"{what}: {attempt_outcome(attempt)}.", level)


# --- Endpoint actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointAction:
    """One action on an endpoint page (and, with `list_action`, on the list)."""

    verb: str  # "Disable": the object tool, the page title and the button
    done: str  # "Disabled": the log entry and the list action's message
    explanation_template: str  # what happens; {settings} filled in by `explanation`
    offered: Callable[[WebhookEndpoint], bool]  # shown among the endpoint page's tools
    refusal: Callable[[WebhookEndpoint], str | None]  # why it can't be done now (None: it can)
    service: Callable[[WebhookEndpoint], object]  # for the list action (confirm_action)
    perform: Callable[..., HttpResponse]  # (model_admin, request, endpoint, action, form)
    list_action: str = ""
    form: type | None = None
    sends_test_event: bool = False

    @property
    def explanation(self) -> str:
        days = settings.BILLING_WEBHOOK_RETRY_WINDOW_SECONDS / 86400
        return self.explanation_template.format(
            retry_window=f"{days:g} day{'' if days == 1 else 's'}",
            timeout=f"{settings.BILLING_WEBHOOK_TIMEOUT_SECONDS:g} s",
        )


def _set_status(model_admin, request, endpoint: WebhookEndpoint, action, form) -> HttpResponse:
    action.service(endpoint)
    model_admin.log_change(request, endpoint, f"{action.done}.")
    model_admin.message_user(request, f"{action.done} {endpoint.url}.", messages.SUCCESS)
    return HttpResponseRedirect(change_url(endpoint))


def _roll(model_admin, request, endpoint: WebhookEndpoint, action, form) -> HttpResponse:
    hours = form.cleaned_data["previous_valid_for_hours"]
    secret = endpoints.webhook_endpoint_roll_secret(
        endpoint=endpoint, previous_valid_for=dt.timedelta(hours=hours)
    )
    endpoint.refresh_from_db()
    keeps = (
        f"the old one keeps signing for {hours} h, until "
        f"{utc_label(endpoint.previous_secret_expires_at)}"
        if endpoint.previous_secret_expires_at
        else "the old one stopped signing at once"
    )
    model_admin.log_change(request, endpoint, f"Rolled the signing secret; {keeps}.")
    return model_admin.secret_response(
        request,
        endpoint,
        secret,
        title=f"New signing secret for {endpoint.url}",
        page_label="Secret rolled",
        kind="rolled",
    )


def _send_test(model_admin, request, endpoint: WebhookEndpoint, action, form) -> HttpResponse:
    event = latest_event_for(endpoint)
    if event is None:  # recorded between the page and the POST: the refusal said so
        return HttpResponseRedirect(change_url(endpoint))
    attempt = webhook_endpoint_send_test(endpoint=endpoint, event=event)
    what = f"Test event {event.type} ({event.public_id}) sent to {endpoint.url}"
    model_admin.log_change(request, endpoint, f"{what}: {attempt_outcome(attempt)}.")
    _attempt_message(model_admin, request, what, attempt)
    return HttpResponseRedirect(change_url(endpoint) + "#endpoint-deliveries")


ENDPOINT_ACTIONS: dict[str, EndpointAction] = {
    "disable": EndpointAction(
        verb="Disable",
        done="Disabled",
        explanation_template=(
            "A disabled endpoint receives nothing: events recorded while it is disabled are not "
            "queued for it, and its pending deliveries wait (they are still given up "
            "{retry_window} after their event). Enable it again at any time; resend the events "
            "it missed from their event pages."
        ),
        offered=lambda endpoint: endpoint.is_enabled,
        refusal=lambda endpoint: None if endpoint.is_enabled else "already disabled.",
        service=lambda endpoint: endpoints.webhook_endpoint_disable(endpoint=endpoint),
        perform=_set_status,
        list_action="disable_endpoints",
    ),
    "enable": EndpointAction(
        verb="Enable",
        done="Enabled",
        explanation_template=(
            "An enabled endpoint receives new events again and its failure streak starts over. "
            "Pending deliveries are sent at the next delivery run; events recorded while it was "
            "disabled were not queued for it (resend them from their event pages)."
        ),
        offered=lambda endpoint: not endpoint.is_enabled,
        refusal=lambda endpoint: "already enabled." if endpoint.is_enabled else None,
        service=lambda endpoint: endpoints.webhook_endpoint_enable(endpoint=endpoint),
        perform=_set_status,
        list_action="enable_endpoints",
    ),
    "roll-secret": EndpointAction(
        verb="Roll secret",
        done="Rolled the signing secret",
        explanation_template=(
            "Rolling gives the endpoint a new signing secret, shown once on the next page. "
            "Update the receiver with it; until then the old secret can keep signing alongside "
            "the new one for the hours you choose."
        ),
        offered=lambda endpoint: True,
        refusal=lambda endpoint: None,
        service=lambda endpoint: None,
        perform=_roll,
        form=RollSecretForm,
    ),
    "send-test": EndpointAction(
        verb="Send test event",
        done="Sent a test event",
        explanation_template=(
            "Sends the newest event this endpoint listens to, now, signed like every delivery, "
            "and waits for the answer (at most {timeout}). It is a real event, so the receiver "
            "may act on it again (receivers deduplicate by event id). The attempt is logged "
            "with the endpoint's deliveries, as a test; a failed test is not retried."
        ),
        offered=lambda endpoint: True,
        refusal=lambda endpoint: (
            None
            if latest_event_for(endpoint)
            else "no event this endpoint listens to has been recorded yet (events are kept "
            f"{settings.BILLING_EVENT_RETENTION_DAYS} days)."
        ),
        service=lambda endpoint: None,
        perform=_send_test,
        sends_test_event=True,
    ),
}


@object_page("operate", actions=ENDPOINT_ACTIONS)
def endpoint_action_view(
    model_admin, request: HttpRequest, endpoint: WebhookEndpoint, action: EndpointAction
) -> HttpResponse:
    """The confirmation page of one action on one endpoint, and the action on its POST."""
    posted = request.method == "POST"
    form = action.form(request.POST if posted else None) if action.form else None
    refusal = action.refusal(endpoint)
    if posted and refusal is None and (form is None or form.is_valid()):
        try:
            return action.perform(model_admin, request, endpoint, action, form)
        except BillingError as error:
            if form is None:
                raise
            add_billing_error(form, error, ROLL_PARAM_TO_FIELD)
    return confirmation_page(
        model_admin,
        request,
        "admin/billing_site/webhookendpoint/endpoint_action.html",
        label=action.verb,
        original=endpoint,
        form=form,
        action=action,
        refusal=refusal,
        status=status_label(endpoint),
        events=events_label(endpoint),
        test_event=latest_event_for(endpoint) if action.sends_test_event else None,
    )


# --- Reveal secret (superusers) and Resend -----------------------------------------------------


@object_page("reveal")
def reveal_secret_view(model_admin, request: HttpRequest, endpoint: WebhookEndpoint):
    """The current secret, for a superuser who asks with a POST; logged, never cached."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    model_admin.log_change(request, endpoint, "Revealed the signing secret.")
    return model_admin.secret_response(
        request,
        endpoint,
        endpoint.secret,
        title=f"Signing secret of {endpoint.url}",
        page_label="Signing secret",
        kind="revealed",
    )


@object_page("resend")
def delivery_resend_view(model_admin, request: HttpRequest, event: Event) -> HttpResponse:
    """Send one delivery of an event again, now: the POST of a Resend button on the event's
    page, naming the delivery."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    delivery_id = request.POST.get("delivery", "")
    deliveries = event.deliveries.select_related("endpoint")
    delivery = deliveries.filter(pk=delivery_id).first() if delivery_id.isdigit() else None
    if delivery is None:
        raise Http404(f"Event {event.public_id} has no such delivery.")
    attempt = webhook_delivery_resend(delivery=delivery)
    what = f"Resent {event.public_id} to {delivery.endpoint.url}"
    model_admin.log_change(request, event, f"{what}: {attempt_outcome(attempt)}.")
    _attempt_message(model_admin, request, what, attempt)
    return HttpResponseRedirect(f"{change_url(event)}#delivery-{delivery.pk}")
