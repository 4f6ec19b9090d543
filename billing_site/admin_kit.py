"""The admin kit: what every app's admin pages share. Plumbing only: it imports no app.

* Forms: :class:`UTCDateTimeField`, :data:`COMMON_CURRENCIES` (the currency suggestions),
  :func:`add_billing_error` (a service's error next to the field it names) and
  :class:`AddFormMixin` (an add page with its own form, like Django's ``UserAdmin``).
* Custom pages (registered through ``ModelAdmin.get_urls``): :func:`custom_page_urls`,
  :func:`object_page` (a page about one object: permission, lookup, the missing-object
  redirect), :func:`page_context` (and :func:`form_page_context` for a page around one form),
  :func:`render`, :func:`admin_form`, :func:`change_url`, :func:`change_link`.
* Wizards preview, then commit (STYLE.md rule 15): :func:`dry_run` runs the real services and
  rolls everything back, so a preview shows exactly what the confirm step will write and refuses
  what it would refuse; :func:`carried_fields` carries the submitted form through the preview
  page to the POST-only confirm step.
* Actions: :func:`actor` (who did it, for audit trails), :func:`call_for_each` (a service per
  selected object, logged, one message), :func:`confirm_action` (the confirmation page of an
  action that is hard to undo, then the action on its POST) and
  :func:`timestamp_set_filter` (the "is this timestamp set" list filters).
* Display: :func:`link_column` (a column linking to a related object's page) and
  :func:`utc_label` for moments in messages and log entries. Numbers are spelled by
  :mod:`billing_site.formatting`, amounts by ``catalog.money.format_minor_units``.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing_site.errors import BillingError

__all__ = [
    "COMMON_CURRENCIES",
    "AddFormMixin",
    "UTCDateTimeField",
    "actor",
    "add_billing_error",
    "admin_form",
    "call_for_each",
    "carried_fields",
    "change_link",
    "change_url",
    "confirm_action",
    "custom_page_urls",
    "dry_run",
    "form_page_context",
    "link_column",
    "object_page",
    "page_context",
    "render",
    "timestamp_set_filter",
    "utc_label",
]

T = TypeVar("T")
M = TypeVar("M")

# Offered in the currency fields' suggestions (a <datalist id="currency-codes">); any ISO 4217
# code is accepted.
COMMON_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK", "INR", "BRL"]


# --- Forms -----------------------------------------------------------------------------------


class UTCDateTimeField(forms.DateTimeField):
    """A datetime-local input read as UTC, whatever time zone is active for the staff user."""

    widget = forms.DateTimeInput(
        attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"
    )

    def to_python(self, value: Any) -> dt.datetime | None:
        with timezone.override(dt.UTC):
            return super().to_python(value)


def add_billing_error(
    form: forms.Form, error: BillingError, param_to_field: Mapping[str, str]
) -> None:
    """Show a service's error next to the form field its `param` names (or at the top)."""
    field = param_to_field.get(error.param or "", error.param)
    if field in form.fields:
        form.add_error(field, error.message)
    else:
        form.add_error(None, error.message)


class AddFormMixin:
    """For a ModelAdmin whose add page has its own form, ``add_form`` (as Django's ``UserAdmin``
    does): the fields a row is created with, which its service takes, none read-only unless
    ``add_readonly_fields`` says so. The change page is the admin's own (``fields``,
    ``readonly_fields``)."""

    add_form: type[forms.BaseForm]
    add_readonly_fields: Sequence[str] = ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_form.Meta.fields  # type: ignore[attr-defined]
        return super().get_fields(request, obj)  # type: ignore[misc]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.add_readonly_fields
        return super().get_readonly_fields(request, obj)  # type: ignore[misc]


class ObjectSectionsMixin:
    """For a ModelAdmin whose change page draws sections below the form (its change_form.html
    template): ``object_page_context(request, obj)`` gives what they show, for an existing row."""

    def object_page_context(self, request, obj) -> dict[str, Any]:
        raise NotImplementedError

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.object_page_context(request, obj))
        return super().render_change_form(  # type: ignore[misc]
            request, context, add, change, form_url, obj
        )


# --- Custom pages ----------------------------------------------------------------------------


def custom_page_urls(model_admin, pages: Iterable[tuple[str, Callable, str]]) -> list[URLPattern]:
    """The URLs of a ModelAdmin's custom pages, each `(route, view, name)`: wrapped in
    ``admin_site.admin_view`` and named ``<app>_<model>_<name>`` (reversed as ``admin:...``).

    ``get_urls`` puts them before ``super().get_urls()``, whose ``<path:object_id>/`` would
    otherwise swallow them.
    """
    opts = model_admin.opts
    wrap = model_admin.admin_site.admin_view
    return [
        path(route, wrap(view), name=f"{opts.app_label}_{opts.model_name}_{name}")
        for route, view, name in pages
    ]


