# edgeplane developer entry points. Quickstart: `make run`, `make test`.
#
# First use bootstraps everything from a plain Python >= 3.11:
#   .tools/  a venv holding the pinned uv   (python3 -m venv .tools && .tools/bin/pip install uv==X)
#   .venv/   the workspace environment      (.tools/bin/uv sync --all-packages), re-synced only when a
#            pyproject.toml is newer than .venv/.edgeplane-synced

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeplane-synced
PYPROJECTS := $(wildcard pyproject.toml */pyproject.toml */*/pyproject.toml)
# Facts about the workspace members, read from the pyproject files (evaluated when a recipe runs, with the
# bootstrapped interpreter, which is >= 3.11 and so has tomllib).
WORKSPACE = $(TOOLS)/bin/python scripts/workspace.py
# mypy checks every member's import package plus scripts/.
MYPY_TARGETS = $(shell $(WORKSPACE) packages) scripts

PYTEST_TIMEOUT ?= 120
PYTEST_ARGS ?=
ARGS ?=

# uv must use the interpreter we found, never download one.
export UV_PYTHON_DOWNLOADS := never
# Trust the machine's certificate store (corporate/TLS-inspecting proxies add their root there).
export UV_SYSTEM_CERTS := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: help bootstrap run test lint format docs bench taf clean clean-data
.PHONY: compose-smoke compose-up compose-down

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

bootstrap: $(STAMP) ## create .tools (uv) and .venv (all workspace packages + dev tools)

# Python >= 3.11: $(PYTHON) if given, else python3, python3.11, python3.12, python3.13 (first that runs).
$(UV):
	@py="$${PYTHON:-}"; \
	if [ -z "$$py" ]; then \
	  for c in python3 python3.11 python3.12 python3.13; do \
	    if command -v "$$c" >/dev/null 2>&1 && \
	       "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then py="$$c"; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "error: edgeplane needs Python 3.11 or newer; none of python3, python3.11, python3.12, python3.13" >&2; \
	  echo "       on PATH is one. Install it (e.g. apt-get install python3) or run: make PYTHON=/path/to/python3.x" >&2; \
	  exit 1; \
	fi; \
	echo "bootstrap: $$("$$py" -c 'import sys; print(sys.executable, sys.version.split()[0])') -> $(TOOLS)/ with uv $(UV_VERSION)"; \
	rm -rf $(TOOLS); \
	if ! "$$py" -m venv $(TOOLS) >/dev/null 2>&1; then \
	  echo "bootstrap: '$$py -m venv' failed (Debian/Ubuntu: apt-get install python3-venv); trying without pip"; \
	  rm -rf $(TOOLS); "$$py" -m venv --without-pip $(TOOLS); \
	  "$$py" -m pip --python $(TOOLS)/bin/python install --quiet uv==$(UV_VERSION); \
	else \
	  $(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); \
	fi; \
	test -x $(UV)

$(STAMP): $(UV) $(PYPROJECTS)
	@# Members are reinstalled so that a package folder which gained files after the first sync (its
	@# __init__.py) is picked up by the editable install; it costs a second, only when this stamp is stale.
	$(UV) sync --all-packages --python $(TOOLS)/bin/python \
	  $(addprefix --reinstall-package ,$(shell $(WORKSPACE) dists))
	@touch $(STAMP)

run: bootstrap ## start NATS, Redis and every service (edgeplane up); Ctrl-C stops them; ARGS=... passes options
	$(VENV)/bin/edgeplane up $(ARGS)

test: lint ## lint, then the whole test suite (pytest's exit 5, no tests collected, fails it too)
	$(PY) -m pytest -p no:cacheprovider --timeout=$(PYTEST_TIMEOUT) $(PYTEST_ARGS) tests

bench: bootstrap ## run every bench/*_bench.py in turn; each prints its figures (timings are never asserted)
	@for b in bench/*_bench.py; do echo "== $$b"; $(PY) "$$b"; done

taf: bootstrap ## EdgeX's API suites (edgex-taf) against a fresh, empty stack; ARGS=core-data picks suites
	$(PY) scripts/taf.py $(ARGS)

lint: bootstrap ## ruff check, ruff format --check, mypy (strict), and the import rule (no service imports another)
	@# All four run even when one fails, so one pass shows every problem.
	@failed=""; \
	echo "ruff check ."; $(VENV)/bin/ruff check . || failed="$$failed ruff-check"; \
	echo "ruff format --check ."; $(VENV)/bin/ruff format --check . || failed="$$failed ruff-format"; \
	echo "mypy $(MYPY_TARGETS)"; $(VENV)/bin/mypy $(MYPY_TARGETS) || failed="$$failed mypy"; \
	echo "scripts/check_imports.py"; $(TOOLS)/bin/python scripts/check_imports.py || failed="$$failed imports"; \
	if [ -n "$$failed" ]; then echo "lint failed:$$failed" >&2; exit 1; fi

format: bootstrap ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

docs: bootstrap ## regenerate the generated parts of docs/ (configuration reference)
	$(PY) scripts/gen_config_docs.py --write

# ---- gateway deployment (docker-compose.yml) under podman, with ../shared/tools (see docs/deployment.md)
# Where compose-up/compose-down/standin-images live; podman's runc wrapper goes first on PATH where it exists
# (crun refuses hybrid cgroups on some machines; docs/troubleshooting.md). BUILDAH_FORMAT=docker keeps the
# Dockerfile's HEALTHCHECK in the images podman builds.
COMPOSE_TOOLS ?= $(abspath ../shared/tools)
PODMAN_RUNC := /opt/podman-runc/bin
COMPOSE_ENV = PATH="$$( [ -d $(PODMAN_RUNC) ] && printf '%s:' $(PODMAN_RUNC) )$$PATH" BUILDAH_FORMAT=docker

compose-smoke: bootstrap ## build + start docker-compose.yml under podman, check it end to end, remove it
	$(COMPOSE_ENV) EDGEPLANE_COMPOSE_TOOLS=$(COMPOSE_TOOLS) $(PY) scripts/compose_smoke.py $(ARGS)

compose-up: ## build and start docker-compose.yml under podman (project edgeplane); ARGS=... go to `up`
	$(COMPOSE_ENV) $(COMPOSE_TOOLS)/compose-up --build $(ARGS)

compose-down: ## stop and remove the compose stack (ARGS=-v removes its volumes too: all its data)
	$(COMPOSE_ENV) $(COMPOSE_TOOLS)/compose-down $(ARGS)

clean: ## remove caches, build output and the bootstrapped .venv and .tools (not .data)
	rm -rf $(VENV) $(TOOLS) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +

clean-data: ## remove .data (embedded NATS/Redis data and service logs of `make run`)
	rm -rf .data
