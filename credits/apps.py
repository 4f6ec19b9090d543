from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"

    def ready(self) -> None:
        # Events carry objects as the API serializes them (billing_site/events/objects.py).
        from billing_site.events.objects import register_object_serializer
        from credits import api
        from credits.models import CreditBalanceTransaction, CreditGrant

        register_object_serializer(
            CreditGrant,
            api.serialize_grant,
            queryset=lambda: CreditGrant.objects.select_related(
                "customer__test_clock"
            ).prefetch_related("prices"),
        )
        register_object_serializer(
            CreditBalanceTransaction,
            api.serialize_transaction,
            queryset=lambda: CreditBalanceTransaction.objects.select_related(
                "grant", "invoice", "invoice_line"
            ),
        )
