#!/usr/bin/env bash
# Ingest benchmark: gunicorn on PostgreSQL, driven by wrk. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "[bench] installing wrk (Debian package)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || {
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk
    }
fi
if [ ! -x .venv/bin/gunicorn ]; then
    echo "[bench] gunicorn is missing from .venv: run 'make install' (it is a project dependency)" >&2
    exit 1
fi
exec .venv/bin/python bench/run_ingest.py "$@"
