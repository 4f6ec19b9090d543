from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        # Events carry objects as the API serializes them (billing_site/events/objects.py).
        from billing_site.events.objects import register_object_serializer
        from catalog import api
        from catalog.models import Price, Product

        register_object_serializer(
            Product, api.serialize_product, queryset=api.products_to_serialize
        )
        register_object_serializer(Price, api.serialize_price, queryset=api.prices_to_serialize)
        # What `expand[]` can reach (billing_site/api/expand.py).
        api.register_expandables()
