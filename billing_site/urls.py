from django.contrib import admin
from django.urls import include, path, re_path

from billing_site.api import account as account_api
from billing_site.api.base import UnrecognizedUrl
from billing_site.events import api as events_api
from catalog import api as catalog_api
from catalog import api_search as catalog_search
from credits import api as credits_api
from invoicing import portal_api
from invoicing.api import (
    customers,
    invoice_items,
    invoice_lines,
    invoices,
    previews,
    search,
    subscriptions,
    test_clocks,
)
from metering import api as metering_api
from metering import api_v2 as metering_api_v2

api_v1 = [
    path("account", account_api.AccountDetail.as_view()),
    path("customers", customers.CustomerCollection.as_view()),
    path("customers/search", search.CustomerSearch.as_view()),
    path("customers/<str:public_id>", customers.CustomerDetail.as_view()),
    path("products", catalog_api.ProductCollection.as_view()),
    path("products/search", catalog_search.ProductSearch.as_view()),
    path("products/<str:public_id>", catalog_api.ProductDetail.as_view()),
    path("prices", catalog_api.PriceCollection.as_view()),
    path("prices/search", catalog_search.PriceSearch.as_view()),
    path("prices/<str:public_id>", catalog_api.PriceDetail.as_view()),
    path("billing/meters", metering_api.MeterCollection.as_view()),
    path("billing/meters/<str:public_id>", metering_api.MeterDetail.as_view()),
    path("billing/meters/<str:public_id>/deactivate", metering_api.MeterDeactivate.as_view()),
    path("billing/meters/<str:public_id>/reactivate", metering_api.MeterReactivate.as_view()),
    path(
        "billing/meters/<str:public_id>/event_summaries", metering_api.MeterEventSummaries.as_view()
    ),
    path("billing/meter_events", metering_api.MeterEventCollection.as_view()),
    path("billing/meter_event_adjustments", metering_api.MeterEventAdjustmentCollection.as_view()),
    path("billing/credit_grants", credits_api.CreditGrantCollection.as_view()),
    path("billing/credit_grants/<str:public_id>", credits_api.CreditGrantDetail.as_view()),
    path(
        "billing/credit_grants/<str:public_id>/expire",
        credits_api.CreditGrantAction.as_view(action="expire"),
    ),
    path(
        "billing/credit_grants/<str:public_id>/void",
        credits_api.CreditGrantAction.as_view(action="void"),
    ),
    path(
        "billing/credit_balance_transactions",
        credits_api.CreditBalanceTransactionCollection.as_view(),
    ),
    path(
        "billing/credit_balance_transactions/<str:public_id>",
        credits_api.CreditBalanceTransactionDetail.as_view(),
    ),
    path("billing/credit_balance_summary", credits_api.CreditBalanceSummary.as_view()),
    path("subscriptions", subscriptions.SubscriptionCollection.as_view()),
    path("subscriptions/search", search.SubscriptionSearch.as_view()),
    path("subscriptions/<str:public_id>", subscriptions.SubscriptionDetail.as_view()),
    path("subscription_items", subscriptions.SubscriptionItemCollection.as_view()),
    path("subscription_items/<str:public_id>", subscriptions.SubscriptionItemDetail.as_view()),
    path("invoices", invoices.InvoiceCollection.as_view()),
    path("invoices/create_preview", previews.InvoicePreviewView.as_view()),
    path("invoices/search", search.InvoiceSearch.as_view()),
    path("invoices/<str:public_id>", invoices.InvoiceDetail.as_view()),
    path("invoices/<str:public_id>/lines", invoices.InvoiceLines.as_view()),
    *[
        path(
            f"invoices/<str:public_id>/{action}",
            invoices.InvoiceAction.as_view(action=action),
        )
        for action in ("finalize", "pay", "void", "mark_uncollectible")
    ],
    *[
        path(
            f"invoices/<str:public_id>/{action}",
            invoice_lines.InvoiceLinesChange.as_view(action=action),
        )
        for action in ("add_lines", "update_lines", "remove_lines")
    ],
    path("invoiceitems", invoice_items.InvoiceItemCollection.as_view()),
    path("invoiceitems/<str:public_id>", invoice_items.InvoiceItemDetail.as_view()),
    path("test_helpers/test_clocks", test_clocks.TestClockCollection.as_view()),
    path("test_helpers/test_clocks/<str:public_id>", test_clocks.TestClockDetail.as_view()),
    path(
        "test_helpers/test_clocks/<str:public_id>/advance",
        test_clocks.TestClockAdvance.as_view(),
    ),
    path("billing_portal/sessions", portal_api.BillingPortalSessionCollection.as_view()),
    path("events", events_api.EventCollection.as_view()),
    path("events/<str:public_id>", events_api.EventDetail.as_view()),
    path("webhook_endpoints", events_api.WebhookEndpointCollection.as_view()),
    path("webhook_endpoints/<str:public_id>", events_api.WebhookEndpointDetail.as_view()),
    re_path(r"^.*$", UnrecognizedUrl.as_view()),
]

api_v2 = [
    path("billing/meter_event_session", metering_api.MeterEventSessionCreate.as_view()),
    path("billing/meter_event_stream", metering_api.MeterEventStream.as_view()),
    path("billing/meter_events", metering_api_v2.V2MeterEventCreate.as_view()),
    path("billing/meter_event_adjustments", metering_api_v2.V2MeterEventAdjustmentCreate.as_view()),
    re_path(r"^.*$", UnrecognizedUrl.as_view()),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include(api_v1)),
    path("v2/", include(api_v2)),
    path("portal/", include("invoicing.portal_urls")),
]
