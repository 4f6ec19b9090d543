"""Helpers for custom admin pages (views registered through ModelAdmin.get_urls)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.response import TemplateResponse


def page_context(model_admin, request: HttpRequest, *, title: str, **extra: Any) -> dict:
    """What every custom page needs: the site's context, the model's opts and breadcrumbs."""
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "has_view_permission": model_admin.has_view_permission(request),
        "is_popup": False,
        "media": model_admin.media,
        **extra,
    }


def render(model_admin, request: HttpRequest, template: str, context: dict) -> TemplateResponse:
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, template, context)


def timestamp_set_filter(*, title: str, parameter: str, field: str, unset: str, is_set: str):
    """A list filter on whether a timestamp field is set ("resolved", "cancelled", "deleted").

    The URL values are `no` (unset) and `yes` (set), so links like `?resolved=no` stay stable.
    """
    from django.contrib import admin

    class TimestampSetFilter(admin.SimpleListFilter):
        def lookups(self, request, model_admin):
            return [("no", unset), ("yes", is_set)]

        def queryset(self, request, queryset):
            if self.value() in ("no", "yes"):
                return queryset.filter(**{f"{field}__isnull": self.value() == "no"})
            return queryset

    TimestampSetFilter.title = title
    TimestampSetFilter.parameter_name = parameter
    return TimestampSetFilter
