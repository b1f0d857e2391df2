"""Microphone: does it deliver sound at the configured rate, without gaps?

A missing microphone is a warning, not a failure: the firmware records
pictures without sound rather than nothing (SPEC 15). The rate is measured
from the blocks' own sample numbers and device times, like the camera's.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from camera.config import Config
from camera.doctor.listen import listen
from camera.doctor.result import Result, part_problem
from hal.board import Parts

__all__ = ["MICROPHONE_WINDOW", "check_microphone"]

#: Seconds of sound measured, from the first block on.
MICROPHONE_WINDOW = 2.0
#: Seconds the microphone may take to deliver its first block.
FIRST_BLOCK_TIMEOUT = 3.0
#: Sample clocks off by more than this fraction of the rate are warned about.
RATE_TOLERANCE = 0.02


def check_microphone(config: Config, board: Parts, *, window: float = MICROPHONE_WINDOW) -> Result:
    a = config.audio
    if not a.enabled:
        return Result("microphone", "skip", "not enabled ([audio] enabled = false)")
    details: dict[str, Any] = {"backend": board.names.get("audio"), "configured_rate": a.rate}
    source, clock = board.audio, board.clock
    if source is None:
        problem = part_problem(board, "audio", "microphone") or "the board has no microphone"
        return Result("microphone", "warn", f"{problem}: recordings will have no sound", details)
    blocks: list[tuple[int, int, float, float]] = []  # first sample, samples, time, peak

    def on_block(samples: np.ndarray, first_sample: int, t: float) -> None:
        peak = float(np.abs(samples.astype(np.int32)).max()) / 32768 if samples.size else 0.0
        blocks.append((first_sample, len(samples), t, peak))

    listen(clock, source, on_block, window=window, first_timeout=FIRST_BLOCK_TIMEOUT)
    name = details["backend"]
    if not blocks:
        return Result(
            "microphone", "fail", f"{name}: no sound in {FIRST_BLOCK_TIMEOUT:g} s", details
        )
    first, last = blocks[0], blocks[-1]
    span = last[2] - first[2]
    samples = last[0] - first[0]
    rate = samples / span if span > 0 else 0.0
    lost = sum(b[0] - (a_[0] + a_[1]) for a_, b in itertools.pairwise(blocks))
    peak = max(b[3] for b in blocks)
    details |= {"blocks": len(blocks), "rate": round(rate, 1), "lost_samples": lost, "peak": peak}
    text = f"{name}: {rate:.0f} Hz over {span:.1f} s (configured {a.rate}), peak {peak:.2f}"
    warns = []
    if span <= 0 or abs(rate - a.rate) > RATE_TOLERANCE * a.rate:
        warns.append(f"sample rate off the configured {a.rate} Hz")
    if lost:
        warns.append(f"{lost} samples lost")
    if peak == 0.0:
        warns.append("digital silence (muted or unplugged input?)")
    if warns:
        return Result("microphone", "warn", f"{text}; " + "; ".join(warns), details)
    return Result("microphone", "ok", text, details)
