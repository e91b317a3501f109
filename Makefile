# Two commands do all the set-up on a fresh Debian machine with Python 3.11:
#   make run   - virtualenv, install, migrate, serve on http://127.0.0.1:8000 (embedded mode)
#   make test  - system packages and services the tests need, then the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-test system-deps services bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/docsvc serve --host $(HOST) --port $(PORT)

demo: install
	$(BIN)/docsvc demo

system-deps:
	bash scripts/system-deps.sh

services: system-deps
	bash scripts/services.sh

test: services install-test
	$(BIN)/ruff check docsvc archive signing search inter_axis tests bench
	$(BIN)/python -m pytest

bench: install-test
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache
