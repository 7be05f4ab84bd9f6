# personify — run `make help` for the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASETS ?= $(abspath ../shared/datasets)
NAME ?=

.DEFAULT_GOAL := help

help: ## List the targets and what they do
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install personify with its dev tools

demo: $(STAMP) ## Build the seeded demo storefront and serve it on http://127.0.0.1:8000
	$(BIN)/personify demo

test: $(STAMP) ## Run the whole test suite (real datasets from DATASETS when present)
	PERSONIFY_DATASETS_DIR=$${PERSONIFY_DATASETS_DIR:-$(DATASETS)} $(BIN)/pytest

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP) ## Run benchmarks (all, or one with NAME=ingest); results in benchmarks/results
	PERSONIFY_DATASETS_DIR=$${PERSONIFY_DATASETS_DIR:-$(DATASETS)} $(BIN)/python benchmarks/run.py $(NAME)

clean: ## Remove the virtualenv and demo data
	rm -rf $(VENV) personify-data .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install demo test lint format bench clean
