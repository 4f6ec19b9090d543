from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from invoicing.demo import DEMO_CUSTOMERS, seed_billing_history, seed_catalog


class Command(BaseCommand):
    help = (
        "Load the product docs' examples: the Hypernian and Alpaca AI catalog, demo customers "
        "and their token usage. Safe to run more than once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--events-per-customer",
            type=int,
            default=2000,
            help="Meter events per demo customer, spread over three months and this one.",
        )
        parser.add_argument(
            "--local-admin",
            action="store_true",
            help="Also create the superuser admin/admin (refused unless DEBUG is on).",
        )

    def handle(self, *args, events_per_customer: int, local_admin: bool, **options):
        if events_per_customer < 0:
            raise CommandError("--events-per-customer must be 0 or more.")
        created = seed_catalog()
        self.stdout.write(f"Catalog: {len(created)} new price(s).")
        for price in created:
            self.stdout.write(f"  {price.public_id}  {price.product.name}: {price.nickname}")
        total = events_per_customer * len(DEMO_CUSTOMERS)
        with tqdm(total=total, unit="event", desc="Usage", disable=total < 1000) as bar:
            seeded = seed_billing_history(
                events_per_customer=events_per_customer, progress=bar.update
            )
        self.stdout.write(
            f"Billing history: {seeded.subscriptions} new subscription(s), {seeded.invoices} "
            f"invoice(s) finalized, {seeded.events} new meter event(s)."
        )
        if local_admin:
            if not settings.DEBUG:
                raise CommandError("--local-admin only works with DEBUG on (local development).")
            user_model = get_user_model()
            if not user_model.objects.filter(username="admin").exists():
                user_model.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created the local superuser admin (password: admin).")
