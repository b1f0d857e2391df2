"""A short shift: memory, open files and threads stay flat after warm-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.soak import soak


@pytest.mark.soak
def test_short_shift_is_flat(tmp_path: Path) -> None:
    report = soak(0.5, tmp_path, sample_every=30.0, fps=5)
    assert report["recordings"] == 4  # two per 15-minute cycle
    assert report["dropped_frames"] == 0
    samples = report["samples"]
    # Warm-up: the first cycle, which has recorded, stopped and buffered again.
    warm = [s for s in samples if s["sim_seconds"] <= 900.0]
    later = [s for s in samples if s["sim_seconds"] > 900.0]
    assert warm and later
    for key in ("fds", "threads"):
        assert max(s[key] for s in later) <= max(s[key] for s in warm), (key, samples)
    assert max(s["rss_mb"] for s in later) - max(s["rss_mb"] for s in warm) < 10.0, samples
