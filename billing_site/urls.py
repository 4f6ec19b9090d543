from django.contrib import admin
from django.urls import include, path, re_path

from billing_site.api.base import UnrecognizedUrl
from catalog import api as catalog_api
from invoicing import api as invoicing_api
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
]
