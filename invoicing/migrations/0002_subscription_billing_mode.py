"""Subscriptions report Stripe's `billing_mode`.

Existing subscriptions were created the classic way (a first invoice even for metered-only
ones), so they are `classic`; new ones default to `flexible`, as the current API version does.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0001_squashed_0005_customers_subscriptions_invoices_and_portal"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="billing_mode",
            field=models.CharField(
                choices=[("classic", "Classic"), ("flexible", "Flexible")],
                default="classic",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="billing_mode",
            field=models.CharField(
                choices=[("classic", "Classic"), ("flexible", "Flexible")],
                default="flexible",
                help_text="Stripe's billing_mode: 'flexible' (the current API's default) sends "
                "no first invoice when there is nothing to bill in advance (metered items "
                "only); 'classic' always sends one, even for 0.",
                max_length=8,
            ),
        ),
    ]
