"""Holster-trigger timing bench: real time, real load, the real input path.

The firmware runs on the wall clock (``monotonic``) with the writer thread,
encoding at the configured resolution, while trials drive the holster input
through its real path: a gpiozero mock pin in simulation, or on a Pi a GPIO
output (``--drive-pin``) wired to the sensor input so the edge is physical.
Per trial, from the edge: the debouncer accepting the transition, the record
LED on, and the whole pre-event durable on storage (fsync returned). Then
false-trigger trials (chatter and short pulses below the debounce) count
false and missed triggers. Trials are callbacks on the firmware's own loop:
nothing sleeps, and the timestamps are the HAL clock's.

Every edge time is the one the firmware received from the pin callback, not
the stimulus thread's intent: the stimulus reads the clock before it sets a
level and the callback after, so on a loaded host the two differ, and a
short pulse the host stretched past the debounce would otherwise be judged
as a false trigger by a pulse width the firmware never saw.
"""

from __future__ import annotations

import math
import os
import platform
import random
import statistics
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from camera.config import Config, load_config
from camera.device import Device
from hal import registry
from hal.board import Hal

INPUT = "holster"
TIMEOUT = 5.0  # seconds for a trial's durable pre-event before it counts as missed

#: The budgets the bench is judged against (``make bench``), p99 from the
#: first edge: acceptance and LED may take the debounce itself plus these...
ACCEPTED_OVER_DEBOUNCE_MS = 5.0
LED_OVER_DEBOUNCE_MS = 10.0
#: ...and the whole pre-event is durable on storage within this.
DURABLE_BUDGET_MS = 1500.0


def budgets(debounce_ms: float) -> dict[str, float]:
    """Each latency's budget in ms (the keys of Trial.row()) at one debounce value."""
    return {
        "accepted_ms": debounce_ms + ACCEPTED_OVER_DEBOUNCE_MS,
        "led_ms": debounce_ms + LED_OVER_DEBOUNCE_MS,
        "durable_ms": DURABLE_BUDGET_MS,
    }


@dataclass(frozen=True)
class RunConditions:
    """What a bench run measured on: latencies mean little without the load and the host."""

    width: int
    height: int
    fps: int
    bounce_ms: float
    debounce_ms: tuple[float, ...]
    trials: int
    pre_event: float
    warmup: float  # below pre_event, the pre-event flushed is shorter than configured
    board: str
    host: str
    started: datetime
    console: str | None = None

    def lines(self) -> tuple[str, str]:
        """Two lines for a figure or a report: the stimulus and load, then the host and date."""
        debounce = ", ".join(f"{d:g}" for d in self.debounce_ms)
        run = (
            f"{self.width}x{self.height} @ {self.fps} fps, bounce {self.bounce_ms:g} ms, "
            f"debounce {debounce} ms, {self.trials} trials per value, "
            f"pre-event {self.pre_event:g} s, warm-up {self.warmup:g} s, board {self.board}"
        )
        if self.console is not None:
            run += f", timestamps from console {self.console}"
        return run, f"host {self.host}, {self.started:%Y-%m-%d %H:%M} UTC"


