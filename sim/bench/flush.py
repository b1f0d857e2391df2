"""The pre-event flush against the storage's own limit (issue 14, goal 1).

The firmware runs in real time on the sim board (monotonic clock, writer
thread, synthetic camera encoded with the configured H.264 settings) but on
plain local storage, so "durable" means this host's disk, as it does for the
baseline. Each trial drives the holster input through its real path (mock pin,
debouncer, gesture, trigger) after the ring holds ``pre_event`` seconds; the
firmware's time is from its own decision (the ``gesture`` event that starts
the recording) to its own ``durable`` event (the pre-event's fsync returned).
Then, on a thread while capture goes on as it did during the flush, the
baseline: a plain open/write/fsync/close of as many bytes as the flush made
durable (its segments and its journal), in one new file in the same storage
directory, with the directory fsynced after it as the firmware does for each
file it creates. Trial, baseline, trial, baseline: a slow spell of the host
hits both.

Also reported: live frames lost while a flush was in progress (the gaps each
recording's manifest declares after its pre-event; the recording stops at its
``durable`` event, so its live part is the flush plus the stop), and every
recording is verified (hashes, decoding, continuity, signatures): a fast flush
that writes bad evidence is no result, so a failure raises. Two more trials,
not timed, run with cProfile enabled inside the writer thread around the
flush's tasks (``flush-WxH.prof``/``.txt`` in the profiles directory).

``--flush-card-model N`` adds N trials in a session of their own on the
simulated card (sim/storage.py: the writer sleeps for the modelled service
time of each write), what ``bodycam bench trigger`` measures on the sim board:
the share of its ``durable`` that is the model. Off by default: it measures a
model, not this host, and its warm-up costs another ``pre_event`` seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camera.config import load_config
from camera.device import Device
from camera.evidence.records import JOURNAL, SEGMENT_PREFIX
from camera.evidence.verify import verify_recording
from camera.evidence.verify.trust import keys_beside
from hal.storage import fsync_dir
from sim.bench.figure import Figure, Goal
from sim.bench.suite import BenchResult
from sim.trigger_bench import INPUT, Driver

NAME = "flush"
SUMMARY = "pre-event flush to durable, against a plain write+fsync of the same bytes"
QUICK: dict[str, object] = {
    "flush_trials": 2,
    "flush_warmup": 2.0,
    "flush_resolution": "640x360",
}  # --flush-card-model is off by default, so --quick may still turn it on
#: Trials after the timed ones, with the writer thread profiled (cProfile slows it).
PROFILED_TRIALS = 2
#: Seconds a trial may take to become durable before the bench gives up.
TIMEOUT = 20.0
#: Seconds between a baseline and the next trigger: the holster input stays
#: inactive for longer than any debounce, so the next edge is a new gesture.
REST = 0.3
GOAL = 1.5
#: The recorder's last task of a flush (camera/recorder.py): the one fsync step.
DURABLE_STEP = "sync_pre_event"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--flush-trials", type=int, default=10, help="timed trials (default: 10)")
    group.add_argument(
        "--flush-warmup",
        type=float,
        default=30.0,
        help="seconds of real-time capture before the first trial, so the ring holds the "
        "pre-event (default: 30, the default pre_event)",
    )
    group.add_argument(
        "--flush-resolution", default="1280x720", help="WxH of the video (default: 1280x720)"
    )
    group.add_argument(
        "--flush-card-model",
        type=int,
        nargs="?",
        const=3,
        default=0,
        metavar="N",
        help="also N trials on the simulated card model, reported as their own figure "
        "(default: 0, off; the option alone: 3)",
    )


@dataclass
class Trial:
    """One flush: the firmware's times (HAL clock, s) and what it made durable."""

    index: int
    profiled: bool = False
    accepted: float | None = None
    #: When the recorder had queued the whole flush (its ``start`` event, on the loop).
    started: float | None = None
    durable: float | None = None
    recording: str | None = None
    #: The pre-event's last frame (the newest in the ring at the trigger).
    last_pre: int | None = None
    #: Writer tasks of the flush: when the first began, the last ended, and their sum.
    first_task: float | None = None
    last_task: float | None = None
    busy: float = 0.0
    #: Of which the writer thread was on a CPU (its thread time): the rest it waited,
    #: for the disk, the GIL or a core.
    cpu: float = 0.0
    segment_bytes: int = 0
    journal_bytes: int = 0
    live_gap_frames: int = 0
    dropped: int = 0  # the recorder's own count over the flush
    base_seconds: float | None = None
    #: On the card model: the service time it modelled for the flush's writes (s).
    modelled: float = 0.0
    #: The flush's last task has run (set on the writer thread).
    flushed: bool = False

    @property
    def ms(self) -> float:
        assert self.accepted is not None and self.durable is not None
        return 1000 * (self.durable - self.accepted)

    @property
    def nbytes(self) -> int:
        return self.segment_bytes + self.journal_bytes

    def row(self) -> dict[str, Any]:
        assert self.accepted is not None
        ms = lambda t: None if t is None else round(1000 * (t - self.accepted), 3)  # noqa: E731
        return {
            "trial": self.index,
            "durable_ms": round(self.ms, 3),
            "queued_ms": ms(self.started),
            "plain_ms": None if self.base_seconds is None else round(1000 * self.base_seconds, 3),
            "segment_bytes": self.segment_bytes,
            "journal_bytes": self.journal_bytes,
            "writer_first_task_ms": ms(self.first_task),
            "writer_last_task_ms": ms(self.last_task),
            "writer_busy_ms": round(1000 * self.busy, 3),
            "writer_cpu_ms": round(1000 * self.cpu, 3),
            "live_gap_frames": self.live_gap_frames,
            "dropped_frames": self.dropped,
            "modelled_ms": round(1000 * self.modelled, 3),
        }


