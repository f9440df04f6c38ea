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

.PHONY: install test lint demo bench lock clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@# the build leaves an egg-info on sys.path (plugins/): Airflow would see the package twice
	@rm -rf plugins/*.egg-info
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check .

test: install lint
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