def host_description() -> str:
    """Host name, CPU model and core count: enough to tell two benches' machines apart."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and value.strip():
                    model = value.strip()  # "Model" (a Pi's board) comes last and wins
    except OSError:
        pass
    cores = os.cpu_count() or 1
    return f"{platform.node() or 'unknown'} ({model}, {cores} core{'s' if cores > 1 else ''})"


@dataclass
class Trial:
    debounce_ms: float
    index: int
    edge: float
    accepted: float | None = None
    led: float | None = None
    durable: float | None = None

    def ms(self, t: float | None) -> float | None:
        return None if t is None else round((t - self.edge) * 1000, 3)

    def row(self) -> dict[str, Any]:
        return {
            "debounce_ms": self.debounce_ms,
            "trial": self.index,
            "accepted_ms": self.ms(self.accepted),
            "led_ms": self.ms(self.led),
            "durable_ms": self.ms(self.durable),
        }


@dataclass
class SweepResult:
    debounce_ms: float
    trials: list[Trial] = field(default_factory=list)
    false_triggers: int = 0
    missed_triggers: int = 0
    false_trials: int = 0
    stimulus_overruns: int = 0
    conditions: RunConditions | None = None

    def stats(self, key: str) -> dict[str, float | None]:
        values = sorted(v for t in self.trials if (v := t.row()[key]) is not None)
        return percentiles(values)

    def summary(self) -> dict[str, Any]:
        return {
            "debounce_ms": self.debounce_ms,
            "trials": len(self.trials),
            "accepted_ms": self.stats("accepted_ms"),
            "led_ms": self.stats("led_ms"),
            "durable_ms": self.stats("durable_ms"),
            "false_triggers": self.false_triggers,
            "false_trials": self.false_trials,
            "missed_triggers": self.missed_triggers,
            "stimulus_overruns": self.stimulus_overruns,
        }


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    if len(values) == 1:
        v = values[0]
        return {"p50": v, "p95": v, "p99": v, "max": v}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "max": round(values[-1], 3),
    }


class Driver:
    """Drives the holster input: a mock pin, or a Pi output looped to the input.

    Waveforms play on a thread of their own, like a signal generator: the
    firmware's loop may be busy encoding when an edge is due, and a stimulus
    that waited for it would stretch pulses past the debounce and fake
    triggers. Edges are stamped where they happen, as pin interrupts are.
    """

    def __init__(self, hal: Hal, config: Config, drive_pin: int | None) -> None:
        self.hal = hal
        self._wake = threading.Event()
        self._device = None
        if drive_pin is not None:
            from gpiozero import DigitalOutputDevice

            factory = getattr(hal.gpio, "factory", None)
            self._device = DigitalOutputDevice(drive_pin, pin_factory=factory)
            self._active_high = config.inputs[INPUT].active == "high"

    def set(self, active: bool) -> None:
        if self._device is None:
            self.hal.gpio.drive(INPUT, active)  # type: ignore[attr-defined]
        else:
            self._device.value = active == self._active_high

    def play(self, waveform: list[tuple[float, bool]], done: Callable[[], None]) -> None:
        """Set each (offset, level) at its time; then ``done()`` on the loop.

        ``done`` is posted after the last level is set, so every edge the pin
        callback posted before it has reached the firmware by then.
        """
        clock = self.hal.clock

        def generator() -> None:
            start = clock.now()
            for offset, level in waveform:
                while (left := start + offset - clock.now()) > 0:
                    self._wake.wait(left)
                self.set(level)
            clock.call_soon_threadsafe(done)

        threading.Thread(target=generator, name="bench-stimulus", daemon=True).start()

    def close(self) -> None:
        if self._device is not None:
            self._device.close()


class TrialRunner:
    """One debounce value: warm-up, timed trials, then false-trigger trials."""

    def __init__(
        self,
        config: Config,
        storage: Path,
        *,
        trials: int,
        bounce_ms: float,
        warmup: float,
        board: str,
        drive_pin: int | None,
        seed: int,
        progress: Callable[[int, int], None] | None,
        console: str | None = None,
    ) -> None:
        # Real time even on the simulated board: the bench measures the host.
        # The recordings are signed like any other: a test key on the simulated
        # board, the provisioned one on a Pi (the Device's rule).
        real_time = {"clock": "monotonic", "worker": "thread"}
        self.device = Device(
            config,
            board=board,
            storage=storage,
            overrides=real_time if registry.board(board).simulated else None,
            seed=seed,
        )
        self.hal = self.device.hal
        self.fw = self.device.firmware
        self.clock = self.device.clock
        self.driver = Driver(self.hal, config, drive_pin)
        self.debounce = config.inputs[INPUT].debounce_ms / 1000
        self.result = SweepResult(config.inputs[INPUT].debounce_ms)
        self.n = trials
        self.bounce = bounce_ms / 1000
        self.warmup = warmup
        self.rng = random.Random(seed)
        self.progress = progress
        self.current: Trial | None = None
        self._timeout = None
        self._false_left = trials
        self._false_starts = 0
        self._starts_before = 0
        self.console = console
        self._client = None
        #: (time, active) of every holster edge, as the firmware received it.
        self.edges: list[tuple[float, bool]] = []
        self._edge_seen = False
        self._watch_edges()
        if console is None:
            self.fw.listeners.append(self._event)
        else:
            # Timestamps from the console's EVT lines, read as a bench PC would;
            # only the LED (which no EVT line reports) is read in-process.
            self.fw.listeners.append(self._led_only)

    def _watch_edges(self) -> None:
        """See the holster's edges with the timestamps the pin callback gave them.

        The firmware's edge callback is wrapped where the HAL hands it to the
        pin, before boot, so the bench sees each edge on the loop thread just
        before the debouncer does, with the same timestamp.
        """
        gpio = self.hal.gpio
        add_input = gpio.add_input

        def add(name: str, pin: int, active_high: bool, pull: Any, on_edge: Any) -> None:
            if name != INPUT:
                add_input(name, pin, active_high, pull, on_edge)
                return

            def seen(name: str, t: float, active: bool) -> None:
                self._edge(t, active)
                on_edge(name, t, active)

            add_input(name, pin, active_high, pull, seen)

        gpio.add_input = add  # type: ignore[method-assign]

    def _edge(self, t: float, active: bool) -> None:
        self.edges.append((t, active))
        trial = self.current
        if trial is not None and active and not self._edge_seen:
            trial.edge = t  # the trial's first edge, as the firmware stamped it
            self._edge_seen = True

    def _led_on_since(self, edge: float, default: float | None) -> float | None:
        """When the record LED was switched on after ``edge`` (the GPIO log's stamp)."""
        changes = reversed(self.hal.gpio.changes)
        return next((t for t, n, on in changes if n == "record_led" and on and t >= edge), default)

    # -- the console path ---------------------------------------------------------
    def _led_only(self, e: dict[str, Any]) -> None:
        trial = self.current
        if trial is not None and e["kind"] == "state" and e["new"] == "recording":
            trial.led = self._led_on_since(trial.edge, e["time"])

    def _open_console(self) -> None:
        import serial

        from camera.console import parse_event

        if self.console == "pty":
            from sim.console_pty import open_pty_console

            self._served, path = open_pty_console(self.fw)
        else:
            path = self.console
        client = serial.serial_for_url(path, baudrate=115200, timeout=0.2)
        client.write(b"EVENTS ON\r\n")
        self._client = client

        def reader() -> None:
            while client.is_open:
                try:
                    line = client.readline().decode("ascii", "replace")
                except (serial.SerialException, OSError, TypeError):
                    return
                entry = parse_event(line)
                if entry is not None:
                    self.clock.call_soon_threadsafe(lambda entry=entry: self._event(entry))

        self._reader = threading.Thread(target=reader, name="bench-console", daemon=True)
        self._reader.start()

    def _close_console(self) -> None:
        if self._client is not None:
            self._client.close()
            self._reader.join(timeout=2.0)
            served = getattr(self, "_served", None)
            if served is not None:
                served.close()

    # -- driving ---------------------------------------------------------------
    def _bounce(self, active: bool) -> list[tuple[float, bool]]:
        """The first edge at 0, then contact bounce within ``bounce_ms``."""
        wave = [(0.0, active)]
        t = 0.0
        for i in range(self.rng.choice((0, 2, 4)) if self.bounce > 0 else 0):
            t += self.rng.uniform(0.1, 0.24) * self.bounce
            wave.append((t, active if i % 2 else not active))
        return wave

    def run(self) -> SweepResult:
        self.fw.boot()
        if self.console is not None:
            self._open_console()
        self.clock.call_later(self.warmup, self._start_trial)
        self.clock.run()
        self._close_console()
        self.driver.close()  # before the board's pins are released
        self.device.shutdown()
        return self.result

    def _start_trial(self) -> None:
        # ``edge`` is replaced by the firmware's stamp of the first edge (_edge).
        trial = Trial(self.result.debounce_ms, len(self.result.trials), self.clock.now())
        self.current = trial
        self._edge_seen = False
        self._timeout = self.clock.call_later(TIMEOUT, self._missed)
        self.driver.play(self._bounce(True), lambda: None)

    def _missed(self) -> None:
        self.result.missed_triggers += 1
        self._finish_trial()

    def _event(self, e: dict[str, Any]) -> None:
        trial = self.current
        if trial is None:
            if e["kind"] == "start":
                self._false_starts += 1
                self.clock.call_later(0.0, lambda: self.fw.stop_recording("console", e["time"]))
            return
        if e["kind"] == "gesture" and e["input"] == INPUT and e["gesture"] == "activate":
            trial.accepted = e["time"]
            if self.console is not None:
                return
            trial.led = self._led_on_since(trial.edge, None)
        elif e["kind"] == "state" and e.get("new") == "recording" and trial.led is None:
            trial.led = e["time"]
        elif e["kind"] == "durable":
            trial.durable = e["time"]
            if self._timeout is not None:
                self._timeout.cancel()
            self._finish_trial()

    def _finish_trial(self) -> None:
        trial = self.current
        assert trial is not None
        self.current = None
        self.result.trials.append(trial)
        if self.progress:
            self.progress(len(self.result.trials), self.n)
        self.fw.stop_recording("console", self.clock.now())
        self.driver.set(False)
        gap = 0.4 + self.rng.uniform(0, 0.1)  # off the frame phase, past the debounce
        if len(self.result.trials) < self.n:
            self.clock.call_later(gap, self._start_trial)
        else:
            self.clock.call_later(gap, self._false_trial)

    # -- must never trigger ----------------------------------------------------
    def _false_trial(self) -> None:
        if self._false_left == 0:
            self.fw.hal.worker.drain()
            self.clock.stop()
            return
        self._false_left -= 1
        self._false_starts = 0
        wave: list[tuple[float, bool]] = []
        t = 0.0
        pulses = 10 if self._false_left % 2 else 1  # chatter, or one short pulse
        for _ in range(pulses):
            width = self.rng.uniform(0.2, 0.6) * self.debounce
            wave += [(t, True), (t + width, False)]
            t += width + self.rng.uniform(0.5, 2.0) * self.debounce
        settle = 3 * self.debounce + 0.05
        first = len(self.edges)

        def played() -> None:
            self.clock.call_later(settle, lambda: self._judge(self.edges[first:], pulses))

        self.driver.play(wave, played)

    def _judge(self, edges: list[tuple[float, bool]], pulses: int) -> None:
        """A start counts as false only if every pulse the firmware saw was below the debounce.

        Widths are between the firmware's own edge stamps. A trial whose edges
        did not arrive as the ``pulses`` on/off pairs played is not a trial.
        """
        levels = [active for _, active in edges]
        widest = (
            max(b - a for (a, _), (b, _) in zip(edges[::2], edges[1::2], strict=True))
            if levels == [True, False] * pulses
            else math.inf
        )
        if widest < self.debounce:
            self.result.false_trials += 1
            self.result.false_triggers += self._false_starts > 0
        else:
            self.result.stimulus_overruns += 1  # the host stretched a pulse: not a trial
        self._false_trial()


def bench_trigger(
    *,
    trials: int = 50,
    bounce_ms: float = 8.0,
    debounce_ms: list[float] | None = None,
    resolution: tuple[int, int] = (1280, 720),
    config_path: str | None = None,
    board: str = "sim",
    drive_pin: int | None = None,
    warmup: float | None = None,
    progress: Callable[[float, int, int], None] | None = None,
    console: str | None = None,
) -> list[SweepResult]:
    """Run the trials for each debounce value; recordings go to a temporary directory."""
    size = {"video": {"width": resolution[0], "height": resolution[1]}}
    base = load_config(config_path, size)
    values = debounce_ms or [base.inputs[INPUT].debounce_ms]
    conditions = RunConditions(
        width=resolution[0],
        height=resolution[1],
        fps=base.video.fps,
        bounce_ms=bounce_ms,
        debounce_ms=tuple(values),
        trials=trials,
        pre_event=base.buffer.pre_event,
        warmup=base.buffer.pre_event if warmup is None else warmup,
        board=board,
        host=host_description(),
        started=datetime.now(UTC),
        console=console,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bodycam-bench-") as tmp:
        for i, value in enumerate(values):
            config = load_config(config_path, {**size, "inputs": {INPUT: {"debounce_ms": value}}})
            runner = TrialRunner(
                config,
                Path(tmp) / f"debounce-{value:g}ms",
                trials=trials,
                bounce_ms=bounce_ms,
                warmup=config.buffer.pre_event if warmup is None else warmup,
                board=board,
                drive_pin=drive_pin,
                seed=i,
                progress=(lambda k, n, v=value: progress(v, k, n)) if progress else None,
                console=console,
            )
            result = runner.run()
            result.conditions = conditions
            results.append(result)
    return results
