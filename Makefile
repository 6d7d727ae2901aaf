# The two commands a newcomer needs: `make run` and `make test`. Everything else is setup.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERSONS ?= 20000

.PHONY: setup run test lint clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Simulated registers for two nights, read through every adapter (see README).
run: $(STAMP)
	$(BIN)/personkort demo --persons $(PERSONS)

## Lint, format check and the whole test suite (SQLite, and PostgreSQL when reachable).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) data/demo