def object_page(permission: str, *, actions: Mapping[str, Any] | None = None):
    """Decorates the view of a custom page about one object (a ``<path:object_id>/...`` URL).

    A user without the permission (``model_admin.has_<permission>_permission(request)``, the
    convention of ``@admin.action(permissions=...)``) gets a 403, and an id that names no
    object gets what Django's own change page gives: the admin index, with a message. The
    view is called as ``view(model_admin, request, obj)``.

    With ``actions``, the URL also names one of them by its slug (``<slug:slug>``): an unknown
    slug is a 403 too, and the view gets the action as a fourth argument.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def page(model_admin, request: HttpRequest, object_id: str, *slug: str) -> HttpResponse:
            chosen = [] if actions is None else [actions.get(slug[0])]
            allowed = getattr(model_admin, f"has_{permission}_permission")(request)
            if None in chosen or not allowed:
                raise PermissionDenied
            obj = model_admin.get_object(request, unquote(object_id))
            if obj is None:
                return model_admin._get_obj_does_not_exist_redirect(
                    request, model_admin.opts, object_id
                )
            return view(model_admin, request, obj, *chosen)

        return page

    return decorate


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


def form_page_context(
    model_admin,
    request: HttpRequest,
    form: forms.Form,
    fieldsets: list | None = None,
    *,
    title: str,
    **extra: Any,
) -> dict:
    """`page_context` for a page around one form (``admin/custom_form_page.html``): the form,
    drawn with the admin's fieldsets (`admin_form`), its error list and its media."""
    adminform = admin_form(form, fieldsets)
    return page_context(
        model_admin,
        request,
        title=title,
        form=form,
        adminform=adminform,
        errors=helpers.AdminErrorList(form, []),
        media=model_admin.media + adminform.media,
        **extra,
    )


def render(model_admin, request: HttpRequest, template: str, context: dict) -> TemplateResponse:
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, template, context)


def form_page(
    model_admin,
    request: HttpRequest,
    template: str,
    form: forms.Form,
    fieldsets: list | None = None,
    *,
    title: str,
    **extra: Any,
) -> TemplateResponse:
    """A custom page around one form, drawn by `template` (see `form_page_context`)."""
    context = form_page_context(model_admin, request, form, fieldsets, title=title, **extra)
    return render(model_admin, request, template, context)


def confirmation_page(
    model_admin,
    request: HttpRequest,
    template: str,
    *,
    label: str,
    original: Any,
    form: forms.Form | None = None,
    **extra: Any,
) -> TemplateResponse:
    """The "<label>: are you sure?" page of an action on `original` (None for several objects),
    around `form` when the action asks for input."""
    common = {"title": f"{label}: are you sure?", "page_label": label, "original": original}
    if form is None:
        return render(
            model_admin, request, template, page_context(model_admin, request, **common, **extra)
        )
    return form_page(model_admin, request, template, form, **common, **extra)


def admin_form(form: forms.Form, fieldsets: list | None = None) -> helpers.AdminForm:
    """The form as the admin's fieldset templates draw it: one fieldset of its visible fields
    unless `fieldsets` are given."""
    visible = [name for name, field in form.fields.items() if not field.widget.is_hidden]
    return helpers.AdminForm(form, fieldsets or [(None, {"fields": visible})], {})


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def change_link(obj, label: str | None = None) -> str:
    """A link to the object's admin page, showing `label` (or the object); "-" for None."""
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', change_url(obj), label or obj)


# --- Wizards: preview, then commit -----------------------------------------------------------


def dry_run(build: Callable[[], T]) -> T:
    """Run `build` (which calls services) and roll everything it wrote back.

    `build` must copy what it wants to show into plain values before returning: the rows are
    gone afterwards. An exception raised inside (a BillingError) propagates after the rollback.
    """
    with transaction.atomic():
        result = build()
        transaction.set_rollback(True)
    return result


def carried_fields(request: HttpRequest, control: Iterable[str]) -> list[tuple[str, str]]:
    """The submitted form as (name, value) pairs, for the hidden fields of a preview page.

    `control` names the submit buttons, which must not travel back with the form.
    """
    skip = {"csrfmiddlewaretoken", *control}
    return [
        (key, value) for key, values in request.POST.lists() if key not in skip for value in values
    ]


# --- Actions ---------------------------------------------------------------------------------


def actor(request: HttpRequest) -> str:
    """Who did it, as audit trails (invoice and credit grant events) record a staff user."""
    return request.user.get_username()


