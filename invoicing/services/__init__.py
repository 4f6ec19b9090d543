"""Writes in invoicing, one module per entity; import from here."""

from invoicing.services.billing_run import billing_run
from invoicing.services.customers import customer_create, customer_delete, customer_update
from invoicing.services.invoice_items import (
    invoice_item_create,
    invoice_item_delete,
    invoice_item_update,
    pending_invoice_items_attach,
)
from invoicing.services.invoice_lines import (
    invoice_lines_add,
    invoice_lines_remove,
    invoice_lines_update,
)
from invoicing.services.invoices import (
    invoice_create,
    invoice_delete_draft,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_pay,
    invoice_transition,
    invoice_update,
    invoice_void,
)
from invoicing.services.portal_sessions import (
    portal_session_claim,
    portal_session_create,
    portal_sessions_revoke,
)
from invoicing.services.subscriptions import (
    ItemInput,
    subscription_cancel_now,
    subscription_close_period,
    subscription_create,
    subscription_update,
)
from invoicing.services.test_clocks import (
    test_clock_advance,
    test_clock_create,
    test_clock_delete,
    test_clock_start_advance,
)

__all__ = [
    "ItemInput",
    "billing_run",
    "customer_create",
    "customer_delete",
    "customer_update",
    "invoice_create",
    "invoice_delete_draft",
    "invoice_finalize",
    "invoice_item_create",
    "invoice_item_delete",
    "invoice_item_update",
    "invoice_lines_add",
    "invoice_lines_remove",
    "invoice_lines_update",
    "invoice_mark_uncollectible",
    "invoice_pay",
    "invoice_transition",
    "invoice_update",
    "invoice_void",
    "pending_invoice_items_attach",
    "portal_session_claim",
    "portal_session_create",
    "portal_sessions_revoke",
    "subscription_cancel_now",
    "subscription_close_period",
    "subscription_create",
    "subscription_update",
    "test_clock_advance",
    "test_clock_create",
    "test_clock_delete",
    "test_clock_start_advance",
]
