import functools

import django.db.models.deletion
from django.db import migrations, models

import billing_site.ids


class Migration(migrations.Migration):
    """Credit grants, their ledger and their audit events (0001-0002 squashed; see `replaces`)."""

    replaces = [
        ('credits', '0001_credit_grants_and_ledger'),
        ('credits', '0002_credit_grant_events'),
    ]

    initial = True

    dependencies = [
        ('catalog', '0001_products_prices_and_tiers'),
        ('invoicing', '0001_squashed_0005_customers_subscriptions_invoices_and_portal'),
    ]

    operations = [
        migrations.CreateModel(
            name='CreditGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('credgr',), **{}), editable=False, help_text='Public id shown in the API (credgr_...).', max_length=31, unique=True, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=100)),
                ('currency', models.CharField(help_text='Upper-case ISO code.', max_length=3)),
                ('amount', models.BigIntegerField(help_text='Granted amount in minor units (cents).')),
                ('category', models.CharField(choices=[('paid', 'Paid'), ('promotional', 'Promotional')], max_length=12)),
                ('applies_to_all_metered', models.BooleanField(default=True, help_text='Scope: every metered price, or only `prices`.')),
                ('priority', models.PositiveSmallIntegerField(default=50, help_text='0-100; lower numbers are spent first.')),
                ('effective_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('expired_at', models.DateTimeField(blank=True, help_text='When the remaining balance was debited as expired.', null=True)),
                ('voided_at', models.DateTimeField(blank=True, null=True)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_grants', to='invoicing.customer')),
                ('prices', models.ManyToManyField(blank=True, related_name='+', to='catalog.price')),
                ('source_invoice', models.ForeignKey(blank=True, help_text='The paid prepayment invoice this grant was made from, if any.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoice')),
            ],
            options={
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['customer', 'currency'], name='credit_grant_customer_idx'), models.Index(fields=['expires_at'], name='credit_grant_expiry_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='credit_grant_positive'), models.CheckConstraint(condition=models.Q(('priority__lte', 100)), name='credit_grant_priority_range')],
            },
        ),
        migrations.CreateModel(
            name='CreditBalanceTransaction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('cbtxn',), **{}), editable=False, help_text='Public id shown in the API (cbtxn_...).', max_length=30, unique=True, verbose_name='ID')),
                ('type', models.CharField(choices=[('credit', 'Credit'), ('debit', 'Debit')], max_length=6)),
                ('reason', models.CharField(choices=[('credits_granted', 'Credits granted'), ('credits_application_invoice_voided', 'Reinstated: invoice voided'), ('credits_applied', 'Applied to an invoice'), ('credits_expired', 'Expired'), ('credits_voided', 'Grant voided')], max_length=40)),
                ('amount', models.BigIntegerField(help_text='Always positive; `type` says which way it moves.')),
                ('effective_at', models.DateTimeField()),
                ('created_at', models.DateTimeField()),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.customer')),
                ('invoice', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoice')),
                ('invoice_line', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='invoicing.invoicelineitem')),
                ('grant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transactions', to='credits.creditgrant')),
            ],
            options={
                'ordering': ['-pk'],
                'constraints': [models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='credit_transaction_positive')],
            },
        ),
        migrations.CreateModel(
            name='CreditGrantEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('created', 'Created'), ('updated', 'Updated'), ('expired', 'Expired'), ('voided', 'Voided')], max_length=10)),
                ('actor', models.CharField(help_text="'api (key name)', a user, or a job.", max_length=150)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField()),
                ('grant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='credits.creditgrant')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
    ]
