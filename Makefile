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

# Every core (pytest-xdist); TEST_WORKERS=0 runs in one process. loadscope sends
# each test module to one worker, so module fixtures and the session's shared
# scenario runs (tests/conftest.py: ci_run) are built once, not once per worker.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=20

bench: $(STAMP)
	$(BIN)/python -m sim.bench

lint: $(STAMP)
	$(BIN)/ruff check camera hal sim tests
	$(BIN)/ruff format --check camera hal sim tests

clean:
	rm -rf $(VENV) recordings .pytest_cache .hypothesis
