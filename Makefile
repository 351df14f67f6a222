# Hindsight — every set-up step lives here, so a fresh clone needs only `make run` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CLIENT_DIR := examples/clients/node
CLIENT_STAMP := $(CLIENT_DIR)/node_modules/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export npm_config_fund := false
export npm_config_audit := false
export npm_config_update_notifier := false

.PHONY: setup run test test-fast bench proto lint clean browser node-client

# Python (venv) and the browser assets the gateway serves offline; each step re-runs only
# when its manifest changed.
setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# swagger-ui-dist (/docs), lightweight-charts (dashboard), buf (proto lint). `npm install`, not
# `npm ci`: the registry here lists only some platforms of buf's optional binaries, which
# `npm ci` rejects as an out-of-sync lock. --ignore-scripts:
# nothing here needs an install script, and one dependency's is telemetry.
$(NODE_STAMP): package.json package-lock.json
	npm install --ignore-scripts --no-save --no-audit --no-fund
	@touch $(NODE_STAMP)

$(CLIENT_STAMP): $(CLIENT_DIR)/package.json $(CLIENT_DIR)/package-lock.json
	cd $(CLIENT_DIR) && npm install --ignore-scripts --no-save --no-audit --no-fund
	@touch $(CLIENT_STAMP)

node-client: $(CLIENT_STAMP)

# Debian's Chromium for the real-browser tests (Playwright drives it; it downloads nothing).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: setup
	$(PY) -m services.cli serve

test: setup node-client browser
	$(PY) -m pytest -q --durations=20

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
	bash scripts/lint-protos.sh

clean:
	rm -rf $(VENV) node_modules $(CLIENT_DIR)/node_modules var build bench-out *.egg-info
