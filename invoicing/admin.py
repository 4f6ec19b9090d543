from __future__ import annotations

from django.contrib import admin

from invoicing import services
from invoicing.models import Customer


class DeletedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Live"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "public_id", "created_at", "deleted_at"]
    list_filter = [DeletedFilter, "created_at"]
    search_fields = ["name", "email", "public_id", "description"]
    readonly_fields = ["public_id", "created_at", "deleted_at"]
    fields = ["public_id", "name", "email", "description", "metadata", "created_at", "deleted_at"]
    date_hierarchy = "created_at"

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ("name", "email", "description")}
        fields["metadata"] = form.cleaned_data.get("metadata") or {}
        if change:
            services.customer_update(customer=obj, **fields)
        else:
            obj.__dict__.update(services.customer_create(**fields).__dict__)

    def delete_model(self, request, obj):
        services.customer_delete(customer=obj)

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            services.customer_delete(customer=customer)
