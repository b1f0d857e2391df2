# The two commands: `make run` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# On a Raspberry Pi, Picamera2 and lgpio come from the OS (apt), never from pip:
# the venv sees the system's packages there, and only there.
SITE := $(shell grep -qs "Raspberry Pi" /proc/device-tree/model && echo --system-site-packages)

.PHONY: run run-dock test bench bench-check bench-long lint clean install-pi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(SITE) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bodycam run --out recordings

# `make run`, docked at the end of the shift: every closed recording goes to a local
# evidence store in recordings/server, and leaves the camera on its receipt (README).
run-dock: $(STAMP)
	$(BIN)/bodycam run --out recordings/camera --dock recordings/server

# Every core (pytest-xdist); TEST_WORKERS=0 runs in one process. loadscope sends
# each test module to one worker, so module fixtures and the session's shared
# scenario runs (tests/conftest.py: ci_run) are built once, not once per worker.
TEST_WORKERS ?= auto
test: $(STAMP)
	bash tools/test-tools.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=20

# The bench suite (README "Benchmarks"): bench/results.json and bench/results.md.
bench: $(STAMP)
	$(BIN)/python -m sim.bench

# Exit 1 if any figure of bench/results.json is more than 10% worse than bench/baseline.json.
bench-check: $(STAMP)
	$(BIN)/python -m sim.bench check

# The runs too long for the suite: 40 SIGKILLs, the 200-trial trigger sweep, an 8-hour soak.
bench-long: $(STAMP)
	$(BIN)/python -m sim.bench long

lint: $(STAMP)
	$(BIN)/ruff check camera hal sim server tests
	$(BIN)/ruff format --check camera hal sim server tests

# On a Raspberry Pi, as root: bodycam as a systemd service (deploy/install-pi.sh).
# `make install-pi INSTALL_PI_ARGS=--dry-run` prints what it would do instead.
INSTALL_PI_ARGS ?=
install-pi:
	bash deploy/install-pi.sh $(INSTALL_PI_ARGS)

clean:
	rm -rf $(VENV) recordings .pytest_cache .hypothesis
