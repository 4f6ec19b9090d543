from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from billing_site import services
from billing_site.admin_kit import call_for_each
from billing_site.models import ApiKey

admin.site.site_header = "Billing back office"
admin.site.site_title = "Billing back office"
admin.site.index_title = "Billing"


# --- What apps add to the admin index (templates/admin/index.html) ----------------------------
# billing_site imports no app, so the apps bring their sections: `invoicing.admin` adds the
# billing dashboard. A provider gets `can_view(model)` (the viewer may see that model's list)
# and returns context for the index template.

CanView = Callable[[type], bool]
IndexContextProvider = Callable[[CanView], dict[str, Any]]
_index_context_providers: dict[str, IndexContextProvider] = {}


def add_index_context(name: str, provider: IndexContextProvider) -> None:
    """Add (or replace, by `name`) a provider of admin index context."""
    _index_context_providers[name] = provider


_plain_index = admin.site.index


def _index_with_app_sections(request: HttpRequest, extra_context=None):
    """The admin index with the apps' sections: only what the user may view."""

    def can_view(model) -> bool:
        return admin.site.is_registered(model) and admin.site.get_model_admin(
            model
        ).has_view_permission(request)

    context: dict[str, Any] = {}
    for provider in _index_context_providers.values():
        context.update(provider(can_view))
    return _plain_index(request, extra_context={**context, **(extra_context or {})})


admin.site.index = _index_with_app_sections


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "secret_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "secret_prefix"]
    readonly_fields = ["name", "secret_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["name"] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        api_key, secret = services.api_key_create(name=form.cleaned_data["name"])
        obj.__dict__.update(api_key.__dict__)
        self.message_user(
            request,
            f"Secret key for '{api_key.name}' (shown only once, copy it now): {secret}",
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected keys", permissions=["add"])
    def revoke_keys(self, request, queryset):
        call_for_each(
            self,
            request,
            queryset.filter(revoked_at__isnull=True),
            lambda api_key: services.api_key_revoke(api_key=api_key),
            log=lambda api_key: "Revoked",
            summary=lambda count: "Selected keys revoked.",
        )
