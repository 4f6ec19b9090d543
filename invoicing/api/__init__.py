"""invoicing's `/v1` endpoints, one module per resource; `billing_site/urls.py` wires them.

- `customers.py`: `/v1/customers`
- `subscriptions.py`: `/v1/subscriptions`, `/v1/subscription_items`
- `invoices.py`: `/v1/invoices`, its lines and its actions (finalize, pay, void, uncollectible)
- `invoice_items.py`: `/v1/invoiceitems`
- `previews.py`: `/v1/invoices/create_preview` (the upcoming invoice)
- `test_clocks.py`: `/v1/test_helpers/test_clocks`
- `serializers.py`: the JSON of every object above, and the querysets that feed it (invoices,
  lines, invoice items and the preview in `invoice_serializers.py`), and what `expand[]` reaches
"""
