"""The admin's two roles, kept in sync after every migrate.

- Billing viewer: reads everything.
- Billing operator: also creates and changes catalog, meters, customers, invoices and grants.
Superusers are neither; give staff accounts one of these groups.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

BILLING_APPS = ["billing_site", "catalog", "metering", "credits", "invoicing"]
VIEWER = "Billing viewer"
OPERATOR = "Billing operator"


def sync_billing_roles() -> None:
    permissions = Permission.objects.filter(content_type__app_label__in=BILLING_APPS)
    viewer, _ = Group.objects.get_or_create(name=VIEWER)
    viewer.permissions.set(permissions.filter(codename__startswith="view_"))
    operator, _ = Group.objects.get_or_create(name=OPERATOR)
    operator.permissions.set(permissions.exclude(codename__startswith="delete_"))
