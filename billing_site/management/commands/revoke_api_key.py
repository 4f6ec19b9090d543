from django.core.management.base import BaseCommand, CommandError

from billing_site.key_permissions import describe
from billing_site.selectors import api_keys_matching
from billing_site.services import api_key_revoke


def _label(key) -> str:
    return f"'{key.name}' ({key.secret_prefix}…, {describe(key.permissions).lower()})"


class Command(BaseCommand):
    help = (
        "Revoke an API key at once: every request made with it is then refused (401). "
        "Can't be undone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "key",
            help="The key's name, or the start of its secret as the admin lists it (rk_AbCdEfG).",
        )

    def handle(self, *args, key: str, **options):
        matches = api_keys_matching(reference=key)
        live = [match for match in matches if match.revoked_at is None]
        if not matches:
            raise CommandError(
                f"No API key is named '{key}' or has a secret starting with it. The admin's "
                "API keys page lists names and secret prefixes."
            )
        if not live:
            revoked = ", ".join(_label(match) for match in matches)
            raise CommandError(f"'{key}' matches only keys already revoked: {revoked}.")
        if len(live) > 1:
            listed = "; ".join(_label(match) for match in live)
            raise CommandError(
                f"'{key}' matches {len(live)} live keys: {listed}. Nothing was revoked; pass "
                "the secret prefix of the one you mean."
            )
        api_key_revoke(api_key=live[0])
        self.stdout.write(f"Revoked API key {_label(live[0])}.")
