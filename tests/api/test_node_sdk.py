"""The official Node SDK runs against a live test server: the Alpaca AI flow, the v2 meter event
stream, expand, search and a subscription's lifecycle (tests/api/node/stripe_node_flow.cjs).

The SDK is installed with npm once into a cache directory (`NODE_STRIPE_CACHE`, by default under
the system's temporary directory) and reused by later runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The SDK version whose types tests/api/stripe_schemas.json was derived from.
STRIPE_NODE = "23.1.0"
SCRIPT = Path(__file__).parent / "node" / "stripe_node_flow.cjs"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the Node SDK can't run here")
    default = Path(tempfile.gettempdir()) / f"usage-billing-stripe-node-{STRIPE_NODE}"
    cache = Path(os.environ.get("NODE_STRIPE_CACHE", default))
    installed = cache / "node_modules" / "stripe" / "package.json"
    if not installed.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", f"stripe@{STRIPE_NODE}", "--no-audit", "--no-fund", "--silent"],
            cwd=cache,
            check=True,
            timeout=300,
            capture_output=True,
        )
    assert json.loads(installed.read_text())["version"] == STRIPE_NODE
    return cache / "node_modules"


def test_the_node_sdk_runs_the_alpaca_flow_expand_search_and_a_lifecycle(live_server, node_modules):
    from billing_site.services import api_key_create

    _, secret = api_key_create(name="node sdk")
    result = subprocess.run(
        ["node", str(SCRIPT)],
        env={**os.environ, "NODE_PATH": str(node_modules), "STRIPE_KEY": secret,
             "API_BASE": live_server.url},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["sdkVersion"] == STRIPE_NODE

    # Metered only, in flexible mode: nothing billed in advance, so no first invoice.
    assert out["alpaca"] == {
        "billingMode": "flexible",
        "latestInvoice": None,
        "customerName": "John Doe",
        "productName": "Alpaca AI tokens",
    }
    # 12,000 tokens through v1 and 345 through the v2 stream: 124 packages of 100 at 0.04 USD.
    assert out["preview"]["amountDue"] == 496
    assert out["preview"]["id"].startswith("upcoming_in_")

    customer_ids = set(out["expand"]["listedCustomers"])
    assert out["expand"]["latestInvoiceStatus"] == "open"
    assert out["expand"]["latestInvoiceTotal"] == 20000
    assert out["expand"]["invoiceCustomerEmail"] == "john@alpaca.test"
    assert len(customer_ids) == 1
    assert out["expandError"] == {
        "type": "StripeInvalidRequestError",
        "message": "This property cannot be expanded (nothing_here).",
    }
    assert out["search"] == {"object": "search_result", "ids": list(customer_ids)}

    assert out["lifecycle"] == {
        "endingCancelAt": True,
        "keptCancelAt": None,
        "canceledStatus": "canceled",
        "finalInvoiceTotal": 496,
        "finalInvoiceReason": "subscription_cancel",
    }
