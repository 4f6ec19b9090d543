// The official Node SDK (`stripe` on npm) against this server: the Alpaca AI flow of Stripe's
// usage-based billing docs, the v2 meter event stream, expand, search and a subscription's
// lifecycle without webhooks. Run by tests/api/test_node_sdk.py, which checks what it prints.
const Stripe = require("stripe");

const base = new URL(process.env.API_BASE);
const options = {
  host: base.hostname,
  port: base.port,
  protocol: base.protocol.replace(":", ""),
  maxNetworkRetries: 0,
};
const stripe = new Stripe(process.env.STRIPE_KEY, options);

async function main() {
  const out = { sdkVersion: Stripe.PACKAGE_VERSION, apiVersion: Stripe.API_VERSION };

  // Alpaca AI: a meter, a package price (per hundred tokens), a customer, a subscription.
  const meter = await stripe.billing.meters.create({
    display_name: "Alpaca AI tokens",
    event_name: "alpaca_ai_tokens",
    default_aggregation: { formula: "sum" },
    customer_mapping: { event_payload_key: "stripe_customer_id", type: "by_id" },
    value_settings: { event_payload_key: "value" },
  });
  const price = await stripe.prices.create({
    currency: "usd",
    unit_amount: 4,
    transform_quantity: { divide_by: 100, round: "up" },
    recurring: { interval: "month", usage_type: "metered", meter: meter.id },
    product_data: { name: "Alpaca AI tokens" },
  });
  const customer = await stripe.customers.create({ name: "John Doe", email: "john@alpaca.test" });
  const subscription = await stripe.subscriptions.create({
    customer: customer.id,
    items: [{ price: price.id }],
    expand: ["customer", "items.data.price.product"],
  });
  out.alpaca = {
    billingMode: subscription.billing_mode.type,
    latestInvoice: subscription.latest_invoice,
    customerName: subscription.customer.name,
    productName: subscription.items.data[0].price.product.name,
  };

  // Usage: one event through v1, one through the v2 stream with its session token.
  await stripe.billing.meterEvents.create({
    event_name: "alpaca_ai_tokens",
    payload: { stripe_customer_id: customer.id, value: "12000" },
    identifier: "node-1",
  });
  const session = await stripe.v2.billing.meterEventSession.create();
  const streaming = new Stripe(session.authentication_token, options);
  await streaming.v2.billing.meterEventStream.create({
    events: [
      {
        event_name: "alpaca_ai_tokens",
        payload: { stripe_customer_id: customer.id, value: "345" },
        identifier: "node-2",
      },
    ],
  });
  const preview = await stripe.invoices.createPreview({
    customer: customer.id,
    subscription: subscription.id,
  });
  out.preview = { id: preview.id, amountDue: preview.amount_due };

  // A monthly fee: the first invoice, expanded on create, retrieved with its customer.
  const fee = await stripe.prices.create({
    currency: "usd",
    unit_amount: 20000,
    recurring: { interval: "month" },
    product_data: { name: "Hypernian" },
  });
  const hypernian = await stripe.subscriptions.create({
    customer: customer.id,
    items: [{ price: fee.id }],
    expand: ["latest_invoice"],
  });
  const invoice = await stripe.invoices.retrieve(hypernian.latest_invoice.id, {
    expand: ["customer"],
  });
  const listed = await stripe.invoices.list({ customer: customer.id, expand: ["data.customer"] });
  out.expand = {
    latestInvoiceStatus: hypernian.latest_invoice.status,
    latestInvoiceTotal: hypernian.latest_invoice.total,
    invoiceCustomerEmail: invoice.customer.email,
    listedCustomers: listed.data.map((item) => item.customer.id),
  };
  try {
    await stripe.customers.retrieve(customer.id, { expand: ["nothing_here"] });
    out.expandError = null;
  } catch (error) {
    out.expandError = { type: error.type, message: error.message };
  }

  // Search, as the SDK pages it.
  const found = await stripe.customers.search({ query: 'email:"john@alpaca.test"' });
  out.search = { object: found.object, ids: found.data.map((item) => item.id) };

  // The lifecycle: cancel at period end and take it back; cancel now, billing usage so far.
  const ending = await stripe.subscriptions.update(hypernian.id, { cancel_at_period_end: true });
  const kept = await stripe.subscriptions.update(hypernian.id, { cancel_at_period_end: false });
  const canceled = await stripe.subscriptions.cancel(subscription.id, { invoice_now: true });
  const final = await stripe.subscriptions.retrieve(subscription.id, {
    expand: ["latest_invoice"],
  });
  out.lifecycle = {
    endingCancelAt: ending.cancel_at !== null,
    keptCancelAt: kept.cancel_at,
    canceledStatus: canceled.status,
    finalInvoiceTotal: final.latest_invoice.total,
    finalInvoiceReason: final.latest_invoice.billing_reason,
  };
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error.type || ""} ${error.message}\n${error.stack}\n`);
  process.exit(1);
});
