"""Power-loss trials: run the firmware in a subprocess and SIGKILL it at random moments.

After each kill the storage is recovered exactly as at the next boot, and
every recording must verify. Reported per run of trials: kill points,
recordings, how many were interrupted, and the most frames recovery had to
cut (frames that had reached the file but were past the last journaled sync).
Shared by the test suite (a few kills) and ``make bench`` (many).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from camera.framecode import read_frame_code
from camera.manifest import MANIFEST
from camera.recovery import interrupted, recover_storage
from camera.verify import verify_recording
from hal.storage.local import LocalStorage


@dataclass
class KillReport:
    kill_points: int = 0
    recordings: int = 0
    interrupted: int = 0
    max_lost_frames: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _child(scenario: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "camera",
        "run",
        "--scenario",
        str(scenario),
        "--out",
        str(out),
        "--json",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def on_disk_codes(directory: Path) -> list[int]:
    """Frame codes that reached the segment files, decoding as far as each one goes."""
    codes: list[int] = []
    for seg in sorted(directory.glob("segment-*")):
        try:
            with av.open(str(seg)) as container:
                for frame in container.decode(video=0):
                    code = read_frame_code(frame.to_ndarray(format="gray"))
                    if code is not None:
                        codes.append(code)
        except (av.FFmpegError, OSError, ValueError):
            continue
    return codes


def run_trials(scenario: Path, workdir: Path, kills: int, seed: int = 0) -> KillReport:
    rng = random.Random(seed)
    report = KillReport()
    t0 = time.perf_counter()
    full = _child(scenario, workdir / "complete")
    if full.wait() != 0:
        report.failures.append("the uninterrupted run failed")
        return report
    span = time.perf_counter() - t0
    for i in range(kills):
        out = workdir / f"kill-{i:03d}"
        proc = _child(scenario, out)
        try:
            proc.wait(timeout=rng.uniform(0.2, span))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        report.kill_points += 1
        if not out.exists():
            continue
        storage = LocalStorage(out)
        before = {name: on_disk_codes(out / name) for name in interrupted(storage)}
        recover_storage(storage)
        for name, codes in before.items():
            report.interrupted += 1
            path = out / name / MANIFEST
            if not path.exists():
                report.failures.append(f"{out.name}/{name}: not recovered")
                continue
            m = json.loads(path.read_text())
            if codes and m["last_frame"] is not None:
                report.max_lost_frames = max(report.max_lost_frames, max(codes) - m["last_frame"])
        for rec in sorted(p for p in out.iterdir() if p.is_dir()):
            report.recordings += 1
            v = verify_recording(rec)
            if not v.ok:
                report.failures.append(f"{out.name}/{rec.name}: {'; '.join(v.problems)}")
    return report
