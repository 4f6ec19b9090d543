"""The ingest benchmark's server settings: production's, with one bench-only URL added
(`bench/ingest_urls.py`), so the trivial view it calibrates against runs under exactly the same
settings, middleware and gunicorn as the endpoints measured. Never used outside the benchmark."""

from billing_site.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.ingest_urls"
