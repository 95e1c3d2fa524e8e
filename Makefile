# Every target installs what it needs first, from the hash-pinned locks, so a fresh clone needs
# only python3 (>= 3.11, with venv) and make. The locks are compiled from pyproject.toml by
# `make lock`; tests/test_locks.py fails when they disagree with it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
CHECKOV_VENV := .venv-checkov
RELEASE_VENV := .venv-release
# One Python for the tests, the tools and the image (Dockerfile BASE_IMAGE).
PYTHON_VERSION := 3.11
LOCK := $(UV) pip compile --quiet --universal --generate-hashes --python-version $(PYTHON_VERSION) \
	--custom-compile-command "make lock"
# uv itself comes from the dev lock: its block of requirements-dev.txt (the pin and its hashes)
# goes to pip in hash-checking mode; uv then installs everything else.
UV_LOCK_BLOCK := awk '/^uv==/ { take = 1 } take && !/^ *\#/ { print } take && !/\\$$/ { exit }'

# pytest-xdist workers of `make test` (docs/testing.md, "Parallel tests"); 0: one process.
TEST_WORKERS ?= 6

.PHONY: demo test lint validate bench lock release-tools clean haproxy nginx

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(UV_LOCK_BLOCK) requirements-dev.txt >$(VENV)/uv-lock.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r $(VENV)/uv-lock.txt
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode \
		requirements-dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt $(VENV)/.installed
	rm -rf $(CHECKOV_VENV)
	$(UV) venv --quiet --python $(BIN)/python $(CHECKOV_VENV)
	$(UV) pip sync --quiet --python $(CHECKOV_VENV)/bin/python --require-hashes \
		requirements-checkov.txt
	touch $@

## release-tools: only what `zdt bump/push/show` need, for the release workflow's jobs
release-tools: $(RELEASE_VENV)/.installed
$(RELEASE_VENV)/.installed: requirements-release.txt pyproject.toml
	rm -rf $(RELEASE_VENV)
	$(PYTHON) -m venv $(RELEASE_VENV)
	$(RELEASE_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements-release.txt
	$(RELEASE_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation --no-index -e .
	touch $@

# The rehearsal's stand-in for an AWS ALB is HAProxy from the distribution's packages, and the
# nginx example rehearses Debian's nginx: each installed with apt-get when missing (as root, or
# with passwordless sudo), else a one-line error.
haproxy:
	@sh tools/install-debian-package.sh haproxy haproxy "the rehearsal's ALB stand-in"

nginx:
	@sh tools/install-debian-package.sh nginx-light nginx "a server the examples rehearse"

## demo: the zero-downtime rollout rehearsal (the main job)
demo: $(VENV)/.installed haproxy
	$(BIN)/zdt demo

## test: lint, manifest validation and the whole test suite
# The suite starts some thousand Python processes (servers, the CLI, stand-ins): the
# dependencies are compiled once at install (--compile-bytecode above), and this project's own
# modules once here, whatever PYTHONDONTWRITEBYTECODE says, instead of in every process again.
test: lint validate haproxy nginx
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## validate: render every overlay with kustomize and check it
validate: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(BIN)/zdt validate

## bench: throughput, latency, start-up time and memory of the server
bench: $(VENV)/.installed
	$(BIN)/zdt bench

## lock: compile the hash-pinned locks from pyproject.toml (needs the package index)
lock: $(VENV)/.installed
	$(LOCK) pyproject.toml -o requirements.txt
	$(LOCK) pyproject.toml --group dev --constraint requirements.txt -o requirements-dev.txt
	$(LOCK) --group pyproject.toml:checkov -o requirements-checkov.txt
	$(LOCK) --group pyproject.toml:release -o requirements-release.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(RELEASE_VENV) out .pytest_cache .ruff_cache
