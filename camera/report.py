"""One run report for every way the firmware runs: a Pi, a scenario, the bench.

The summary dict is what ``bodycam run --json`` prints and what
:func:`camera.summary.print_summary` shows; its keys are the same on every
board, so a script reading a Pi run reads a simulated one too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Copied from each recording's manifest into the summary as they are.
SUMMARY_FIELDS = ("trigger", "pre_event_seconds", "frames", "dropped_frames", "stop")


@dataclass
class RunReport:
    board: str
    storage: Path
    recordings: Sequence[dict[str, Any]]
    frames_captured: int
    #: Device time the run reached (simulated seconds on the virtual clock).
    device_seconds: float
    #: Host time the run took (on a real clock the same as ``device_seconds``).
    wall_seconds: float
    #: The scenario's name; None on a board running for real.
    scenario: str | None = None
    #: Judged ``[expect]`` entries: dicts with name, expected, actual, ok.
    expectations: Sequence[dict[str, Any]] = field(default_factory=list)
    #: Name of the signal that ended the run early (then nothing is judged).
    interrupted: str | None = None

    @property
    def dropped_frames(self) -> int:
        return sum(m["dropped_frames"] for m in self.recordings)

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(e["ok"] for e in self.expectations)

    def summary(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "scenario": self.scenario,
            "recordings": [
                {
                    "path": str(self.storage / m["recording_id"]),
                    **{k: m[k] for k in SUMMARY_FIELDS},
                    # Every missing frame, the camera's gaps too: "dropped" counts
                    # only what the firmware dropped, and a camera that went dark
                    # for 45 frames must not read as a recording without a hole.
                    "lost_frames": sum(g["frames"] for g in m["gaps"]),
                    "markers": len(m["markers"]),
                }
                for m in self.recordings
            ],
            "frames_captured": self.frames_captured,
            "dropped_frames": self.dropped_frames,
            "device_seconds": round(self.device_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 3),
            "expectations": list(self.expectations),
            "interrupted": self.interrupted,
            "ok": self.ok,
        }