def plain_write_fsync(directory: Path, data: memoryview, name: str) -> float:
    """Seconds to create ``name``, write ``data`` in one go, fsync, close, fsync the directory.

    The storage's own limit for the same bytes; the file is removed after timing.
    """
    path = directory / name
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = data
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(directory)
    seconds = time.perf_counter() - t0
    path.unlink()
    return seconds


def written_bytes(directory: Path) -> tuple[int, int]:
    """(segment bytes, journal bytes) in a recording directory as it stands."""
    segments = journal = 0
    for entry in os.scandir(directory):
        if entry.name == JOURNAL:
            journal = entry.stat().st_size
        elif entry.name.startswith(SEGMENT_PREFIX):
            segments += entry.stat().st_size
    return segments, journal


class FlushRunner:
    """One firmware in real time; trials of trigger, durable, stop, then the baseline."""

    def __init__(
        self,
        root: Path,
        *,
        size: tuple[int, int],
        trials: int,
        warmup: float,
        card_model: bool,
        profiler: cProfile.Profile | None,
        baseline: Callable[[int], float],
    ) -> None:
        config = load_config(None, {"video": {"width": size[0], "height": size[1]}})
        self.config = config
        overrides = {
            "clock": "monotonic",
            "worker": "thread",
            "storage": "sim" if card_model else "local",
        }
        self.device = Device(config, board="sim", storage=root, overrides=overrides)
        self.fw = self.device.firmware
        self.clock = self.device.clock
        self.driver = Driver(self.device.hal, config, None)
        self.root = root
        self.timed = trials
        self.total = trials + (PROFILED_TRIALS if profiler is not None else 0)
        self.warmup = warmup
        self.profiler = profiler
        self.baseline = baseline
        self.trials: list[Trial] = []
        self.current: Trial | None = None
        self._flushing = False  # the recorder is submitting the flush's tasks
        self._dropped_at = 0
        self._timeout: Any = None
        self.failure: str | None = None
        worker = self.device.hal.worker
        submit = worker.submit

        def watched(task: Callable[[], None], nbytes: int = 0, on_done: Any = None) -> None:
            trial = self.current
            if self._flushing and trial is not None:
                if trial.recording is None:  # the recorder has made it before the first task
                    rec = self.fw.recorder.recording
                    trial.recording = None if rec is None else rec.id
                task = self._timed(trial, task)
            submit(task, nbytes, on_done)

        worker.submit = watched  # type: ignore[method-assign]
        if card_model:
            self._count_model()
        self.fw.listeners.append(self._event)

    def _count_model(self) -> None:
        """Add up the card model's service time of the flush's tasks (the writer
        sleeps that long before each task: sim/storage.py, hal/worker/thread.py)."""
        storage = self.device.hal.storage
        modelled = storage.service_time

        def counted(nbytes: int, start: float) -> float:
            seconds = modelled(nbytes, start)
            trial = self.current
            if trial is not None and trial.accepted is not None and not trial.flushed:
                trial.modelled += seconds
            return seconds

        storage.service_time = counted  # type: ignore[method-assign]

    def _timed(self, trial: Trial, task: Callable[[], None]) -> Callable[[], None]:
        """``task`` as the writer runs it, timed on the HAL clock (and profiled if asked)."""
        now = self.clock.now
        profiler = self.profiler if trial.profiled else None

        last = getattr(task, "__name__", "") == DURABLE_STEP

        def run() -> None:
            start, cpu = now(), time.thread_time()
            if trial.first_task is None:
                trial.first_task = start
            if profiler is not None:
                profiler.enable()
            try:
                task()
            finally:
                if profiler is not None:
                    profiler.disable()
                end = now()
                trial.busy += end - start
                trial.cpu += time.thread_time() - cpu
                trial.last_task = end
            if last and trial.recording is not None:
                # Fsynced, and nothing else written yet: what the flush made durable.
                written = written_bytes(self.root / trial.recording)
                trial.segment_bytes, trial.journal_bytes = written
                trial.flushed = True

        return run

    def run(self) -> list[Trial]:
        self.fw.boot()
        self.clock.call_later(self.warmup, self._start_trial)
        try:
            self.device.run()
        finally:
            self.driver.close()
            self.device.shutdown()
        if self.failure is not None:
            raise RuntimeError(f"flush bench: {self.failure}")
        return self.trials

    def _start_trial(self) -> None:
        index = len(self.trials)
        self.current = Trial(index, profiled=index >= self.timed)
        self._timeout = self.clock.call_later(TIMEOUT, self._missed)
        self.driver.play([(0.0, True)], lambda: None)

    def _missed(self) -> None:
        self.failure = f"trial {len(self.trials)}: no durable event within {TIMEOUT:g} s"
        self.clock.stop()

    def _event(self, e: dict[str, Any]) -> None:
        trial = self.current
        if trial is None:
            return
        kind = e["kind"]
        if kind == "gesture" and e["input"] == INPUT and e["gesture"] == "activate":
            trial.accepted = e["time"]  # the firmware's decision: the trigger follows at once
            self._flushing = True
            self._dropped_at = self.fw.recorder.dropped_frames
        elif kind == "start":
            self._flushing = False  # every task of the flush is queued
            trial.started = e["time"]
            rec = self.fw.recorder.recording
            assert rec is not None and rec.last is not None
            assert trial.recording == rec.id
            trial.last_pre = rec.last.number
        elif kind == "durable" and e["recording"] == trial.recording:
            trial.durable = e["time"]
            trial.dropped = self.fw.recorder.dropped_frames - self._dropped_at
            self._timeout.cancel()
            self.fw.stop_recording("console", self.clock.now())
            self.driver.set(False)
        elif kind == "saved" and e["recording"] == trial.recording:
            self._saved(trial)

    def _saved(self, trial: Trial) -> None:
        """The recording is closed and the writer idle: count its bytes, then the baseline."""
        assert trial.recording is not None and trial.last_pre is not None
        if trial.nbytes == 0:
            self.failure = f"trial {trial.index}: the flush's last task ({DURABLE_STEP}) not seen"
            self.clock.stop()
            return
        manifest = next(m for m in self.fw.recordings if m["recording_id"] == trial.recording)
        trial.live_gap_frames = sum(
            g["frames"] for g in manifest["gaps"] if g["first_frame"] > trial.last_pre
        )
        self.current = None
        self.trials.append(trial)

        def baseline() -> None:
            if not trial.profiled:
                trial.base_seconds = self.baseline(trial.nbytes)
            self.clock.call_soon_threadsafe(self._next)

        # On a thread of its own: capture goes on, as it did during the flush.
        threading.Thread(target=baseline, name="bench-plain-write", daemon=True).start()

    def _next(self) -> None:
        if len(self.trials) < self.total:
            self.clock.call_later(REST, self._start_trial)
        else:
            self.clock.stop()


