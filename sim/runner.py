"""The scenario runner: boot the firmware on the virtual clock, play a scenario, judge it.

Inputs reach the firmware only as gpiozero mock-pin edges at virtual times and
faults only through the simulated backends, exactly as a Pi's world would
reach it. The same scenario and seed give byte-identical recordings.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camera.config import Config
from camera.report import RunReport
from hal.clock import Clock
from sim.clock import VirtualClock
from sim.device import SimDevice
from sim.gps_pty import SIM_PORT, SimulatedGps, receiver_for, serving
from sim.scenario import Scenario, ScenarioError
from sim.waveforms import scenario_edges

if TYPE_CHECKING:
    from sim.dock import DockResult

Progress = Callable[[float, float], None]


class StopRequest:
    """Ends a run early (Ctrl-C, SIGTERM), between two clock events, never inside one.

    Called from a signal handler, so it only records which signal asked and
    stops the clock's loop; the runner then shuts the firmware down on the
    loop's thread exactly as at the end of a scenario, so the open recording
    gets its last segment and its manifest (stop reason ``end_of_run``)
    instead of an exception tearing through a half-written frame.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._clock: Clock | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __call__(self, signum: int) -> None:
        self.signal = signum
        if self._clock is not None:
            self._clock.stop()

    def attach(self, clock: Clock) -> None:
        self._clock = clock
        if self.requested:
            clock.stop()


@dataclass
class Expectation:
    name: str
    expected: Any
    actual: Any
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expected": self.expected, "actual": self.actual, "ok": self.ok}


@dataclass
class RunResult:
    """A scenario's run: the device's report plus what only a scenario has."""

    scenario: Scenario
    report: RunReport
    events: list[dict[str, Any]] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    #: The signal that ended the run early, if one did (then nothing is judged).
    interrupted: int | None = None
    #: What the scenario's ``[dock]`` did (None: no dock, or the run ended before it).
    dock: DockResult | None = None

    @property
    def recordings(self) -> list[dict[str, Any]]:
        return list(self.report.recordings)

    @property
    def storage(self) -> Path:
        return self.report.storage

    @property
    def wall_seconds(self) -> float:
        return self.report.wall_seconds

    @property
    def dropped_frames(self) -> int:
        return self.report.dropped_frames

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(e.ok for e in self.expectations)

    def summary(self) -> dict[str, Any]:
        self.report.expectations = [e.as_dict() for e in self.expectations]
        self.report.interrupted = (
            None if self.interrupted is None else signal.Signals(self.interrupted).name
        )
        summary = self.report.summary()
        if self.scenario.dock is not None:
            summary["dock"] = None if self.dock is None else self.dock.summary()
        return summary


def _apply_faults(dev: SimDevice, scenario: Scenario) -> None:
    clock = dev.clock
    sensor = dev.hal.sensor
    for fault in scenario.faults:
        at, duration = fault.at, fault.duration
        if fault.kind == "storage_stall":
            dev.storage.stall(at, at + duration)
        elif fault.kind == "storage_full":
            # The card is down to half the firmware's metadata reserve.
            left = int(dev.config.recording.reserve_mb * 1_000_000) // 2
            clock.call_at(at, lambda left=left: dev.storage.fill(left))
        elif fault.kind == "camera_disconnect":
            clock.call_at(at, lambda d=duration: sensor.disconnect(clock.now() + d))  # type: ignore[attr-defined]
        elif fault.kind == "microphone_disconnect":
            audio = dev.hal.audio
            if audio is None:
                raise ScenarioError(
                    f"{scenario.source}: a microphone_disconnect fault needs audio "
                    "([config.audio] enabled = true)"
                )
            clock.call_at(at, lambda d=duration, a=audio: a.disconnect(clock.now() + d))  # type: ignore[attr-defined]
        elif fault.kind == "clock_jump":
            # The OS clock set by hand or a restored date: not NTP, not GPS.
            clock.call_at(at, lambda s=fault.seconds: clock.step_wall(s, "system"))
        elif fault.kind != "power_loss":  # power_loss ends the run: see _power_cut
            raise ScenarioError(f"{scenario.source}: fault kind {fault.kind!r} is not supported")


