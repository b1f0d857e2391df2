"""Human output: the run summary table and a progress bar (inspect: camera.inspection)."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class ProgressBar:
    """Simulated time on one terminal line (only drawn when stderr is a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width

    def __call__(self, t: float, total: float) -> None:
        done = round(self.width * t / total) if total else self.width
        bar = "#" * done + "." * (self.width - done)
        self.stream.write(f"\r{self.label} [{bar}] {t:7.1f} / {total:.1f} s simulated")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), line, *(fmt.format(*r) for r in rows)])


def print_summary(summary: dict[str, Any], stream: TextIO | None = None) -> None:
    """A run's summary (:meth:`camera.report.RunReport.summary`), for people."""
    stream = stream or sys.stdout
    recs = summary["recordings"]
    reached, wall = summary["device_seconds"], summary["wall_seconds"]
    if summary["scenario"] is not None:
        speed = reached / wall if wall else 0
        print(
            f"scenario {summary['scenario']}: {reached:g} s simulated in "
            f"{wall:.1f} s ({speed:.1f}x real time)",
            file=stream,
        )
    else:
        print(f"board {summary['board']}: ran {reached:.1f} s", file=stream)
    print(
        f"frames captured {summary['frames_captured']}, dropped {summary['dropped_frames']}, "
        f"recordings {len(recs)}",
        file=stream,
    )
    if recs:
        rows = [
            [
                str(i + 1),
                f"{r['trigger']['source']} @ {r['trigger']['time']:.3f}",
                f"{r['pre_event_seconds']:.2f} s",
                str(r["frames"]),
                str(r["dropped_frames"]),
                str(r["lost_frames"]),
                str(r["markers"]),
                f"{r['stop']['reason']} @ {r['stop']['time']:.3f}",
                r["path"],
            ]
            for i, r in enumerate(recs)
        ]
        header = ["#", "trigger", "pre-event", "frames", "dropped", "lost", "markers"]
        header += ["stop", "path"]
        print(_table(rows, header), file=stream)
    if summary.get("interrupted"):
        what = "s simulated" if summary["scenario"] is not None else "s"
        judged = "; expectations not judged" if summary["scenario"] is not None else ""
        print(
            f"interrupted by {summary['interrupted']} at {reached:.3f} {what}: "
            f"open recordings closed (end_of_run){judged}",
            file=stream,
        )
    if "dock" in summary:
        _print_dock(summary["dock"], stream)
    for e in summary["expectations"]:
        mark = "PASS" if e["ok"] else "FAIL"
        print(f"{mark}  expect {e['name']} = {e['expected']!r}: got {e['actual']!r}", file=stream)


def _print_dock(dock: dict[str, Any] | None, stream: TextIO) -> None:
    """A scenario's ``[dock]`` (sim.dock.DockResult.summary): what went, and what stayed, why."""
    if dock is None:
        print("not docked: the run ended before the dock", file=stream)
        return
    where = f"; evidence store {dock['data']}" if dock["data"] else " (a temporary evidence store)"
    print(
        f"docked at {dock['at']:.3f} s: {dock['offloaded']} offloaded ({dock['deleted']} deleted "
        f"from the camera), {dock['kept']} kept; {dock['files_sent']} file(s) sent, "
        f"{dock['files_held']} already on the server{where}",
        file=stream,
    )
    for r in dock["recordings"]:
        if not r["offloaded"]:
            print(f"  kept {r['recording']}: {r['reason']}", file=stream)
    if dock["stopped"]:
        print(f"  stopped: {dock['stopped']}", file=stream)
