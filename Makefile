# The two commands: `make run` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bodycam run --out recordings

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m sim.bench

lint: $(STAMP)
	$(BIN)/ruff check camera hal sim tests
	$(BIN)/ruff format --check camera hal sim tests

clean:
	rm -rf $(VENV) recordings .pytest_cache .hypothesis
