from django.db import migrations, models


class Migration(migrations.Migration):
    """Restricted keys (rk_...): per-resource permissions. Existing keys keep full access (null)."""

    dependencies = [
        ("billing_site", "0002_events_and_webhooks"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="permissions",
            field=models.JSONField(
                blank=True,
                editable=False,
                help_text="Restricted keys (rk_...) only: {resource: 'read' or 'write'}, a "
                "resource not listed is 'none' (billing_site/key_permissions.py). Empty for "
                "full-access keys (sk_...).",
                null=True,
            ),
        ),
    ]
