"""Forms of the meter admin pages: the usage chart filter and the "Send test event" form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect
from django.utils.html import format_html

from billing_site.admin_kit import UTCDateTimeField
from metering.models import Meter, MeterEvent

# metering sits below invoicing: reach the customer model through the string FK, never by import.
Customer = MeterEvent._meta.get_field("customer").related_model


class UsageChartForm(forms.Form):
    """GET parameters of the meter page's usage chart: `window=hour|day`, `customer=cus_...`."""

    window = forms.ChoiceField(
        choices=[("hour", "Per hour, last 48 hours"), ("day", "Per day, last 30 days")],
        required=False,
    )
    customer = forms.CharField(
        required=False,
        max_length=100,
        label="Customer id",
        widget=forms.TextInput(
            attrs={"placeholder": "cus_… (empty: all customers)", "list": "usage-customers"}
        ),
    )

    def clean_window(self) -> str:
        return self.cleaned_data["window"] or "hour"

    def clean_customer(self):
        public_id = self.cleaned_data["customer"].strip()
        if not public_id:
            return None
        # Deleted customers are included: their past usage is still worth looking at.
        customer = Customer.objects.filter(public_id=public_id).first()
        if customer is None:
            raise forms.ValidationError(
                f"No customer with id '{public_id}'. Use a customer id such as cus_…, or leave "
                "the field empty for all customers."
            )
        return customer


class SendTestEventForm(forms.Form):
    """Stripe Dashboard's "Send test event": one meter event, stored by `meter_event_create`."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.none())
    value = forms.CharField(initial="1", max_length=64)
    identifier = forms.CharField(
        required=False,
        max_length=100,
        help_text="Optional. Leave empty to have one generated; reusing one is refused.",
    )
    timestamp = UTCDateTimeField(
        required=False,
        label="Timestamp (UTC)",
        help_text="Optional, defaults to now. Within the past 35 days and at most 5 minutes ahead.",
    )

    def __init__(self, *args, meter: Meter, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.meter = meter
        customer = self.fields["customer"]
        # An autocomplete, not a <select> of every customer: there can be many thousands.
        customer.widget = AutocompleteSelect(MeterEvent._meta.get_field("customer"), admin_site)
        customer.queryset = Customer.objects.live()  # after the widget: this sets its choices
        # The admin renders help_text unescaped, and payload keys are free text: format_html.
        customer.help_text = format_html("Sent as payload[{}].", meter.customer_payload_key)
        self.fields["value"].help_text = format_html(
            "Sent as payload[{}].{}",
            meter.value_payload_key,
            " This meter counts events, so the value doesn't change its usage."
            if meter.formula == Meter.Formula.COUNT
            else "",
        )

    def event_fields(self) -> dict[str, Any]:
        """Keyword arguments for `meter_event_create`, shaped like an API request."""
        data = self.cleaned_data
        return {
            "event_name": self.meter.event_name,
            "payload": {
                self.meter.customer_payload_key: data["customer"].public_id,
                self.meter.value_payload_key: data["value"].strip(),
            },
            "identifier": data["identifier"] or None,
            "timestamp": data["timestamp"],
        }

    def param_to_field(self) -> dict[str, str]:
        """Where a BillingError's `param` is shown; others (e.g. an inactive meter) go on top."""
        return {
            f"payload[{self.meter.customer_payload_key}]": "customer",
            f"payload[{self.meter.value_payload_key}]": "value",
            "identifier": "identifier",
            "timestamp": "timestamp",
        }
