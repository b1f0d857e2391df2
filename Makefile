# The two commands: `make run` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# On a Raspberry Pi, Picamera2 and lgpio come from the OS (apt), never from pip:
# the venv sees the system's packages there, and only there.
SITE := $(shell grep -qs "Raspberry Pi" /proc/device-tree/model && echo --system-site-packages)

.PHONY: run test bench lint clean install-pi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(SITE) $(VENV)
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
	bash tools/test-tools.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=20

bench: $(STAMP)
	$(BIN)/python -m sim.bench

lint: $(STAMP)
	$(BIN)/ruff check camera hal sim tests
	$(BIN)/ruff format --check camera hal sim tests

# On a Raspberry Pi, as root: bodycam as a systemd service (deploy/install-pi.sh).
# `make install-pi INSTALL_PI_ARGS=--dry-run` prints what it would do instead.
INSTALL_PI_ARGS ?=
install-pi:
	bash deploy/install-pi.sh $(INSTALL_PI_ARGS)

clean:
	rm -rf $(VENV) recordings .pytest_cache .hypothesis