def call_for_each(
    model_admin,
    request: HttpRequest,
    objects: Iterable[M],
    service: Callable[[M], M | None],
    *,
    log: Callable[[M], str],
    summary: Callable[[int], str],
    summary_when_none: bool = True,
) -> int:
    """Call `service` for each object, log each change, then say how many changed.

    The log entry is written for what the service returned (the object, if it returned None).
    A BillingError refusing one object is shown as an error message and the others go on. The
    success message is `summary(count)`; with ``summary_when_none=False`` it is skipped when
    nothing changed. Returns the count.
    """
    count = 0
    for obj in objects:
        try:
            result = service(obj)
        except BillingError as error:
            model_admin.message_user(request, error.message, messages.ERROR)
            continue
        changed = obj if result is None else result
        model_admin.log_change(request, changed, log(changed))
        count += 1
    if count or summary_when_none:
        model_admin.message_user(request, summary(count), messages.SUCCESS)
    return count


@dataclass(frozen=True)
class ConfirmedAction:
    """What the confirmation page of an admin action says, and what it calls."""

    action: str  # the admin action's name, posted back with post=yes
    verb: str  # "Deactivate": the page's title and button
    done: str  # "Deactivated": the last column for a row that will change, and the message
    explanation: str  # what happens, in words a newcomer can act on
    columns: Sequence[str]  # headings of the table of selected objects
    cells: Callable[[Any], Sequence[Any]]  # one row's cells, matching `columns`
    refusal: Callable[[Any], str | None]  # why a selected object won't change (None: it will)
    service: Callable[[Any], Any]  # changes one object; a BillingError refuses it
    noun: tuple[str, str]  # ("meter", "meters")
    max_objects: int = 100


def confirm_action(
    model_admin, request: HttpRequest, queryset, confirmed: ConfirmedAction
) -> HttpResponse | None:
    """An admin action that is hard to undo: a confirmation page that lists the selection and
    says what will happen (the action's first POST, from the changelist), then the change on
    the page's POST (post=yes, like Django's delete_selected), through `call_for_each`.

    The confirming POST goes through the changelist's action machinery again, with its CSRF and
    permission checks. Returns None (back to the list) or the page.
    """
    selected = list(queryset.order_by("pk")[: confirmed.max_objects + 1])
    one, many = confirmed.noun
    if len(selected) > confirmed.max_objects:
        model_admin.message_user(
            request, f"Select at most {confirmed.max_objects} {many} at a time.", messages.ERROR
        )
        return None
    if request.POST.get("post") == "yes":
        call_for_each(
            model_admin,
            request,
            [obj for obj in selected if confirmed.refusal(obj) is None],
            confirmed.service,
            log=lambda obj: f"{confirmed.done}.",
            summary=lambda count: f"{confirmed.done} {count} {one if count == 1 else many}.",
            summary_when_none=False,
        )
        return None
    rows = [
        {"obj": obj, "cells": confirmed.cells(obj), "refusal": confirmed.refusal(obj)}
        for obj in selected
    ]
    changing = sum(1 for row in rows if row["refusal"] is None)
    context = page_context(
        model_admin,
        request,
        title=f"{confirmed.verb} {many}: are you sure?",
        page_label=f"{confirmed.verb} {many}",
        confirmed=confirmed,
        rows=rows,
        changing_count=changing,
        changing_noun=one if changing == 1 else many,
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
    )
    return render(model_admin, request, "admin/action_confirmation.html", context)


def timestamp_set_filter(*, title: str, parameter: str, field: str, unset: str, is_set: str):
    """A list filter on whether a timestamp field is set ("resolved", "cancelled", "deleted").

    The URL values are `no` (unset) and `yes` (set), so links like `?resolved=no` stay stable.
    """

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


# --- Display ---------------------------------------------------------------------------------


def link_column(
    path: str, description: str, *, label: str | None = None, ordering: str | None = None
):
    """A column of a list or page linking to a related object's admin page ("-" for none).

    `path` leads from the row to the object (``"subscription.customer"``); `label` names an
    attribute of the object to show instead of ``str(obj)`` (``"label"``).
    """
    related_of = operator.attrgetter(path)

    @admin.display(description=description, ordering=ordering)
    def column(model_admin, obj) -> str:
        related = related_of(obj)
        shown = getattr(related, label) if label and related is not None else None
        return change_link(related, shown)

    return column


def utc_label(at: dt.datetime, *, seconds: bool = True) -> str:
    """A moment as staff read it in messages and log entries: "2026-01-15 09:30:00 UTC"."""
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if seconds else f"{at:%Y-%m-%d %H:%M} UTC"
