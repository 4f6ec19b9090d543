from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"

    def ready(self) -> None:
        # Events carry objects as the API serializes them (billing_site/events/objects.py).
        from billing_site.events.objects import register_object_serializer
        from invoicing.api import serializers as api
        from invoicing.models import Customer, Invoice, InvoiceLineItem, Subscription, TestClock
        from invoicing.selectors import InvoicePreview

        register_object_serializer(
            Customer,
            api.serialize_customer,
            queryset=api.customers_to_serialize,
        )
        register_object_serializer(TestClock, api.serialize_test_clock)
        register_object_serializer(
            Subscription, api.serialize_subscription, queryset=api.subscriptions_to_serialize
        )
        register_object_serializer(
            Invoice, api.serialize_invoice, queryset=api.invoices_to_serialize
        )
        # Only one-off items (invoiceitem.*) have events; period lines are part of the invoice.
        register_object_serializer(
            InvoiceLineItem, api.serialize_invoice_item, queryset=api.invoice_items_to_serialize
        )
        # invoice.upcoming: the preview is not a row, so it is serialized as it is.
        register_object_serializer(InvoicePreview, api.serialize_preview)
        # What `expand[]` can reach (billing_site/api/expand.py).
        api.register_expandables()
