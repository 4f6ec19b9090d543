from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.cache import add_never_cache_headers

from billing_site import key_permissions, services
from billing_site.admin_kit import (
    AddFormMixin,
    ConfirmedAction,
    confirm_action,
    page_context,
    render,
    utc_label,
)
from billing_site.events import admin as _events_admin  # noqa: F401 (registers its pages)
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


FULL_ACCESS = "full_access"
CUSTOM_PERMISSIONS = "custom"


def _permission_field_name(resource: str) -> str:
    return f"permission_{resource}"


class _ApiKeyAddFormBase(forms.ModelForm):
    """Name the key and choose what it may do: full access (superusers only), a preset, or
    per-resource permissions. `cleaned_data["permissions"]` is None for full access."""

    access = forms.ChoiceField(label="Access", widget=forms.RadioSelect)
    # Set per request by ApiKeyAdmin.get_form: only superusers may mint full-access keys.
    can_create_full_access = False

    class Meta:
        model = ApiKey
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(name, text) for name, text in key_permissions.PRESET_DESCRIPTIONS.items()]
        choices.append((CUSTOM_PERMISSIONS, "Restricted, with the permissions chosen below"))
        if self.can_create_full_access:
            choices.insert(0, (FULL_ACCESS, "Full access (sk_…): every resource, read and write"))
        self.fields["access"].choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        access = cleaned.get("access")
        if access == FULL_ACCESS:
            cleaned["permissions"] = None
        elif access in key_permissions.PRESETS:
            cleaned["permissions"] = dict(key_permissions.PRESETS[access])
        elif access == CUSTOM_PERMISSIONS:
            chosen = {
                resource: cleaned.get(_permission_field_name(resource)) or key_permissions.NONE
                for resource in key_permissions.RESOURCES
            }
            try:
                cleaned["permissions"] = key_permissions.clean_permissions(chosen)
            except ValueError as exc:
                raise ValidationError(str(exc)) from exc
        return cleaned


# One none/read/write choice per resource, so a resource added to key_permissions.RESOURCES
# appears in the form without touching it.
ApiKeyAddForm = type(
    "ApiKeyAddForm",
    (_ApiKeyAddFormBase,),
    {
        _permission_field_name(resource): forms.ChoiceField(
            label=resource,
            help_text=covers,
            choices=[(level, level.capitalize()) for level in key_permissions.ACCESS_LEVELS],
            initial=key_permissions.NONE,
            required=False,
            widget=forms.RadioSelect(attrs={"class": "inline"}),
        )
        for resource, covers in key_permissions.RESOURCES.items()
    },
)


REVOCATION_EXPLAINED = (
    "A revoked key stops working at once: every API request made with it is refused (401, "
    "invalid API key), meter events included, so whatever uses it stops sending usage until it "
    "gets a new key. Revocation can't be undone."
)


@admin.register(ApiKey)
class ApiKeyAdmin(AddFormMixin, admin.ModelAdmin):
    """API keys: add one (its secret is shown once, on the page that answers the POST, and
    never stored or put in a cookie), or revoke keys through a confirmation page."""

    list_display = ["name", "secret_prefix", "access", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "secret_prefix"]
    readonly_fields = [
        "name",
        "secret_prefix",
        "access",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    add_form = ApiKeyAddForm
    actions = ["revoke_keys"]

    @admin.display(description="Access")
    def access(self, obj: ApiKey) -> str:
        return key_permissions.describe(obj.permissions)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None:
            form.can_create_full_access = request.user.is_superuser
        return form

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return [(None, {"fields": self.readonly_fields})]
        return [
            (None, {"fields": ["name", "access"]}),
            (
                "Permissions",
                {
                    "description": "Only for “Restricted, with the permissions chosen below”. "
                    "Write includes read; a restricted key's secret starts with rk_. Only "
                    "superusers may create full-access keys.",
                    "fields": [
                        _permission_field_name(resource) for resource in key_permissions.RESOURCES
                    ],
                },
            ),
        ]

    def save_model(self, request, obj, form, change):
        api_key, secret = services.api_key_create(
            name=form.cleaned_data["name"], permissions=form.cleaned_data["permissions"]
        )
        obj.__dict__.update(api_key.__dict__)
        obj.new_secret = secret  # for response_add only; never saved

    def response_add(self, request, obj, post_url_continue=None):
        # The secret is shown in this response only: not in a message, whose cookie is signed
        # but not encrypted, and not after a redirect. The page is never cached.
        context = page_context(
            self,
            request,
            title=f"API key “{obj.name}” created",
            page_label="New secret key",
            original=obj,
            secret=obj.new_secret,
            access=key_permissions.describe(obj.permissions),
        )
        response = render(self, request, "admin/billing_site/apikey/secret_created.html", context)
        add_never_cache_headers(response)
        return response

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected keys…", permissions=["add"])
    def revoke_keys(self, request, queryset):
        return confirm_action(
            self,
            request,
            queryset,
            ConfirmedAction(
                action="revoke_keys",
                verb="Revoke",
                done="Revoked",
                explanation=REVOCATION_EXPLAINED,
                columns=["Name", "Secret starts with", "Last used"],
                cells=lambda key: [
                    key.name,
                    f"{key.secret_prefix}…",
                    utc_label(key.last_used_at) if key.last_used_at else "never",
                ],
                refusal=lambda key: "already revoked." if key.revoked_at else None,
                service=lambda key: services.api_key_revoke(api_key=key),
                noun=("API key", "API keys"),
            ),
        )
