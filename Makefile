# The two commands (README): `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Pinned versions of every dependency, so a fresh clone installs what CI tested.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test lint format bench bench-peers clean
# Extra arguments for the benchmark, e.g. BENCH_ARGS="--quick" or "--only S1,S2".
BENCH_ARGS ?=

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.dev-deps: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.run-deps

## run: install, migrate, collect static files and serve on http://$(HOST):$(PORT)
run: $(VENV)/.run-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/uvicorn chatapp.asgi:application --host $(HOST) --port $(PORT) \
		--timeout-graceful-shutdown 10 --no-access-log

## test: install dev tools, lint, check types, check migrations, run the whole suite (SQLite + in-memory
## layer; then again on PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set)
test: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py makemigrations --check --dry-run
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest
	@if [ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ]; then \
		echo "== again on PostgreSQL + Redis =="; \
		$(BIN)/pytest; \
	fi

$(VENV)/.bench-deps: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev,bench]'
	touch $@ $(VENV)/.dev-deps $(VENV)/.run-deps

## bench: the benchmark harness (bench/README.md): writes bench/results/<date>.{json,md,png}
bench: $(VENV)/.bench-deps
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Peers to compare with (bench/peers.py), e.g. PEERS=litellm,open-webui, or none for this app
# alone; each is installed once into bench/.peers/<name>/ (not a project dependency).
PEERS ?= litellm
PEERS_ARGS ?= --peers $(PEERS)

## bench-peers: this app beside LiteLLM / Open WebUI on the same fake upstream:
## writes bench/results/peers-<date>.{json,md}
bench-peers: $(VENV)/.bench-deps
	$(BIN)/python -m bench.peers $(PEERS_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
