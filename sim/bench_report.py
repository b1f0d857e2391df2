"""Bench output: the percentile table, a CSV of every trial, a histogram and CDF plot."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sim.trigger_bench import SweepResult

KEYS = ("accepted_ms", "led_ms", "durable_ms")


def table(results: list[SweepResult]) -> str:
    header = ["debounce", "latency", "p50", "p95", "p99", "max", "false", "missed"]
    rows = []
    for r in results:
        s = r.summary()
        for key in KEYS:
            p = s[key]
            fmt = [f"{p[k]:.1f}" if p[k] is not None else "-" for k in ("p50", "p95", "p99", "max")]
            rows.append(
                [
                    f"{r.debounce_ms:g} ms",
                    key.removesuffix("_ms"),
                    *fmt,
                    f"{s['false_triggers']}/{s['false_trials']}",
                    f"{s['missed_triggers']}/{s['trials']}",
                ]
            )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines) + "\n(latencies in ms from the first edge; false/missed: count/trials)"


def as_json(results: list[SweepResult]) -> dict[str, Any]:
    first = results[0].summary()
    return {
        "trials": first["trials"],
        **{k: first[k] for k in KEYS},
        "false_triggers": sum(r.false_triggers for r in results),
        "missed_triggers": sum(r.missed_triggers for r in results),
        # Without these a zero false_triggers could mean no false-trigger trial ran.
        "false_trials": sum(r.false_trials for r in results),
        "stimulus_overruns": sum(r.stimulus_overruns for r in results),
        "sweep": [r.summary() for r in results],
    }


def write_csv(results: list[SweepResult], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["debounce_ms", "trial", *KEYS])
        writer.writeheader()
        for r in results:
            for t in r.trials:
                writer.writerow(t.row())


def write_plot(results: list[SweepResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for col, key in enumerate(KEYS):
        for r in results:
            values = sorted(v for t in r.trials if (v := t.row()[key]) is not None)
            if not values:
                continue
            label = f"debounce {r.debounce_ms:g} ms"
            axes[0][col].hist(values, bins=30, alpha=0.6, label=label)
            n = len(values)
            axes[1][col].step(values, [(i + 1) / n for i in range(n)], where="post", label=label)
        axes[0][col].set_title(f"edge -> {key.removesuffix('_ms')}")
        axes[0][col].set_xlabel("ms")
        axes[0][col].set_ylabel("trials")
        axes[1][col].set_xlabel("ms")
        axes[1][col].set_ylabel("fraction of trials (CDF)")
        axes[1][col].grid(True, alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.suptitle("bodycam holster-trigger latency")
    fig.savefig(path, dpi=100)
    plt.close(fig)
