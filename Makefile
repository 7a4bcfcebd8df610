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
DEMO    := $(wildcard ontology/demo/*.ttl)

.PHONY: install system-deps test lint pytest run load-demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

install: $(STAMP)

# Debian packages the tests need: a JRE for owlready2's HermiT/Pellet reasoners.
system-deps:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime (owlready2's reasoners need one)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends default-jre-headless; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pytest: install system-deps
	$(BIN)/pytest

test: lint pytest

# Each demo file replaces its own graph (urn:relmark:data:bank, …): safe to run again.
load-demo: install
	$(BIN)/relmark --store $(STORE) load $(DEMO)

run: load-demo
	$(BIN)/relmark --store $(STORE) serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

bench: install
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_http.py

clean:
	rm -rf data .pytest_cache .ruff_cache
