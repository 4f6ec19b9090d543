"""Helpers for tests of admin (and portal) pages: staff with a role, requests at a fixed billing
time, and the page's text as a reader sees it."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Group, User

from billing_site import clock
from billing_site.roles import OPERATOR, VIEWER
from tests.helpers import JAN_15


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


# En dash, minus sign and multiplication sign, as pages and PDFs print them, read as ASCII:
# `text.translate(TYPOGRAPHY)`.
TYPOGRAPHY = str.maketrans({"\u2013": "-", "\u2212": "-", "\u00d7": "x"})


def text_of(markup: str) -> str:
    """Markup as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def text(response) -> str:
    """The page as a reader sees it (scripts and styles left out)."""
    body = re.sub(
        r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S
    )
    return text_of(body)


def element(response, element_id: str) -> str:
    """The markup of one element of the page, by its id."""
    body = response.content.decode()
    match = re.search(rf'<(\w+)[^>]* id="{element_id}".*?</\1>', body, re.S)
    assert match, f"no #{element_id} on the page"
    return match.group(0)


def section(response, element_id: str) -> str:
    """The text of one element of the page, by its id."""
    return text_of(element(response, element_id))
