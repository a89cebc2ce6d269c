# The two commands a person needs: `make run` and `make test`. Everything else is for the team.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench bench-checkout bench-mixed bench-storefront bench-scaling bench-request-log clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

## run: set up, migrate, seed the demo shop if the catalogue is empty, serve on http://127.0.0.1:8000 with the
## background worker (e-mail, reservation expiry) beside the web workers; Ctrl-C or SIGTERM stops both
run: $(VENV)/.installed
	$(BIN)/shop migrate
	$(BIN)/shop seed --demo
	$(BIN)/shop serve

## test: set up with the dev extras (and Debian's Chromium and nginx, installed if missing) and run the whole suite
test: $(VENV)/.installed-dev
	./scripts/ensure-test-tools
	$(BIN)/python -m pytest

## lint: ruff, mypy (strict on domain and services), import-linter
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	./scripts/lint-deploy

## bench: catalogue benchmark (needs wrk, PostgreSQL on 127.0.0.1); e.g. make bench BENCH_ARGS=--reuse
bench: $(VENV)/.installed
	$(BIN)/python -m bench.catalog $(BENCH_ARGS)

## bench-checkout: checkout benchmark (needs PostgreSQL on 127.0.0.1); e.g. BENCH_ARGS=--duration=30
bench-checkout: $(VENV)/.installed
	$(BIN)/python -m bench.checkout $(BENCH_ARGS)

## bench-mixed: catalogue reads beside a checkout stream, and cache staleness (needs wrk); e.g. BENCH_ARGS="--database mariadb"
bench-mixed: $(VENV)/.installed
	$(BIN)/python -m bench.mixed $(BENCH_ARGS)

## bench-request-log: request-log overhead, log off vs on, cache off and on (needs wrk, PostgreSQL on 127.0.0.1)
bench-request-log: $(VENV)/.installed
	$(BIN)/python -m bench.request_log $(BENCH_ARGS)

## bench-storefront: product page render time (needs wrk, PostgreSQL on 127.0.0.1); e.g. BENCH_ARGS=--reuse
bench-storefront: $(VENV)/.installed
	$(BIN)/python -m bench.storefront $(BENCH_ARGS)

## bench-scaling: catalogue list with 1 vs 2 workers, and pools via nginx vs one gunicorn (needs wrk, nginx, PostgreSQL)
bench-scaling: $(VENV)/.installed
	$(BIN)/python -m bench.scaling $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
