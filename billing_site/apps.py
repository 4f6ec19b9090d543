from django.apps import AppConfig


class BillingSiteConfig(AppConfig):
    name = "billing_site"
    verbose_name = "API access"
