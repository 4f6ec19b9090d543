from django.core.management.base import BaseCommand, CommandError

from billing_site.services import api_key_create


class Command(BaseCommand):
    help = "Create a secret API key. The key is printed once, as the last line; store it now."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'production'.")

    def handle(self, *args, name: str, **options):
        try:
            api_key, secret = api_key_create(name=name)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Created API key '{api_key.name}'. It is shown only once: store it now.")
        self.stdout.write(secret)
