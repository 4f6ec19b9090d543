import functools

import django.db.models.deletion
from django.db import migrations, models

import billing_site.ids


class Migration(migrations.Migration):
    """Customers, test clocks, subscriptions, invoices, customer events and portal sessions.

    0001-0005 squashed (see `replaces`). Fields later migrations added are the last columns of
    their tables, as they are in an upgraded database.
    """

    replaces = [
        ('invoicing', '0001_customers'),
        ('invoicing', '0002_subscriptions_invoices_test_clocks'),
        ('invoicing', '0003_test_clock_advance_started_at'),
        ('invoicing', '0004_customer_events_and_portal_sessions'),
        ('invoicing', '0005_invoice_event_actor_names_the_api_key'),
    ]

    initial = True

    dependencies = [
        ('catalog', '0001_products_prices_and_tiers'),
    ]

    operations = [
        migrations.CreateModel(
            name='TestClock',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('clock',), **{}), editable=False, help_text='Public id shown in the API (clock_...).', max_length=30, unique=True, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=300)),
                ('frozen_time', models.DateTimeField()),
                ('status', models.CharField(choices=[('ready', 'Ready'), ('advancing', 'Advancing'), ('internal_failure', 'Internal failure')], default='ready', max_length=20)),
                ('created_at', models.DateTimeField()),
                ('deleted_at', models.DateTimeField(blank=True, null=True)),
                ('advance_started_at', models.DateTimeField(blank=True, help_text='When the running (or last) advance started.', null=True)),
            ],
            options={
                'ordering': ['-pk'],
            },
        ),
        migrations.CreateModel(
            name='Customer',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('cus',), **{}), editable=False, help_text='Public id shown in the API (cus_...).', max_length=28, unique=True, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=256)),
                ('email', models.EmailField(blank=True, max_length=512)),
                ('description', models.TextField(blank=True)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('deleted_at', models.DateTimeField(blank=True, help_text='Set when deleted through the API or the admin.', null=True)),
                ('test_clock', models.ForeignKey(blank=True, help_text="Bill this customer at the clock's frozen time (for simulations).", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='customers', to='invoicing.testclock')),
            ],
            options={
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['email'], name='customer_email_idx')],
            },
        ),
        migrations.CreateModel(
            name='InvoiceNumberSequence',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('prefix', models.CharField(max_length=20, unique=True)),
                ('next_number', models.PositiveBigIntegerField(default=1)),
            ],
        ),
        migrations.CreateModel(
            name='Subscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('sub',), **{}), editable=False, help_text='Public id shown in the API (sub_...).', max_length=28, unique=True, verbose_name='ID')),
                ('status', models.CharField(choices=[('active', 'Active'), ('canceled', 'Canceled')], default='active', max_length=10)),
                ('currency', models.CharField(help_text='Upper-case ISO code shared by all items.', max_length=3)),
                ('interval', models.CharField(max_length=5)),
                ('interval_count', models.PositiveSmallIntegerField()),
                ('billing_cycle_anchor', models.DateTimeField(help_text='Period boundaries are computed from this by calendar arithmetic.')),
                ('current_period_start', models.DateTimeField()),
                ('current_period_end', models.DateTimeField(help_text='Exclusive.')),
                ('cancel_at_period_end', models.BooleanField(default=False)),
                ('canceled_at', models.DateTimeField(blank=True, null=True)),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('collection_method', models.CharField(choices=[('charge_automatically', 'Charge automatically'), ('send_invoice', 'Send invoice')], default='charge_automatically', max_length=20)),
                ('days_until_due', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='subscriptions', to='invoicing.customer')),
            ],
            options={
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['status', 'current_period_end'], name='subscription_due_idx')],
            },
        ),
        migrations.CreateModel(
            name='Invoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('in',), **{}), editable=False, help_text='Public id shown in the API (in_...).', max_length=27, unique=True, verbose_name='ID')),
                ('billing_period_key', models.CharField(blank=True, help_text="For subscription invoices: 'create' or the closed period's start. One invoice per key and subscription, so a period can't be billed twice.", max_length=40, null=True)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('open', 'Open'), ('paid', 'Paid'), ('void', 'Void'), ('uncollectible', 'Uncollectible')], default='draft', max_length=13)),
                ('billing_reason', models.CharField(choices=[('subscription_create', 'Subscription created'), ('subscription_cycle', 'Billing period ended'), ('subscription_cancel', 'Subscription canceled'), ('manual', 'Manual (one-off)')], max_length=20)),
                ('currency', models.CharField(max_length=3)),
                ('collection_method', models.CharField(choices=[('charge_automatically', 'Charge automatically'), ('send_invoice', 'Send invoice')], default='charge_automatically', max_length=20)),
                ('days_until_due', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('description', models.TextField(blank=True)),
                ('number', models.CharField(blank=True, max_length=40, null=True, unique=True)),
                ('period_start', models.DateTimeField(blank=True, null=True)),
                ('period_end', models.DateTimeField(blank=True, null=True)),
                ('subtotal', models.BigIntegerField(default=0)),
                ('total_credits', models.BigIntegerField(default=0, help_text='Billing credits applied.')),
                ('total', models.BigIntegerField(default=0)),
                ('amount_due', models.BigIntegerField(default=0)),
                ('amount_paid', models.BigIntegerField(default=0)),
                ('created_at', models.DateTimeField()),
                ('finalize_after', models.DateTimeField(blank=True, help_text='Drafts finalize automatically after this (grace).', null=True)),
                ('finalized_at', models.DateTimeField(blank=True, null=True)),
                ('due_date', models.DateTimeField(blank=True, null=True)),
                ('paid_at', models.DateTimeField(blank=True, null=True)),
                ('paid_out_of_band', models.BooleanField(default=False)),
                ('voided_at', models.DateTimeField(blank=True, null=True)),
                ('marked_uncollectible_at', models.DateTimeField(blank=True, null=True)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='invoicing.customer')),
                ('subscription', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='invoicing.subscription')),
            ],
            options={
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['status', 'finalize_after'], name='invoice_due_draft_idx'), models.Index(fields=['customer', 'status'], name='invoice_customer_status_idx')],
                'constraints': [models.UniqueConstraint(fields=('subscription', 'billing_period_key'), name='invoice_one_per_subscription_period')],
            },
        ),
        migrations.CreateModel(
            name='InvoiceEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('from_status', models.CharField(blank=True, max_length=13)),
                ('to_status', models.CharField(max_length=13)),
                ('actor', models.CharField(help_text="'api (key name)', 'billing run', or a user name.", max_length=150)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField()),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='invoicing.invoice')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='BillingRunFailure',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('step', models.CharField(max_length=40)),
                ('error', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='invoicing.subscription')),
            ],
            options={
                'ordering': ['-pk'],
            },
        ),
        migrations.CreateModel(
            name='SubscriptionItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('si',), **{}), editable=False, help_text='Public id shown in the API (si_...).', max_length=27, unique=True, verbose_name='ID')),
                ('quantity', models.PositiveIntegerField(default=1, help_text='Licensed prices only; metered items bill their usage.')),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('price', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.price')),
                ('subscription', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='invoicing.subscription')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='InvoiceLineItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('il',), **{}), editable=False, help_text='Public id shown in the API (il_...).', max_length=27, unique=True, verbose_name='ID')),
                ('item_public_id', models.CharField(blank=True, help_text='ii_... for one-off items.', max_length=40, null=True, unique=True)),
                ('kind', models.CharField(choices=[('licensed', 'Subscription fee (in advance)'), ('metered', 'Usage (in arrears)'), ('invoiceitem', 'One-off item')], max_length=12)),
                ('description', models.CharField(max_length=500)),
                ('quantity', models.DecimalField(decimal_places=12, help_text='Usage or seats (before transform).', max_digits=40)),
                ('amount', models.BigIntegerField(help_text='Minor units, rounded once, half up.')),
                ('unrounded_amount', models.DecimalField(decimal_places=12, help_text="Exact amount before the line's rounding.", max_digits=40)),
                ('tier_breakdown', models.JSONField(blank=True, default=list)),
                ('period_start', models.DateTimeField()),
                ('period_end', models.DateTimeField()),
                ('credits_applied', models.BigIntegerField(default=0)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('invoice', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='invoicing.invoice')),
                ('price', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.price')),
                ('subscription_item', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.subscriptionitem')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='CustomerEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('subscription_created', 'Subscription created'), ('subscription_canceled', 'Subscription canceled'), ('deleted', 'Customer deleted')], max_length=30)),
                ('actor', models.CharField(help_text="'api (key name)', a user, or a job.", max_length=150)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(help_text="When it took effect, as the changed row records it (a subscription's own time is its customer's billing time: a test clock's frozen time, if it has one).")),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='invoicing.customer')),
                ('subscription', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='invoicing.subscription')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='PortalSession',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('bps',), **{}), editable=False, help_text='Public id shown in the API (bps_...).', max_length=28, unique=True, verbose_name='ID')),
                ('created_by', models.CharField(help_text="'api (key name)' or a user.", max_length=150)),
                ('created_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField(help_text="The link can't be opened from then on.")),
                ('opened_at', models.DateTimeField(blank=True, help_text='When the link opened a browser session (once only).', null=True)),
                ('revoked_at', models.DateTimeField(blank=True, help_text='The link no longer opens, and the browser session it opened has ended.', null=True)),
                ('revoked_by', models.CharField(blank=True, max_length=150)),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='portal_sessions', to='invoicing.customer')),
            ],
            options={
                'ordering': ['-pk'],
            },
        ),
    ]
