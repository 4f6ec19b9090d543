from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from invoicing.demo import seed_catalog


class Command(BaseCommand):
    help = "Load the product docs' examples (Hypernian, Alpaca AI). Safe to run more than once."

    def add_arguments(self, parser):
        parser.add_argument(
            "--local-admin",
            action="store_true",
            help="Also create the superuser admin/admin (refused unless DEBUG is on).",
        )

    def handle(self, *args, local_admin: bool, **options):
        created = seed_catalog()
        self.stdout.write(f"Catalog: {len(created)} new price(s).")
        for price in created:
            self.stdout.write(f"  {price.public_id}  {price.product.name}: {price.nickname}")
        if local_admin:
            if not settings.DEBUG:
                raise CommandError("--local-admin only works with DEBUG on (local development).")
            user_model = get_user_model()
            if not user_model.objects.filter(username="admin").exists():
                user_model.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created the local superuser admin (password: admin).")
