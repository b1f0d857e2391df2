"""Bench output: the percentile table, a CSV of every trial, a histogram and CDF plot."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.trigger_bench import SweepResult, budgets

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def latency_figure(results: list[SweepResult]) -> Figure:
    """Histogram (top) and CDF (bottom) per latency, with the budgets and the run conditions.

    A latency plot means nothing without what it is judged against and what
    it ran on, so both are in the figure itself: dashed lines at each budget
    (sim.trigger_bench.budgets, per debounce value in its colour) and, under
    the title, the resolution, bounce, debounce, trials, host and date.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(13, 7.5), constrained_layout=True)
    axes = fig.subplots(2, 3)
    colours = [f"C{i}" for i in range(len(results))]
    for col, key in enumerate(KEYS):
        hist, cdf = axes[0][col], axes[1][col]
        series = [sorted(v for t in r.trials if (v := t.row()[key]) is not None) for r in results]
        limits = [budgets(r.debounce_ms)[key] for r in results]
        # One set of bins for every debounce value, so their bars compare, over
        # the budgets too: the axis spans them, and bars should not be slivers.
        edges = np.histogram_bin_edges([v for vs in series for v in vs] + limits or [0.0], bins=30)
        for r, values, colour in zip(results, series, colours, strict=True):
            label = f"debounce {r.debounce_ms:g} ms"
            if values:
                hist.hist(values, bins=edges, alpha=0.6, label=label, color=colour)
                n = len(values)
                fractions = [0.0] + [(i + 1) / n for i in range(n)]  # rises from 0 at the first
                cdf.step([values[0], *values], fractions, where="post", color=colour)
        # A budget the same at every debounce value (durable) is drawn once, in black.
        shared = len(set(limits)) == 1
        for budget, colour in dict(zip(limits, colours, strict=True)).items():
            for ax in (hist, cdf):
                ax.axvline(
                    budget,
                    color="k" if shared else colour,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"p99 budget {budget:g} ms" if ax is hist else None,
                )
        hist.set_title(f"edge -> {key.removesuffix('_ms')}")
        hist.set_xlabel("ms")
        hist.set_ylabel("trials")
        hist.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts, never 0.5 trials
        cdf.set_xlabel("ms")
        cdf.set_ylabel("fraction of trials (CDF)")
        cdf.set_ylim(0.0, 1.02)
        cdf.grid(True, alpha=0.3)
        hist.legend(fontsize=8)
    conditions = results[0].conditions if results else None
    title = "bodycam holster-trigger latency"
    if conditions is not None:
        run, host = conditions.lines()
        title += f"\n{run}\n{host}"
    fig.suptitle(title, fontsize=10)
    return fig


def write_plot(results: list[SweepResult], path: Path) -> None:
    latency_figure(results).savefig(path, dpi=100)
