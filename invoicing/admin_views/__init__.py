"""The custom pages of the invoicing admin, one module per resource, so that admin.py reads
like a spec and each page is found by its name:

* `customers`: the customer page's billing sections and history, what the delete
  confirmation says (the subscriptions that end at once, "Bill usage so far") and the confirmed
  delete, and "Portal link" (make a one-time link, list recent ones, revoke them).
* `subscriptions`: "Add subscription" (customer, prices, a dry-run preview of the first
  invoice, a POST-only confirm), the subscription page's sections, and "Cancel now".
* `invoices`: the invoice page's sections, and "Grant credits" from a paid one-off invoice (the
  credits admin's grant form, prefilled from the invoice).
* `invoice_transitions`: finalize, mark paid, void and mark uncollectible (a confirmation page,
  then the service per invoice).
* `invoice_create`: "Create invoice" (customer and currency, line items, review, then "Create
  draft" or "Create and send" in one transaction).
* `late_usage`: usage that arrived after its invoice was final.
* `test_clocks`: the test clock page, and "Advance".
* `dashboard`: the admin index's dashboard (registered with `billing_site.admin`).

Each view takes the ModelAdmin it belongs to, checks permissions itself, writes only through
`invoicing.services`, and draws invoices and lines with `invoicing.presenters`. Previews are
dry runs (`billing_site.admin_kit.dry_run`): the real service runs inside a transaction that
is always rolled back, so a preview shows exactly what the confirm step will write and refuses
exactly what it would refuse. While a preview that finalizes an invoice runs, it holds the
invoice number counter's row lock, as a real finalization would; it is released at the
rollback and no number is used up.
"""
