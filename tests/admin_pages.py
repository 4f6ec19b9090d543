"""Helpers for tests of admin pages: staff with a role, requests at a fixed billing time, and the
page's text as a reader sees it."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.contrib.auth.models import Group, User

from billing_site import clock
from billing_site.roles import OPERATOR, VIEWER

JAN_15 = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)


@pytest.fixture
def staff(db):
    def make(role: str) -> User:
        user = User.objects.create_user(
            f"{role.split()[-1]}-{User.objects.count()}", password="pw", is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def operator(client, staff) -> User:
    user = staff(OPERATOR)
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client, staff) -> User:
    user = staff(VIEWER)
    client.force_login(user)
    return user


def get(client, url, data=None, *, at=JAN_15):
    with clock.frozen_at(at):
        return client.get(url, data)


def post(client, url, data, *, at=JAN_15):
    with clock.frozen_at(at):
        return client.post(url, data)


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(
        r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S
    )
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
