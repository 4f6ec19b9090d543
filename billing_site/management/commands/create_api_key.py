from django.core.management.base import BaseCommand, CommandError

from billing_site.key_permissions import PRESETS, RESOURCES, describe, parse_restriction
from billing_site.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create a secret API key: full access (sk_...), or restricted (rk_...) with --restricted. "
        "The key is printed once, as the last line; store it now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'production'.")
        parser.add_argument(
            "--restricted",
            metavar="PERMISSIONS",
            help=(
                f"Make a restricted key: a preset ({', '.join(PRESETS)}) or resource=permission "
                "pairs, e.g. customers=write,invoices=read (permissions: none, read, write; "
                f"write includes read). Resources: {', '.join(RESOURCES)}."
            ),
        )

    def handle(self, *args, name: str, restricted: str | None, **options):
        try:
            permissions = None if restricted is None else parse_restriction(restricted)
            api_key, secret = api_key_create(name=name, permissions=permissions)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Created API key '{api_key.name}' ({describe(api_key.permissions).lower()}). "
            "It is shown only once: store it now."
        )
        self.stdout.write(secret)
