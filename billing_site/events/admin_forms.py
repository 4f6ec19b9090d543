"""Forms of the webhook admin: an endpoint's details and events, and rolling its secret.

The rules are the services' (`billing_site.events.endpoints`): a form runs the service in a
dry run (`admin_kit.dry_run`) and shows what it refuses next to the field its `param` names,
so the page says exactly what the API would say, and nothing is saved.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html

from billing_site.admin_kit import add_billing_error, dry_run
from billing_site.errors import BillingError
from billing_site.events import endpoints
from billing_site.events.models import WebhookEndpoint
from billing_site.events.types import ALL_EVENTS, EVENT_TYPES


def event_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The event types grouped by the object they are about ("invoice", "billing.meter"), each
    labelled with its name and what it means."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, meaning in EVENT_TYPES.items():
        label = format_html(
            '<code>{}</code> <span class="event-type-meaning">{}</span>', name, meaning
        )
        groups.setdefault(name.rsplit(".", 1)[0], []).append((name, label))
    return list(groups.items())


class EventTypesField(forms.MultipleChoiceField):
    """Checkboxes of the event types. A submitted value that is not one of them reaches the
    service, whose error names it (the same message as the API's)."""

    widget = forms.CheckboxSelectMultiple(attrs={"class": "event-types"})

    def valid_value(self, value: str) -> bool:
        return True


def service_error_field(error: BillingError) -> str:
    """The form field of a service error's param: `enabled_events[2]` is `enabled_events`."""
    return (error.param or "").split("[", 1)[0]


class WebhookEndpointForm(forms.ModelForm):
    """Where events go (`url`), a note for staff (`description`) and which events: all of
    them, or the types ticked. `cleaned_data["events"]` is what the service gets."""

    all_events = forms.BooleanField(
        label="All events",
        required=False,
        help_text="Every event type, including types added later (enabled_events = ['*']). "
        "Untick to choose the types below.",
    )
    enabled_events = EventTypesField(
        label="Event types", required=False, choices=event_type_choices
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description"]
        labels = {"url": "Endpoint URL"}
        help_texts = {
            "url": "Where events are POSTed, signed in the Stripe-Signature header. HTTPS to "
            "a public address in production; redirects are not followed.",
            "description": "For staff: what receives these events.",
        }
        widgets = {
            "url": forms.TextInput(
                attrs={
                    "class": "vTextField",
                    "placeholder": "https://example.com/webhooks",
                    "style": "width: min(40em, 100%)",
                }
            ),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            chosen = self.instance.enabled_events
            self.initial["all_events"] = ALL_EVENTS in chosen
            self.initial["enabled_events"] = [name for name in chosen if name != ALL_EVENTS]
        else:
            self.initial.setdefault("all_events", False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        cleaned["events"] = (
            [ALL_EVENTS] if cleaned.get("all_events") else list(cleaned.get("enabled_events", []))
        )
        try:
            dry_run(lambda: self.save_through_service())
        except BillingError as error:
            add_billing_error(self, error, {error.param or "": service_error_field(error)})
        return cleaned

    def save_through_service(self) -> WebhookEndpoint:
        """Create or change the endpoint with the services; `endpoint.secret` is new on create."""
        details = {
            "url": self.cleaned_data["url"],
            "enabled_events": self.cleaned_data["events"],
            "description": self.cleaned_data.get("description") or "",
        }
        if self.instance.pk is None:
            return endpoints.webhook_endpoint_create(**details)
        return endpoints.webhook_endpoint_update(endpoint=self.instance, **details)


class RollSecretForm(forms.Form):
    previous_valid_for_hours = forms.IntegerField(
        label="Old secret keeps working for",
        initial=24,
        min_value=0,
        max_value=24,
        widget=forms.NumberInput(attrs={"style": "width: 5em"}),
        help_text="Hours, 0 to 24. Meanwhile every delivery carries two signatures (v1=, one "
        "per secret), so receivers that still have the old secret keep verifying until they "
        "switch. 0 stops the old secret at once.",
    )


ROLL_PARAM_TO_FIELD = {"previous_valid_for": "previous_valid_for_hours"}