def _power_cut(dev: SimDevice) -> list[dict[str, Any]]:
    """The battery is pulled: no shutdown, unsynced bytes gone; then the next boot.

    The run ends at the cut. What the writer had not done is lost, every file
    is cut back to its last fsync, and recovery runs as it would at power-up.
    Returns the recordings finished before the cut plus the recovered ones.
    """
    finished = list(dev.firmware.recordings)
    dev.storage.power_cut()
    dev.hal.gpio.close()
    if dev.hal.gps is not None:
        dev.hal.gps.close()  # the reader dies with the power
    dev.storage.unlock()  # the dead firmware's lock dies with it; the next boot takes it
    dev.storage.lock()
    try:
        return finished + dev.firmware.recover_after_power_cut()
    finally:
        dev.storage.unlock()


def run_scenario(
    scenario: Scenario,
    out: str | Path,
    *,
    config_path: str | None = None,
    realtime: bool = False,
    progress: Progress | None = None,
    console: Callable[[str], None] | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Run ``scenario`` to its end (or until ``stop`` is called), writing under ``out``.

    With ``console``, the serial console is served on a pty pair and the
    callback is told its path (use it with ``realtime``: the virtual clock
    does not wait for a person typing). A stopped run shuts down as at the
    end of the scenario, ``sim_seconds`` is the time reached, and its
    expectations are not judged: the scenario did not happen in full.
    """
    config = scenario.device_config(config_path)
    if realtime:
        config = config.model_copy(update={"hal": config.hal.model_copy(update={"clock": "paced"})})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gps = _open_gps(scenario)
    try:
        return _run(scenario, config, out, gps, realtime, progress, console, stop)
    finally:
        if gps is not None:
            gps.close()


def _open_gps(scenario: Scenario) -> SimulatedGps | None:
    """The scenario's simulated receiver on a fresh pty, if ``[gps] enabled``."""
    if not scenario.gps.enabled:
        return None
    return SimulatedGps(receiver_for(scenario))


def _run(
    scenario: Scenario,
    config: Config,
    out: Path,
    gps: SimulatedGps | None,
    realtime: bool,
    progress: Progress | None,
    console: Callable[[str], None] | None,
    stop: StopRequest | None,
) -> RunResult:
    if gps is not None:
        # The firmware reads the simulated receiver with its NMEA reader on the pty, as
        # a Pi reads /dev/serial0; the config names a stable port (see sim.gps_pty).
        enabled = config.gps.model_copy(update={"enabled": True, "port": SIM_PORT})
        hal = config.hal if config.hal.gps else config.hal.model_copy(update={"gps": "pty"})
        config = config.model_copy(update={"gps": enabled, "hal": hal})
        with serving(gps):
            dev = SimDevice(config, out, seed=scenario.seed, start=scenario.start)
    else:
        dev = SimDevice(config, out, seed=scenario.seed, start=scenario.start)
    debounce = {name: cfg.debounce_ms / 1000.0 for name, cfg in config.inputs.items()}
    for edge in scenario_edges(scenario, debounce):
        dev.set_input(edge.t, edge.input, edge.active)
    _apply_faults(dev, scenario)
    docks: list[DockResult] = []
    if scenario.dock_at is not None:
        from sim.dock import dock_now  # the server's code: loaded only for a dock

        dev.clock.call_at(scenario.dock_at, lambda: docks.append(dock_now(dev, scenario, out)))
    if gps is not None:
        # With a receiver in the world the device's clock is only as good as its
        # last GPS fix: until the first one the burnt-in time says UNSYNCED, as on
        # a Pi that booted without a network.
        if isinstance(dev.clock, VirtualClock):
            dev.clock.source = "system"
        gps.start(dev.clock, dev.hal.gps)
    wall0 = time.perf_counter()
    dev.boot()
    stop = stop or StopRequest()
    stop.attach(dev.clock)
    served = None
    if console is not None:
        from sim.console_pty import open_pty_console

        served, path = open_pty_console(dev.firmware)
        console(path)
    cuts = [f.at for f in scenario.faults if f.kind == "power_loss"]
    end = min([scenario.duration, *cuts])
    t = 0.0
    while t < end and not stop.requested:
        t = min(end, t + 1.0)
        dev.run(until=t)
        if progress is not None:
            progress(t, scenario.duration)
    # One reading: a signal during the shutdown below changes nothing (the
    # recordings are being closed anyway), so the result stays consistent.
    interrupted = stop.signal
    reached = dev.clock.now() if interrupted is not None else scenario.duration
    if gps is not None:
        gps.stop()  # before the reader closes: no epoch may wait on it
    recordings = _power_cut(dev) if cuts and interrupted is None else dev.shutdown()
    if served is not None:
        served.close()
    report = dev.report(
        recordings=recordings,
        device_seconds=reached,
        wall_seconds=time.perf_counter() - wall0,
        scenario=scenario.name,
    )
    result = RunResult(
        scenario=scenario,
        report=report,
        events=list(dev.firmware.events),
        interrupted=interrupted,
        dock=docks[0] if docks else None,
    )
    if interrupted is None:
        result.expectations = evaluate(scenario, result)
    return result


def evaluate(scenario: Scenario, result: RunResult) -> list[Expectation]:
    """Judge ``[expect]``: each key present is one expectation."""
    exp = scenario.expect
    if exp is None:
        return []
    recs = result.recordings
    checks: list[Expectation] = []

    def check(name: str, expected: Any, actual: Any, ok: bool) -> None:
        checks.append(Expectation(name, expected, actual, ok))

    if exp.recordings is not None:
        check("recordings", exp.recordings, len(recs), len(recs) == exp.recordings)
    if exp.triggers is not None:
        actual = [m["trigger"]["source"] for m in recs]
        check("triggers", exp.triggers, actual, actual == exp.triggers)
    if exp.pre_event_min is not None:
        actual = min((m["pre_event_seconds"] for m in recs), default=None)
        check(
            "pre_event_min",
            exp.pre_event_min,
            actual,
            actual is not None and actual >= exp.pre_event_min,
        )
    if exp.max_dropped_frames is not None:
        check(
            "max_dropped_frames",
            exp.max_dropped_frames,
            result.dropped_frames,
            result.dropped_frames <= exp.max_dropped_frames,
        )
    if exp.stop_reasons is not None:
        actual = [m["stop"]["reason"] for m in recs]
        check("stop_reasons", exp.stop_reasons, actual, actual == exp.stop_reasons)
    if exp.markers is not None:
        actual = sum(len(m["markers"]) for m in recs)
        check("markers", exp.markers, actual, actual == exp.markers)
    if exp.frames_min is not None:
        actual = min((m["frames"] for m in recs), default=0)
        check("frames_min", exp.frames_min, actual, actual >= exp.frames_min)
    if exp.track_points_min is not None:
        # Points with a position; a lost point has no "lat" (manifests from before have no track).
        actual = min(
            (sum(1 for p in m.get("track", []) if p.get("lat") is not None) for m in recs),
            default=0,
        )
        check("track_points_min", exp.track_points_min, actual, actual >= exp.track_points_min)
    if exp.clock_step_sources is not None:
        actual = [step.get("source") for m in recs for step in m.get("wall_clock_steps", [])]
        check(
            "clock_step_sources", exp.clock_step_sources, actual, actual == exp.clock_step_sources
        )
    dock = result.dock
    for name, expected in (
        ("offloaded", exp.offloaded),
        ("kept", exp.kept),
        ("deleted", exp.deleted),
        ("resent", exp.resent),
        ("dock_stopped", exp.dock_stopped),
    ):
        if expected is not None:
            actual = None if dock is None else _dock_figure(dock, name)
            check(name, expected, actual, actual == expected)
    return checks


def _dock_figure(dock: DockResult, name: str) -> int | bool:
    """One ``[expect]`` figure of a dock (sim.dock.DockResult)."""
    if name == "resent":
        return dock.link.resent
    if name == "dock_stopped":
        return dock.stopped
    value: int = getattr(dock, name)
    return value