def _session(
    root: Path,
    size: tuple[int, int],
    trials: int,
    warmup: float,
    *,
    card_model: bool,
    profiler: cProfile.Profile | None,
) -> list[Trial]:
    """Trials on one firmware; every recording verified (a failure raises)."""
    root.mkdir(parents=True)
    # The largest flush is the arena's worth at most: one buffer, sliced per trial.
    data = memoryview(os.urandom(64 * 1024 * 1024))

    def baseline(nbytes: int) -> float:
        if nbytes > len(data):
            raise RuntimeError(f"flush bench: {nbytes} bytes flushed, over the baseline's buffer")
        return plain_write_fsync(root, data[:nbytes], ".plain-write-fsync")

    runner = FlushRunner(
        root,
        size=size,
        trials=trials,
        warmup=warmup,
        card_model=card_model,
        profiler=profiler,
        baseline=baseline,
    )
    done = runner.run()
    verify_all(root, [t.recording for t in done if t.recording is not None])
    return done


def verify_all(root: Path, recordings: list[str]) -> None:
    """Every recording checked as ``bodycam verify`` does, signatures included; raises
    on the first that fails: a fast flush that wrote bad evidence is no result."""
    keys = keys_beside(root)
    for name in recordings:
        report = verify_recording(root / name, keys)
        if not report.ok:
            raise RuntimeError(
                f"flush bench: recording {name} does not verify: " + "; ".join(report.problems[:5])
            )


