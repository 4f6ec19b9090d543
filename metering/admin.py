"""The meter admin: what billing staff see of meters and meter events.

- Meters: the list shows event counts and the last event time (one query for the page, from the
  hourly rollups); the meter page shows a usage chart and links to "Send test event" (Stripe
  Dashboard's test-event form) and to the meter's events. "Deactivate" stops ingestion, so it
  goes through a confirmation page that says so.
- Meter events: read only and never deletable (an append-only ledger, partitioned by time on
  PostgreSQL). The only correction is "Cancel selected events", which shows a confirmation page
  and then goes through `meter_event_cancel` and its 24-hour rule.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from billing_site import clock
from billing_site.admin_kit import (
    AddFormMixin,
    ConfirmedAction,
    actor,
    add_billing_error,
    call_for_each,
    change_url,
    confirm_action,
    custom_page_urls,
    form_page_context,
    page_context,
    render,
    timestamp_set_filter,
    utc_label,
)
from billing_site.charts import bar_chart_svg
from billing_site.errors import BillingError
from billing_site.formatting import format_value
from metering import services
from metering.admin_forms import SendTestEventForm, UsageChartForm
from metering.cancellation import CANCELLATION_WINDOW, meter_event_cancel
from metering.ingest import meter_event_create
from metering.models import Meter, MeterEvent, MeterEventAdjustment, MeterUsageRollup
from metering.selectors import meter_event_stats
from metering.store import hour_of, usage_by_window

# metering sits below invoicing: reach the customer model through the string FK, never by import.
Customer = MeterEvent._meta.get_field("customer").related_model

# The chart's windows: (step, how many, time label format).
CHART_WINDOWS = {
    "hour": (dt.timedelta(hours=1), 48, "%d %b %H:%M"),
    "day": (dt.timedelta(days=1), 30, "%d %b"),
}
MAX_CHART_CUSTOMER_SUGGESTIONS = 50
MAX_EVENTS_PER_CANCEL = 100


def chart_range(window: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) aligned to the window, ending with the (partial) current hour or day."""
    step, count, _ = CHART_WINDOWS[window]
    current = hour_of(now) if window == "hour" else hour_of(now).replace(hour=0)
    end = current + step
    return end - count * step, end


_PARAM_TO_FIELD = {
    "default_aggregation[formula]": "formula",
    "customer_mapping[event_payload_key]": "customer_payload_key",
    "value_settings[event_payload_key]": "value_payload_key",
}


class MeterAddForm(forms.ModelForm):
    class Meta:
        model = Meter
        fields = [
            "display_name",
            "event_name",
            "formula",
            "customer_payload_key",
            "value_payload_key",
        ]

    def validate_unique(self) -> None:
        # meter_validate gives the duplicate-name error its actionable wording.
        pass

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                cleaned.update(services.meter_validate(**cleaned))
            except BillingError as error:
                add_billing_error(self, error, _PARAM_TO_FIELD)
        return cleaned


