"""Shared fixtures: small, fast simulated devices on the virtual clock.

Also the suite's house rules, applied to every test:

- one hypothesis profile, ``ci``: derandomized (the same examples on every run
  and machine, so a red CI is reproducible and a green one is not luck), no
  example database (nothing carried between runs or shared between xdist
  workers), no deadline (two cores shared with other jobs make wall-clock
  deadlines flaky) and ``print_blob`` (a failure prints the line that replays
  it). Collection fails if a test overrides any of these, so the profile
  cannot be quietly defeated. ``--hypothesis-profile explore`` opts into
  random, longer runs on a developer's machine.
- every CI scenario (``scenarios/ci/*.toml``) runs at most once per session
  (per xdist worker): :func:`ci_run` hands the same result and recordings to
  every test that asks. ``make test`` runs ``--dist loadscope``, which keeps a
  module on one worker; the users also carry ``xdist_group("ci_scenarios")``
  for ``--dist loadgroup``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from camera.config import load_config
from sim.device import SimDevice
from sim.runner import RunResult, run_scenario
from sim.scenario import load_scenario

#: Real PostgreSQL and SeaweedFS on loopback, started only for the tests that ask.
pytest_plugins = ["tests.services"]

ROOT = Path(__file__).resolve().parents[1]
CI_SCENARIOS = ROOT / "scenarios" / "ci"

CI_PROFILE: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "print_blob": True,
}
settings.register_profile("ci", **CI_PROFILE)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=1000)
# Loaded here, before any test module is imported, so module-level
# ``settings(...)`` objects and ``@settings`` decorators inherit from it.
settings.load_profile("ci")

#: The one documented opt-in to a random run (see tests/test_verify_fuzz.py).
RANDOM_OPT_IN = "BODYCAM_FUZZ_EXAMPLES"


def _hypothesis_settings(item: pytest.Item) -> settings | None:
    """The effective settings of a hypothesis test (``@given`` or a stateful TestCase)."""
    found = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
    if found is None:  # a RuleBasedStateMachine's TestCase keeps them on the class
        found = getattr(getattr(item, "cls", None), "settings", None)
    return found if isinstance(found, settings) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.get_current_profile_name() != "ci" or os.environ.get(RANDOM_OPT_IN):
        return
    bad = []
    for item in items:
        s = _hypothesis_settings(item)
        if s is None:
            continue
        wrong = {k: getattr(s, k) for k, v in CI_PROFILE.items() if getattr(s, k) != v}
        if wrong:
            bad.append(f"{item.nodeid}: {wrong}")
    if bad:
        raise pytest.UsageError(
            "these hypothesis tests override the ci profile "
            f"(expected {CI_PROFILE}):\n  " + "\n  ".join(bad)
        )


def make_device(
    tmp_path: Path, overrides: dict[str, Any] | None = None, seed: int = 0
) -> SimDevice:
    base: dict[str, Any] = {
        "video": {"width": 640, "height": 360, "fps": 30, "bitrate": 1_500_000, "gop": 30},
    }
    from camera.config import deep_merge

    config = load_config(None, deep_merge(base, overrides or {}))
    return SimDevice(config, tmp_path / "store", seed=seed).boot()


@pytest.fixture
def device_factory(tmp_path: Path):
    made: list[SimDevice] = []

    def factory(overrides: dict[str, Any] | None = None, seed: int = 0) -> SimDevice:
        dev = make_device(tmp_path, overrides, seed)
        made.append(dev)
        return dev

    yield factory
    for dev in made:
        if dev.firmware.state.value != "stopped":
            dev.shutdown()


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], RunResult]:
    """``ci_run(name)``: the result of ``scenarios/ci/<name>.toml``, run once per session.

    The recordings live in ``result.storage``. They are shared: a test may
    read and verify them but must never change them (copy first).
    """
    done: dict[str, RunResult] = {}

    def get(name: str) -> RunResult:
        if name not in done:
            out = tmp_path_factory.mktemp(f"ci-{name}")
            done[name] = run_scenario(load_scenario(CI_SCENARIOS / f"{name}.toml"), out)
        return copy.deepcopy(done[name])  # a test that edits a manifest dict edits its own

    return get
