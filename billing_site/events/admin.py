"""The admin of events and webhooks (Stripe Dashboard's Workbench → Webhooks and Events).

- Webhook endpoints: the list (status, events, failing since, last attempt; a "health" filter
  the dashboard links to); "Add" asks for the URL, a description and the events (all, or the
  types ticked), and the page that answers shows the new `whsec_` secret once. The endpoint
  page shows its recent deliveries with every attempt, and links to Enable / Disable, Roll
  secret and Send test event, each through a confirmation page (`admin_views`). Superusers
  also get "Reveal secret" (a POST, logged). Deleting is Django's, with its confirmation page.
- Events: read-only, newest first, filtered by type, date and how their deliveries went,
  searched by event or object id. The event page shows `data.object` and
  `previous_attributes` as JSON, the request that caused it, and each delivery's attempts with
  a Resend button.

Viewers read; changing anything (and resending) needs `change_webhookendpoint` (operators);
deleting an endpoint needs `delete_webhookendpoint` (superusers, as for every delete). The
rules are the services' (`billing_site.events.endpoints`, `.delivery`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Max, Prefetch
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from billing_site.admin_kit import (
    ConfirmedAction,
    ObjectSectionsMixin,
    change_url,
    confirm_action,
    custom_page_urls,
    page_context,
    render,
)
from billing_site.events import admin_views, endpoints
from billing_site.events.admin_forms import WebhookEndpointForm
from billing_site.events.admin_views import can_operate_webhooks
from billing_site.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing_site.events.presenters import events_label, status_label
from billing_site.events.selectors import (
    EVENT_DELIVERY_STATES,
    events_by_delivery_state,
    failing_webhook_endpoints,
)
from billing_site.events.types import ALL_EVENTS, EVENT_TYPES

RECENT_DELIVERIES = 20
HEALTH_FAILING = "failing"
ACTION_URL = "admin:billing_site_webhookendpoint_action"
REVEAL_URL = "admin:billing_site_webhookendpoint_reveal_secret"


def deliveries_with_attempts(deliveries):
    """Deliveries with their endpoint, event and attempts (newest first), in two queries."""
    return deliveries.select_related("endpoint", "event").prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("-pk"))
    )


# --- Webhook endpoints -----------------------------------------------------------------------


class HealthFilter(admin.SimpleListFilter):
    """The dashboard's "failing webhook endpoints" list: failing now, or disabled for it."""

    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [(HEALTH_FAILING, "Failing (or disabled for failing)"), ("ok", "Not failing")]

    def queryset(self, request, queryset):
        failing = failing_webhook_endpoints().values("pk")
        if self.value() == HEALTH_FAILING:
            return queryset.filter(pk__in=failing)
        if self.value() == "ok":
            return queryset.exclude(pk__in=failing)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ObjectSectionsMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "status_short", "events", "failing", "last_attempt"]
    list_filter = [HealthFilter, "status"]
    search_fields = ["url", "=public_id", "description"]
    search_help_text = "A URL (or part of it), an endpoint id (we_…) or words of its description."
    actions = ["disable_endpoints", "enable_endpoints", "delete_selected"]
    change_form_template = "admin/billing_site/webhookendpoint/change_form.html"
    details = ["public_id", "status_display", "failing_since", "api_version_display"]
    readonly_fields = [*details, "created_at", "enabled_events_display"]

    def get_fieldsets(self, request, obj=None):
        events = ("Events", {"fields": ["all_events", "enabled_events"]})
        if obj is None:
            return [(None, {"fields": ["url", "description", "api_version_display"]}), events]
        about = ["url", "description", *self.details, "enabled_events_display", "created_at"]
        if not self.has_change_permission(request, obj):
            return [(None, {"fields": about})]
        # Folded, so the secret and the deliveries stay in sight; open when it has an error.
        return [
            (None, {"fields": about}),
            ("Change the events", {**events[1], "classes": ["collapse"]}),
        ]

    def get_urls(self):
        pages = [
            ("<path:object_id>/reveal-secret/", self.reveal_secret_view, "reveal_secret"),
            ("<path:object_id>/actions/<slug:slug>/", self.endpoint_action_view, "action"),
        ]
        return custom_page_urls(self, pages) + super().get_urls()

    def endpoint_action_view(self, request, object_id, slug):
        return admin_views.endpoint_action_view(self, request, object_id, slug)

    def reveal_secret_view(self, request, object_id):
        return admin_views.reveal_secret_view(self, request, object_id)

    def has_operate_permission(self, request) -> bool:
        return can_operate_webhooks(request)

    def has_reveal_permission(self, request) -> bool:
        return request.user.is_superuser

    # --- Saving and deleting through the services ---------------------------------------------

    def save_model(self, request, obj, form, change):
        endpoint = form.save_through_service()
        obj.__dict__.update(endpoint.__dict__)
        if not change:
            obj.new_secret = endpoint.secret  # for response_add only

    def response_add(self, request, obj, post_url_continue=None):
        # The secret is shown in this response only: not in a message (its cookie is signed,
        # not encrypted), not after a redirect; the page is never cached.
        return self.secret_response(
            request,
            obj,
            obj.new_secret,
            title=f"Webhook endpoint {obj.public_id} created",
            page_label="New signing secret",
            kind="created",
        )

    def secret_response(self, request, endpoint, secret: str, *, title, page_label, kind):
        context = page_context(
            self,
            request,
            title=title,
            page_label=page_label,
            original=endpoint,
            secret=secret,
            kind=kind,
        )
        response = render(self, request, "admin/billing_site/webhookendpoint/secret.html", context)
        add_never_cache_headers(response)
        return response

    def get_deleted_objects(self, objs, request):
        # A summary instead of one line per delivery and attempt (there may be thousands).
        objs = list(objs)
        deliveries = WebhookDelivery.objects.filter(endpoint__in=objs)
        counts = {
            "webhook endpoints": len(objs),
            "deliveries (one per event sent)": deliveries.count(),
            "attempts (their log)": WebhookAttempt.objects.filter(delivery__in=deliveries).count(),
        }
        listed = [format_html('<a href="{}">{}</a>', change_url(obj), obj.url) for obj in objs]
        return listed, counts, set(), []

    def delete_model(self, request, obj):
        endpoints.webhook_endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            endpoints.webhook_endpoint_delete(endpoint=endpoint)

    # --- The list: the last attempt of each endpoint on the page -----------------------------

    def get_changelist_instance(self, request):
        # Two queries for the page's rows, not a subquery per row over the attempt log.
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        latest = (
            WebhookAttempt.objects.filter(delivery__endpoint__in=rows)
            .values("delivery__endpoint")
            .annotate(last=Max("pk"))
            .values_list("last", flat=True)
        )
        attempts = {
            attempt.delivery.endpoint_id: attempt
            for attempt in WebhookAttempt.objects.filter(pk__in=list(latest)).select_related(
                "delivery"
            )
        }
        for endpoint in rows:
            endpoint.last_attempt_row = attempts.get(endpoint.pk)
        return changelist

    @admin.display(description="Last attempt")
    def last_attempt(self, endpoint: WebhookEndpoint) -> str:
        # Short for the list; the endpoint page shows each attempt in full.
        attempt = getattr(endpoint, "last_attempt_row", None)
        if attempt is None:
            return "None yet"
        answer = f"HTTP {attempt.response_status}" if attempt.response_status else "no answer"
        outcome = answer if attempt.succeeded else f"failed ({answer})"
        return format_html("{}<br>{}", f"{attempt.attempted_at:%Y-%m-%d %H:%M}", outcome)

    @admin.display(description="Failing since", ordering="failing_since")
    def failing(self, endpoint: WebhookEndpoint) -> str:
        return f"{endpoint.failing_since:%Y-%m-%d %H:%M}" if endpoint.failing_since else "-"

    @admin.display(description="Status", ordering="status")
    def status_display(self, endpoint: WebhookEndpoint) -> str:
        return status_label(endpoint)

    @admin.display(description="Status", ordering="status")
    def status_short(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.is_enabled:
            return "Enabled"
        failing = endpoint.disabled_reason == WebhookEndpoint.DisabledReason.FAILING
        return "Disabled (failing)" if failing else "Disabled"

    @admin.display(description="Events")
    def events(self, endpoint: WebhookEndpoint) -> str:
        return events_label(endpoint)

    @admin.display(description="Event types")
    def enabled_events_display(self, endpoint: WebhookEndpoint) -> str:
        if ALL_EVENTS in endpoint.enabled_events:
            return "All events (*), including types added later"
        return ", ".join(endpoint.enabled_events)

    @admin.display(description="API version")
    def api_version_display(self, endpoint: WebhookEndpoint | None = None) -> str:
        return f"{settings.BILLING_API_VERSION} (events are rendered in this one version)"

    # --- The endpoint page: its secret, actions and recent deliveries -------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # "Add" answers with the secret page, so it has one button; no "save and add another".
        context.update(show_save_and_add_another=False, show_save_and_continue=not add)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def object_page_context(self, request, endpoint: WebhookEndpoint) -> dict[str, Any]:
        actions = []
        if self.has_operate_permission(request):
            actions = [
                (action.verb, reverse(ACTION_URL, args=[endpoint.pk, slug]))
                for slug, action in admin_views.ENDPOINT_ACTIONS.items()
                if action.offered(endpoint)
            ]
        reveal = reverse(REVEAL_URL, args=[endpoint.pk])
        deliveries = deliveries_with_attempts(endpoint.deliveries.order_by("-pk"))
        return {
            "endpoint_actions": actions,
            "reveal_secret_url": reveal if self.has_reveal_permission(request) else None,
            "previous_secret_expires_at": (
                endpoint.previous_secret_expires_at
                if endpoint.previous_secret and endpoint.previous_secret_expires_at
                else None
            ),
            "deliveries": list(deliveries[:RECENT_DELIVERIES]),
            "delivery_count": endpoint.deliveries.count(),
            "retention_days": settings.BILLING_EVENT_RETENTION_DAYS,
        }

    # --- List actions ---------------------------------------------------------------------------

    @admin.action(description="Disable selected endpoints…", permissions=["change"])
    def disable_endpoints(self, request, queryset):
        return self._confirm(request, queryset, admin_views.ENDPOINT_ACTIONS["disable"])

    @admin.action(description="Enable selected endpoints…", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        return self._confirm(request, queryset, admin_views.ENDPOINT_ACTIONS["enable"])

    def _confirm(self, request, queryset, action: admin_views.EndpointAction):
        return confirm_action(
            self,
            request,
            queryset,
            ConfirmedAction(
                action=action.list_action,
                verb=action.verb,
                done=action.done,
                explanation=action.explanation,
                columns=["Endpoint", "Status", "Events"],
                cells=lambda endpoint: [
                    endpoint.url,
                    status_label(endpoint),
                    events_label(endpoint),
                ],
                refusal=action.refusal,
                service=action.service,
                noun=("webhook endpoint", "webhook endpoints"),
            ),
        )


# --- Events ----------------------------------------------------------------------------------


class DeliveryStateFilter(admin.SimpleListFilter):
    title = "deliveries"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [(state, label) for state, (label, _) in EVENT_DELIVERY_STATES.items()]

    def queryset(self, request, queryset):
        if self.value() in EVENT_DELIVERY_STATES:
            return events_by_delivery_state(queryset, self.value())
        return queryset


@admin.register(Event)
class EventAdmin(ObjectSectionsMixin, admin.ModelAdmin):
    list_display = ["event", "object_id", "created", "deliveries"]
    list_filter = ["type", "created_at", DeliveryStateFilter]
    search_fields = ["=public_id", "=object_id"]
    search_help_text = "An event id (evt_…), or the id of the object it is about (cus_…, in_…)."
    show_full_result_count = False  # events are many; a second COUNT(*) per page costs
    fields = readonly_fields = [
        "public_id",
        "type_display",
        "created_at",
        "object_id",
        "caused_by",
        "event_api_version",
    ]
    change_form_template = "admin/billing_site/event/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False  # recorded by the services, with the change

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # purged after BILLING_EVENT_RETENTION_DAYS

    def get_urls(self):
        pages = [("<path:object_id>/resend/", self.resend_view, "resend")]
        return custom_page_urls(self, pages) + super().get_urls()

    def resend_view(self, request, object_id):
        return admin_views.delivery_resend_view(self, request, object_id)

    def has_resend_permission(self, request) -> bool:
        return can_operate_webhooks(request)

    def get_changelist_instance(self, request):
        # One query for the delivery counts of the page's events (not an annotation over them
        # all: the list would count and group every event to show 100).
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        counts: dict[int, dict[str, int]] = {}
        for event_id, status, count in (
            WebhookDelivery.objects.filter(event__in=rows)
            .values("event_id", "status")
            .annotate(count=Count("pk"))
            .values_list("event_id", "status", "count")
        ):
            counts.setdefault(event_id, {})[status] = count
        for event in rows:
            event.delivery_counts = counts.get(event.pk, {})
        return changelist

    @admin.display(description="Event", ordering="pk")
    def event(self, event: Event) -> str:
        return format_html("{}<br><small>{}</small>", event.type, event.public_id)

    @admin.display(description="Created (UTC)", ordering="created_at")
    def created(self, event: Event) -> str:
        return f"{event.created_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="Deliveries")
    def deliveries(self, event: Event) -> str:
        counts = getattr(event, "delivery_counts", {})
        if not counts:
            return "No endpoint"
        parts = [
            f"{counts[status]} {label.lower()}"
            for status, label in WebhookDelivery.Status.choices
            if counts.get(status)
        ]
        return ", ".join(parts)

    @admin.display(description="Type")
    def type_display(self, event: Event) -> str:
        meaning = EVENT_TYPES.get(event.type)
        return f"{event.type}: {meaning}" if meaning else event.type

    @admin.display(description="Caused by")
    def caused_by(self, event: Event) -> str:
        if not event.request_id:
            return "No API request (request.id is null): an admin action, a billing run or a job."
        key = event.request_idempotency_key
        return f"API request {event.request_id}" + (f", idempotency key “{key}”" if key else "")

    @admin.display(description="API version")
    def event_api_version(self, event: Event) -> str:
        return event.api_version

    def object_page_context(self, request, event: Event) -> dict[str, Any]:
        data = event.data or {}
        previous = data.get("previous_attributes")
        return {
            "object_json": _pretty(data.get("object")),
            "previous_attributes_json": _pretty(previous) if previous is not None else None,
            "deliveries": list(deliveries_with_attempts(event.deliveries.order_by("pk"))),
            "resend_url": (
                reverse("admin:billing_site_event_resend", args=[event.pk])
                if self.has_resend_permission(request)
                else None
            ),
            "object_events_url": (
                f"{reverse('admin:billing_site_event_changelist')}?"
                + urlencode({"q": event.object_id})
                if event.object_id
                else None
            ),
        }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
