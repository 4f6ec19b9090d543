from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from billing_site.admin_forms import add_billing_error
from billing_site.errors import BillingError
from metering import services
from metering.models import Meter

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
class MeterAdmin(admin.ModelAdmin):
    list_display = ["display_name", "event_name", "public_id", "formula", "status", "created_at"]
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
    actions = ["deactivate_meters", "reactivate_meters"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MeterAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # After creation only the display name can change.
        return self.readonly_fields if obj is not None else ["public_id"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return MeterAddForm.Meta.fields
        return ["display_name", *self.readonly_fields]

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

    @admin.action(description="Deactivate selected meters", permissions=["change"])
    def deactivate_meters(self, request, queryset):
        self._apply(request, queryset.filter(status=Meter.Status.ACTIVE), services.meter_deactivate)

    @admin.action(description="Reactivate selected meters", permissions=["change"])
    def reactivate_meters(self, request, queryset):
        self._apply(
            request, queryset.filter(status=Meter.Status.INACTIVE), services.meter_reactivate
        )

    def _apply(self, request, queryset, service) -> None:
        count = 0
        for meter in queryset:
            service(meter=meter)
            self.log_change(request, meter, f"Status set to {meter.status}")
            count += 1
        self.message_user(request, f"{count} meter(s) updated.", messages.SUCCESS)
