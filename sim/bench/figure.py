"""One reported number of the bench suite: repeated runs, its baseline, its goal.

A figure is a ratio (or a share, or megabytes) measured against a baseline run
side by side on the same host, so it means the same on any machine. Goals are
reported as PASS or MISS, never asserted: tests check the shape of what a
benchmark reports, not how fast this host happened to be.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Goal:
    """``value <= limit`` or ``value >= limit``, with the issue's words for it."""

    op: Literal["<=", ">="]
    limit: float

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


@dataclass
class Figure:
    """One line of ``bench/results.md``.

    ``samples`` holds the figure of each repeated run (the median is the
    figure); ``ours`` and ``base`` the raw measurements behind it, per run, in
    ``unit_raw`` (e.g. ms of the firmware's flush and of a plain write+fsync),
    so a reader can check the ratio. ``limit`` says what bounds the figure
    when its goal is missed, naming the profile that shows it.
    """

    key: str  # stable id, the key of bench/baseline.json: "flush.durable_over_plain"
    label: str  # "pre-event durable / plain write+fsync (720p, 30 s)"
    samples: list[float]
    unit: str = "x"  # of the figure: "x" (ratio), "%", "MB"
    better: Better = "lower"
    goal: Goal | None = None
    baseline: str = ""  # what the figure is measured against: "plain write+fsync, same bytes"
    ours: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    unit_raw: str = ""
    limit: str = ""  # what limits it, when the goal is missed
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError(f"figure {self.key}: no samples")

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def status(self) -> str:
        if self.goal is None:
            return "-"
        return "PASS" if self.goal.met(self.median) else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "runs": len(self.samples),
            "samples": self.samples,
            "unit": self.unit,
            "better": self.better,
            "goal": str(self.goal) if self.goal else None,
            "status": self.status,
            "baseline": self.baseline,
            "ours": self.ours,
            "base": self.base,
            "unit_raw": self.unit_raw,
            "limit": self.limit,
            "notes": self.notes,
        }


def regressions(
    results: dict[str, Any], baseline: dict[str, Any], tolerance: float = 0.10
) -> list[str]:
    """Lines naming each figure more than ``tolerance`` worse than the baseline's.

    Worse is judged in the figure's own direction (``better``): a flush ratio
    that rose, a pipeline ratio that fell. Figures missing from either side
    are named too, so a benchmark that silently stopped reporting is seen.
    """
    ours = {f["key"]: f for f in results["figures"]}
    base = {f["key"]: f for f in baseline["figures"]}
    out = []
    for key in sorted(base.keys() - ours.keys()):
        out.append(f"{key}: in the baseline, not in the results")
    for key in sorted(ours.keys() & base.keys()):
        now, then, better = ours[key]["median"], base[key]["median"], base[key]["better"]
        if then == 0:
            continue
        change = (now - then) / abs(then)
        worse = change > tolerance if better == "lower" else change < -tolerance
        if worse:
            out.append(
                f"{key}: {now:.4g} against the baseline's {then:.4g} "
                f"({100 * change:+.1f}%, {better} is better)"
            )
    return out
