# Delego — the two set-up commands are `make run` and `make test` (see README).
# Everything they need is installed by the targets below: uv (into .delego/tools
# from PyPI), the Python dependencies (from uv.lock), the Kafka jars (Maven
# Central) and FerretDB (Go module proxy), cached under ~/.cache/delego, and the
# AsyncAPI parser for the contract tests (npm, from tools/asyncapi-check's lock).

SHELL := /bin/bash
UV_VERSION := 0.13.9
PYTHON ?= python3
TOOLS := .delego/tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
LOCALINFRA := $(PYTHON) deploy/local/localinfra.py
ASYNCAPI_CHECK := tools/asyncapi-check
# headless browser of the offline /docs test: Debian's chromium, pinned (`apt-cache policy chromium`)
CHROMIUM_VERSION := 156.0.8078.114-1~deb12u1
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

SOAK_RUNS ?= 20

.PHONY: run soak test bench fault-run chaos fuzz lint typecheck unit integration e2e bootstrap deps tools browser go-tools infra-install infra-up infra-down infra-status node-deps clean

## run: start the platform on this machine (local Kafka + FerretDB unless DELEGO_* point elsewhere)
run: deps infra-install
	$(UV) run --frozen python deploy/local/run_platform.py

## soak: play `make run`'s story SOAK_RUNS times (default 20) on fresh data; print successes and failures
soak: deps infra-install
	$(UV) run --frozen python -m delego_cli.soak $(SOAK_RUNS)

## fault-run: flows under load while billing and matching are SIGKILLed and the broker restarts; counts lost/duplicated
fault-run: deps infra-install
	$(UV) run --frozen python benchmarks/fault_run.py $(FAULT_ARGS)

## chaos: 1,000 flows while each service is SIGKILLed, the broker restarts and the store is down 30 s; checks the books
chaos: deps infra-install
	$(UV) run --frozen python benchmarks/chaos.py $(CHAOS_ARGS)

## fuzz: 1,000 hostile records per consumed topic, then a valid flow; prints sent/parked/applied/crashes/lag
fuzz: deps infra-install
	$(UV) run --frozen python benchmarks/fuzz.py $(FUZZ_ARGS)

## test: install everything, then lint, type-check and run every test (unit, integration, end-to-end)
test: deps infra-install node-deps tools lint typecheck
	$(UV) run --frozen pytest -q

## bench: the real flow side by side with its limit, fresh and with history (not a test; see README)
bench: deps infra-install
	$(UV) run --frozen python benchmarks/flow_bench.py $(BENCH_ARGS)

bootstrap:
	@if [ ! -x "$(UV)" ]; then \
	  echo "[make] installing uv $(UV_VERSION) into $(TOOLS)"; \
	  $(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install -q "uv==$(UV_VERSION)"; \
	fi

deps: bootstrap
	$(UV) sync --all-packages --frozen

infra-install:
	$(LOCALINFRA) all install

## node-deps: the official AsyncAPI parser (tests/contract), `npm ci` from its lock; redone only when the lock changes
node-deps: $(ASYNCAPI_CHECK)/node_modules/.package-lock.json

$(ASYNCAPI_CHECK)/node_modules/.package-lock.json: $(ASYNCAPI_CHECK)/package.json $(ASYNCAPI_CHECK)/package-lock.json
	cd $(ASYNCAPI_CHECK) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## tools: what the `tools`-marked tests run: Chromium (Debian) and promtool + compose (Go modules)
tools: browser go-tools

browser:
	@if [ "$$(dpkg-query -W -f='$${db:Status-Abbrev}$${Version};' chromium chromium-driver 2>/dev/null)" \
	      != "ii $(CHROMIUM_VERSION);ii $(CHROMIUM_VERSION);" ]; then \
	  echo "[make] installing chromium $(CHROMIUM_VERSION) (Debian)"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends chromium=$(CHROMIUM_VERSION) chromium-driver=$(CHROMIUM_VERSION); \
	fi

go-tools:
	$(PYTHON) deploy/local/tools.py all install

lint: deps
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: deps
	$(UV) run --frozen mypy benchmarks shared/src cli/src services/catalog/src services/matching/src services/billing/src services/notifications/src

unit: deps
	$(UV) run --frozen pytest -q -m "not integration and not e2e and not tools"

integration: deps infra-install
	$(UV) run --frozen pytest -q -m integration

e2e: deps infra-install
	$(UV) run --frozen pytest -q -m e2e

infra-up: infra-install
	$(LOCALINFRA) all start

infra-down:
	$(LOCALINFRA) all stop

infra-status:
	$(LOCALINFRA) all status

clean: infra-down
	rm -rf .delego/local .delego/test
