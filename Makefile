# Two commands set up everything on a fresh machine that has Python 3.11:
#   make test   installs the locked environment into .venv and runs ruff + the whole suite
#   make demo   installs, starts the sandbox Canvas and Aspen, runs the DAG end to end
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False

.PHONY: install test lint demo bench lock clean browser

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@# the build leaves an egg-info on sys.path (plugins/): Airflow would see the package twice
	@rm -rf plugins/*.egg-info
	@touch $(STAMP)

# Debian's Chromium, for the test that renders the HTML report (needs root and apt; CI has both).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "make browser: could not install chromium; the browser test will skip"; \
	  else echo "make browser: chromium missing and no root/apt; the browser test will skip"; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Regenerate the lock from the unpinned intent (needs the package registry).
lock:
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.txt

clean:
	rm -rf $(VENV) .airflow .pytest_cache
