"""Soak: a simulated shift with dozens of events, sampling memory, files and threads.

The ring is a fixed arena and the writer queue is bounded, so after warm-up
the process should be flat: resident memory, open file descriptors and
threads sampled along the shift must not grow. A short shift runs in the test
suite; ``make bench`` runs a full 8-hour one and reports RSS over time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sim.runner import run_scenario
from sim.scenario import parse_scenario

CYCLE = 900.0  # one cycle of patrol events every 15 simulated minutes


def shift_scenario(hours: float, fps: int = 10) -> dict[str, Any]:
    """A shift: per cycle a bouncy draw, re-holster, chatter, hold stop, double press, hold."""
    events: list[dict[str, Any]] = []
    duration = hours * 3600.0
    c = 0.0
    while c + CYCLE <= duration:
        events += [
            {"at": c + 60.0, "input": "holster", "action": "activate", "bounce_ms": 8},
            {"at": c + 150.0, "input": "holster", "action": "deactivate", "bounce_ms": 8},
            {"at": c + 200.0, "input": "button", "action": "hold", "duration": 3.5},
            {
                "at": c + 300.0,
                "input": "holster",
                "action": "chatter",
                "duration": 5.0,
                "pulse_ms": 8,
            },
            {"at": c + 400.0, "input": "button", "action": "double_press"},
            {"at": c + 600.0, "input": "button", "action": "hold", "duration": 3.5},
        ]
        c += CYCLE
    return {
        "scenario": {"name": f"soak-{hours:g}h", "duration": duration, "seed": 11},
        "config": {
            "video": {"width": 640, "height": 360, "fps": fps, "bitrate": 400_000, "gop": 2 * fps},
            "buffer": {"pre_event": 30.0, "capacity_mb": 8.0},
        },
        "event": events,
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(
    hours: float, out: str | Path, sample_every: float = 60.0, fps: int = 10
) -> dict[str, Any]:
    scenario = parse_scenario(shift_scenario(hours, fps), source="<soak>")
    samples: list[dict[str, float]] = []

    def sample(t: float, _total: float) -> None:
        if t % sample_every == 0:
            samples.append(
                {
                    "sim_seconds": t,
                    "rss_mb": round(rss_mb(), 1),
                    "fds": open_fds(),
                    "threads": threading.active_count(),
                }
            )

    result = run_scenario(scenario, out, progress=sample)
    return {
        "sim_hours": hours,
        "events": len(scenario.events),
        "recordings": len(result.recordings),
        "dropped_frames": result.dropped_frames,
        "wall_seconds": round(result.wall_seconds, 1),
        "samples": samples,
    }
