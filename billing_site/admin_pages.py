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
