"""Error codes of invoicing's rules (Stripe's names where Stripe has one)."""

from __future__ import annotations


class ErrorCode:
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    INVOICE_NOT_EDITABLE = "invoice_not_editable"
    INVOICE_UNEXPECTED_STATUS = "invoice_unexpected_status"
    INVOICE_NO_LINE_ITEMS = "invoice_no_line_items"
    INVOICE_UPCOMING_NONE = "invoice_upcoming_none"
    PRORATION_NOT_SUPPORTED = "proration_not_supported"
    TEST_CLOCK_ADVANCING = "test_clock_advancing"
