# Everyday tasks. On a fresh machine: `make run` or `make test`; both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint format bench system-deps services clean help

help:  ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)  ## Migrate, build issues/, serve on http://$(HOST):$(PORT) with the mail worker beside it (SQLite, mail to var/mail/)
	@# Links in mail and feeds point where this server listens, unless FEEDSVC_BASE_URL says otherwise.
	set -e; export FEEDSVC_BASE_URL="$${FEEDSVC_BASE_URL:-http://$(HOST):$(PORT)}"; \
	$(BIN)/feedsvc db upgrade; \
	$(BIN)/feedsvc build; \
	$(BIN)/feedsvc worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/feedsvc serve --host $(HOST) --port $(PORT)

test: $(STAMP) system-deps services  ## Install everything the tests need and run them all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)  ## ruff: lint rules and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff format and import order
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

bench: $(STAMP) system-deps services  ## Run the benchmarks under bench/ and print their figures
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

system-deps:  ## Debian packages the tests drive: chromium, newsboat, CJK fonts
	scripts/system-deps.sh

services:  ## Start PostgreSQL and Redis if they are down
	scripts/services.sh

clean:  ## Remove the virtualenv and generated files
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis test-artifacts
