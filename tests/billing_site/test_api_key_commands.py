"""`manage.py create_api_key --restricted ...` and `manage.py revoke_api_key` (issue 10, row 10)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from billing_site.key_permissions import PRESETS
from billing_site.models import ApiKey
from billing_site.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def create(capsys, *args: str) -> tuple[str, str]:
    call_command("create_api_key", *args)
    output = capsys.readouterr()
    return output.out.strip().splitlines()[-1], output.err


@pytest.mark.parametrize("preset", ["read_only", "ingest_only"])
def test_create_a_restricted_key_from_a_preset(capsys, preset):
    secret, notice = create(capsys, "--name", "worker", "--restricted", preset)

    assert secret.startswith("rk_")
    key = api_key_authenticate(secret=secret)
    assert key.permissions == PRESETS[preset]
    assert preset.replace("_", " ") in notice  # "read only" / "ingest only"


def test_create_a_restricted_key_with_per_resource_permissions(capsys):
    secret, notice = create(
        capsys, "--name", "crm sync", "--restricted", "customers=write, invoices=read,products=none"
    )

    key = api_key_authenticate(secret=secret)
    assert secret.startswith("rk_")
    assert key.permissions == {"customers": "write", "invoices": "read"}
    assert "customers: write, invoices: read" in notice


def test_without_restricted_the_key_still_has_full_access(capsys):
    secret, notice = create(capsys, "--name", "production")

    assert secret.startswith("sk_")
    assert api_key_authenticate(secret=secret).permissions is None
    assert "full access" in notice


@pytest.mark.parametrize(
    ("restriction", "message"),
    [
        ("everything", "neither a preset (read_only, ingest_only) nor a list"),
        ("customer=read", "Unknown resource 'customer'. Resources: customers, products"),
        ("customers=admin", "Unknown permission 'admin' for customers: use none, read or write"),
        ("customers=read,customers=write", "customers is given twice"),
        ("customers=read,invoices", "'invoices' is not a resource=permission pair"),
        ("customers=none", "needs read or write on at least one resource"),
    ],
)
def test_a_bad_restriction_is_refused_clearly_and_creates_nothing(restriction, message):
    with pytest.raises(CommandError) as refused:
        call_command("create_api_key", "--name", "worker", "--restricted", restriction)

    assert message in str(refused.value)
    assert not ApiKey.objects.exists()


def revoke(capsys, reference: str) -> str:
    call_command("revoke_api_key", reference)
    return capsys.readouterr().out


def test_revoke_a_key_by_name(capsys):
    key, secret = api_key_create(name="old laptop", permissions=PRESETS["read_only"])
    other, other_secret = api_key_create(name="production")

    output = revoke(capsys, "old laptop")

    assert f"Revoked API key 'old laptop' ({key.secret_prefix}…, read only)" in output
    assert api_key_authenticate(secret=secret) is None
    assert api_key_authenticate(secret=other_secret) == other


@pytest.mark.parametrize("given", ["prefix", "shorter start", "whole secret"])
def test_revoke_a_key_by_the_start_of_its_secret(capsys, given):
    key, secret = api_key_create(name="ingest", permissions=PRESETS["ingest_only"])
    api_key_create(name="production")
    reference = {"prefix": key.secret_prefix, "shorter start": secret[:6], "whole secret": secret}

    revoke(capsys, reference[given])

    assert api_key_authenticate(secret=secret) is None
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_revoke_with_no_match_says_so():
    api_key_create(name="production")

    with pytest.raises(CommandError, match="No API key is named 'staging' or has a secret"):
        call_command("revoke_api_key", "staging")

    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


def test_revoke_with_several_matches_lists_them_and_revokes_nothing():
    first, _ = api_key_create(name="worker")
    second, _ = api_key_create(name="worker", permissions=PRESETS["ingest_only"])

    with pytest.raises(CommandError) as refused:
        call_command("revoke_api_key", "worker")

    message = str(refused.value)
    assert "'worker' matches 2 live keys" in message
    assert f"{first.secret_prefix}…, full access" in message
    assert f"{second.secret_prefix}…, ingest only" in message
    assert "Nothing was revoked" in message
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()


def test_revoke_a_key_already_revoked_says_so():
    key, _ = api_key_create(name="gone")
    api_key_revoke(api_key=key)

    with pytest.raises(CommandError, match="'gone' matches only keys already revoked"):
        call_command("revoke_api_key", "gone")


def test_a_revoked_key_does_not_make_its_name_ambiguous(capsys):
    old, _ = api_key_create(name="worker")
    api_key_revoke(api_key=old)
    _, secret = api_key_create(name="worker")

    revoke(capsys, "worker")

    assert api_key_authenticate(secret=secret) is None
