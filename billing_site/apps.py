from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    from billing_site.roles import sync_billing_roles

    sync_billing_roles()


class BillingSiteConfig(AppConfig):
    name = "billing_site"
    verbose_name = "API access"

    def ready(self) -> None:
        # After every app's migrate, so the permissions of apps migrated later exist too.
        post_migrate.connect(_sync_roles, dispatch_uid="billing_site.sync_roles")
