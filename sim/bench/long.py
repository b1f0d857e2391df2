"""``make bench-long``: the runs too long for the suite, reported as JSON.

SIGKILL trials (``--kills``), the trigger bench at 1280x720 with 200 trials per
debounce value against its budgets (``--trigger-trials``), and an 8-hour soak
(``--soak-hours``) reporting RSS, files and threads over the shift. Each can
be sized or skipped (0).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sim.killtest import run_trials
from sim.soak import soak
from sim.trigger_bench import SweepResult, bench_trigger, budgets


def trigger_budgets(results: list[SweepResult]) -> list[dict[str, object]]:
    """The trigger bench against the issue's budgets, per debounce value (reported only)."""
    rows = []
    for r in results:
        s = r.summary()
        d = r.debounce_ms
        limit = budgets(d)  # the same budgets latency.png draws
        checks = {
            "accepted_p99_ms": (s["accepted_ms"]["p99"], limit["accepted_ms"]),
            "led_p99_ms": (s["led_ms"]["p99"], limit["led_ms"]),
            "durable_p99_ms": (s["durable_ms"]["p99"], limit["durable_ms"]),
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench long")
    parser.add_argument(
        "--kills", type=int, default=40, help="SIGKILL trials (default: 40; 0: skip)"
    )
    parser.add_argument(
        "--trigger-trials",
        type=int,
        default=200,
        help="trigger bench trials per debounce value (default: 200; 0: skip)",
    )
    parser.add_argument(
        "--soak-hours", type=float, default=8.0, help="soak shift (default: 8; 0: skip)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.kills:
            scenario = Path(__file__).resolve().parents[2] / "tests" / "data" / "kill.toml"
            kill = run_trials(scenario, Path(tmp) / "kill", args.kills, seed=2).as_dict()
            print(json.dumps({"kill_trials": kill}, indent=2), flush=True)
        if args.trigger_trials:
            results = bench_trigger(trials=args.trigger_trials, debounce_ms=[10.0, 20.0, 30.0])
            print(json.dumps({"trigger_budgets": trigger_budgets(results)}, indent=2), flush=True)
        if args.soak_hours:
            report = soak(args.soak_hours, Path(tmp) / "soak", sample_every=600.0, fps=5)
            print(json.dumps({"soak": report}, indent=2), flush=True)
    return 0
