# Every target installs what it needs into .venv first, so a fresh clone needs only
# python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov

.PHONY: demo test lint validate bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

## demo: the zero-downtime rollout demonstration (the main job)
demo: $(VENV)/.installed
	$(BIN)/python -m rehearsal.demo

## test: lint, manifest validation and the whole test suite
test: lint validate
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## validate: render both overlays with kustomize and check them
validate: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(BIN)/python -m manifests

## bench: throughput, latency, start-up time and memory of the server
bench: $(VENV)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) out .pytest_cache .ruff_cache
