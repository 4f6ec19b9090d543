from django.apps import AppConfig


class CreditsConfig(AppConfig):
    name = "credits"

    def ready(self) -> None:
        # Events carry objects as the API serializes them (billing_site/events/objects.py).
        from billing_site.events.objects import register_object_serializer
        from credits import api
        from credits.models import CreditBalanceTransaction, CreditGrant

        register_object_serializer(
            CreditGrant, api.serialize_grant, queryset=api.grants_to_serialize
        )
        register_object_serializer(
            CreditBalanceTransaction,
            api.serialize_transaction,
            queryset=api.transactions_to_serialize,
        )
        # What `expand[]` can reach (billing_site/api/expand.py).
        api.register_expandables()