def _save_profile(profiler: cProfile.Profile, profiles: Path, stem: str) -> Path:
    """The writer thread's profile: ``stem.prof`` and a text summary ``stem.txt``."""
    prof = profiles / f"{stem}.prof"
    profiler.dump_stats(prof)
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        out.write(f"== writer thread during the pre-event flushes, sorted by {order} ==\n")
        pstats.Stats(str(prof), stream=out).sort_stats(order).print_stats(30)
    text = profiles / f"{stem}.txt"
    text.write_text(out.getvalue())
    return text


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def run(args: argparse.Namespace, profiles: Path) -> BenchResult:
    size = _parse_size(args.flush_resolution)
    # The pre-event flushed: the configured one, or all the warm-up if that is shorter.
    pre_event = min(load_config(None).buffer.pre_event, args.flush_warmup)
    label = f"{size[0]}x{size[1]}"
    stem = f"flush-{label}-h264"
    profiler = cProfile.Profile()
    figures: list[Figure] = []
    details: dict[str, Any] = {"resolution": label, "warmup_s": args.flush_warmup}
    profiles.mkdir(parents=True, exist_ok=True)
    # Beside the results, not in /tmp: on a Pi that is where the card is.
    with tempfile.TemporaryDirectory(prefix="flush-", dir=profiles.parent) as tmp:
        host = _session(
            Path(tmp) / "local",
            size,
            args.flush_trials,
            args.flush_warmup,
            card_model=False,
            profiler=profiler,
        )
        card = (
            _session(
                Path(tmp) / "card",
                size,
                args.flush_card_model,
                args.flush_warmup,
                card_model=True,
                profiler=None,
            )
            if args.flush_card_model > 0
            else []
        )
    text = _save_profile(profiler, profiles, stem)
    timed = [t for t in host if not t.profiled]
    figures.append(_ratio_figure(timed, f"{label}, {pre_event:g} s", text.name))
    figures.append(_dropped_figure(host, label))
    details["trials"] = [t.row() for t in host]
    details["profile"] = text.name
    details["bytes_median"] = statistics.median(t.nbytes for t in timed)
    if card:
        figures.append(_card_figure(card, label))
        details["card_model_trials"] = [t.row() for t in card]
    return BenchResult(figures, details)


