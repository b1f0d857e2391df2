"""``make bench``: speed goals measured as ratios against a baseline run side by side.

- capture: the firmware's whole capture path at 1280x720 (scene, overlay,
  H.264, ring) against real time (30 fps): the simulation must run several
  times faster than the camera it simulates;
- ring: RingBuffer append + a 30 s pre-event query every 10 s, as a share of
  the 1/30 s frame budget, next to a baseline deque of copied frames (what an
  unbounded-by-bytes buffer costs) on the same frames in the same process.

Ratios, not absolute times, so the numbers mean the same on any host. Then the
runs too long for the test suite: SIGKILL trials (``--kills``), the trigger
bench at 1280x720 with 200 trials per debounce value against its budgets
(``--trigger-trials``), and an 8-hour soak (``--soak-hours``) reporting RSS,
files and threads over the shift.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import deque
from pathlib import Path

from camera.config import load_config
from camera.frames import EncodedFrame
from camera.ring import RingBuffer
from sim.device import SimDevice
from sim.killtest import run_trials
from sim.soak import soak
from sim.trigger_bench import SweepResult, bench_trigger


def bench_capture(seconds: float) -> dict[str, float]:
    config = load_config(None)
    with tempfile.TemporaryDirectory() as tmp:
        dev = SimDevice(config, tmp).boot()
        t0 = time.perf_counter()
        dev.run(until=seconds)
        wall = time.perf_counter() - t0
        dev.shutdown()
    return {"sim_seconds": seconds, "wall_seconds": round(wall, 3), "x_real_time": seconds / wall}


def _frames(n: int) -> list[EncodedFrame]:
    return [
        EncodedFrame(bytes(120_000 if i % 30 == 0 else 15_000), i, i / 30, i % 30 == 0)
        for i in range(n)
    ]


def bench_ring(n: int = 3600) -> dict[str, float]:
    frames = _frames(n)
    ring = RingBuffer(64_000_000, retain_seconds=33.0, max_frames=2000)
    t0 = time.perf_counter()
    for f in frames:
        ring.append(f)
        if f.number % 300 == 0:
            ring.frames_from(f.time - 30)
    ours = time.perf_counter() - t0

    base: deque[EncodedFrame] = deque()
    t0 = time.perf_counter()
    for f in frames:  # the baseline: Python objects, evicted by scanning
        base.append(EncodedFrame(bytes(bytearray(f.data)), f.number, f.time, f.keyframe))
        while len(base) > 1 and base[1].time <= f.time - 33.0:
            base.popleft()
        if f.number % 300 == 0:
            [EncodedFrame(bytes(bytearray(x.data)), x.number, x.time, x.keyframe) for x in base]
    baseline = time.perf_counter() - t0
    return {
        "ring_seconds": round(ours, 4),
        "baseline_seconds": round(baseline, 4),
        "baseline_over_ring": baseline / ours,
        "ring_share_of_frame_budget": ours / n * 30,
    }


def trigger_budgets(results: list[SweepResult]) -> list[dict[str, object]]:
    """The trigger bench against the issue's budgets, per debounce value (reported only)."""
    rows = []
    for r in results:
        s = r.summary()
        d = r.debounce_ms
        checks = {
            "accepted_p99_ms": (s["accepted_ms"]["p99"], d + 5.0),
            "led_p99_ms": (s["led_ms"]["p99"], d + 10.0),
            "durable_p99_ms": (s["durable_ms"]["p99"], 1500.0),
            "false_triggers": (s["false_triggers"], 0),
            "missed_triggers": (s["missed_triggers"], 0),
        }
        rows.append(
            {
                "debounce_ms": d,
                "trials": s["trials"],
                **{
                    k: {"value": v, "budget": b, "ok": v is not None and v <= b}
                    for k, (v, b) in checks.items()
                },
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.bench")
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated capture seconds")
    parser.add_argument("--kills", type=int, default=40, help="SIGKILL trials (0: skip)")
    parser.add_argument("--soak-hours", type=float, default=8.0, help="soak shift (0: skip)")
    parser.add_argument(
        "--trigger-trials",
        type=int,
        default=200,
        help="trigger bench trials per debounce (0: skip)",
    )
    args = parser.parse_args()
    results: dict[str, object] = {
        "capture_720p": bench_capture(args.seconds),
        "ring": bench_ring(),
    }
    print(json.dumps(results, indent=2), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.kills:
            scenario = Path(__file__).resolve().parents[1] / "tests" / "data" / "kill.toml"
            kill = run_trials(scenario, Path(tmp) / "kill", args.kills, seed=2).as_dict()
            print(json.dumps({"kill_trials": kill}, indent=2), flush=True)
        if args.trigger_trials:
            results = bench_trigger(trials=args.trigger_trials, debounce_ms=[10.0, 20.0, 30.0])
            print(json.dumps({"trigger_budgets": trigger_budgets(results)}, indent=2), flush=True)
        if args.soak_hours:
            report = soak(args.soak_hours, Path(tmp) / "soak", sample_every=600.0, fps=5)
            print(json.dumps({"soak": report}, indent=2), flush=True)


if __name__ == "__main__":
    main()