@admin.register(Meter)
class MeterAdmin(AddFormMixin, admin.ModelAdmin):
    list_display = [
        "display_name",
        "event_name",
        "public_id",
        "formula",
        "status",
        "events",
        "last_event",
        "created_at",
    ]
    list_filter = ["status", "formula"]
    search_fields = ["display_name", "event_name", "public_id"]
    readonly_fields = [
        "public_id",
        "event_name",
        "formula",
        "customer_payload_key",
        "value_payload_key",
        "status",
        "deactivated_at",
        "created_at",
        "updated_at",
    ]
    # After creation only the display name can change.
    fields = ["display_name", *readonly_fields]
    add_form = MeterAddForm
    add_readonly_fields = ["public_id"]
    actions = ["deactivate_meters", "reactivate_meters"]

    def get_urls(self):
        pages = [
            ("<path:object_id>/send-test-event/", self.send_test_event_view, "send_test_event")
        ]
        return custom_page_urls(self, pages) + super().get_urls()

    def save_model(self, request, obj, form, change):
        if change:
            services.meter_update(meter=obj, display_name=form.cleaned_data["display_name"])
            return
        created = services.meter_create(
            **{field: form.cleaned_data[field] for field in MeterAddForm.Meta.fields}
        )
        obj.__dict__.update(created.__dict__)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Prices and usage refer to meters; deactivate instead.
        return False

    def has_send_test_event_permission(self, request, meter: Meter | None = None) -> bool:
        return self.has_change_permission(request, meter) or request.user.has_perm(
            "metering.add_meterevent"
        )

    # --- The list: event counts and last event time -------------------------------------------

    def get_changelist_instance(self, request):
        # One stats query for the whole page, attached to the page's (cached) rows. Not an
        # annotation, so not sortable: sorting would aggregate every meter's rollups.
        changelist = super().get_changelist_instance(request)
        meters = list(changelist.result_list)
        stats = meter_event_stats([meter.pk for meter in meters])
        for meter in meters:
            meter.event_stats = stats.get(meter.pk, (0, None))
        return changelist

    @admin.display(description="Events")
    def events(self, meter: Meter):
        count, _ = meter.event_stats
        return format_html('<a href="{}">{}</a>', _events_url(meter=meter), f"{count:,}")

    @admin.display(description="Last event")
    def last_event(self, meter: Meter) -> dt.datetime | None:
        return meter.event_stats[1]

    # --- The meter page: usage chart and links ------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._usage_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _usage_context(self, request, meter: Meter) -> dict:
        form = UsageChartForm(request.GET)
        valid = form.is_valid()
        window = form.cleaned_data.get("window") or "hour"
        customer = form.cleaned_data.get("customer")
        start, end = chart_range(window, clock.now())
        chart = None
        if valid:
            _, _, label_format = CHART_WINDOWS[window]
            who = f"customer {customer.public_id}" if customer else "all customers"
            chart = bar_chart_svg(
                usage_by_window(
                    meter=meter,
                    start=start,
                    end=end,
                    window=window,
                    customer_id=customer.pk if customer else None,
                ),
                title=f"{meter.display_name}: {meter.get_formula_display().lower()} per {window}, "
                f"{who}",
                label_format=label_format,
            )
        with_usage = MeterUsageRollup.objects.filter(meter=meter, hour__gte=start, hour__lt=end)
        return {
            "usage_form": form,
            "usage_chart": chart,
            "usage_customers": Customer.objects.filter(
                pk__in=with_usage.values("customer_id")
            ).order_by("public_id")[:MAX_CHART_CUSTOMER_SUGGESTIONS],
            # Kept through the chart's GET form, so "Save" still returns to the filtered list.
            "usage_changelist_filters": request.GET.get("_changelist_filters"),
            "events_url": _events_url(meter=meter, customer=customer),
            "send_test_event_url": (
                reverse("admin:metering_meter_send_test_event", args=[meter.pk])
                if self.has_send_test_event_permission(request, meter)
                else None
            ),
        }

    # --- "Send test event" --------------------------------------------------------------------

    def send_test_event_view(self, request, object_id):
        meter = self.get_object(request, unquote(object_id))
        if not self.has_send_test_event_permission(request, meter):
            raise PermissionDenied
        if meter is None:
            raise Http404(f"No meter with primary key {object_id!r}.")
        form = SendTestEventForm(
            request.POST if request.method == "POST" else None,
            meter=meter,
            admin_site=self.admin_site,
        )
        if request.method == "POST" and form.is_valid():
            try:
                accepted = meter_event_create(**form.event_fields())
            except BillingError as error:
                add_billing_error(form, error, form.param_to_field())
            else:
                customer = form.cleaned_data["customer"]
                event = MeterEvent.objects.filter(
                    meter=meter,
                    customer=customer,
                    timestamp=accepted.timestamp,
                    identifier=accepted.identifier,
                ).first()
                # On the ClickHouse store the event has no row here: logged on the meter.
                self.log_addition(
                    request,
                    event or meter,
                    f"Sent test event {accepted.identifier} from the admin's test event form."
                    if event is None
                    else "Sent from the admin's test event form.",
                )
                self.message_user(
                    request,
                    format_html(
                        'Test event <a href="{}">{}</a> recorded: value {} for {} at {}.',
                        change_url(event or meter),
                        accepted.identifier,
                        format_value(accepted.value),
                        customer.public_id,
                        utc_label(accepted.timestamp),
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url(meter))
        context = form_page_context(
            self,
            request,
            form,
            [(None, {"fields": list(form.base_fields)})],
            title=f"Send a test event to {meter.display_name}",
            original=meter,
        )
        return render(self, request, "admin/metering/meter/send_test_event.html", context)

    # --- Status actions -----------------------------------------------------------------------

    @admin.action(description="Deactivate selected meters…", permissions=["change"])
    def deactivate_meters(self, request, queryset):
        # The page lists at most 100 meters (confirm_action refuses more).
        stats = meter_event_stats(list(queryset.order_by("pk").values_list("pk", flat=True)[:101]))

        def last_event(meter: Meter) -> str:
            _, last = stats.get(meter.pk, (0, None))
            return utc_label(last) if last else "never"

        return confirm_action(
            self,
            request,
            queryset,
            ConfirmedAction(
                action="deactivate_meters",
                verb="Deactivate",
                done="Deactivated",
                explanation=DEACTIVATION_EXPLAINED,
                columns=["Meter", "Event name", "Last event"],
                cells=lambda meter: [
                    f"{meter.display_name} ({meter.public_id})",
                    meter.event_name,
                    last_event(meter),
                ],
                refusal=lambda meter: None if meter.is_active else "already inactive.",
                service=lambda meter: services.meter_deactivate(meter=meter),
                noun=("meter", "meters"),
            ),
        )

    @admin.action(description="Reactivate selected meters", permissions=["change"])
    def reactivate_meters(self, request, queryset):
        call_for_each(
            self,
            request,
            queryset.filter(status=Meter.Status.INACTIVE),
            lambda meter: services.meter_reactivate(meter=meter),
            log=lambda meter: f"Status set to {meter.status}",
            summary=lambda count: f"{count} meter(s) updated.",
        )


DEACTIVATION_EXPLAINED = (
    "A deactivated meter stops ingestion: from now on every meter event sent for it is refused "
    "(error code archived_meter, through the API and the stream) and not stored, so that usage "
    "is lost and never billed. Usage already recorded is kept and billed as usual, and no new "
    "prices can use the meter. Reactivate it to accept events again; events refused meanwhile "
    "are not recovered unless their senders retry them."
)


def _events_url(*, meter: Meter, customer=None) -> str:
    params = {"meter__id__exact": meter.pk}
    if customer is not None:
        params["customer"] = customer.public_id
    return f"{reverse('admin:metering_meterevent_changelist')}?{urlencode(params)}"


# --- Meter events -----------------------------------------------------------------------------


CancelledFilter = timestamp_set_filter(
    title="cancelled",
    parameter="cancelled",
    field="cancelled_at",
    unset="No (counted)",
    is_set="Yes",
)


class CustomerFilter(admin.SimpleListFilter):
    """`?customer=cus_...`, as linked from the meter page's chart.

    It lists no choices (a meter may have many thousands of customers), only the chosen one.
    """

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        customer = Customer.objects.filter(public_id=self.value()).first()
        return [(self.value(), str(customer) if customer else f"{self.value()} (no such customer)")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            customer_id__in=Customer.objects.filter(public_id=self.value()).values("pk")
        )


class EventTimeFilter(admin.DateFieldListFilter):
    """Django's date filter, with "today" from the billing clock and the 35-day window.

    Any `timestamp__gte` / `timestamp__lt` pair also works in the URL, e.g. for one day.
    """

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        today = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = today + dt.timedelta(days=1)
        since, until = self.lookup_kwarg_since, self.lookup_kwarg_until
        self.links = (
            ("Any date", {}),
            ("Today (UTC)", {since: today, until: tomorrow}),
            ("Yesterday", {since: today - dt.timedelta(days=1), until: today}),
            ("Past 7 days", {since: today - dt.timedelta(days=7), until: tomorrow}),
            ("Past 35 days", {since: today - dt.timedelta(days=35), until: tomorrow}),
        )


class CappedCountPaginator(Paginator):
    """Counts at most CAP + 1 rows: a COUNT(*) over millions of events would take seconds.

    Past CAP rows the list says "more than CAP" (see pagination.html); narrow it with filters.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.CAP


@admin.register(MeterEvent)
class MeterEventAdmin(admin.ModelAdmin):
    list_display = [
        "identifier",
        "meter",
        "customer",
        "value_display",
        "timestamp",
        "received_at",
        "cancelled",
    ]
    list_filter = ["meter", CancelledFilter, ("timestamp", EventTimeFilter), CustomerFilter]
    list_select_related = ["meter", "customer"]
    search_fields = ["identifier", "customer__public_id"]
    search_help_text = "An exact event identifier or customer id (cus_…)."
    # The table is huge: no full count, no facet counts, a capped page count, and newest first by
    # id (the primary key index; the partitions have no index that leads with timestamp).
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50
    list_max_show_all = 200
    ordering = ["-id"]
    sortable_by = ["timestamp"]
    fields = [
        "identifier",
        "meter",
        "customer",
        "value_display",
        "timestamp",
        "received_at",
        "payload",
        "cancelled_at",
        "cancellation",
    ]
    readonly_fields = fields
    actions = ["cancel_events"]

    def has_add_permission(self, request) -> bool:
        return False  # events arrive through the API (or the meter's "Send test event")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # usage is append-only; cancellation is the one correction

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # never: invoices were computed from these rows

    def has_cancel_permission(self, request) -> bool:
        # A cancellation is recorded as a MeterEventAdjustment row.
        return request.user.has_perm("metering.add_metereventadjustment")

    def get_search_results(self, request, queryset, search_term):
        # Exact matches only: a LIKE '%...%' would read every partition of the event table.
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = Customer.objects.filter(public_id=term).values("pk")
        return queryset.filter(Q(identifier=term) | Q(customer_id__in=customers)), False

    @admin.display(description="value")
    def value_display(self, event: MeterEvent) -> str:
        return format_value(event.value)

    @admin.display(description="cancelled", boolean=True)
    def cancelled(self, event: MeterEvent) -> bool:
        return event.cancelled_at is not None

    @admin.display(description="cancellation")
    def cancellation(self, event: MeterEvent) -> str:
        adjustment = MeterEventAdjustment.objects.filter(
            meter_id=event.meter_id, identifier=event.identifier
        ).first()
        if adjustment is None:
            return "Not cancelled: counted in usage."
        return f"Cancelled at {utc_label(adjustment.created_at)} by {adjustment.created_by}"

    @admin.action(description="Cancel selected events", permissions=["cancel"])
    def cancel_events(self, request, queryset):
        events = list(
            queryset.select_related("meter", "customer").order_by("pk")[: MAX_EVENTS_PER_CANCEL + 1]
        )
        if len(events) > MAX_EVENTS_PER_CANCEL:
            self.message_user(
                request,
                f"Select at most {MAX_EVENTS_PER_CANCEL} events to cancel at a time.",
                messages.ERROR,
            )
            return None
        if request.POST.get("post") == "yes":
            self._cancel(request, events)
            return None
        # The preview: the service decides on confirmation, and reports what it refuses.
        now = clock.now()
        rows = [
            {
                "event": event,
                "value": format_value(event.value),
                "refusal": _cancel_refusal(event, now),
            }
            for event in events
        ]
        context = page_context(
            self,
            request,
            title="Cancel meter events",
            rows=rows,
            cancellable_count=sum(1 for row in rows if row["refusal"] is None),
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        )
        return render(self, request, "admin/metering/meterevent/cancel_confirmation.html", context)

    def _cancel(self, request, events: list[MeterEvent]) -> None:
        def cancel(event: MeterEvent) -> None:
            meter_event_cancel(
                event_name=event.meter.event_name,
                identifier=event.identifier,
                cancelled_by=actor(request),
            )

        call_for_each(
            self,
            request,
            events,
            cancel,
            log=lambda event: "Cancelled: no longer counted in usage.",
            summary=lambda count: f"Cancelled {count} meter event(s).",
            summary_when_none=False,
        )


def _cancel_refusal(event: MeterEvent, now: dt.datetime) -> str | None:
    """Why the service will refuse to cancel this event, for the preview (None: it won't)."""
    if event.cancelled_at is not None:
        return "Already cancelled."
    if event.received_at < now - CANCELLATION_WINDOW:
        return "Received more than 24 hours ago; it can no longer be cancelled."
    return None
