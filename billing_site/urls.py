from django.contrib import admin
from django.urls import include, path, re_path

from billing_site.api.base import UnrecognizedUrl
from catalog import api as catalog_api
from credits import api as credits_api
from invoicing import api as invoicing_api
from invoicing import portal_api
from metering import api as metering_api

api_v1 = [
    path("customers", invoicing_api.CustomerCollection.as_view()),
    path("customers/<str:public_id>", invoicing_api.CustomerDetail.as_view()),
    path("products", catalog_api.ProductCollection.as_view()),
    path("products/<str:public_id>", catalog_api.ProductDetail.as_view()),
    path("prices", catalog_api.PriceCollection.as_view()),
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
    path("subscriptions", invoicing_api.SubscriptionCollection.as_view()),
    path("subscriptions/<str:public_id>", invoicing_api.SubscriptionDetail.as_view()),
    path("subscription_items", invoicing_api.SubscriptionItemCollection.as_view()),
    path("subscription_items/<str:public_id>", invoicing_api.SubscriptionItemDetail.as_view()),
    path("invoices", invoicing_api.InvoiceCollection.as_view()),
    path("invoices/create_preview", invoicing_api.InvoicePreviewView.as_view()),
    path("invoices/<str:public_id>", invoicing_api.InvoiceDetail.as_view()),
    path("invoices/<str:public_id>/lines", invoicing_api.InvoiceLines.as_view()),
    *[
        path(
            f"invoices/<str:public_id>/{action}",
            invoicing_api.InvoiceAction.as_view(action=action),
        )
        for action in ("finalize", "pay", "void", "mark_uncollectible")
    ],
    path("invoiceitems", invoicing_api.InvoiceItemCollection.as_view()),
    path("invoiceitems/<str:public_id>", invoicing_api.InvoiceItemDetail.as_view()),
    path("test_helpers/test_clocks", invoicing_api.TestClockCollection.as_view()),
    path("test_helpers/test_clocks/<str:public_id>", invoicing_api.TestClockDetail.as_view()),
    path(
        "test_helpers/test_clocks/<str:public_id>/advance",
        invoicing_api.TestClockAdvance.as_view(),
    ),
    path("billing_portal/sessions", portal_api.BillingPortalSessionCollection.as_view()),
    re_path(r"^.*$", UnrecognizedUrl.as_view()),
]

api_v2 = [
    path("billing/meter_event_session", metering_api.MeterEventSessionCreate.as_view()),
    path("billing/meter_event_stream", metering_api.MeterEventStream.as_view()),
    re_path(r"^.*$", UnrecognizedUrl.as_view()),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include(api_v1)),
    path("v2/", include(api_v2)),
    path("portal/", include("invoicing.portal_urls")),
]
