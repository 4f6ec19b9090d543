import functools

import django.core.serializers.json
import django.db.models.deletion
from django.db import migrations, models

import billing_site.ids


class Migration(migrations.Migration):
    """API keys (full and restricted), idempotency records, events and webhooks.

    0001-0003 squashed into one. A database that applied those sees this one as applied
    (`replaces`); their files are gone, so a database must have applied all or none of them.
    """

    replaces = [
        ('billing_site', '0001_api_keys_and_idempotency_keys'),
        ('billing_site', '0002_events_and_webhooks'),
        ('billing_site', '0003_restricted_api_keys'),
    ]

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name='ApiKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('secret_prefix', models.CharField(help_text='The first characters of the secret, to recognise it in lists.', max_length=16)),
                ('secret_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('permissions', models.JSONField(blank=True, editable=False, help_text="Restricted keys (rk_...) only: {resource: 'read' or 'write'}, a resource not listed is 'none' (billing_site/key_permissions.py). Empty for full-access keys (sk_...).", null=True)),
            ],
            options={
                'verbose_name': 'API key',
            },
        ),
        migrations.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=255)),
                ('request_method', models.CharField(max_length=10)),
                ('request_path', models.CharField(max_length=255)),
                ('request_fingerprint', models.CharField(help_text='SHA-256 of the canonical request parameters.', max_length=64)),
                ('response_status', models.PositiveSmallIntegerField(null=True)),
                ('response_body', models.JSONField(null=True)),
                ('created_at', models.DateTimeField()),
                ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='billing_site.apikey')),
            ],
            options={
                'indexes': [models.Index(fields=['created_at'], name='idempotency_key_created_idx')],
                'constraints': [models.UniqueConstraint(fields=('api_key', 'key'), name='idempotency_key_unique_per_api_key')],
            },
        ),
        migrations.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('we',), **{}), editable=False, help_text='Public id shown in the API (we_...).', max_length=27, unique=True, verbose_name='ID')),
                ('url', models.CharField(max_length=2048)),
                ('enabled_events', models.JSONField(default=list, help_text="Event types this endpoint receives, or ['*'] for all.")),
                ('description', models.CharField(blank=True, max_length=5000)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('api_version', models.CharField(blank=True, max_length=40, null=True)),
                ('status', models.CharField(choices=[('enabled', 'Enabled'), ('disabled', 'Disabled')], default='enabled', max_length=10)),
                ('secret', models.CharField(editable=False, max_length=100)),
                ('previous_secret', models.CharField(blank=True, editable=False, help_text='After a roll, the old secret still signs (a second v1=) until it expires.', max_length=100)),
                ('previous_secret_expires_at', models.DateTimeField(blank=True, null=True)),
                ('failing_since', models.DateTimeField(blank=True, help_text='The first failed attempt since the last successful one; cleared by a success.', null=True)),
                ('disabled_at', models.DateTimeField(blank=True, null=True)),
                ('disabled_reason', models.CharField(blank=True, choices=[('', '—'), ('manual', 'Disabled by staff or the API'), ('failing', 'Every delivery failed for too long')], default='', max_length=10)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
            ],
            options={
                'ordering': ['-pk'],
            },
        ),
        migrations.CreateModel(
            name='Event',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=functools.partial(billing_site.ids.generate_public_id, *('evt',), **{}), editable=False, help_text='Public id shown in the API (evt_...).', max_length=28, unique=True, verbose_name='ID')),
                ('type', models.CharField(help_text="Stripe's event name, e.g. invoice.paid.", max_length=100)),
                ('api_version', models.CharField(help_text='The shape `data` was rendered in.', max_length=40)),
                ('data', models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder, help_text="{'object': the object as the API serialized it then, and on *.updated events 'previous_attributes': the changed fields' former values}.")),
                ('object_id', models.CharField(blank=True, help_text='The public id of data.object (empty if it has none).', max_length=64)),
                ('request_id', models.CharField(blank=True, help_text='The API request that caused it, if any.', max_length=64, null=True)),
                ('request_idempotency_key', models.CharField(blank=True, max_length=255, null=True)),
                ('dedupe_key', models.CharField(blank=True, help_text='For events sent once per something (invoice.upcoming once per period): the unique constraint is the claim.', max_length=200, null=True, unique=True)),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['created_at'], name='event_created_idx'), models.Index(fields=['type', 'created_at'], name='event_type_created_idx'), models.Index(fields=['object_id'], name='event_object_idx')],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed (gave up)')], default='pending', max_length=10)),
                ('attempt_count', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, help_text="When a pending delivery is next due; a worker's claim moves it past the attempt's timeout, so a worker that dies leaves it due again. Empty once done.", null=True)),
                ('created_at', models.DateTimeField()),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='billing_site.event')),
                ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='billing_site.webhookendpoint')),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-pk'],
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='webhook_delivery_due_idx')],
                'constraints': [models.UniqueConstraint(fields=('event', 'endpoint'), name='webhook_delivery_one_per_event_endpoint')],
            },
        ),
        migrations.CreateModel(
            name='WebhookAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trigger', models.CharField(choices=[('automatic', 'Automatic'), ('resend', 'Resent by staff'), ('test', 'Test send')], default='automatic', max_length=10)),
                ('attempted_at', models.DateTimeField()),
                ('url', models.CharField(help_text='The URL posted to (it may change later).', max_length=2048)),
                ('succeeded', models.BooleanField(help_text='A 2xx answer within the timeout.')),
                ('response_status', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('latency_ms', models.PositiveIntegerField(blank=True, help_text='From connecting until the response was read.', null=True)),
                ('response_body', models.TextField(blank=True, help_text='The first bytes of the answer.')),
                ('response_truncated', models.BooleanField(default=False, help_text='The answer was longer than the read cap; the rest was dropped.')),
                ('error', models.CharField(blank=True, max_length=500)),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='billing_site.webhookdelivery')),
            ],
            options={
                'ordering': ['-pk'],
            },
        ),
    ]
