# Everything creates and uses its own virtualenv in .venv (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test lint browser format bench bench-ingest bench-billing bench-stores clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,clickhouse]'
	touch $(STAMP)

install: $(STAMP)

## Run the app on the embedded SQLite default with demo data.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --local-admin
	@echo ""
	@echo "  Admin:  http://$(HOST):$(PORT)/admin/   (login: admin / admin)"
	@echo "  API:    http://$(HOST):$(PORT)/v1/      (key: $(BIN)/python manage.py create_api_key --name local)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## The production server (gthread workers; see README "Running in production"). Needs the
## production environment: SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL (and CACHE_URL for Redis).
serve: install
	DJANGO_SETTINGS_MODULE=billing_site.settings.production \
		$(BIN)/gunicorn -c billing_site/gunicorn.conf.py

## Lint, then the whole test suite (DATABASE_URL picks the database; SQLite by default).
## Browser tests drive Debian's chromium; it is installed here when missing and we are root.
test: install lint browser
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest

browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			(apt-get install -y -qq chromium >/dev/null 2>&1 || \
			 (apt-get update -qq && apt-get install -y -qq chromium)); \
		else \
			echo "chromium is missing: run 'sudo apt-get install chromium' (browser tests skip without it)"; \
		fi; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Benchmarks (PostgreSQL on 127.0.0.1:5432; each drops and recreates its own database).
bench: bench-ingest bench-billing bench-stores

bench-ingest: install
	bash bench/ingest.sh

bench-billing: install
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/billing_bench_cycle} \
		$(BIN)/python bench/billing.py

## PostgreSQL next to ClickHouse (chdb) on the same events: usage reads and ingest (bench/event_stores.py).
bench-stores: install
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/billing_bench_stores} \
		$(BIN)/python bench/event_stores.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache .hypothesis
