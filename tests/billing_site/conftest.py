"""Fixtures for the event and webhook tests."""

from __future__ import annotations

import pytest

from tests.billing_site.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (tests/billing_site/webhook_receiver.py)."""
    started = Receiver().start()
    yield started
    started.stop()
