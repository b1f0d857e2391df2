"""A short shift: memory, open files and threads stay flat after warm-up.

The shift runs in a fresh interpreter: in the test worker, the resident set,
open files and threads would be those of every test that ran there before
(servers, browsers, other shifts), and their freed heap would come and go
under this one's samples.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SHIFT = (
    "import json, sys\n"
    "from sim.soak import soak\n"
    "print(json.dumps(soak(0.5, sys.argv[1], sample_every=30.0, fps=5)))\n"
)


def shift(tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SHIFT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.soak
def test_short_shift_is_flat(tmp_path: Path) -> None:
    report = shift(tmp_path)
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