def _ratio_figure(trials: list[Trial], label: str, profile: str) -> Figure:
    ours = [t.ms for t in trials]
    base = [1000 * (t.base_seconds or 0.0) for t in trials]
    ratios = [o / b for o, b in zip(ours, base, strict=True)]

    def median_ms(values: list[float | None]) -> float:
        return statistics.median(1000 * v for v in values if v is not None)

    mb = statistics.median(t.nbytes for t in trials) / 1e6
    start = median_ms([_since(t.first_task, t.accepted) for t in trials])
    busy = median_ms([t.busy for t in trials])
    cpu = median_ms([t.cpu for t in trials])
    lag = median_ms([_since(t.durable, t.last_task) for t in trials])
    plain = statistics.median(base)
    return Figure(
        "flush.durable_over_plain",
        f"pre-event durable / plain write+fsync of the same bytes ({label})",
        ratios,
        goal=Goal("<=", GOAL),
        baseline="plain write+fsync, same bytes, same directory",
        ours=ours,
        base=base,
        unit_raw="ms",
        limit=(
            f"The writer's own CPU, {cpu:.0f} ms (median) against {plain:.0f} ms for the whole "
            "plain write+fsync: PyAV's mux of each of some 900 frames and the Python around "
            "it (packet, interleave model, signature feed), then renumbering, writes and "
            f"fsyncs (the hash runs beside it); and {busy - cpu:.0f} ms of its {busy:.0f} ms "
            "waiting: for the GIL and the cores it shares with capture's threads, and for the "
            f"disk; before it, {start:.1f} ms on the loop copying the pre-event out of the "
            f"ring. Profile {profile}."
            if statistics.median(ratios) > GOAL
            else ""
        ),
        notes=(
            f"From the firmware's trigger decision (gesture) to its durable event, on local "
            f"storage, {mb:.1f} MB: its segments and journal as they stood when its fsync "
            f"returned. Median: the writer starts {start:.1f} ms after the decision, runs "
            f"{busy:.1f} ms ({cpu:.1f} ms on a CPU), and the durable event follows its last "
            f"task by {lag:.1f} ms."
        ),
    )


def _since(t: float | None, origin: float | None) -> float | None:
    return None if t is None or origin is None else t - origin


def _dropped_figure(trials: list[Trial], label: str) -> Figure:
    return Figure(
        "flush.live_frames_dropped",
        f"live frames lost during a pre-event flush ({label})",
        [float(t.live_gap_frames) for t in trials],
        unit="frames",
        goal=Goal("<=", 0),
        baseline="none: every live frame recorded",
        ours=[float(t.dropped) for t in trials],
        unit_raw="frames the recorder counted dropped",
        notes=(
            "Gap frames each manifest declares after the pre-event's last frame (every cause; "
            "the recording stops at its durable event); every recording verified."
        ),
    )


def _card_figure(trials: list[Trial], label: str) -> Figure:
    ours = [t.ms for t in trials]
    base = [1000 * (t.base_seconds or 0.0) for t in trials]
    share = statistics.median(100 * t.modelled * 1000 / t.ms for t in trials)
    return Figure(
        "flush.card_model_durable_over_plain",
        f"pre-event durable on the simulated card model / plain write+fsync ({label})",
        [o / b for o, b in zip(ours, base, strict=True)],
        baseline="plain write+fsync, same bytes, same directory",
        ours=ours,
        base=base,
        unit_raw="ms",
        notes=(
            "What `bodycam bench trigger` measures on the sim board: the writer sleeps for the "
            "card model's service time of each write (sim/storage.py, 2 ms + 20 MB/s) before "
            f"it; that sleep is {share:.0f}% of it (median), the rest is this host."
        ),
    )
