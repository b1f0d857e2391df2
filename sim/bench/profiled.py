"""A benchmark's cProfile, saved the suite's way: the ``.prof`` and a text summary beside it.

The next optimisation starts from these files, so each is named for the run
that made it and the text has the two views one reads first: where the time
goes including callees (cumulative) and where it is spent (tottime).
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def save(profiler: cProfile.Profile, profiles: Path, stem: str, top: int = 30) -> Path:
    """Write ``stem.prof`` and ``stem.txt`` under ``profiles``; the text's path."""
    profiles.mkdir(parents=True, exist_ok=True)
    prof = profiles / f"{stem}.prof"
    profiler.dump_stats(prof)
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        out.write(f"=== sorted by {order}, top {top} ===\n")
        pstats.Stats(str(prof), stream=out).sort_stats(order).print_stats(top)
    text = profiles / f"{stem}.txt"
    text.write_text(out.getvalue())
    return text


def run(fn: Callable[[], T], profiles: Path, stem: str) -> T:
    """``fn()`` under cProfile (slower: never a timed run), saved as ``stem``."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return fn()
    finally:
        profiler.disable()
        save(profiler, profiles, stem)
