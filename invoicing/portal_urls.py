"""The customer portal, mounted at /portal/. No URL here carries a customer id."""

from __future__ import annotations

from django.urls import path

from invoicing import portal_views

app_name = "portal"

urlpatterns = [
    path("", portal_views.overview, name="overview"),
    path("enter/<str:token>/", portal_views.enter, name="enter"),
    path("sign-out/", portal_views.sign_out, name="sign_out"),
    path("invoices/", portal_views.invoice_list, name="invoices"),
    path("invoices/<str:public_id>/", portal_views.invoice_detail, name="invoice"),
    path("invoices/<str:public_id>/pdf/", portal_views.invoice_pdf, name="invoice_pdf"),
]
