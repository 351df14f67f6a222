# Hindsight — every set-up step lives here, so a fresh clone needs only `make run` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test bench proto lint clean test-fast

# Re-install only when the project's dependency list changed.
setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: setup
	$(PY) -m services.cli serve

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m 'not slow and not browser'

bench: setup
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) benchmarks/run.py

# Regenerate the Python package hindsight.v1 from protos/ (tests fail if it is stale).
proto: setup
	$(PY) -m services.protogen

lint: setup
	$(PY) -m services.protogen --check

clean:
	rm -rf $(VENV) var build *.egg-info
