# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST    ?= 127.0.0.1
PORT    ?= 8080
WORKERS ?= 2
STORE   ?= data/store

.PHONY: install system-deps remote-deps browser-deps npm-deps test lint pytest run load-demo demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

# The RML engine (morph-kgc) in its own virtual environment: it pins pyoxigraph<0.4 and
# rdflib<7.3, which relmark's .venv cannot share. `relmark import` runs it as a subprocess.
RML_VENV  ?= .venv-rml
RML_STAMP := $(RML_VENV)/.installed-stamp
$(RML_STAMP):
	$(PYTHON) -m venv $(RML_VENV)
	$(RML_VENV)/bin/python -m pip install -q --upgrade pip
	$(RML_VENV)/bin/python -m pip install -q 'morph-kgc==2.10.0'
	touch $@

install: $(STAMP) $(RML_STAMP)

# Debian packages the tests need: a JRE for owlready2's HermiT/Pellet reasoners.
system-deps:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (owlready2's reasoners need one)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends default-jre-headless; }

# Virtuoso for the remote-store tests (tests/support/backends.py starts it on free ports; the
# Oxigraph server comes from PyPI with the test extras).
remote-deps:
	@command -v virtuoso-t >/dev/null 2>&1 || { \
	  echo "installing Virtuoso (the remote-store tests run against it)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends virtuoso-opensource; }

# Headless Chromium and its driver for the browser tests (tests/e2e/test_browser.py drives
# Debian's /usr/bin/chromium with Playwright; Playwright never downloads a browser).
browser-deps:
	@test -x /usr/bin/chromium || { \
	  echo "installing Chromium (the browser tests need it)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium chromium-driver; }

# The pages' front-end libraries (CodeMirror, cytoscape.js) from the npm registry, served
# from node_modules/ by /vendor/; re-installed only when package-lock.json changes.
NPM_STAMP := node_modules/.installed-stamp
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing npm (the pages' JavaScript libraries come from the npm registry)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
	npm ci --no-audit --no-fund
	touch $@

npm-deps: $(NPM_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

pytest: install system-deps remote-deps browser-deps npm-deps
	$(BIN)/pytest

test: lint pytest

# The demo data goes into a new or empty store only (`relmark demo`): a restart keeps what
# users changed. `make demo` loads it again over the demo graphs (urn:relmark:data:bank, …).
load-demo: install
	$(BIN)/relmark --store $(STORE) demo

demo: install
	$(BIN)/relmark --store $(STORE) demo --reset

run: load-demo npm-deps
	$(BIN)/relmark --store $(STORE) serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

bench: install
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_http.py

clean:
	rm -rf data .pytest_cache .ruff_cache tests/output
